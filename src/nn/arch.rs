//! Architecture registry: command-line names → parameter layout (and, later, forward passes).

use super::deeplab::DeepLabV2;
use super::disc::FcDiscriminator;
use super::layers::{BatchNorm2d, BnMode};
use super::param::ParamStore;
use super::resnet::{ResNet, ResNetCfg};
use super::vgg::Vgg16;
use crate::error::{Error, Result};

/// Names accepted by `--arch` / `--disc`, with a one-line description.
pub const ARCHS: &[(&str, &str)] = &[
    ("resnet18", "torchvision ResNet-18 (with fc)"),
    ("resnet50", "torchvision ResNet-50 (with fc)"),
    ("resnet101", "torchvision ResNet-101 (with fc)"),
    ("vgg16", "torchvision VGG16 (with classifier)"),
    (
        "deeplabv2-resnet101",
        "AdvSemiSeg Res_Deeplab: dilated ResNet-101 (OS 8) + ASPP-v2 layer5",
    ),
    ("deeplabv2-resnet50", "DeepLab-v2 on ResNet-50"),
    (
        "fcdisc",
        "AdvSemiSeg FCDiscriminator (4x4/2 convs, LeakyReLU 0.2)",
    ),
];

/// A built architecture.
pub enum Net {
    ResNet(ResNet),
    Vgg16(Vgg16),
    DeepLabV2(DeepLabV2),
    FcDisc(Box<FcDiscriminator>),
    Tiny(super::tiny::Tiny),
}

pub struct Model {
    pub arch: String,
    pub classes: usize,
    pub store: ParamStore,
    pub net: Net,
}

/// Builds `arch` for `classes` output classes (the classification head size for backbones).
pub fn build(arch: &str, classes: usize) -> Result<Model> {
    if classes == 0 {
        return Err(Error::invalid("model", "--classes must be at least 1"));
    }
    let mut store = ParamStore::new();
    let net = match arch {
        "resnet18" | "resnet50" | "resnet101" => {
            let depth = arch[6..].parse().expect("listed depth");
            Net::ResNet(
                ResNet::new(
                    &mut store,
                    "",
                    ResNetCfg {
                        depth,
                        output_stride: None,
                        stride_on_1x1: false,
                        fc_classes: Some(classes),
                    },
                )
                .expect("known depth"),
            )
        }
        "vgg16" => Net::Vgg16(Vgg16::new(&mut store, "", Some(classes))),
        "deeplabv2-resnet101" => {
            Net::DeepLabV2(DeepLabV2::new(&mut store, 101, classes).expect("known depth"))
        }
        "deeplabv2-resnet50" => {
            Net::DeepLabV2(DeepLabV2::new(&mut store, 50, classes).expect("known depth"))
        }
        "tiny" => Net::Tiny(super::tiny::Tiny::new(&mut store, classes)),
        "fcdisc" => Net::FcDisc(Box::new(FcDiscriminator::new(&mut store, "", classes, 64))),
        _ => {
            let names: Vec<&str> = ARCHS.iter().map(|a| a.0).collect();
            return Err(Error::invalid(
                "model",
                format!("unknown arch {arch:?}; known: {}", names.join(", ")),
            ));
        }
    };
    Ok(Model {
        arch: arch.to_string(),
        classes,
        store,
        net,
    })
}

impl Model {
    /// Allocates and initialises every tensor on the GPU.
    pub fn materialize(&self, gpu: &std::sync::Arc<crate::Gpu>, seed: u64) -> Result<()> {
        self.store.materialize(gpu, seed)
    }

    /// The network's main output: class logits (segmentation nets: at their output stride,
    /// not upsampled; backbones: [N, classes]; `fcdisc`: per-pixel logits at input size).
    pub fn forward(&self, x: &crate::Tensor, mode: BnMode) -> Result<crate::Tensor> {
        match &self.net {
            Net::ResNet(r) => r.forward(x, mode),
            Net::Vgg16(v) => v.forward(x),
            Net::DeepLabV2(d) => d.forward(x, mode),
            Net::FcDisc(d) => d.forward(x),
            Net::Tiny(t) => t.forward(x, mode),
        }
    }

    /// Every BatchNorm layer of the model.
    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        match &self.net {
            Net::ResNet(r) => r.batch_norms(),
            Net::DeepLabV2(d) => d.trunk.batch_norms(),
            Net::Tiny(t) => t.batch_norms(),
            Net::Vgg16(_) | Net::FcDisc(_) => vec![],
        }
    }

    /// Sets which BN affine parameters train for `mode` (forward takes the mode too).
    pub fn apply_bn_mode(&self, mode: BnMode) -> Result<()> {
        self.batch_norms()
            .iter()
            .try_for_each(|b| b.apply_mode(mode))
    }
}
