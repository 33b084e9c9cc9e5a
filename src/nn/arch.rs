//! Built networks: `build` (by the names of [`super::registry`]) → `Model`, and the forward
//! passes and CAM hooks each kind of network offers.

use super::deeplab::DeepLabV2;
use super::deeplabv3::DeepLabV3;
use super::disc::FcDiscriminator;
use super::error::{NnError, Result};
use super::fcn::Fcn32;
use super::imgdisc::{Encoding, ImgDisc};
use super::layers::{BatchNorm2d, BnMode};
use super::param::ParamStore;
use super::registry;
use super::resnet::ResNet;
use super::rrm::Rrm;
use super::vgg::Vgg16;
use crate::tensor::Tensor;

/// Options of [`build_with`] beyond the class count; the defaults are the archs' standard forms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchOpts {
    /// Output stride of `deeplabv3-*` (8 or 16; default 8).
    pub output_stride: usize,
    /// DeepLab-v2: sum only the first two ASPP branches, as the official code does.
    pub aspp_quirk: bool,
    /// `imgdisc` input encoding.
    pub encoding: Encoding,
    /// Discriminators' base width (`ndf`); None: the arch's own (64).
    pub width: Option<usize>,
    /// Torchvision ResNets dilated to this output stride (8 or 16, as EADER's localizer);
    /// None or 32: the standard OS 32.
    pub backbone_stride: Option<usize>,
}

impl Default for ArchOpts {
    fn default() -> Self {
        ArchOpts {
            output_stride: 8,
            aspp_quirk: false,
            encoding: Encoding::Basic,
            width: None,
            backbone_stride: None,
        }
    }
}

/// A built architecture.
pub enum Net {
    ResNet(ResNet),
    Vgg16(Vgg16),
    DeepLabV2(DeepLabV2),
    FcDisc(Box<FcDiscriminator>),
    Tiny(super::tiny::Tiny),
    TinyCls(super::tiny::TinyCls),
    DeepLabV3(Box<DeepLabV3>),
    Fcn32(Box<Fcn32>),
    Rrm(Box<Rrm>),
    ImgDisc(Box<ImgDisc>),
}

pub struct Model {
    pub arch: String,
    pub classes: usize,
    pub store: ParamStore,
    pub net: Net,
}

/// Builds `arch` for `classes` output classes (the classification head size for backbones),
/// with default options.
pub fn build(arch: &str, classes: usize) -> Result<Model> {
    build_with(arch, classes, &ArchOpts::default())
}

/// Builds `arch` with options.
pub fn build_with(arch: &str, classes: usize, opts: &ArchOpts) -> Result<Model> {
    if classes == 0 {
        return Err(NnError::invalid("model", "--classes must be at least 1"));
    }
    let spec = registry::spec(arch)?;
    if classes < spec.quirks.min_classes {
        return Err(NnError::invalid(
            "model",
            format!(
                "{arch} needs at least {} classes (background + foreground)",
                spec.quirks.min_classes
            ),
        ));
    }
    let mut store = ParamStore::new();
    let net = (spec.build)(&mut store, classes, opts)?;
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

    /// The network's main output, dropout off (eval-style, deterministic):
    /// - segmentation nets: class logits at their output stride, not upsampled
    ///   (`deeplabv2-*`, `deeplabv3-*` and `rrm-resnet50` (its segmentation branch): OS 8;
    ///   `fcn32-vgg16`: OS 32; `tiny`, `rrm-tiny`: OS 4);
    /// - backbones: [N, classes];
    /// - `fcdisc`: per-pixel logits upsampled to the input size [N, 1, H, W];
    /// - `imgdisc`: logits [N, 1, h/4, w/4] of the probabilities and image packed along channels
    ///   ([N, C + 3, h, w]; see [`Model::discriminate`] for separate tensors).
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.forward_opts(x, mode, None)
    }

    /// [`Model::forward`] with dropout on (training) when `dropout_seed` is given, for the archs
    /// that have dropout (`deeplabv3-*` after the ASPP projection, `fcn32-vgg16` after fc6/fc7;
    /// `rrm-*` dropout is in the classification branch: [`Rrm::forward_all`]). Vary the
    /// seed per iteration.
    pub fn forward_opts(
        &self,
        x: &Tensor,
        mode: BnMode,
        dropout_seed: Option<u64>,
    ) -> Result<Tensor> {
        match &self.net {
            Net::ResNet(r) => r.forward(x, mode),
            Net::Vgg16(v) => v.forward(x),
            Net::DeepLabV2(d) => d.forward(x, mode),
            Net::FcDisc(d) => d.forward(x),
            Net::Tiny(t) => t.forward(x, mode),
            Net::TinyCls(t) => t.head(&t.features(x, mode)?),
            Net::DeepLabV3(d) => d.forward(x, mode, dropout_seed),
            Net::Fcn32(f) => f.forward(x, dropout_seed),
            Net::Rrm(r) => r.seg_head(&r.features(x, mode)?),
            Net::ImgDisc(d) => d.forward_packed(x),
        }
    }

    /// Discriminator output for class probabilities (and the image, used by `imgdisc`'s
    /// `product` / `concat` encodings; `fcdisc` ignores it).
    pub fn discriminate(&self, probs: &Tensor, image: Option<&Tensor>) -> Result<Tensor> {
        match &self.net {
            Net::FcDisc(d) => d.forward(probs),
            Net::ImgDisc(d) => d.forward(probs, image),
            _ => Err(NnError::invalid(
                "model",
                format!("{} is not a discriminator", self.arch),
            )),
        }
    }

    /// Final feature map and image-level logits from one forward, for CAM / Grad-CAM:
    /// ResNets: (layer4 output, fc logits); `rrm-*`: (trunk features, fc8 logits,
    /// dropout on when `dropout_seed` is given).
    pub fn features_and_logits(
        &self,
        x: &Tensor,
        mode: BnMode,
        dropout_seed: Option<u64>,
    ) -> Result<(Tensor, Tensor)> {
        match &self.net {
            Net::ResNet(r) => {
                let f = r.features(x, mode)?.pop().expect("four stages");
                let l = r.head(&f)?;
                Ok((f, l))
            }
            Net::Rrm(r) => {
                let f = r.features(x, mode)?;
                let l = r.cls_head(&f, dropout_seed)?;
                Ok((f, l))
            }
            Net::TinyCls(t) => {
                let f = t.features(x, mode)?;
                let l = t.head(&f)?;
                Ok((f, l))
            }
            _ => Err(NnError::invalid(
                "model",
                format!("{} has no image-level classifier", self.arch),
            )),
        }
    }

    /// Classifier weights whose 1×1 product with the features gives CAMs ([`super::cam::cam`]).
    pub fn cam_weight(&self) -> Result<Tensor> {
        match &self.net {
            Net::ResNet(r) if r.fc.is_some() => r.fc.as_ref().expect("checked").weight.get(),
            Net::Rrm(r) => r.fc8.weight.get(),
            Net::TinyCls(t) => t.fc.weight.get(),
            _ => Err(NnError::invalid(
                "model",
                format!("{} has no CAM classifier", self.arch),
            )),
        }
    }

    /// Spatial size of [`Model::forward`]'s output for an input size, computed from the layer
    /// geometry without running anything (None where it does not apply or the input is too
    /// small).
    pub fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        match &self.net {
            Net::DeepLabV2(d) => d.trunk.out_size(h, w),
            Net::DeepLabV3(d) => d.backbone.out_size(h, w),
            Net::Rrm(r) => r.trunk.out_size(h, w),
            Net::Fcn32(f) => f.out_size(h, w),
            Net::Tiny(t) => t.out_size(h, w),
            Net::FcDisc(_) => Some((h, w)),
            Net::ImgDisc(_) => Some((h / 4, w / 4)).filter(|s| s.0 > 0 && s.1 > 0),
            Net::ResNet(_) | Net::Vgg16(_) | Net::TinyCls(_) => None,
        }
    }

    /// The RRM two-branch net inside, for the `rrm` method's branch-level calls.
    pub fn as_rrm(&self) -> Option<&Rrm> {
        match &self.net {
            Net::Rrm(r) => Some(r),
            _ => None,
        }
    }

    /// Every BatchNorm layer of the model.
    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        match &self.net {
            Net::ResNet(r) => r.batch_norms(),
            Net::DeepLabV2(d) => d.trunk.batch_norms(),
            Net::Tiny(t) => t.batch_norms(),
            Net::TinyCls(t) => t.batch_norms(),
            Net::DeepLabV3(d) => d.batch_norms(),
            Net::Rrm(r) => r.batch_norms(),
            Net::Vgg16(_) | Net::FcDisc(_) | Net::Fcn32(_) | Net::ImgDisc(_) => vec![],
        }
    }

    /// Sets which BN affine parameters train for `mode` (forward takes the mode too).
    pub fn apply_bn_mode(&self, mode: BnMode) -> Result<()> {
        self.batch_norms()
            .iter()
            .try_for_each(|b| b.apply_mode(mode))
    }
}
