//! Networks and optimiser groups as the methods need them: the segmentation network with
//! DeepLab's ×10 head group, and discriminators with a configurable width.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::arch::{self, Model, Net};
use crate::nn::disc::FcDiscriminator;
use crate::nn::imgdisc::{Encoding, ImgDisc};
use crate::nn::{BnMode, Kind, ParamStore};
use crate::optim::ParamGroup;
use std::sync::Arc;

/// Name prefix of the classifier head that gets the larger learning rate.
pub fn head_prefix(arch: &str) -> Option<&'static str> {
    match arch {
        a if a.starts_with("deeplabv2") => Some("layer5."),
        "tiny" => Some("aspp."),
        _ => None,
    }
}

/// Resolves `bn_mode` (`auto`: AdvSemiSeg's frozen-affine BN for DeepLab, RRM's frozen BN for
/// `rrm-resnet50`, train otherwise).
pub fn bn_mode(setting: &str, arch: &str) -> BnMode {
    match setting {
        "train" => BnMode::Train,
        "frozen-affine" => BnMode::FrozenAffine,
        "frozen" => BnMode::Frozen,
        _ if arch.starts_with("deeplab") => BnMode::FrozenAffine,
        "auto" if arch == "rrm-resnet50" => BnMode::Frozen,
        _ => BnMode::Train,
    }
}

/// Builds and initialises the segmentation network. `aspp_quirk`: DeepLab-v2 sums only its
/// rate-6 and rate-12 ASPP branches, as the official AdvSemiSeg code does (methods.md §3.2).
pub fn generator(
    gpu: &Arc<Gpu>,
    arch: &str,
    classes: usize,
    seed: u64,
    aspp_quirk: bool,
) -> Result<Model> {
    let mut m = arch::build(arch, classes)?;
    if let Net::DeepLabV2(d) = &mut m.net {
        d.layer5.official_quirk = aspp_quirk;
    }
    if matches!(m.net, Net::FcDisc(_)) {
        return Err(Error::invalid(
            "train",
            format!("{arch:?} is a discriminator, not a segmentation network"),
        ));
    }
    m.materialize(gpu, seed)?;
    Ok(m)
}

/// Builds and initialises a discriminator over `classes`-channel maps.
pub fn discriminator(
    gpu: &Arc<Gpu>,
    disc: &str,
    classes: usize,
    ndf: usize,
    seed: u64,
) -> Result<Model> {
    match disc {
        "fcdisc" => {
            let mut store = ParamStore::new();
            let net = Net::FcDisc(Box::new(FcDiscriminator::new(&mut store, "", classes, ndf)));
            let m = Model {
                arch: disc.to_string(),
                classes,
                store,
                net,
            };
            m.materialize(gpu, seed ^ 0xd15c)?;
            Ok(m)
        }
        _ => Err(Error::invalid(
            "train",
            format!("unknown discriminator {disc:?}; known: fcdisc"),
        )),
    }
}

/// Parameter groups: everything at ×1, the head (if the arch has one) at `head_mult`.
/// Parameters frozen at optimisation time are skipped by the optimisers.
pub fn groups(m: &Model, head_mult: f32) -> Result<Vec<ParamGroup>> {
    let head = head_prefix(&m.arch);
    let (mut base, mut top) = (Vec::new(), Vec::new());
    for s in m.store.slots().iter().filter(|s| s.kind == Kind::Param) {
        if head.is_some_and(|p| s.name.starts_with(p)) {
            top.push(s.get()?);
        } else {
            base.push(s.get()?);
        }
    }
    let mut g = vec![ParamGroup::new(base)];
    if !top.is_empty() {
        g.push(ParamGroup::new(top).lr_mult(head_mult));
    }
    Ok(g)
}

/// Freezes or unfreezes every parameter (gradients still flow *through* a frozen network).
pub fn set_trainable(m: &Model, on: bool) -> Result<()> {
    m.store
        .slots()
        .iter()
        .filter(|s| s.kind == Kind::Param)
        .try_for_each(|s| s.set_trainable(on))
}

/// Builds and initialises SS-GAN's image-conditioned adversary (`imgdisc`) of base width `ndf`.
pub fn img_discriminator(
    gpu: &Arc<Gpu>,
    classes: usize,
    ndf: usize,
    encoding: Encoding,
    seed: u64,
) -> Result<Model> {
    let mut store = ParamStore::new();
    let net = Net::ImgDisc(Box::new(ImgDisc::new(
        &mut store, "", classes, ndf, encoding,
    )));
    let m = Model {
        arch: "imgdisc".to_string(),
        classes,
        store,
        net,
    };
    m.materialize(gpu, seed ^ 0x1d15c)?;
    Ok(m)
}
