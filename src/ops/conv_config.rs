//! Which conv kernel runs: the GEMM modes, the tiled family's workgroup tiles, the two
//! families and the per-call overrides, and the static family choice (`tune` measures instead).

use super::conv::ConvGeom;
use super::conv_tex::{self, TexConfig};
use crate::error::{Error, Result};
use crate::gpu::{codes, Gpu};

/// Which GEMM the shader runs (the `MODE` pipeline constant: `mode as u32` is its code in
/// `shaders/include/codes.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum GemmMode {
    Forward = codes::GEMM_FORWARD,
    InputGrad = codes::GEMM_INPUT_GRAD,
    WeightGrad = codes::GEMM_WEIGHT_GRAD,
}

/// Workgroup tile of the GEMM core (pipeline constants of `gemm`). Threads per workgroup are
/// `(tm/rm)·(tn/rn)`; each thread owns an `rm×rn` register block (rm, rn ∈ {4, 8}).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub tm: u32,
    pub tn: u32,
    pub tk: u32,
    pub rm: u32,
    pub rn: u32,
}

impl Tile {
    pub const T64: Tile = Tile {
        tm: 64,
        tn: 64,
        tk: 16,
        rm: 4,
        rn: 4,
    };
    pub const T128: Tile = Tile {
        tm: 128,
        tn: 128,
        tk: 8,
        rm: 8,
        rn: 8,
    };
    /// Few output rows (e.g. 21 classes): a wide, short tile wastes less.
    pub const T32X128: Tile = Tile {
        tm: 32,
        tn: 128,
        tk: 8,
        rm: 4,
        rn: 8,
    };
    pub const PRESETS: [Tile; 3] = [Tile::T64, Tile::T128, Tile::T32X128];

    pub(super) fn threads(&self) -> u32 {
        (self.tm / self.rm) * (self.tn / self.rn)
    }

    pub(super) fn check(&self) -> Result<()> {
        let wg = self.threads();
        let ok = matches!(self.rm, 4 | 8)
            && matches!(self.rn, 4 | 8)
            && self.tm.is_multiple_of(self.rm)
            && self.tn.is_multiple_of(self.rn)
            && wg > 0
            && wg <= 256
            && (self.tm * self.tk).is_multiple_of(wg)
            && (self.tk * self.tn).is_multiple_of(wg)
            && self.tm * self.tk / wg <= 8
            && self.tk * self.tn / wg <= 8;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "conv2d",
                format!("unsupported GEMM tile {self:?}"),
            ))
        }
    }

    /// Default choice by GEMM size.
    pub(super) fn auto(m: usize, n: usize) -> Tile {
        if m <= 32 {
            Tile::T32X128
        } else if m >= 256 && n >= 1024 {
            Tile::T128
        } else {
            Tile::T64
        }
    }
}

/// Kernel family of the convolution core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Shared-memory tiles with barriers (`conv.wgsl`): the discrete-GPU design.
    Tiled,
    /// Barrier-free register blocks over texture operands (`texgemm.wgsl`, [`conv_tex`]):
    /// the CPU-driver design.
    Texture,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Tiled, Family::Texture];

    pub fn name(self) -> &'static str {
        match self {
            Family::Tiled => "tiled",
            Family::Texture => "texture",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// Optional overrides of the automatic kernel configuration (tests and tuning).
#[derive(Clone, Copy, Debug, Default)]
pub struct GemmConfig {
    /// Kernel family; `None` chooses per device and shape ([`family_for`]).
    pub family: Option<Family>,
    pub tile: Option<Tile>,
    /// Split-K factor; clamped to what the reduction length and buffer limits allow.
    pub splits: Option<usize>,
    /// Register-block rows of the texture family (8, 16 or 32).
    pub rm: Option<u32>,
    /// Texture family: share operand fetches across subgroup lanes where the adapter allows
    /// (default; `ADVSEG_SUBGROUPS=off` or `Some(false)` disables). Same bits either way.
    pub subgroups: Option<bool>,
}

impl GemmConfig {
    pub(super) fn tex(&self) -> TexConfig {
        TexConfig {
            rm: self.rm,
            splits: self.splits,
            subgroups: self.subgroups.or_else(|| {
                std::env::var("ADVSEG_SUBGROUPS")
                    .ok()
                    .map(|v| !matches!(v.trim(), "off" | "0" | "false"))
            }),
        }
    }
}

/// The family that runs `g`: the forced one when it can (`cfg.family`, `ADVSEG_CONV_FAMILY`),
/// otherwise the texture family on CPU drivers and the tiled one elsewhere.
pub fn family_for(gpu: &Gpu, g: &ConvGeom, cfg: &GemmConfig) -> Family {
    let forced = cfg.family.or_else(|| {
        std::env::var("ADVSEG_CONV_FAMILY")
            .ok()
            .and_then(|v| Family::parse(v.trim()))
    });
    let want = forced.unwrap_or(if gpu.summary.device_type == "Cpu" {
        Family::Texture
    } else {
        Family::Tiled
    });
    if want == Family::Texture && !conv_tex::supported(gpu, g) {
        Family::Tiled
    } else {
        want
    }
}
