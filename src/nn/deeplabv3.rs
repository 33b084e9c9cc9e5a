//! DeepLab-v3 "enhanced ASPP" head on a dilated torchvision ResNet (SS-GAN's ResNet50-G and the
//! GAN-auxiliary generator).
//!
//! Names follow torchvision's `deeplabv3_resnet50`: trunk `backbone.*` (no `fc`), ASPP
//! `classifier.0.convs.{0..3}.{0,1}` (conv, BN) for the 1×1 and the three dilated 3×3 branches,
//! `classifier.0.convs.4.{1,2}` for the image-pooling branch (index 0 is the parameter-free pool),
//! `classifier.0.project.{0,1}` for the 1×1 projection after the concat. SS-GAN's table has a 1×1
//! classifier right after the projection where torchvision puts a 3×3 conv + BN + ReLU
//! (`classifier.1..3`) first; the classifier keeps torchvision's index, `classifier.4`, so a
//! torchvision checkpoint loads with only `classifier.1/2` (and `aux_classifier.*`) unexpected.

use super::error::{NnError, Result};
use super::layers::{conv_bn_relu, BatchNorm2d, BnMode, Conv2d, ConvCfg};
use super::param::ParamStore;
use super::resnet::{ResNet, ResNetCfg};
use crate::ops;
use crate::tensor::Tensor;

pub const ASPP_V3_RATES: [usize; 3] = [6, 12, 18];
pub const ASPP_V3_WIDTH: usize = 256;
/// torchvision's dropout after the projection.
pub const ASPP_V3_DROPOUT: f32 = 0.5;

/// Enhanced ASPP: 1×1, dilated 3×3 per rate, image pooling; each conv (no bias) + BN + ReLU,
/// concatenated and projected by 1×1 conv + BN + ReLU (+ dropout when training).
#[derive(Clone)]
pub struct AsppV3 {
    /// The 1×1 branch then one dilated 3×3 per rate.
    pub branches: Vec<(Conv2d, BatchNorm2d)>,
    pub pool: (Conv2d, BatchNorm2d),
    pub project: (Conv2d, BatchNorm2d),
    pub width: usize,
}

/// torchvision leaves the head at PyTorch's default initialisation.
fn kconv() -> ConvCfg {
    ConvCfg::default().no_bias()
}

impl AsppV3 {
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        cin: usize,
        width: usize,
        rates: &[usize],
    ) -> AsppV3 {
        let mut branches = Vec::with_capacity(rates.len() + 1);
        let n0 = format!("{name}.convs.0");
        branches.push((
            Conv2d::new(store, &format!("{n0}.0"), cin, width, 1, kconv()),
            BatchNorm2d::new(store, &format!("{n0}.1"), width),
        ));
        for (i, &r) in rates.iter().enumerate() {
            let n = format!("{name}.convs.{}", i + 1);
            branches.push((
                Conv2d::new(
                    store,
                    &format!("{n}.0"),
                    cin,
                    width,
                    3,
                    kconv().padding(r).dilation(r),
                ),
                BatchNorm2d::new(store, &format!("{n}.1"), width),
            ));
        }
        let np = format!("{name}.convs.{}", rates.len() + 1);
        let pool = (
            Conv2d::new(store, &format!("{np}.1"), cin, width, 1, kconv()),
            BatchNorm2d::new(store, &format!("{np}.2"), width),
        );
        let cat = width * (rates.len() + 2);
        let project = (
            Conv2d::new(store, &format!("{name}.project.0"), cat, width, 1, kconv()),
            BatchNorm2d::new(store, &format!("{name}.project.1"), width),
        );
        AsppV3 {
            branches,
            pool,
            project,
            width,
        }
    }

    /// [N, width, H, W]. `dropout_seed` enables the projection's dropout (training).
    pub fn forward(&self, x: &Tensor, mode: BnMode, dropout_seed: Option<u64>) -> Result<Tensor> {
        let s = x.shape();
        let mut outs = Vec::with_capacity(self.branches.len() + 1);
        for (c, b) in &self.branches {
            outs.push(conv_bn_relu(c, b, x, mode)?);
        }
        let g = ops::adaptive_avg_pool2d(x, [1, 1])?;
        let g = conv_bn_relu(&self.pool.0, &self.pool.1, &g, mode)?;
        // torchvision's ASPPPooling resizes with align_corners=False (a constant map either way).
        outs.push(ops::upsample_bilinear2d(&g, [s[2], s[3]], false)?);
        let refs: Vec<&Tensor> = outs.iter().collect();
        let cat = ops::concat::concat(&refs, 1)?;
        let y = conv_bn_relu(&self.project.0, &self.project.1, &cat, mode)?;
        match dropout_seed {
            Some(seed) => Ok(ops::dropout(&y, ASPP_V3_DROPOUT, true, seed)?),
            None => Ok(y),
        }
    }

    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        let mut v: Vec<&BatchNorm2d> = self.branches.iter().map(|(_, b)| b).collect();
        v.push(&self.pool.1);
        v.push(&self.project.1);
        v
    }
}

/// Enhanced-ASPP head: `classifier.0` (ASPP) and the 1×1 classifier `classifier.4`.
#[derive(Clone)]
pub struct DeepLabV3Head {
    pub aspp: AsppV3,
    pub classifier: Conv2d,
}

impl DeepLabV3Head {
    pub fn new(
        store: &mut ParamStore,
        prefix: &str,
        cin: usize,
        width: usize,
        rates: &[usize],
        classes: usize,
    ) -> DeepLabV3Head {
        let aspp = AsppV3::new(store, &format!("{prefix}classifier.0"), cin, width, rates);
        let classifier = Conv2d::new(
            store,
            &format!("{prefix}classifier.4"),
            width,
            classes,
            1,
            ConvCfg::default(),
        );
        DeepLabV3Head { aspp, classifier }
    }

    pub fn forward(&self, x: &Tensor, mode: BnMode, dropout_seed: Option<u64>) -> Result<Tensor> {
        self.classifier
            .forward(&self.aspp.forward(x, mode, dropout_seed)?)
    }
}

#[derive(Clone)]
pub struct DeepLabV3 {
    pub backbone: ResNet,
    pub head: DeepLabV3Head,
}

impl DeepLabV3 {
    /// `output_stride` 8 (default of the arch) or 16.
    pub fn new(
        store: &mut ParamStore,
        depth: usize,
        classes: usize,
        output_stride: usize,
    ) -> Result<DeepLabV3> {
        if output_stride != 8 && output_stride != 16 {
            return Err(NnError::invalid(
                "deeplabv3",
                format!("output stride must be 8 or 16, got {output_stride}"),
            ));
        }
        let backbone = ResNet::new(
            store,
            "backbone.",
            ResNetCfg {
                depth,
                output_stride: Some(output_stride),
                stride_on_1x1: false,
                fc_classes: None,
            },
        )
        .ok_or_else(|| NnError::invalid("deeplabv3", format!("no ResNet-{depth}")))?;
        let head = DeepLabV3Head::new(
            store,
            "",
            backbone.out_channels,
            ASPP_V3_WIDTH,
            &ASPP_V3_RATES,
            classes,
        );
        Ok(DeepLabV3 { backbone, head })
    }

    /// Class logits at the output stride; callers upsample.
    pub fn forward(&self, x: &Tensor, mode: BnMode, dropout_seed: Option<u64>) -> Result<Tensor> {
        let f = self.backbone.features(x, mode)?.pop().expect("four stages");
        self.head.forward(&f, mode, dropout_seed)
    }

    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        let mut v = self.backbone.batch_norms();
        v.extend(self.head.aspp.batch_norms());
        v
    }
}
