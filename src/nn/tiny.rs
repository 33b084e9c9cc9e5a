//! `tiny`: a small DeepLab-like encoder–decoder for tests, CI and the quick demo. Two strided
//! conv+BN+ReLU stages (output stride 4), one dilated stage, and a DeepLab-v2-style ASPP of
//! dilated 3×3 convs summed into class logits. Trains in seconds on a software GPU.

use super::deeplab::AsppV2;
use super::error::Result;
use super::layers::{conv_bn_relu, BatchNorm2d, BnMode, Conv2d, ConvCfg, Linear};
use super::param::{Init, ParamStore};
use crate::ops;
use crate::tensor::Tensor;

pub const TINY_WIDTH: [usize; 3] = [16, 32, 32];
pub const TINY_RATES: [usize; 2] = [1, 3];

#[derive(Clone)]
pub struct Tiny {
    /// (conv, bn) per stage: 3→16 s2, 16→32 s2, 32→32 dilation 2.
    pub stages: Vec<(Conv2d, BatchNorm2d)>,
    pub aspp: AsppV2,
}

/// Tiny's three conv+BN+ReLU stages (3→16 s2, 16→32 s2, 32→32 dilation 2; output stride 4),
/// shared with `rrm-tiny`'s trunk. Parameters `stage{1,2,3}.{conv,bn}.*`.
pub fn tiny_stages(store: &mut ParamStore) -> Vec<(Conv2d, BatchNorm2d)> {
    let k = ConvCfg::default()
        .no_bias()
        .init(Init::KaimingNormalFanOut)
        .padding(1);
    let [w0, w1, w2] = TINY_WIDTH;
    vec![
        (
            Conv2d::new(store, "stage1.conv", 3, w0, 3, k.stride(2)),
            BatchNorm2d::new(store, "stage1.bn", w0),
        ),
        (
            Conv2d::new(store, "stage2.conv", w0, w1, 3, k.stride(2)),
            BatchNorm2d::new(store, "stage2.bn", w1),
        ),
        (
            Conv2d::new(store, "stage3.conv", w1, w2, 3, k.padding(2).dilation(2)),
            BatchNorm2d::new(store, "stage3.bn", w2),
        ),
    ]
}

/// Runs [`tiny_stages`].
pub fn stages_forward(
    stages: &[(Conv2d, BatchNorm2d)],
    x: &Tensor,
    mode: BnMode,
) -> Result<Tensor> {
    let mut y = x.clone();
    for (c, b) in stages {
        y = conv_bn_relu(c, b, &y, mode)?;
    }
    Ok(y)
}

/// Output size of [`tiny_stages`].
pub fn stages_out_size(
    stages: &[(Conv2d, BatchNorm2d)],
    h: usize,
    w: usize,
) -> Option<(usize, usize)> {
    let (mut h, mut w) = (h, w);
    for (c, _) in stages {
        (h, w) = c.out_size(h, w);
    }
    Some((h, w))
}

impl Tiny {
    pub fn new(store: &mut ParamStore, classes: usize) -> Tiny {
        let stages = tiny_stages(store);
        let aspp = AsppV2::new(store, "aspp", TINY_WIDTH[2], classes, &TINY_RATES);
        Tiny { stages, aspp }
    }
}

impl Tiny {
    /// Features after the dilated stage [N, 32, H/4, W/4].
    pub fn features(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        stages_forward(&self.stages, x, mode)
    }

    /// Class logits at output stride 4; callers upsample.
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.aspp.forward(&self.features(x, mode)?)
    }

    pub fn out_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        stages_out_size(&self.stages, h, w)
    }

    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        self.stages.iter().map(|(_, b)| b).collect()
    }
}

/// `tiny-cls`: Tiny's encoder + global average pooling + a linear layer, an image-level
/// classifier whose CAMs live at output stride 4. It stands in for the ResNets of the weak
/// methods (EADER's localizer and adversary) where those are too slow: CI, demos.
#[derive(Clone)]
pub struct TinyCls {
    pub stages: Vec<(Conv2d, BatchNorm2d)>,
    /// [classes, 32] with bias, as torchvision's `fc`.
    pub fc: Linear,
}

impl TinyCls {
    pub fn new(store: &mut ParamStore, classes: usize) -> TinyCls {
        let stages = tiny_stages(store);
        let fc = Linear::new(store, "fc", TINY_WIDTH[2], classes, true);
        TinyCls { stages, fc }
    }

    /// Features [N, 32, H/4, W/4] (CAMs are computed on them).
    pub fn features(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        stages_forward(&self.stages, x, mode)
    }

    /// Image-level logits [N, classes] of features.
    pub fn head(&self, f: &Tensor) -> Result<Tensor> {
        let pooled = ops::adaptive_avg_pool2d(f, [1, 1])?;
        let n = pooled.shape()[0];
        self.fc.forward(&pooled.reshape(&[n, TINY_WIDTH[2]])?)
    }

    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        self.stages.iter().map(|(_, b)| b).collect()
    }
}
