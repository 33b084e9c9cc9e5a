//! Networks and optimiser groups as the methods need them: the segmentation network with
//! DeepLab's ×10 head group, and discriminators with a configurable width.

use crate::gpu::Gpu;
use crate::nn::arch::{self, ArchOpts, Model};
use crate::nn::imgdisc::Encoding;
use crate::nn::registry::{self, Disc};
use crate::nn::{BnMode, Kind};
use crate::optim::ParamGroup;
use crate::train::error::Result;
use std::sync::Arc;

/// Name prefix of the classifier head that gets the larger learning rate.
pub fn head_prefix(arch: &str) -> Option<&'static str> {
    registry::find(arch).and_then(|a| a.head_prefix)
}

/// Resolves `bn_mode` (`auto`: the arch's registered mode — AdvSemiSeg's frozen-affine BN for
/// DeepLab, RRM's frozen BN for `rrm-resnet50`, train otherwise).
pub fn bn_mode(setting: &str, arch: &str) -> BnMode {
    registry::bn_mode(setting, arch)
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
    registry::find_with("train", arch, "a segmentation network", |a| {
        a.caps.segmenter
    })?;
    let opts = ArchOpts {
        aspp_quirk,
        ..ArchOpts::default()
    };
    let m = arch::build_with(arch, classes, &opts)?;
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
    registry::find_with("train", disc, "a per-pixel discriminator", |a| {
        a.caps.discriminator == Disc::PerPixel
    })?;
    let opts = ArchOpts {
        width: Some(ndf),
        ..ArchOpts::default()
    };
    let m = arch::build_with(disc, classes, &opts)?;
    m.materialize(gpu, seed ^ 0xd15c)?;
    Ok(m)
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
pub fn set_trainable(m: &Model, on: bool) -> crate::nn::error::Result<()> {
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
    let opts = ArchOpts {
        width: Some(ndf),
        encoding,
        ..ArchOpts::default()
    };
    let m = arch::build_with("imgdisc", classes, &opts)?;
    m.materialize(gpu, seed ^ 0x1d15c)?;
    Ok(m)
}
