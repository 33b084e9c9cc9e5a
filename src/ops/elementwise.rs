//! Elementwise ops: activations and other unary maps, broadcast binary arithmetic, scalar ops.
//! Shader: `shaders/elementwise.wgsl`.

use super::{dims4, reduce::sum_to_shape, strides4};
use crate::error::{Error, Result};
use crate::gpu::{codes, r, r_elems, w, w_elems};
use crate::tensor::{DType, Tensor};

pub use crate::tensor::kernels::fill;
use crate::tensor::kernels::{grid, Params, SHADER};

use super::cases::{CaseArgs, Cases, Outputs};
/// How `binary` reads an input (the shader's KA / KB constants).
use crate::gpu::codes::{
    LOAD_FLAT as FLAT, LOAD_GATHER as GATHER, LOAD_ROW as ROW, LOAD_SPLAT as SPLAT,
};

/// Unary ops; their codes are `codes::UN_*` (`shaders/include/codes.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    /// a·x + b
    Affine(f32, f32),
    Exp,
    Log,
    Square,
    Sqrt,
    Abs,
    Clamp(f32, f32),
    Softplus,
}

impl UnaryOp {
    fn code(self) -> (u32, f32, f32) {
        match self {
            UnaryOp::Relu => (codes::UN_RELU, 0.0, 0.0),
            UnaryOp::LeakyRelu(s) => (codes::UN_LEAKY_RELU, s, 0.0),
            UnaryOp::Sigmoid => (codes::UN_SIGMOID, 0.0, 0.0),
            UnaryOp::Tanh => (codes::UN_TANH, 0.0, 0.0),
            UnaryOp::Affine(a, b) => (codes::UN_AFFINE, a, b),
            UnaryOp::Exp => (codes::UN_EXP, 0.0, 0.0),
            UnaryOp::Log => (codes::UN_LOG, 0.0, 0.0),
            UnaryOp::Square => (codes::UN_SQUARE, 0.0, 0.0),
            UnaryOp::Sqrt => (codes::UN_SQRT, 0.0, 0.0),
            UnaryOp::Abs => (codes::UN_ABS, 0.0, 0.0),
            UnaryOp::Clamp(lo, hi) => (codes::UN_CLAMP, lo, hi),
            UnaryOp::Softplus => (codes::UN_SOFTPLUS, 0.0, 0.0),
        }
    }
    fn name(self) -> &'static str {
        match self {
            UnaryOp::Relu => "relu",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Affine(..) => "affine",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Square => "square",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Clamp(..) => "clamp",
            UnaryOp::Softplus => "softplus",
        }
    }
}

// Elementwise kernels see flat vec4 arrays, so a tensor larger than one storage binding is
// processed in binding-sized pieces (`Gpu::chunks`), each bound by range; a tensor that fits
// is one piece bound whole, as before.

fn unary_raw(x: &Tensor, op: UnaryOp) -> Result<Tensor> {
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, op.name(), x.shape(), DType::F32)?;
    let (code, a, b) = op.code();
    for c in gpu.chunks(x.numel(), 4) {
        gpu.dispatch(
            SHADER,
            "unary",
            &[("OP", code)],
            &Params::simple(c.len(), code, a, b),
            &[
                r_elems(x.buffer(), &c, 4),
                gpu.unused(),
                w_elems(out.buffer(), &c, 4),
            ],
            grid(gpu, c.len()),
        )?;
    }
    Ok(out)
}

/// What the backward of a unary map reads: its input, its output, or neither.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Saves {
    Input,
    Output,
    Nothing,
}

impl UnaryOp {
    /// The one tensor the derivative needs. Relu (and leaky relu with a positive slope) read
    /// the output: `y > 0` exactly when `x > 0`, and the output is usually kept anyway by the
    /// next layer, while the input (a batch norm's output) would be kept only for this.
    fn saves(self) -> Saves {
        match self {
            UnaryOp::Relu | UnaryOp::Sigmoid | UnaryOp::Tanh | UnaryOp::Exp | UnaryOp::Sqrt => {
                Saves::Output
            }
            UnaryOp::LeakyRelu(s) if s > 0.0 => Saves::Output,
            UnaryOp::Affine(..) => Saves::Nothing,
            UnaryOp::LeakyRelu(_)
            | UnaryOp::Log
            | UnaryOp::Square
            | UnaryOp::Abs
            | UnaryOp::Clamp(..)
            | UnaryOp::Softplus => Saves::Input,
        }
    }
}

/// Backward of a unary map from the one tensor it saved (`None` for `Saves::Nothing`). The
/// kernel reads the input slot or the output slot per op; both are bound to the saved tensor,
/// which for relu's sign test gives the same bits as its input would.
fn unary_bwd_raw(saved: Option<&Tensor>, g: &Tensor, op: UnaryOp) -> Result<Tensor> {
    let gpu = g.gpu();
    let out = Tensor::empty(gpu, op.name(), g.shape(), DType::F32)?;
    let (code, a, b) = op.code();
    let s = saved.unwrap_or(g);
    for c in gpu.chunks(g.numel(), 4) {
        gpu.dispatch(
            SHADER,
            "unary_bwd",
            &[("OP", code)],
            &Params::simple(c.len(), code, a, b),
            &[
                r_elems(s.buffer(), &c, 4),
                r_elems(s.buffer(), &c, 4),
                w_elems(out.buffer(), &c, 4),
                r_elems(g.buffer(), &c, 4),
            ],
            grid(gpu, c.len()),
        )?;
    }
    Ok(out)
}

/// Applies a unary map, recording its backward.
pub fn unary(x: &Tensor, op: UnaryOp) -> Result<Tensor> {
    x.expect_f32(op.name())?;
    let y = unary_raw(x, op)?;
    let saved = match op.saves() {
        Saves::Input => Some(x.detach()),
        Saves::Output => Some(y.detach()),
        Saves::Nothing => None,
    };
    Ok(Tensor::from_op(y, op.name(), [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| Ok([Some(unary_bwd_raw(saved.as_ref(), g, op)?)])
    }))
}

pub fn relu(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Relu)
}
pub fn leaky_relu(x: &Tensor, negative_slope: f32) -> Result<Tensor> {
    unary(x, UnaryOp::LeakyRelu(negative_slope))
}
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Sigmoid)
}
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Tanh)
}
pub fn exp(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Exp)
}
pub fn log(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Log)
}
pub fn square(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Square)
}
pub fn sqrt(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Sqrt)
}
pub fn abs(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Abs)
}
pub fn clamp(x: &Tensor, lo: f32, hi: f32) -> Result<Tensor> {
    unary(x, UnaryOp::Clamp(lo, hi))
}
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Softplus)
}
/// a·x + b
pub fn affine(x: &Tensor, a: f32, b: f32) -> Result<Tensor> {
    unary(x, UnaryOp::Affine(a, b))
}
pub fn mul_scalar(x: &Tensor, a: f32) -> Result<Tensor> {
    unary(x, UnaryOp::Affine(a, 0.0))
}
pub fn add_scalar(x: &Tensor, b: f32) -> Result<Tensor> {
    unary(x, UnaryOp::Affine(1.0, b))
}
pub fn neg(x: &Tensor) -> Result<Tensor> {
    unary(x, UnaryOp::Affine(-1.0, 0.0))
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Gt,
}

impl BinaryOp {
    fn code(self) -> u32 {
        match self {
            BinaryOp::Add => codes::BIN_ADD,
            BinaryOp::Sub => codes::BIN_SUB,
            BinaryOp::Mul => codes::BIN_MUL,
            BinaryOp::Div => codes::BIN_DIV,
            BinaryOp::Max => codes::BIN_MAX,
            BinaryOp::Gt => codes::BIN_GT,
        }
    }
    fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "maximum",
            BinaryOp::Gt => "gt",
        }
    }
}

/// Broadcast shape of `a` and `b` (numpy rules, right-aligned, up to 4 dims).
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(
                op,
                a,
                b,
                format!("dimension {i} differs ({da} vs {db}) and neither is 1"),
            ));
        };
    }
    Ok(out)
}

fn bcast_strides(input: &[usize], out4: [usize; 4]) -> Result<[u32; 4]> {
    let d = dims4("broadcast", input)?;
    let s = strides4(d);
    let mut r = [0u32; 4];
    for k in 0..4 {
        r[k] = if d[k] == out4[k] { s[k] } else { 0 };
    }
    Ok(r)
}

fn binary_raw(a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
    let gpu = a.gpu();
    let shape = broadcast_shape(op.name(), a.shape(), b.shape())?;
    let out = Tensor::empty(gpu, op.name(), &shape, DType::F32)?;
    let d = dims4(op.name(), &shape)?;
    let n = out.numel();
    let (sa, sb) = (bcast_strides(a.shape(), d)?, bcast_strides(b.shape(), d)?);
    // Inputs laid out as the output skip the index arithmetic; with w % 4 == 0 an output vec4
    // needs one offset per input.
    let kind = |s: [u32; 4], t: &Tensor| {
        if t.numel() == n && s == strides4(d) {
            FLAT
        } else if d[3] % 4 != 0 {
            GATHER
        } else if s[3] == 1 {
            ROW
        } else {
            SPLAT
        }
    };
    let big = (n * 4) as u64 > gpu.binding_limit();
    if big && [a, b].iter().all(|t| t.numel() == n || t.numel() == 1) {
        return binary_pieces(a, b, op, out);
    }
    let consts = [("OP", op.code()), ("KA", kind(sa, a)), ("KB", kind(sb, b))];
    let p = Params {
        n: n as u32,
        op: op.code(),
        a: 0.0,
        b: 0.0,
        out_dims: d.map(|v| v as u32),
        sa,
        sb,
        _pad: [0; 4],
    };
    gpu.dispatch(
        SHADER,
        "binary",
        &consts,
        &p,
        &[r(a.buffer()), r(b.buffer()), w(out.buffer())],
        grid(gpu, n),
    )?;
    Ok(out)
}

/// A tensor the backward saved at record time for the gradients it was told to compute; a
/// later pass asks for a subset of those, so a missing one is an engine bug, not user error.
fn kept(t: &Option<Tensor>) -> Result<&Tensor> {
    t.as_ref()
        .ok_or_else(|| Error::Internal("a backward needed an operand it did not save".into()))
}

/// `binary_raw` for an output larger than one storage binding whose inputs are laid out as the
/// output or are scalars: flat pieces, each a 1-d op of its own (other broadcasts are refused
/// by the engine's binding check, naming the kernel).
fn binary_pieces(a: &Tensor, b: &Tensor, op: BinaryOp, out: Tensor) -> Result<Tensor> {
    let gpu = a.gpu();
    let n = out.numel();
    for c in gpu.chunks(n, 4) {
        let len = c.len();
        let ((ba, ka, sa), (bb, kb, sb)) = (piece_of(a, n, &c), piece_of(b, n, &c));
        let p = Params {
            n: len as u32,
            op: op.code(),
            a: 0.0,
            b: 0.0,
            out_dims: [1, 1, 1, len as u32],
            sa,
            sb,
            _pad: [0; 4],
        };
        gpu.dispatch(
            SHADER,
            "binary",
            &[("OP", op.code()), ("KA", ka), ("KB", kb)],
            &p,
            &[ba, bb, w_elems(out.buffer(), &c, 4)],
            grid(gpu, len),
        )?;
    }
    Ok(out)
}

/// The binding, load kind and strides of a `binary_pieces` input for output piece `c`.
fn piece_of<'a>(
    t: &'a Tensor,
    n: usize,
    c: &std::ops::Range<usize>,
) -> (crate::gpu::Bind<'a>, u32, [u32; 4]) {
    if t.numel() == n {
        (r_elems(t.buffer(), c, 4), FLAT, [0, 0, 0, 1])
    } else {
        let k = if c.len().is_multiple_of(4) {
            SPLAT
        } else {
            GATHER
        };
        (r(t.buffer()), k, [0; 4])
    }
}

/// Broadcast binary op with autograd.
pub fn binary(a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
    a.expect_f32(op.name())?;
    b.expect_f32(op.name())?;
    let shape = broadcast_shape(op.name(), a.shape(), b.shape())?;
    let n = shape.iter().product::<usize>();
    let flat = [a, b].iter().all(|t| t.numel() == n || t.numel() == 1);
    if shape.len() == 4 && !flat && super::split_grad::over(a, &shape) {
        return binary_by_batch(a, b, op, &shape);
    }
    let out = binary_raw(a, b, op)?;
    if matches!(op, BinaryOp::Gt) {
        return Ok(out); // a mask: no gradient
    }
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    let od = out.detach();
    Ok(Tensor::from_op(out, op.name(), [a, b], move |rec| {
        // Which operands the recorded gradients read: add/sub none, mul the other one, div
        // b (and a/b for b's gradient), max both.
        let keep_a = match op {
            BinaryOp::Mul => rec[1],
            BinaryOp::Max => true,
            _ => false,
        };
        let keep_b = match op {
            BinaryOp::Mul => rec[0],
            BinaryOp::Div | BinaryOp::Max => true,
            _ => false,
        };
        let keep_out = matches!(op, BinaryOp::Div) && rec[1];
        let ad = keep_a.then(|| a.detach());
        let bd = keep_b.then(|| b.detach());
        let od = keep_out.then_some(od);
        move |g: &Tensor, needs: [bool; 2]| {
            let ga = if needs[0] {
                let full = match op {
                    BinaryOp::Add | BinaryOp::Sub => g.clone(),
                    BinaryOp::Mul => binary_raw(g, kept(&bd)?, BinaryOp::Mul)?,
                    BinaryOp::Div => binary_raw(g, kept(&bd)?, BinaryOp::Div)?,
                    BinaryOp::Max => binary_raw(
                        g,
                        &binary_raw(kept(&ad)?, kept(&bd)?, BinaryOp::Gt)?,
                        BinaryOp::Mul,
                    )?,
                    BinaryOp::Gt => unreachable!(),
                };
                Some(sum_to_shape(&full, &sa)?)
            } else {
                None
            };
            let gb = if needs[1] {
                let full = match op {
                    BinaryOp::Add => g.clone(),
                    BinaryOp::Sub => unary_raw(g, UnaryOp::Affine(-1.0, 0.0))?,
                    BinaryOp::Mul => binary_raw(g, kept(&ad)?, BinaryOp::Mul)?,
                    // d(a/b)/db = -(a/b)/b
                    BinaryOp::Div => unary_raw(
                        &binary_raw(
                            &binary_raw(g, kept(&od)?, BinaryOp::Mul)?,
                            kept(&bd)?,
                            BinaryOp::Div,
                        )?,
                        UnaryOp::Affine(-1.0, 0.0),
                    )?,
                    BinaryOp::Max => {
                        let a_wins = binary_raw(kept(&ad)?, kept(&bd)?, BinaryOp::Gt)?;
                        let b_wins = unary_raw(&a_wins, UnaryOp::Affine(-1.0, 1.0))?;
                        binary_raw(g, &b_wins, BinaryOp::Mul)?
                    }
                    BinaryOp::Gt => unreachable!(),
                };
                Some(sum_to_shape(&full, &sb)?)
            } else {
                None
            };
            Ok([ga, gb])
        }
    }))
}

/// A broadcasting [`binary`] whose NCHW output is over one binding (a mask or a per-channel
/// scale times activations), by batch chunks: operands with the output's batch are cut, the
/// others (broadcast over the batch) passed whole, their gradients summed over chunks.
fn binary_by_batch(a: &Tensor, b: &Tensor, op: BinaryOp, shape: &[usize]) -> Result<Tensor> {
    use super::split_grad::{groups, run, Cut, Join};
    let per = 4 * shape[1..].iter().product::<usize>();
    let chunks = groups(op.name(), a, shape[0], per, || {
        format!("one image of the output {shape:?}")
    })?;
    let cut = |t: &Tensor| match t.ndim() == 4 && t.shape()[0] == shape[0] {
        true => Cut::Along(0),
        false => Cut::Whole,
    };
    let ins = [(a, cut(a)), (b, cut(b))];
    let join = Join::Along(0, shape.to_vec());
    let go = || {
        run(op.name(), &ins, &chunks, join.clone(), |t, _| {
            binary(&t[0], &t[1], op)
        })
    };
    match op {
        // A mask: no gradient, as unsplit.
        BinaryOp::Gt => crate::autograd::no_grad(go),
        _ => go(),
    }
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Add)
}
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Sub)
}
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Mul)
}
pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Div)
}
pub fn maximum(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Max)
}
/// 1.0 where a > b else 0.0 (not differentiable).
pub fn gt(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Gt)
}

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[
    ("relu", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(relu(&c.input("x")?)?.into())
    }),
    ("sigmoid", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(sigmoid(&c.input("x")?)?.into())
    }),
    ("tanh", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(tanh(&c.input("x")?)?.into())
    }),
    ("leaky_relu", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(leaky_relu(&c.input("x")?, c.f32("negative_slope", Some(0.01))?)?.into())
    }),
    ("add", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(add(&c.input("a")?, &c.input("b")?)?.into())
    }),
    ("sub", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(sub(&c.input("a")?, &c.input("b")?)?.into())
    }),
    ("mul", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(mul(&c.input("a")?, &c.input("b")?)?.into())
    }),
    ("div", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(div(&c.input("a")?, &c.input("b")?)?.into())
    }),
];
