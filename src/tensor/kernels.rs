//! The two kernels the tensor and autograd layer dispatch themselves: `fill` (for
//! [`Tensor::full`]) and the same-shape add that accumulates gradients. They live here, below
//! the ops, so the lower layers never call up into `ops`; `ops::elementwise` uses this module's
//! `Params` mirror of `shaders/elementwise.wgsl` for the rest of that shader.

use super::Tensor;
use crate::error::{Error, Result};
use crate::gpu::{codes, r_elems, w_elems};

pub(crate) const SHADER: &str = "elementwise";

/// Mirrors `Params` in elementwise.wgsl (shared with `ops::elementwise`, which dispatches the
/// shader's other entry points).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub n: u32,
    pub op: u32,
    pub a: f32,
    pub b: f32,
    pub out_dims: [u32; 4],
    pub sa: [u32; 4],
    pub sb: [u32; 4],
    pub _pad: [u32; 4],
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "elementwise", Params { n, op, a, b, out_dims, sa, sb, _pad });

impl Params {
    /// A flat 1-d dispatch over `n` elements.
    pub(crate) fn simple(n: usize, op: u32, a: f32, b: f32) -> Self {
        Params {
            n: n as u32,
            op,
            a,
            b,
            out_dims: [1, 1, 1, n as u32],
            sa: [0; 4],
            sb: [0; 4],
            _pad: [0; 4],
        }
    }
}

/// Workgroups for `n` elements: each invocation handles one vec4.
pub(crate) fn grid(gpu: &crate::Gpu, n: usize) -> [u32; 3] {
    gpu.grid_1d(n.div_ceil(4) as u64, 256)
}

/// Fills a tensor in place (no autograd).
pub fn fill(t: &Tensor, v: f32) -> Result<()> {
    let gpu = t.gpu();
    for c in gpu.chunks(t.numel(), 4) {
        gpu.dispatch(
            SHADER,
            "fill",
            &[],
            &Params::simple(c.len(), 0, v, 0.0),
            &[gpu.unused(), gpu.unused(), w_elems(t.buffer(), &c, 4)],
            grid(gpu, c.len()),
        )?;
    }
    Ok(())
}

/// `a + b` for two F32 tensors of one shape, not recorded: how autograd sums the gradients
/// reaching one tensor (its backward runs without recording). The same kernel and arithmetic
/// as `ops::add` on equal shapes, so sums are bitwise what they were through the op.
pub(crate) fn accumulate(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            "accumulate",
            a.shape(),
            b.shape(),
            "gradients reaching one tensor must have its shape",
        ));
    }
    let gpu = a.gpu();
    let n = a.numel();
    let out = Tensor::empty(gpu, "add", a.shape(), super::DType::F32)?;
    let consts = [
        ("OP", codes::BIN_ADD),
        ("KA", codes::LOAD_FLAT),
        ("KB", codes::LOAD_FLAT),
    ];
    for c in gpu.chunks(n, 4) {
        let mut p = Params::simple(c.len(), codes::BIN_ADD, 0.0, 0.0);
        p.sa = [0, 0, 0, 1];
        p.sb = [0, 0, 0, 1];
        gpu.dispatch(
            SHADER,
            "binary",
            &consts,
            &p,
            &[
                r_elems(a.buffer(), &c, 4),
                r_elems(b.buffer(), &c, 4),
                w_elems(out.buffer(), &c, 4),
            ],
            grid(gpu, c.len()),
        )?;
    }
    Ok(out)
}
