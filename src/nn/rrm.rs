//! RRM's two-branch network (methods.md §4.1) over a trunk:
//!
//! * `rrm-resnet50`: a dilated torchvision ResNet-50 (output stride 8, 2048 channels) instead of
//!   the paper's ResNet-38; segmentation branch 512 wide at dilation 12 as RRM.py.
//! * `rrm-tiny`: `tiny`'s three conv-BN-ReLU stages (output stride 4, 32 channels) and a
//!   32-wide segmentation branch at dilation 2, for tests and demos.
//!
//! Names: trunk as torchvision (`conv1`, `layer1..4`; no `fc`, so ImageNet ResNet-50 weights load
//! with only `fc.*` unexpected) or as `tiny` (`stage1..3`), `fc8` (classification 1×1 conv
//! without bias, one logit per foreground class), `fc8_seg_conv1` / `fc8_seg_conv2`
//! (segmentation branch), as in RRM.py.

use super::error::Result;
use super::layers::{BatchNorm2d, BnMode, Conv2d, ConvCfg};
use super::param::{Init, ParamStore};
use super::resnet::{ResNet, ResNetCfg};
use super::tiny;
use crate::ops;
use crate::tensor::Tensor;

pub const SEG_WIDTH: usize = 512;
pub const SEG_DILATION: usize = 12;
/// `rrm-tiny`'s segmentation branch.
pub const TINY_SEG_WIDTH: usize = 32;
pub const TINY_SEG_DILATION: usize = 2;
/// Dropout2d before global average pooling in the classification branch.
pub const CLS_DROPOUT: f32 = 0.5;

/// The feature extractor under both branches.
#[derive(Clone)]
pub enum RrmTrunk {
    ResNet50(Box<ResNet>),
    Tiny(Vec<(Conv2d, BatchNorm2d)>),
}

impl RrmTrunk {
    pub fn features(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        match self {
            RrmTrunk::ResNet50(r) => Ok(r.features(x, mode)?.pop().expect("four stages")),
            RrmTrunk::Tiny(s) => tiny::stages_forward(s, x, mode),
        }
    }
    pub fn out_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        match self {
            RrmTrunk::ResNet50(r) => r.out_size(h, w),
            RrmTrunk::Tiny(s) => tiny::stages_out_size(s, h, w),
        }
    }
    pub fn out_channels(&self) -> usize {
        match self {
            RrmTrunk::ResNet50(r) => r.out_channels,
            RrmTrunk::Tiny(_) => tiny::TINY_WIDTH[2],
        }
    }
    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        match self {
            RrmTrunk::ResNet50(r) => r.batch_norms(),
            RrmTrunk::Tiny(s) => s.iter().map(|(_, b)| b).collect(),
        }
    }
}

#[derive(Clone)]
pub struct Rrm {
    pub trunk: RrmTrunk,
    /// [classes − 1, C, 1, 1], no bias.
    pub fc8: Conv2d,
    pub seg1: Conv2d,
    pub seg2: Conv2d,
    pub classes: usize,
}

/// Everything one RRM step needs from one forward.
pub struct RrmOutput {
    /// Trunk feature map F [N, 2048, H/8, W/8] (`rrm-tiny`: [N, 32, H/4, W/4]); the CAMs are
    /// computed on it, un-dropped.
    pub features: Tensor,
    /// Segmentation logits [N, classes, h, w] at the trunk's output stride.
    pub seg: Tensor,
    /// Image-level logits [N, classes − 1] (foreground classes).
    pub cls: Tensor,
}

impl Rrm {
    /// `rrm-resnet50`. `classes` counts the background; the classification branch has
    /// `classes − 1` outputs.
    pub fn new(store: &mut ParamStore, classes: usize) -> Rrm {
        let trunk = ResNet::new(
            store,
            "",
            ResNetCfg {
                depth: 50,
                output_stride: Some(8),
                stride_on_1x1: false,
                fc_classes: None,
            },
        )
        .expect("resnet50");
        Rrm::with_trunk(
            store,
            RrmTrunk::ResNet50(Box::new(trunk)),
            classes,
            SEG_WIDTH,
            SEG_DILATION,
        )
    }

    /// `rrm-tiny`.
    pub fn tiny(store: &mut ParamStore, classes: usize) -> Rrm {
        let trunk = RrmTrunk::Tiny(tiny::tiny_stages(store));
        Rrm::with_trunk(store, trunk, classes, TINY_SEG_WIDTH, TINY_SEG_DILATION)
    }

    /// The two branches over `trunk` (registered after the trunk's parameters).
    pub fn with_trunk(
        store: &mut ParamStore,
        trunk: RrmTrunk,
        classes: usize,
        seg_width: usize,
        seg_dilation: usize,
    ) -> Rrm {
        let c = trunk.out_channels();
        // RRM initialises fc8 and the segmentation convs with Xavier-uniform; biases default.
        let fc8 = Conv2d::new(
            store,
            "fc8",
            c,
            classes.saturating_sub(1).max(1),
            1,
            ConvCfg::default().no_bias().init(Init::XavierUniform),
        );
        let seg = |d: usize| {
            ConvCfg::default()
                .padding(d)
                .dilation(d)
                .init(Init::XavierUniform)
        };
        let seg1 = Conv2d::new(store, "fc8_seg_conv1", c, seg_width, 3, seg(seg_dilation));
        let seg2 = Conv2d::new(
            store,
            "fc8_seg_conv2",
            seg_width,
            classes,
            3,
            seg(seg_dilation),
        );
        Rrm {
            trunk,
            fc8,
            seg1,
            seg2,
            classes,
        }
    }

    pub fn features(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.trunk.features(x, mode)
    }

    /// Segmentation branch on features: conv 3×3 → ReLU → conv 3×3 (dilation 12; `rrm-tiny` 2).
    pub fn seg_head(&self, f: &Tensor) -> Result<Tensor> {
        self.seg2.forward(&ops::relu(&self.seg1.forward(f)?)?)
    }

    /// Classification branch: Dropout2d (when `dropout_seed` is given) → GAP → fc8 → [N, K].
    pub fn cls_head(&self, f: &Tensor, dropout_seed: Option<u64>) -> Result<Tensor> {
        let f = match dropout_seed {
            Some(s) => ops::dropout2d(f, CLS_DROPOUT, true, s)?,
            None => f.clone(),
        };
        let g = ops::adaptive_avg_pool2d(&f, [1, 1])?;
        let y = self.fc8.forward(&g)?;
        let n = y.shape()[0];
        Ok(y.reshape(&[n, self.fc8.cout])?)
    }

    /// All three outputs of one forward.
    pub fn forward_all(
        &self,
        x: &Tensor,
        mode: BnMode,
        dropout_seed: Option<u64>,
    ) -> Result<RrmOutput> {
        let features = self.features(x, mode)?;
        let seg = self.seg_head(&features)?;
        let cls = self.cls_head(&features, dropout_seed)?;
        Ok(RrmOutput { features, seg, cls })
    }

    /// Image-level logits only.
    pub fn forward_cls(
        &self,
        x: &Tensor,
        mode: BnMode,
        dropout_seed: Option<u64>,
    ) -> Result<Tensor> {
        self.cls_head(&self.features(x, mode)?, dropout_seed)
    }

    /// CAMs `ReLU(fc8 · F)` [N, classes − 1, h, w] on un-dropped features.
    pub fn cams(&self, f: &Tensor) -> Result<Tensor> {
        super::cam::cam(f, &self.fc8.weight.get()?)
    }

    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        self.trunk.batch_norms()
    }
}
