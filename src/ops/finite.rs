//! Counting NaN/inf values on the GPU, so a checkpoint can be checked before it is written
//! without reading the tensors back. Shader: `shaders/finite.wgsl`.

use crate::error::Result;
use crate::gpu::{r_elems, w, Gpu};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

/// Mirrors `Params` in finite.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    chunk: u32,
    base: u32,
    _pad: u32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "finite", Params { n, chunk, base, _pad });

/// Elements one workgroup counts: large enough that the read-back stays a few KB even for
/// DeepLab's ~43M parameters plus optimiser state.
const CHUNK: usize = 1 << 16;

/// The number of NaN/inf values in each tensor (I32 tensors count 0). One dispatch per
/// tensor (per binding-sized piece of a tensor larger than one storage binding) into a shared
/// buffer of per-chunk counts and one read-back of that buffer.
pub fn count_non_finite(gpu: &Arc<Gpu>, tensors: &[&Tensor]) -> Result<Vec<u64>> {
    let pieces: Vec<Vec<std::ops::Range<usize>>> = tensors
        .iter()
        .map(|t| match t.dtype() {
            DType::F32 => gpu.chunks(t.numel(), 4),
            DType::I32 => Vec::new(),
        })
        .collect();
    let slots: Vec<usize> = pieces
        .iter()
        .map(|ps| ps.iter().map(|p| p.len().div_ceil(CHUNK)).sum())
        .collect();
    let total: usize = slots.iter().sum();
    if total == 0 {
        return Ok(vec![0; tensors.len()]);
    }
    let counts = gpu.alloc("count_non_finite", (total * 4) as u64)?;
    let mut base = 0;
    for (t, ps) in tensors.iter().zip(&pieces) {
        for piece in ps {
            let s = piece.len().div_ceil(CHUNK);
            if s == 0 {
                continue;
            }
            let p = Params {
                n: piece.len() as u32,
                chunk: CHUNK as u32,
                base: base as u32,
                _pad: 0,
            };
            gpu.dispatch(
                "finite",
                "count_non_finite",
                &[],
                &p,
                &[r_elems(t.buffer(), piece, 4), w(&counts)],
                gpu.grid_1d((s * 256) as u64, 256),
            )?;
            base += s;
        }
    }
    let bytes = gpu.read(&counts, 0, (total * 4) as u64)?;
    let per_slot: &[u32] = bytemuck::cast_slice(&bytes);
    let mut out = Vec::with_capacity(tensors.len());
    let mut at = 0;
    for &s in &slots {
        out.push(per_slot[at..at + s].iter().map(|&c| c as u64).sum());
        at += s;
    }
    Ok(out)
}
