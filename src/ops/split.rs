//! Convolutions and linear layers whose weight is larger than one storage binding (VGG16's
//! fc6 is 411 MB; lavapipe binds at most 128 MiB): the weight is split along output features
//! into row blocks, which are contiguous in `[Co, Ci, KH, KW]` / `[out, in]` layout, so each
//! block is one buffer copy. Each block runs the ordinary GEMMs; outputs are concatenated along
//! channels, input gradients summed over blocks, and weight-gradient blocks copied back into
//! one full-size gradient (which only the chunked optimiser step then touches).
//!
//! Numerics: every output element is the same dot product as in the unsplit op, but the
//! kernel variant and split-K choice follow the block's shape, so results may differ from the
//! unsplit path by reassociation (tests/it/large.rs states the tolerance); the input gradient
//! adds one sum per extra block.

use super::concat::{concat, narrow_raw};
use super::conv::{
    bias_grad, conv2d_input_grad_raw, conv2d_weight_grad_raw, forward_into, ConvGeom, GemmConfig,
};
use super::elementwise::add;
use crate::error::Result;
use crate::tensor::{DType, Tensor};

/// Whether `wt` must go through [`out_features`] (it cannot be bound whole).
pub fn needed(wt: &Tensor) -> bool {
    (wt.numel() * 4) as u64 > wt.gpu().binding_limit()
}

/// Output-feature row blocks `(first, count)` of a weight with `row` elements per feature.
fn blocks(op: &'static str, wt: &Tensor, row: usize) -> Result<Vec<(usize, usize)>> {
    let limit = wt.gpu().binding_limit() as usize;
    let rows = limit / (row * 4);
    if rows == 0 {
        return Err(crate::gpu::GpuError::BindingTooLarge {
            kernel: op.to_string(),
            what: format!("one output feature of weight {:?}", wt.shape()),
            bytes: (row * 4) as u64,
            limit: limit as u64,
            why: " along output features".into(),
        }
        .into());
    }
    let co = wt.shape()[0];
    Ok((0..co)
        .step_by(rows)
        .map(|o| (o, rows.min(co - o)))
        .collect())
}

/// Rows `o..o + n` of a `[Co, ...]` tensor as a new tensor (one buffer copy).
fn rows(t: &Tensor, o: usize, n: usize) -> Result<Tensor> {
    let row: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = n;
    let out = Tensor::empty(t.gpu(), "split_rows", &shape, DType::F32)?;
    t.gpu().copy(
        t.buffer(),
        (o * row * 4) as u64,
        out.buffer(),
        0,
        (n * row * 4) as u64,
    );
    Ok(out)
}

/// conv2d / linear (per `g` and `out_shape`) with the weight split along output features,
/// recording its backward like the unsplit op.
pub fn out_features(
    op: &'static str,
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeom,
    out_shape: &[usize],
    cfg: &GemmConfig,
) -> Result<Tensor> {
    let row = g.ci * g.kh * g.kw;
    let parts = blocks(op, wt, row)?;
    let mut ys = Vec::with_capacity(parts.len());
    for &(o, n) in &parts {
        let gk = ConvGeom { co: n, ..*g };
        let mut shape = out_shape.to_vec();
        shape[1] = n;
        let wk = rows(wt, o, n)?;
        let bk = bias.map(|b| rows(&b.reshape(&[g.co, 1])?, o, n)?.reshape(&[n]));
        let bk = bk.transpose()?;
        ys.push(forward_into(x, &wk, bk.as_ref(), &gk, &shape, cfg)?);
    }
    let refs: Vec<&Tensor> = ys.iter().collect();
    let out = if refs.len() == 1 {
        ys[0].clone()
    } else {
        concat(&refs, 1)?
    };
    let (g, cfg) = (*g, *cfg);
    let x_shape = x.shape().to_vec();
    let w_shape = wt.shape().to_vec();
    Ok(Tensor::from_op_opt(
        out,
        op,
        [Some(x), Some(wt), bias],
        move |rec| {
            // As the unsplit conv: dx reads only w, dw only x.
            let xd = rec[1].then(|| x.detach());
            let wd = rec[0].then(|| wt.detach());
            move |dy: &Tensor, needs: [bool; 3]| {
                let mut dx: Option<Tensor> = None;
                let dw = if needs[1] {
                    Some(Tensor::empty(dy.gpu(), op, &w_shape, DType::F32)?)
                } else {
                    None
                };
                for &(o, n) in &parts {
                    let gk = ConvGeom { co: n, ..g };
                    let dyk = narrow_raw(dy, o, n)?;
                    if let (true, Some(wd)) = (needs[0], &wd) {
                        let wk = rows(wd, o, n)?;
                        let part = conv2d_input_grad_raw(&dyk, &wk, &gk, &cfg)?;
                        dx = Some(match dx {
                            None => part,
                            Some(acc) => add(&acc, &part)?,
                        });
                    }
                    if let (Some(dw), Some(xd)) = (&dw, &xd) {
                        let part = conv2d_weight_grad_raw(&dyk, xd, &gk, &cfg)?;
                        dy.gpu().copy(
                            part.buffer(),
                            0,
                            dw.buffer(),
                            (o * row * 4) as u64,
                            (n * row * 4) as u64,
                        );
                    }
                }
                let dx = dx.map(|d| d.reshape(&x_shape)).transpose()?;
                let db = if needs[2] {
                    Some(bias_grad(dy, g.co)?)
                } else {
                    None
                };
                Ok([dx, dw, db])
            }
        },
    ))
}
