//! The texture family's GEMM launch (`shaders/texgemm.wgsl`, or its subgroup variant): register
//! block rows, the split-K factor, and the partial-sum reduction when the reduction is split.

use super::pack::TapBlock;
use super::{u, TexConfig};
use crate::error::Result;
use crate::gpu::{r, tex, w, Gpu, GpuBuffer, GpuTexture};
use crate::ops::conv::ConvGeom;
use std::sync::Arc;

const GEMM: &str = "texgemm";
/// Subgroup variant (`shaders/variants/texgemm_sg.wgsl`): lanes share A's fetches.
const GEMM_SG: &str = "texgemm_sg";
/// Subgroup width the variant is written for.
const SG_LANES: u32 = 8;
/// Shortest reduction (in texels, 4 elements each) one split should walk.
const MIN_CHUNK: usize = 64;

/// Mirrors `Params` in texgemm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct GemmParams {
    pub(super) m: u32,
    pub(super) mp: u32,
    pub(super) ncol: u32,
    pub(super) nn: u32,
    pub(super) splits: u32,
    pub(super) kt: u32,
    pub(super) kchunk: u32,
    pub(super) c4: u32,
    pub(super) hp: u32,
    pub(super) wp: u32,
    pub(super) sy: u32,
    pub(super) sx: u32,
    pub(super) oy0: u32,
    pub(super) ox0: u32,
    pub(super) qh: u32,
    pub(super) qw: u32,
    pub(super) out_c: u32,
    pub(super) out_h: u32,
    pub(super) out_w: u32,
    pub(super) osy: u32,
    pub(super) osx: u32,
    pub(super) ory: u32,
    pub(super) orx: u32,
    pub(super) has_bias: u32,
    pub(super) vrows: u32,
    pub(super) w4: u32,
    pub(super) ci: u32,
    pub(super) khw: u32,
    pub(super) taps: TapBlock,
}

crate::gpu::layout::params_layout!(pub(crate) fn gemm_params_layout, "texgemm", GemmParams { m, mp, ncol, nn, splits, kt, kchunk, c4, hp, wp, sy, sx, oy0, ox0, qh, qw, out_c, out_h, out_w, osy, osx, ory, orx, has_bias, vrows, w4, ci, khw, taps });

/// Register-block rows for M output channels: the fewest padded rows, then the larger block
/// (fewer fetches per FMA).
fn pick_rm(m: usize) -> u32 {
    // Cost ∝ padded rows × (1 + 4/RM): RM + 4 fetches feed 16·RM FMAs.
    [32u32, 16, 8]
        .into_iter()
        .min_by(|&a, &b| {
            let cost = |rm: u32| m.next_multiple_of(rm as usize) as f64 * (1.0 + 4.0 / rm as f64);
            cost(a).total_cmp(&cost(b))
        })
        .expect("non-empty")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn run_gemm(
    gpu: &Arc<Gpu>,
    mode: u32,
    rm: u32,
    mut p: GemmParams,
    a: &GpuTexture,
    b: &GpuTexture,
    bias: Option<&GpuBuffer>,
    out: &GpuBuffer,
    cfg: &TexConfig,
    g: &ConvGeom,
) -> Result<()> {
    let sg = cfg.subgroups.unwrap_or(true) && gpu.subgroup_size() == Some(SG_LANES);
    if sg {
        // A subgroup's lanes must share one row block and one split.
        p.ncol = p.ncol.next_multiple_of(SG_LANES);
    }
    let shader = if sg { GEMM_SG } else { GEMM };
    let lanes = p.ncol as usize * (p.mp / rm) as usize;
    let kt = p.kt as usize;
    // Enough lanes to keep every core (CPU) or SM (GPU) busy; the partials cost M·nn each.
    // (A CPU driver runs a workgroup per thread: a few per core balance the load, more only
    // add partial traffic.)
    let target: usize = if gpu.summary.device_type == "Cpu" {
        1024
    } else {
        65536
    };
    let limit = gpu.binding_limit() as usize;
    let mn = p.m as usize * p.nn as usize;
    let max_splits = (limit / (mn * 4).max(1)).max(1);
    let splits = cfg
        .splits
        .unwrap_or_else(|| target.div_ceil(lanes.max(1)))
        .min(kt.div_ceil(MIN_CHUNK))
        .clamp(1, max_splits);
    let kchunk = kt.div_ceil(splits).max(1);
    let splits = kt.div_ceil(kchunk).max(1);
    p.splits = u(splits, g)?;
    p.kchunk = u(kchunk, g)?;
    p.has_bias = bias.is_some() as u32;
    let constants = [
        ("MODE", mode),
        ("RM", rm),
        ("TWS", gpu.texture_width_shift()),
    ];
    let grid = gpu.grid_1d((lanes * splits) as u64, 64);
    let bias_bind = || bias.map(r).unwrap_or_else(|| gpu.unused());
    if splits == 1 {
        return Ok(gpu.dispatch(
            shader,
            "gemm",
            &constants,
            &p,
            &[bias_bind(), w(out), tex(a), tex(b)],
            grid,
        )?);
    }
    let part = gpu.alloc("conv2d split-K", (splits * mn * 4) as u64)?;
    gpu.dispatch(
        shader,
        "gemm",
        &constants,
        &p,
        &[gpu.unused(), w(&part), tex(a), tex(b)],
        grid,
    )?;
    Ok(gpu.dispatch(
        GEMM,
        "splitk",
        &constants,
        &p,
        &[
            bias_bind(),
            w(out),
            gpu.unused_texture(),
            gpu.unused_texture(),
            r(&part),
        ],
        gpu.grid_1d(mn as u64, 64),
    )?)
}

pub(super) fn rm_for(m: usize, cfg: &TexConfig) -> u32 {
    cfg.rm.unwrap_or_else(|| pick_rm(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_rows_follow_padding_cost() {
        assert_eq!(pick_rm(256), 32);
        assert_eq!(pick_rm(8), 8);
        assert_eq!(pick_rm(3), 8);
        assert_eq!(pick_rm(16), 16);
    }
}
