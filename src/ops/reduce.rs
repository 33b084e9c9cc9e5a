//! Deterministic sum / mean reductions (whole tensor, chosen dims, sum-to-shape for broadcast
//! backward). Shader: `shaders/reduce.wgsl`.

use super::cases::{CaseArgs, Cases, Outputs};
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
    a: u32,
    b: u32,
    c: u32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "reduce", Params { in_dims, in_strides, keep, n_out, n_red, chunks, chunk_len, scale, a, b, c });

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
    let whole = out_shape.iter().product::<usize>() == 1;
    let big = (x.numel() * 4) as u64 > gpu.binding_limit();
    if whole && big {
        return sum_all_pieces(x, out_shape, scale);
    }
    if big && x.ndim() == 4 && x.shape()[0] > 1 {
        return by_batch(x, keep, out_shape, scale);
    }
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
        a: 1,
        b: 1,
        c: 1,
    };
    if n_out == 0 {
        return Ok(out);
    }
    if let Some([a, b, c]) = merged_rows(d, keep) {
        return reduce_rows(x, &out, base, [a, b, c]);
    }
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
        a: 1,
        b: 1,
        c: 1,
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

/// The sum of every element of a tensor larger than one storage binding: each binding-sized
/// piece is copied out and summed by the ordinary kernels, then the pieces' sums are summed.
/// (Deterministic, but grouped differently from a one-binding sum.) Reductions that keep some
/// dims go by batch chunks ([`by_batch`]).
fn sum_all_pieces(x: &Tensor, out_shape: &[usize], scale: f32) -> Result<Tensor> {
    let gpu = x.gpu();
    let pieces = gpu.chunks(x.numel(), 4);
    let sums = Tensor::empty(gpu, "sum", &[pieces.len()], DType::F32)?;
    for (k, c) in pieces.iter().enumerate() {
        let piece = Tensor::empty(gpu, "sum", &[c.len()], DType::F32)?;
        gpu.copy(
            x.buffer(),
            (c.start * 4) as u64,
            piece.buffer(),
            0,
            (c.len() * 4) as u64,
        );
        let s = reduce_raw(&piece, [false; 4], &[1], 1.0)?;
        gpu.copy(s.buffer(), 0, sums.buffer(), (k * 4) as u64, 4);
    }
    reduce_raw(&sums, [false; 4], out_shape, scale)
}

/// A reduction of NCHW `x` over a binding that keeps some dims, by chunks of images: where
/// the batch is kept each chunk's result is copied into its rows (exact), where it is reduced
/// the chunks' sums are added (grouped differently from a one-binding sum, deterministic).
fn by_batch(x: &Tensor, keep: [bool; 4], out_shape: &[usize], scale: f32) -> Result<Tensor> {
    use super::split_grad::{groups, put, take};
    let s = x.shape();
    let per = 4 * s[1..].iter().product::<usize>();
    let bs = groups("sum", x, s[0], per, || format!("one image of {s:?}"))?;
    let mut acc: Option<Tensor> = None;
    for r in &bs {
        let part = take(x, 0, r)?;
        let mut shape = out_shape.to_vec();
        if keep[0] {
            shape[0] = r.len();
        }
        let y = reduce_raw(&part, keep, &shape, scale)?;
        acc = Some(match (keep[0], acc) {
            (true, acc) => {
                let out = match acc {
                    Some(o) => o,
                    None => Tensor::empty(x.gpu(), "sum", out_shape, DType::F32)?,
                };
                put(&y, &out, 0, r.start);
                out
            }
            (false, None) => y,
            (false, Some(a)) => crate::tensor::kernels::accumulate(&a, &y)?,
        });
    }
    acc.ok_or_else(|| Error::Internal("sum: a batch split into no chunks".into()))
}

/// Smallest reduction (elements) a `sum_rows` workgroup takes before it is split into chunks:
/// large, because on CPU drivers a second pass costs more than a long loop.
const ROWS_MIN_CHUNK: usize = 32768;
/// Workgroups `sum_rows` aims for in its first pass.
const ROWS_TARGET_GROUPS: usize = 256;
/// `sum_cols` (one invocation per output) takes x[A, B] → [B] from this many outputs up.
const COLS_MIN_OUT: usize = 256;

/// The input as x[A, B, C] with A and C summed and B kept (size-1 dims dropped, neighbouring
/// dims of the same kind merged), when the reduction has that form.
fn merged_rows(d: [usize; 4], keep: [bool; 4]) -> Option<[usize; 3]> {
    // Runs of (kept?, size) in order, size-1 dims dropped.
    let mut runs: Vec<(bool, usize)> = Vec::new();
    for k in 0..4 {
        if d[k] == 1 {
            continue;
        }
        match runs.last_mut() {
            Some((kk, n)) if *kk == keep[k] => *n *= d[k],
            _ => runs.push((keep[k], d[k])),
        }
    }
    let mut abc = [1usize; 3];
    let mut slot = 0; // 0: leading summed run, 1: kept run, 2: trailing summed run
    for (kept, n) in runs {
        let want = if kept {
            1
        } else if slot == 0 {
            0
        } else {
            2
        };
        if want < slot || (want == slot && abc[slot] != 1) {
            return None;
        }
        abc[want] = n;
        slot = want;
    }
    if abc[1] == 1 {
        // Nothing kept: one contiguous run, summed as C (vec4 loads when it allows).
        abc = [1, 1, abc[0] * abc[2]];
    }
    Some(abc)
}

/// x[A, B, C] → out[B] (see `merged_rows`) with `sum_rows4` / `sum_rows`, or `sum_cols` when
/// nothing trails the kept run and there are many outputs.
fn reduce_rows(x: &Tensor, out: &Tensor, base: Params, [a, b, c]: [usize; 3]) -> Result<Tensor> {
    let gpu = x.gpu();
    let n_red = a * c;
    if c == 1 && b >= COLS_MIN_OUT {
        let p = Params {
            a: a as u32,
            b: b as u32,
            c: 1,
            ..base
        };
        gpu.dispatch(
            "reduce",
            "sum_cols",
            &[],
            &p,
            &[r(x.buffer()), w(out.buffer())],
            gpu.grid_1d(b as u64, 256),
        )?;
        return Ok(out.clone());
    }
    let chunk_len = if n_red <= ROWS_MIN_CHUNK {
        n_red.max(1)
    } else {
        let want = ROWS_TARGET_GROUPS.div_ceil(b).max(1);
        n_red.div_ceil(want).max(ROWS_MIN_CHUNK)
    };
    let chunks = n_red.div_ceil(chunk_len).max(1);
    // vec4 loads when every row of C starts on a vec4; chunks then hold whole vec4s.
    let v = if c % 4 == 0 { 4 } else { 1 };
    let chunk_len = chunk_len.div_ceil(v);
    let p = Params {
        n_red: (n_red / v) as u32,
        chunks: chunks as u32,
        chunk_len: chunk_len as u32,
        a: a as u32,
        b: b as u32,
        c: (c / v) as u32,
        ..base
    };
    let entry = if v == 4 { "sum_rows4" } else { "sum_rows" };
    let groups = gpu.grid_1d((b * chunks) as u64 * 64, 64);
    if chunks == 1 {
        gpu.dispatch(
            "reduce",
            entry,
            &[],
            &p,
            &[r(x.buffer()), w(out.buffer())],
            groups,
        )?;
        return Ok(out.clone());
    }
    // Pass 1: partial sums laid out [B, chunks]; pass 2 sums each row.
    let partial = gpu.alloc("sum", (b * chunks * 4) as u64)?;
    gpu.dispatch(
        "reduce",
        entry,
        &[],
        &p,
        &[r(x.buffer()), w(&partial)],
        groups,
    )?;
    let p2 = Params {
        n_red: chunks as u32,
        chunks: 1,
        chunk_len: chunks as u32,
        a: 1,
        b: b as u32,
        c: chunks as u32,
        ..base
    };
    gpu.dispatch(
        "reduce",
        "sum_rows",
        &[],
        &p2,
        &[r(&partial), w(out.buffer())],
        gpu.grid_1d(b as u64 * 64, 64),
    )?;
    Ok(out.clone())
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
    Ok(Tensor::from_op(out, op, [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| {
            // Broadcast the (kept-dims) gradient back over the reduced dims.
            let gpu = g.gpu();
            let ones = Tensor::full(gpu, &in_shape, scale)?;
            Ok([Some(super::elementwise::mul(&ones, g)?)])
        }
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

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[
    ("sum", |c: &dyn CaseArgs| -> Result<Outputs> {
        let x = c.input("x")?;
        Ok(match dims_param(c)? {
            None => sum(&x)?,
            Some(d) => sum_dims(&x, &d)?,
        }
        .into())
    }),
    ("mean", |c: &dyn CaseArgs| -> Result<Outputs> {
        let x = c.input("x")?;
        Ok(match dims_param(c)? {
            None => mean(&x)?,
            Some(d) => mean_dims(&x, &d)?,
        }
        .into())
    }),
];

/// `dim`: absent/null = all (result shape [], 0-d); a list = those dims, kept as size 1.
fn dims_param(c: &dyn CaseArgs) -> Result<Option<Vec<usize>>> {
    c.usize_list("dim")
}
