//! Differentiable ops on tensors larger than one storage binding, by pieces. Each input is cut
//! along one dim (batch: one buffer copy; channels: one copy per image) or passed whole
//! (weights); the op runs on every piece with the ordinary kernels and the pieces' outputs are
//! copied into the full-size output (or summed, for losses), which no kernel binds whole.
//!
//! With gradients, every piece's inputs are fresh leaves, so its sub-graph never reaches the
//! outer graph; one outer node keeps the pieces and, in its backward, runs each piece's
//! sub-graph with its cut of the output gradient ([`grad_seeded`]) and copies / sums the
//! pieces' input gradients into full-size ones. No op needs a hand-written split backward, and
//! the per-element math is the op's own: only sums over pieces (a weight's gradient over batch
//! chunks, a loss over its pieces) reassociate.
//!
//! Memory: the pieces keep what their backward saves, as the unsplit op would, plus their
//! gathered inputs where the op saves its input (a conv's x): up to one extra copy of those.

use crate::autograd::{grad_seeded, is_grad_enabled, no_grad, BackwardFn};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};
use std::ops::Range;

/// How a piece sees one input.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cut {
    /// The piece's range of this dim (0: batch, 1: channels of NCHW, 0 of a per-channel [C]).
    Along(usize),
    /// The whole tensor (weights): the pieces' gradients are summed.
    Whole,
}

/// How the pieces' outputs make the op's output.
#[derive(Clone, Debug)]
pub(crate) enum Join {
    /// Written into the piece's range of this dim of an output of this shape.
    Along(usize, Vec<usize>),
    /// Summed (a loss whose pieces are already divided by the whole op's count).
    Sum,
}

/// Whether an f32 tensor of `shape` is larger than one binding of `x`'s context.
pub(crate) fn over(x: &Tensor, shape: &[usize]) -> bool {
    (shape.iter().product::<usize>() * 4) as u64 > x.gpu().binding_limit()
}

/// The refusal when one item (an image, a channel) of an op is over a binding by itself.
pub(crate) fn too_large(op: &'static str, what: String, bytes: usize, x: &Tensor) -> Error {
    crate::gpu::GpuError::BindingTooLarge {
        kernel: op.to_string(),
        what,
        bytes: bytes as u64,
        limit: x.gpu().binding_limit(),
        why: String::new(),
    }
    .into()
}

/// Ranges of `0..total` of as many items as keep `per_item` bytes each within one binding of
/// `x`'s context; `what` names one item in the refusal when a single one does not fit.
pub(crate) fn groups(
    op: &'static str,
    x: &Tensor,
    total: usize,
    per_item: usize,
    what: impl FnOnce() -> String,
) -> Result<Vec<Range<usize>>> {
    let limit = x.gpu().binding_limit() as usize;
    let g = (limit / per_item.max(1)).min(total);
    if g == 0 {
        return Err(too_large(op, what(), per_item, x));
    }
    Ok((0..total)
        .step_by(g)
        .map(|s| s..(s + g).min(total))
        .collect())
}

/// Elements `r` of dim `d` of `t` as a new tensor (one copy per index of the dims before `d`).
pub(crate) fn take(t: &Tensor, d: usize, r: &Range<usize>) -> Result<Tensor> {
    let s = t.shape();
    let (outer, inner) = outer_inner(s, d);
    let es = t.dtype().size();
    let mut shape = s.to_vec();
    shape[d] = r.len();
    let out = Tensor::empty(t.gpu(), "split_take", &shape, t.dtype())?;
    let run = r.len() * inner * es;
    for o in 0..outer {
        t.gpu().copy(
            t.buffer(),
            ((o * s[d] + r.start) * inner * es) as u64,
            out.buffer(),
            (o * run) as u64,
            run as u64,
        );
    }
    Ok(out)
}

/// Writes `part` into elements `start..` of dim `d` of `full` (the inverse of [`take`]).
pub(crate) fn put(part: &Tensor, full: &Tensor, d: usize, start: usize) {
    let (s, len) = (full.shape(), part.shape()[d]);
    let (outer, inner) = outer_inner(s, d);
    let es = full.dtype().size();
    let run = len * inner * es;
    for o in 0..outer {
        full.gpu().copy(
            part.buffer(),
            (o * run) as u64,
            full.buffer(),
            ((o * s[d] + start) * inner * es) as u64,
            run as u64,
        );
    }
}

fn outer_inner(s: &[usize], d: usize) -> (usize, usize) {
    (s[..d].iter().product(), s[d + 1..].iter().product())
}

/// One piece as the outer node keeps it: its output (root of its sub-graph) and its leaves.
struct Piece {
    range: Range<usize>,
    out: Tensor,
    leaves: Vec<Option<Tensor>>,
}

/// Runs `f` (given the piece's inputs, in `inputs`' order, and its range) piece by piece over
/// `ranges` and joins the outputs; with gradients on, records one node whose backward runs
/// every piece's sub-graph.
pub(crate) fn run(
    op: &'static str,
    inputs: &[(&Tensor, Cut)],
    ranges: &[Range<usize>],
    join: Join,
    f: impl Fn(&[Tensor], &Range<usize>) -> Result<Tensor>,
) -> Result<Tensor> {
    let first = inputs
        .first()
        .ok_or_else(|| Error::Internal(format!("{op}: a split op without inputs")))?
        .0;
    let gpu = first.gpu().clone();
    let grad = is_grad_enabled() && inputs.iter().any(|(t, _)| t.requires_grad());
    // Allocated at the first piece, with its dtype (argmax and one-hot split too).
    let mut out: Option<Tensor> = None;
    let mut pieces = Vec::with_capacity(if grad { ranges.len() } else { 0 });
    for r in ranges {
        let ins: Vec<Tensor> = inputs
            .iter()
            .map(|(t, cut)| {
                let p = match cut {
                    Cut::Along(d) => take(t, *d, r)?,
                    Cut::Whole => t.detach(),
                };
                // A fresh leaf: the piece's graph ends here instead of in the outer graph.
                Ok(if grad && t.requires_grad() {
                    p.into_param()
                } else {
                    p
                })
            })
            .collect::<Result<_>>()?;
        let y = f(&ins, r)?;
        out = Some(match (&join, out) {
            (Join::Along(d, shape), o) => {
                let o = match o {
                    Some(o) => o,
                    None => Tensor::empty(&gpu, op, shape, y.dtype())?,
                };
                put(&y, &o, *d, r.start);
                o
            }
            (Join::Sum, None) => y.detach(),
            (Join::Sum, Some(acc)) => no_grad(|| crate::tensor::kernels::accumulate(&acc, &y))?,
        });
        if grad {
            let leaves = inputs
                .iter()
                .zip(ins)
                .map(|((t, _), p)| t.requires_grad().then_some(p))
                .collect();
            pieces.push(Piece {
                range: r.clone(),
                out: y,
                leaves,
            });
        }
    }
    let out = out.ok_or_else(|| Error::Internal(format!("{op}: split into no pieces")))?;
    if !grad {
        return Ok(out);
    }
    let cuts: Vec<Cut> = inputs.iter().map(|(_, c)| *c).collect();
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|(t, _)| t.shape().to_vec()).collect();
    let refs: Vec<&Tensor> = inputs.iter().map(|(t, _)| *t).collect();
    Ok(Tensor::from_op_dyn(out, op, &refs, move || {
        Box::new(move |dy: &Tensor, needs: &[bool]| {
            backward(&pieces, &join, &cuts, &shapes, dy, needs)
        }) as Box<dyn BackwardFn>
    }))
}

fn backward(
    pieces: &[Piece],
    join: &Join,
    cuts: &[Cut],
    shapes: &[Vec<usize>],
    dy: &Tensor,
    needs: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let mut full: Vec<Option<Tensor>> = vec![None; cuts.len()];
    for p in pieces {
        let want: Vec<usize> = (0..cuts.len())
            .filter(|&i| needs[i] && p.leaves[i].is_some())
            .collect();
        if want.is_empty() || !p.out.requires_grad() {
            continue;
        }
        let seed = match join {
            Join::Along(d, _) => take(dy, *d, &p.range)?,
            Join::Sum => dy.clone(),
        };
        let leaves: Vec<&Tensor> = want.iter().filter_map(|&i| p.leaves[i].as_ref()).collect();
        // Retained: a backward_retain of the outer graph may call this again; the pieces'
        // graphs are freed with this closure.
        let gs = grad_seeded(&p.out, seed, &leaves, true)?;
        for (&i, g) in want.iter().zip(gs) {
            let Some(g) = g else { continue };
            full[i] = Some(match (cuts[i], full[i].take()) {
                (Cut::Along(d), acc) => {
                    let acc = match acc {
                        Some(a) => a,
                        // Zeros where a piece gives no gradient.
                        None => Tensor::zeros(dy.gpu(), &shapes[i], DType::F32)?,
                    };
                    put(&g, &acc, d, p.range.start);
                    acc
                }
                (Cut::Whole, None) => g,
                (Cut::Whole, Some(acc)) => crate::tensor::kernels::accumulate(&acc, &g)?,
            });
        }
    }
    Ok(full)
}

/// A per-channel op `f` on `x` [N, C, H, W] with output planes of `out_hw` (resizes), by
/// channel groups: exact, each channel is computed on its own.
pub(crate) fn per_channel(
    op: &'static str,
    x: &Tensor,
    out_hw: [usize; 2],
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let s = x.shape();
    let per = s[0] * 4 * (s[2] * s[3]).max(out_hw[0] * out_hw[1]);
    let cs = groups(op, x, s[1], per, || {
        format!("one channel of {s:?} (output planes {out_hw:?})")
    })?;
    planes_along(op, x, 1, &cs, out_hw, f)
}

/// A per-channel op that is also independent per image (resizes): channel groups while one
/// channel of the whole batch fits a binding, else batch chunks, in which `f` (called on the
/// chunk) splits again by channels. So only one channel of one image must fit.
pub(crate) fn per_channel_or_image(
    op: &'static str,
    x: &Tensor,
    out_hw: [usize; 2],
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let s = x.shape();
    let plane = (s[2] * s[3]).max(out_hw[0] * out_hw[1]);
    if (s[0] * plane * 4) as u64 <= x.gpu().binding_limit() {
        return per_channel(op, x, out_hw, f);
    }
    let bs = groups(op, x, s[0], plane * 4, || {
        format!("one channel of one image of {s:?} (output planes {out_hw:?})")
    })?;
    // A chunk holds as many images as keep one channel of the chunk within a binding, so
    // `f` on it takes the channel-group path.
    planes_along(op, x, 0, &bs, out_hw, f)
}

/// `f` on the pieces of `x` cut along `axis` (0 batch, 1 channels) into `pieces`, joined into
/// `[N, C, out_hw]`.
fn planes_along(
    op: &'static str,
    x: &Tensor,
    axis: usize,
    pieces: &[Range<usize>],
    out_hw: [usize; 2],
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let s = x.shape();
    let shape = vec![s[0], s[1], out_hw[0], out_hw[1]];
    run(
        op,
        &[(x, Cut::Along(axis))],
        pieces,
        Join::Along(axis, shape),
        |t, _| f(&t[0]),
    )
}

/// An op `f` that is independent per image (softmax over channels, pooling) from `x` to an
/// output of `out_shape`, by batch chunks: exact.
pub(crate) fn per_image(
    op: &'static str,
    x: &Tensor,
    out_shape: &[usize],
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let s = x.shape();
    let per = s[1..]
        .iter()
        .product::<usize>()
        .max(out_shape[1..].iter().product())
        * 4;
    let bs = groups(op, x, s[0], per, || format!("one image of {s:?}"))?;
    let join = Join::Along(0, out_shape.to_vec());
    run(op, &[(x, Cut::Along(0))], &bs, join, |t, _| f(&t[0]))
}
