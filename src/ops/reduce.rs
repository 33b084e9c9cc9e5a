//! Deterministic sum / mean reductions (whole tensor, chosen dims, sum-to-shape for broadcast
//! backward). Shader: `shaders/reduce.wgsl`.

use super::{dims4, strides4};
use crate::error::{Error, Result};
use crate::gpu::{r, w};
use crate::tensor::{DType, Tensor};

/// Mirrors `Params` in reduce.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    in_dims: [u32; 4],
    in_strides: [u32; 4],
    keep: [u32; 4],
    n_out: u32,
    n_red: u32,
    chunks: u32,
    chunk_len: u32,
    scale: f32,
    _pad: [u32; 3],
}

/// Smallest reduction one workgroup should handle before a reduction is split into chunks.
const MIN_CHUNK: usize = 4096;
/// Reductions this short with many outputs run one invocation per output (serial loop).
const SERIAL_MAX: usize = 64;
/// Aim for about this many workgroups in the first pass.
const TARGET_GROUPS: usize = 1024;

/// Sums `x` (≤ 4 dims, right-aligned) over the dims where `keep` is false; the result has
/// shape `out_shape`. `scale` multiplies the result. Raw kernel: no autograd.
fn reduce_raw(x: &Tensor, keep: [bool; 4], out_shape: &[usize], scale: f32) -> Result<Tensor> {
    let gpu = x.gpu();
    let d = dims4("sum", x.shape())?;
    let n_out: usize = (0..4).filter(|&k| keep[k]).map(|k| d[k]).product();
    let n_red: usize = (0..4).filter(|&k| !keep[k]).map(|k| d[k]).product();
    let out = Tensor::empty(gpu, "sum", out_shape, DType::F32)?;
    let chunk_len = if n_red <= MIN_CHUNK {
        n_red.max(1)
    } else {
        let want = TARGET_GROUPS.div_ceil(n_out).max(1);
        n_red.div_ceil(want).max(MIN_CHUNK)
    };
    let chunks = n_red.div_ceil(chunk_len).max(1);
    let base = Params {
        in_dims: d.map(|v| v as u32),
        in_strides: strides4(d),
        keep: keep.map(|k| k as u32),
        n_out: n_out as u32,
        n_red: n_red as u32,
        chunks: chunks as u32,
        chunk_len: chunk_len as u32,
        scale,
        _pad: [0; 3],
    };
    if n_red <= SERIAL_MAX && n_out >= 256 {
        gpu.dispatch(
            "reduce",
            "sum_serial",
            &[],
            &base,
            &[r(x.buffer()), w(out.buffer())],
            gpu.grid_1d(n_out as u64, 256),
        )?;
        return Ok(out);
    }
    if chunks == 1 {
        gpu.dispatch(
            "reduce",
            "sum",
            &[],
            &base,
            &[r(x.buffer()), w(out.buffer())],
            gpu.grid_1d(n_out as u64 * 256, 256),
        )?;
        return Ok(out);
    }
    // Pass 1: partial sums laid out [n_out, chunks]; pass 2 sums each row.
    let partial = gpu.alloc("sum", (n_out * chunks * 4) as u64)?;
    gpu.dispatch(
        "reduce",
        "sum",
        &[],
        &base,
        &[r(x.buffer()), w(&partial)],
        gpu.grid_1d((n_out * chunks) as u64 * 256, 256),
    )?;
    let d2 = [1, 1, n_out, chunks];
    let p2 = Params {
        in_dims: d2.map(|v| v as u32),
        in_strides: strides4(d2),
        keep: [1, 1, 1, 0],
        n_out: n_out as u32,
        n_red: chunks as u32,
        chunks: 1,
        chunk_len: chunks as u32,
        scale,
        _pad: [0; 3],
    };
    gpu.dispatch(
        "reduce",
        "sum",
        &[],
        &p2,
        &[r(&partial), w(out.buffer())],
        gpu.grid_1d(n_out as u64 * 256, 256),
    )?;
    Ok(out)
}

/// Sums a gradient down to `shape` (the inverse of broadcasting). Raw: no autograd.
pub fn sum_to_shape(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let gd = dims4("sum_to_shape", g.shape())?;
    let sd = dims4("sum_to_shape", shape)?;
    let mut keep = [true; 4];
    for k in 0..4 {
        if sd[k] == gd[k] {
            continue;
        }
        if sd[k] != 1 {
            return Err(Error::shape(
                "sum_to_shape",
                g.shape(),
                shape,
                "target dims must equal the source's or be 1",
            ));
        }
        keep[k] = false;
    }
    reduce_raw(g, keep, shape, 1.0)
}

fn keep_mask(op: &'static str, shape: &[usize], dims: &[usize]) -> Result<([bool; 4], Vec<usize>)> {
    let off = 4 - shape.len();
    let mut keep = [true; 4];
    let mut out = shape.to_vec();
    for &d in dims {
        if d >= shape.len() {
            return Err(Error::invalid(
                op,
                format!("dim {d} out of range for shape {shape:?}"),
            ));
        }
        keep[off + d] = false;
        out[d] = 1;
    }
    dims4(op, shape)?;
    Ok((keep, out))
}

fn reduce_dims(x: &Tensor, dims: &[usize], mean: bool) -> Result<Tensor> {
    let op = if mean { "mean" } else { "sum" };
    x.expect_f32(op)?;
    let (keep, out_shape) = keep_mask(op, x.shape(), dims)?;
    let n_red: usize = dims.iter().map(|&d| x.shape()[d]).product();
    let scale = if mean { 1.0 / n_red as f32 } else { 1.0 };
    let out = reduce_raw(x, keep, &out_shape, scale)?;
    let in_shape = x.shape().to_vec();
    Ok(Tensor::from_op(out, op, &[x], move || {
        Box::new(move |g: &Tensor, _: &[bool]| {
            // Broadcast the (kept-dims) gradient back over the reduced dims.
            let gpu = g.gpu();
            let ones = Tensor::full(gpu, &in_shape, scale)?;
            Ok(vec![Some(super::elementwise::mul(&ones, g)?)])
        })
    }))
}

/// Sums over `dims`, keeping them as size 1 (like `sum(dims, keepdim=True)`).
pub fn sum_dims(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    reduce_dims(x, dims, false)
}

/// Means over `dims`, keeping them as size 1.
pub fn mean_dims(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    reduce_dims(x, dims, true)
}

/// Sum of all elements → a 0-d tensor (shape [], one element), as `torch.sum(x)`.
pub fn sum(x: &Tensor) -> Result<Tensor> {
    let all: Vec<usize> = (0..x.ndim()).collect();
    sum_dims(x, &all)?.reshape(&[])
}

/// Mean of all elements → a 0-d tensor (shape []), as `torch.mean(x)`.
pub fn mean(x: &Tensor) -> Result<Tensor> {
    let all: Vec<usize> = (0..x.ndim()).collect();
    mean_dims(x, &all)?.reshape(&[])
}

/// Parity-case evaluations of this module's ops.
pub(crate) fn parity(name: &str) -> Option<crate::testing::parity::OpFn> {
    use crate::testing::parity::{CaseCtx, Outputs};
    Some(match name {
        "sum" => |c: &CaseCtx| -> Result<Outputs> {
            let x = c.input("x")?;
            Ok(match dims_param(c)? {
                None => sum(&x)?,
                Some(d) => sum_dims(&x, &d)?,
            }
            .into())
        },
        "mean" => |c: &CaseCtx| -> Result<Outputs> {
            let x = c.input("x")?;
            Ok(match dims_param(c)? {
                None => mean(&x)?,
                Some(d) => mean_dims(&x, &d)?,
            }
            .into())
        },
        _ => return None,
    })
}

/// `dim`: absent/null = all (result shape [], 0-d); a list = those dims, kept as size 1.
fn dims_param(c: &crate::testing::parity::CaseCtx) -> Result<Option<Vec<usize>>> {
    c.usize_list("dim")
}
