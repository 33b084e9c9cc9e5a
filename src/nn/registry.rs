//! The arch registry: every network advseg can build, with what the rest of the code needs to
//! know about it (build function, ×10 head prefix, the BN mode `bn_mode = auto` means, quirks
//! and capabilities). Nothing outside this table matches arch names or prefixes: methods ask
//! for a capability ([`find_with`], [`names_with`]) and read the entry.

use super::arch::{ArchOpts, Net};
use super::deeplab::DeepLabV2;
use super::deeplabv3::DeepLabV3;
use super::disc::FcDiscriminator;
use super::error::{NnError, Result};
use super::fcn::Fcn32;
use super::imgdisc::{ImgDisc, IMGDISC_NDF};
use super::layers::BnMode;
use super::param::ParamStore;
use super::resnet::{ResNet, ResNetCfg};
use super::rrm::Rrm;
use super::tiny::{Tiny, TinyCls};
use super::vgg::Vgg16;

/// What a network can be used as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Per-pixel class logits from `Model::forward` (the methods' generator G).
    pub segmenter: bool,
    /// Image-level classifier with CAMs (`features_and_logits` + `cam_weight`).
    pub cam_classifier: bool,
    /// A discriminator, and over what.
    pub discriminator: Disc,
}

/// Kinds of discriminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disc {
    No,
    /// Per-pixel D of class-probability maps, upsampled to the input (`--disc`).
    PerPixel,
    /// D of class probabilities together with the image (SS-GAN's adversary).
    ImageConditioned,
}

/// Arch-specific behaviour the code used to find by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quirks {
    /// Fewest `--classes` the arch accepts (RRM needs background + foreground).
    pub min_classes: usize,
    /// Honours `ArchOpts::aspp_quirk` (DeepLab-v2's official two-branch ASPP sum).
    pub aspp_quirk: bool,
    /// Honours `ArchOpts::output_stride` (DeepLab-v3).
    pub output_stride: bool,
    /// Honours `ArchOpts::backbone_stride` (torchvision ResNets dilated, as EADER's localizer).
    pub dilatable: bool,
    /// Default discriminator width (`ndf`) when this arch is the generator: `tiny`'s demo-sized
    /// pair uses 8, the papers 64.
    pub paired_ndf: usize,
}

const Q: Quirks = Quirks {
    min_classes: 1,
    aspp_quirk: false,
    output_stride: false,
    dilatable: false,
    paired_ndf: 64,
};

const SEG: Caps = Caps {
    segmenter: true,
    cam_classifier: false,
    discriminator: Disc::No,
};
const CLS: Caps = Caps {
    segmenter: false,
    cam_classifier: true,
    discriminator: Disc::No,
};
const NONE: Caps = Caps {
    segmenter: false,
    cam_classifier: false,
    discriminator: Disc::No,
};

/// Builds the network's parameters into the store; `classes` is already checked against
/// `quirks.min_classes`.
pub type BuildFn = fn(&mut ParamStore, usize, &ArchOpts) -> Result<Net>;

/// One registered architecture.
pub struct ArchSpec {
    /// The `--arch` / `--disc` name.
    pub name: &'static str,
    /// One line for `advseg model --list`.
    pub about: &'static str,
    pub build: BuildFn,
    /// Parameter-name prefix of the classifier head trained at ×`head_mult` (DeepLab's ×10).
    pub head_prefix: Option<&'static str>,
    /// What `bn_mode = auto` resolves to: AdvSemiSeg's frozen-affine BN for DeepLab, RRM's
    /// frozen BN for `rrm-resnet50`, train otherwise.
    pub auto_bn: BnMode,
    pub quirks: Quirks,
    pub caps: Caps,
}

fn resnet(store: &mut ParamStore, depth: usize, classes: usize, o: &ArchOpts) -> Result<Net> {
    let cfg = ResNetCfg {
        depth,
        output_stride: o.backbone_stride.filter(|&s| s < 32),
        stride_on_1x1: false,
        fc_classes: Some(classes),
    };
    ResNet::new(store, "", cfg)
        .map(Net::ResNet)
        .ok_or_else(|| NnError::invalid("model", format!("no ResNet of depth {depth}")))
}

fn deeplabv2(store: &mut ParamStore, depth: usize, classes: usize, o: &ArchOpts) -> Result<Net> {
    let mut d = DeepLabV2::new(store, depth, classes)
        .ok_or_else(|| NnError::invalid("model", format!("no ResNet of depth {depth}")))?;
    d.layer5.official_quirk = o.aspp_quirk;
    Ok(Net::DeepLabV2(d))
}

fn deeplabv3(store: &mut ParamStore, depth: usize, classes: usize, o: &ArchOpts) -> Result<Net> {
    let d = DeepLabV3::new(store, depth, classes, o.output_stride)?;
    Ok(Net::DeepLabV3(Box::new(d)))
}

/// Every architecture, in `--list` order.
pub const ARCH_REGISTRY: &[ArchSpec] = &[
    ArchSpec {
        name: "resnet18",
        about: "torchvision ResNet-18 (with fc)",
        build: |s, c, o| resnet(s, 18, c, o),
        head_prefix: None,
        auto_bn: BnMode::Train,
        quirks: Quirks {
            dilatable: true,
            ..Q
        },
        caps: CLS,
    },
    ArchSpec {
        name: "resnet50",
        about: "torchvision ResNet-50 (with fc)",
        build: |s, c, o| resnet(s, 50, c, o),
        head_prefix: None,
        auto_bn: BnMode::Train,
        quirks: Quirks {
            dilatable: true,
            ..Q
        },
        caps: CLS,
    },
    ArchSpec {
        name: "resnet101",
        about: "torchvision ResNet-101 (with fc)",
        build: |s, c, o| resnet(s, 101, c, o),
        head_prefix: None,
        auto_bn: BnMode::Train,
        quirks: Quirks {
            dilatable: true,
            ..Q
        },
        caps: CLS,
    },
    ArchSpec {
        name: "vgg16",
        about: "torchvision VGG16 (with classifier)",
        build: |s, c, _| Ok(Net::Vgg16(Vgg16::new(s, "", Some(c)))),
        head_prefix: None,
        auto_bn: BnMode::Train,
        quirks: Q,
        caps: NONE,
    },
    ArchSpec {
        name: "deeplabv2-resnet101",
        about: "AdvSemiSeg Res_Deeplab: dilated ResNet-101 (OS 8) + ASPP-v2 layer5",
        build: |s, c, o| deeplabv2(s, 101, c, o),
        head_prefix: Some("layer5."),
        auto_bn: BnMode::FrozenAffine,
        quirks: Quirks {
            aspp_quirk: true,
            ..Q
        },
        caps: SEG,
    },
    ArchSpec {
        name: "deeplabv2-resnet50",
        about: "DeepLab-v2 on ResNet-50",
        build: |s, c, o| deeplabv2(s, 50, c, o),
        head_prefix: Some("layer5."),
        auto_bn: BnMode::FrozenAffine,
        quirks: Quirks {
            aspp_quirk: true,
            ..Q
        },
        caps: SEG,
    },
    ArchSpec {
        name: "deeplabv3-resnet50",
        about: "enhanced ASPP (DeepLab-v3) on dilated ResNet-50, OS 8 (16 with --output-stride)",
        build: |s, c, o| deeplabv3(s, 50, c, o),
        head_prefix: None,
        auto_bn: BnMode::FrozenAffine,
        quirks: Quirks {
            output_stride: true,
            ..Q
        },
        caps: SEG,
    },
    ArchSpec {
        name: "deeplabv3-resnet18",
        about: "enhanced ASPP (DeepLab-v3) on dilated ResNet-18",
        build: |s, c, o| deeplabv3(s, 18, c, o),
        head_prefix: None,
        auto_bn: BnMode::FrozenAffine,
        quirks: Quirks {
            output_stride: true,
            ..Q
        },
        caps: SEG,
    },
    ArchSpec {
        name: "fcn32-vgg16",
        about: "FCN-32s: VGG16 features + fc6 7x7/4096 + fc7 1x1/4096 + score_fr, OS 32",
        build: |s, c, _| Ok(Net::Fcn32(Box::new(Fcn32::new(s, c)))),
        head_prefix: None,
        auto_bn: BnMode::Train,
        quirks: Q,
        caps: SEG,
    },
    ArchSpec {
        name: "rrm-resnet50",
        about: "RRM two-branch net: dilated ResNet-50 (OS 8), CAM classifier fc8 + seg branch",
        build: |s, c, _| Ok(Net::Rrm(Box::new(Rrm::new(s, c)))),
        head_prefix: None,
        auto_bn: BnMode::Frozen,
        quirks: Quirks {
            min_classes: 2,
            ..Q
        },
        caps: Caps {
            segmenter: true,
            cam_classifier: true,
            discriminator: Disc::No,
        },
    },
    ArchSpec {
        name: "rrm-tiny",
        about: "RRM two-branch net on tiny's three stages (OS 4), fc8 + 32-wide seg branch (d2)",
        build: |s, c, _| Ok(Net::Rrm(Box::new(Rrm::tiny(s, c)))),
        head_prefix: None,
        auto_bn: BnMode::Train,
        quirks: Quirks {
            min_classes: 2,
            ..Q
        },
        caps: Caps {
            segmenter: true,
            cam_classifier: true,
            discriminator: Disc::No,
        },
    },
    ArchSpec {
        name: "tiny",
        about: "small encoder-decoder for tests and demos (OS 4)",
        build: |s, c, _| Ok(Net::Tiny(Tiny::new(s, c))),
        head_prefix: Some("aspp."),
        auto_bn: BnMode::Train,
        quirks: Quirks { paired_ndf: 8, ..Q },
        caps: SEG,
    },
    ArchSpec {
        name: "tiny-cls",
        about: "tiny's encoder + GAP + fc: image-level classifier with CAMs at OS 4 (weak \
                methods' tests)",
        build: |s, c, _| Ok(Net::TinyCls(TinyCls::new(s, c))),
        head_prefix: None,
        auto_bn: BnMode::Train,
        quirks: Q,
        caps: CLS,
    },
    ArchSpec {
        name: "fcdisc",
        about: "AdvSemiSeg FCDiscriminator (4x4/2 convs, LeakyReLU 0.2)",
        build: |s, c, o| {
            let ndf = o.width.unwrap_or(64);
            Ok(Net::FcDisc(Box::new(FcDiscriminator::new(s, "", c, ndf))))
        },
        head_prefix: None,
        auto_bn: BnMode::Train,
        quirks: Q,
        caps: Caps {
            discriminator: Disc::PerPixel,
            ..NONE
        },
    },
    ArchSpec {
        name: "imgdisc",
        about: "SS-GAN/Luc image-conditioned adversary (--encoding basic|product|concat), OS 4",
        build: |s, c, o| {
            let ndf = o.width.unwrap_or(IMGDISC_NDF);
            Ok(Net::ImgDisc(Box::new(ImgDisc::new(
                s, "", c, ndf, o.encoding,
            ))))
        },
        head_prefix: None,
        auto_bn: BnMode::Train,
        quirks: Q,
        caps: Caps {
            discriminator: Disc::ImageConditioned,
            ..NONE
        },
    },
];

/// The entry named `name`, if registered.
pub fn find(name: &str) -> Option<&'static ArchSpec> {
    ARCH_REGISTRY.iter().find(|a| a.name == name)
}

/// Every registered name, comma-separated (for error messages).
pub fn known() -> String {
    names_with(|_| true).join(", ")
}

/// The entry named `name`, or an error listing every arch.
pub fn spec(name: &str) -> Result<&'static ArchSpec> {
    find(name).ok_or_else(|| NnError::UnknownArch {
        name: name.to_string(),
        known: known(),
    })
}

/// Names of the archs whose entry satisfies `pred`, in registry order.
pub fn names_with(pred: impl Fn(&ArchSpec) -> bool) -> Vec<&'static str> {
    ARCH_REGISTRY
        .iter()
        .filter(|a| pred(a))
        .map(|a| a.name)
        .collect()
}

/// The entry named `name` if it satisfies `pred`; otherwise an error from `context` saying it
/// is not `what` and listing the archs that are.
pub fn find_with(
    context: &'static str,
    name: &str,
    what: &str,
    pred: impl Fn(&ArchSpec) -> bool,
) -> Result<&'static ArchSpec> {
    let s = spec(name)?;
    if pred(s) {
        return Ok(s);
    }
    Err(NnError::invalid(
        context,
        format!(
            "{name:?} is not {what}; use one of {}",
            names_with(pred).join(", ")
        ),
    ))
}

/// Resolves a `bn_mode` setting for `arch`: explicit modes as named, `auto` from the registry
/// (`train` for an unknown arch, which the build then refuses by name).
pub fn bn_mode(setting: &str, arch: &str) -> BnMode {
    match setting {
        "train" => BnMode::Train,
        "frozen-affine" => BnMode::FrozenAffine,
        "frozen" => BnMode::Frozen,
        _ => find(arch).map_or(BnMode::Train, |a| a.auto_bn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_capabilities_partition_sensibly() {
        let names = names_with(|_| true);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate arch names");
        for a in ARCH_REGISTRY {
            let d = a.caps.discriminator != Disc::No;
            assert!(!(d && a.caps.segmenter), "{}: both D and G", a.name);
            assert!(a.head_prefix.is_none_or(|p| p.ends_with('.')), "{}", a.name);
        }
        // The lists the methods print in their errors.
        let cls = names_with(|a| a.caps.cam_classifier && !a.caps.segmenter);
        assert_eq!(cls, ["resnet18", "resnet50", "resnet101", "tiny-cls"]);
        let rrm = names_with(|a| a.caps.cam_classifier && a.caps.segmenter);
        assert_eq!(rrm, ["rrm-resnet50", "rrm-tiny"]);
    }

    #[test]
    fn entries_reproduce_the_old_name_rules() {
        for a in ARCH_REGISTRY {
            let head = if a.name.starts_with("deeplabv2") {
                Some("layer5.")
            } else if a.name == "tiny" {
                Some("aspp.")
            } else {
                None
            };
            assert_eq!(a.head_prefix, head, "{}", a.name);
            let ndf = if a.name == "tiny" { 8 } else { 64 };
            assert_eq!(a.quirks.paired_ndf, ndf, "{}", a.name);
            let old = if a.name.starts_with("deeplab") {
                BnMode::FrozenAffine
            } else if a.name == "rrm-resnet50" {
                BnMode::Frozen
            } else {
                BnMode::Train
            };
            assert_eq!(bn_mode("auto", a.name), old, "{}", a.name);
            assert_eq!(bn_mode("train", a.name), BnMode::Train);
            assert_eq!(bn_mode("frozen", a.name), BnMode::Frozen);
        }
    }

    #[test]
    fn unknown_names_list_every_arch() {
        let e = spec("resnet19").err().expect("unknown").to_string();
        assert!(e.contains("unknown arch \"resnet19\""), "{e}");
        for a in ARCH_REGISTRY {
            assert!(e.contains(a.name), "{e} lacks {}", a.name);
        }
        let e = find_with("eader", "tiny", "an image-level classifier", |a| {
            a.caps.cam_classifier && !a.caps.segmenter
        })
        .err()
        .expect("tiny is no classifier")
        .to_string();
        assert!(
            e.contains("\"tiny\" is not an image-level classifier; use one of resnet18"),
            "{e}"
        );
    }
}
