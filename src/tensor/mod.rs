//! GPU tensors: a shape, a dtype and a pooled buffer, plus autograd metadata.
//!
//! Shapes follow PyTorch: activations NCHW, conv weights OIHW, linear weights [out, in].

pub mod kernels;
mod shape;

pub use shape::{numel, Shape};

use crate::autograd::{self, BackwardFn, Edge, LeafCell, Node, Typed};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    /// Integer label maps and indices (WGSL has no 64-bit integers).
    I32,
}

impl DType {
    pub fn size(self) -> usize {
        4
    }
}

pub(crate) enum Meta {
    /// Not tracked by autograd (constants, detached tensors, results under `no_grad`).
    None,
    /// A user-created leaf (parameters): owns the accumulated gradient.
    Leaf(Arc<LeafCell>),
    /// The output of a recorded op.
    Op(Arc<Node>),
}

pub(crate) struct Inner {
    pub(crate) shape: Shape,
    pub(crate) dtype: DType,
    pub(crate) buf: Arc<GpuBuffer>,
    pub(crate) meta: Meta,
    pub(crate) id: u64,
}

/// A reference-counted handle; clones share storage and autograd identity.
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor({:?}, {:?}, requires_grad={})",
            self.shape(),
            self.dtype(),
            self.requires_grad()
        )
    }
}

impl Tensor {
    pub(crate) fn from_buffer(buf: GpuBuffer, shape: &[usize], dtype: DType) -> Tensor {
        Self::with_meta(Arc::new(buf), shape, dtype, Meta::None)
    }

    fn with_meta(buf: Arc<GpuBuffer>, shape: &[usize], dtype: DType, meta: Meta) -> Tensor {
        Tensor(Arc::new(Inner {
            shape: Shape::from(shape),
            dtype,
            buf,
            meta,
            id: NEXT_ID.fetch_add(1, Relaxed),
        }))
    }

    /// Uploads f32 data with the given shape.
    pub fn from_f32(gpu: &Arc<Gpu>, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != data.len() {
            return Err(Error::invalid(
                "from_f32",
                format!("{} values do not fill shape {shape:?}", data.len()),
            ));
        }
        let buf = gpu.upload("from_f32", bytemuck::cast_slice(data))?;
        Ok(Self::from_buffer(buf, shape, DType::F32))
    }

    /// Uploads i32 data (label maps, indices) with the given shape.
    pub fn from_i32(gpu: &Arc<Gpu>, data: &[i32], shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != data.len() {
            return Err(Error::invalid(
                "from_i32",
                format!("{} values do not fill shape {shape:?}", data.len()),
            ));
        }
        let buf = gpu.upload("from_i32", bytemuck::cast_slice(data))?;
        Ok(Self::from_buffer(buf, shape, DType::I32))
    }

    /// A zero-filled tensor.
    pub fn zeros(gpu: &Arc<Gpu>, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let buf = gpu.zeros("zeros", (numel(shape) * dtype.size()) as u64)?;
        Ok(Self::from_buffer(buf, shape, dtype))
    }

    /// An uninitialised tensor for a kernel to fill.
    pub(crate) fn empty(
        gpu: &Arc<Gpu>,
        op: &'static str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        let buf = gpu.alloc(op, (numel(shape) * dtype.size()) as u64)?;
        Ok(Self::from_buffer(buf, shape, dtype))
    }

    /// A tensor filled with `v`.
    pub fn full(gpu: &Arc<Gpu>, shape: &[usize], v: f32) -> Result<Tensor> {
        let t = Self::empty(gpu, "full", shape, DType::F32)?;
        kernels::fill(&t, v)?;
        Ok(t)
    }

    /// Makes this tensor a trainable leaf (a parameter): gradients accumulate in [`Tensor::grad`].
    pub fn into_param(self) -> Tensor {
        Self::with_meta(
            self.0.buf.clone(),
            &self.0.shape,
            self.0.dtype,
            Meta::Leaf(Arc::new(LeafCell::new(true))),
        )
    }

    /// Wraps the result of an op with `N` inputs; records a graph node when grad mode is on and
    /// any input needs a gradient. `saving` is called only then, with which inputs need a
    /// gradient, so the op can keep just what those gradients need (a conv through a frozen
    /// layer keeps its input, not its weight); it returns the backward, which gets the output
    /// gradient and returns one gradient per input.
    pub(crate) fn from_op<const N: usize, F>(
        out: Tensor,
        name: &'static str,
        inputs: [&Tensor; N],
        saving: impl FnOnce([bool; N]) -> F,
    ) -> Tensor
    where
        F: Fn(&Tensor, [bool; N]) -> Result<[Option<Tensor>; N]> + Send + 'static,
    {
        Self::from_op_opt(out, name, inputs.map(Some), saving)
    }

    /// [`Tensor::from_op`] for ops with optional inputs (a conv's bias, a loss's weights): an
    /// absent input never needs a gradient, and its slot of the result is ignored.
    pub(crate) fn from_op_opt<const N: usize, F>(
        out: Tensor,
        name: &'static str,
        inputs: [Option<&Tensor>; N],
        saving: impl FnOnce([bool; N]) -> F,
    ) -> Tensor
    where
        F: Fn(&Tensor, [bool; N]) -> Result<[Option<Tensor>; N]> + Send + 'static,
    {
        if !autograd::is_grad_enabled() {
            return out;
        }
        let next: Vec<Option<Edge>> = inputs.iter().map(|t| t.and_then(|t| t.edge())).collect();
        if next.iter().all(Option::is_none) {
            return out;
        }
        let mut needs = [false; N];
        for (n, e) in needs.iter_mut().zip(&next) {
            *n = e.is_some();
        }
        let node = Node::new(name, Box::new(Typed(saving(needs))), next);
        Self::with_meta(out.0.buf.clone(), &out.0.shape, out.0.dtype, Meta::Op(node))
    }

    /// [`Tensor::from_op`] for variadic ops (concat): the arity is the length of `inputs`.
    pub(crate) fn from_op_dyn(
        out: Tensor,
        name: &'static str,
        inputs: &[&Tensor],
        backward: impl FnOnce() -> Box<dyn BackwardFn>,
    ) -> Tensor {
        if !autograd::is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
            return out;
        }
        let next = inputs.iter().map(|t| t.edge()).collect();
        let node = Node::new(name, backward(), next);
        Self::with_meta(out.0.buf.clone(), &out.0.shape, out.0.dtype, Meta::Op(node))
    }

    pub(crate) fn edge(&self) -> Option<Edge> {
        match &self.0.meta {
            Meta::None => None,
            Meta::Leaf(c) => c.requires_grad().then(|| Edge::Leaf(c.clone())),
            Meta::Op(n) => Some(Edge::Op(n.clone())),
        }
    }

    /// The identity of a parameter's gradient cell (`None` for any other tensor).
    pub(crate) fn leaf_key(&self) -> Option<usize> {
        match &self.0.meta {
            Meta::Leaf(c) => Some(Arc::as_ptr(c) as usize),
            _ => None,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }
    pub fn ndim(&self) -> usize {
        self.0.shape.len()
    }
    pub fn gpu(&self) -> &Arc<Gpu> {
        self.0.buf.gpu()
    }
    pub fn buffer(&self) -> &GpuBuffer {
        &self.0.buf
    }
    /// Unique identity of this handle's autograd node (not of the storage).
    pub fn id(&self) -> u64 {
        self.0.id
    }
    /// Whether two tensors share storage.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.buf, &other.0.buf)
    }

    pub fn is_leaf(&self) -> bool {
        !matches!(self.0.meta, Meta::Op(_))
    }

    pub fn requires_grad(&self) -> bool {
        match &self.0.meta {
            Meta::None => false,
            Meta::Leaf(c) => c.requires_grad(),
            Meta::Op(_) => true,
        }
    }

    /// Freezes or unfreezes a parameter. Frozen parameters get no gradient while gradients still
    /// flow through the ops that use them. Errors on non-leaf tensors.
    pub fn set_requires_grad(&self, on: bool) -> Result<()> {
        match &self.0.meta {
            Meta::Leaf(c) => {
                c.set_requires_grad(on);
                Ok(())
            }
            _ => Err(Error::invalid(
                "set_requires_grad",
                "only parameters (tensors made with into_param) can be frozen or unfrozen",
            )),
        }
    }

    /// Accumulated gradient of a parameter, if any.
    pub fn grad(&self) -> Option<Tensor> {
        match &self.0.meta {
            Meta::Leaf(c) => c.grad(),
            _ => None,
        }
    }

    /// Clears the accumulated gradient of a parameter.
    pub fn zero_grad(&self) {
        if let Meta::Leaf(c) = &self.0.meta {
            c.clear();
        }
    }

    /// Replaces a parameter's gradient (used by optimizers' tests and gradient clipping).
    pub fn set_grad(&self, g: Option<Tensor>) {
        if let Meta::Leaf(c) = &self.0.meta {
            c.set(g);
        }
    }

    /// Same storage, cut from the graph.
    pub fn detach(&self) -> Tensor {
        Self::with_meta(self.0.buf.clone(), &self.0.shape, self.0.dtype, Meta::None)
    }

    /// Backpropagates from this scalar, accumulating into parameters' gradients; frees the graph.
    pub fn backward(&self) -> Result<()> {
        autograd::backward(self, None, false)
    }

    /// Like [`Tensor::backward`] but keeps the graph for another backward pass.
    pub fn backward_retain(&self) -> Result<()> {
        autograd::backward(self, None, true)
    }

    /// [`Tensor::backward`] into `params` only (see [`autograd::backward_into`]).
    pub fn backward_into(&self, params: &[Tensor], retain_graph: bool) -> Result<()> {
        autograd::backward_into(self, params, retain_graph)
    }

    /// Downloads f32 data.
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        if self.dtype() != DType::F32 {
            return Err(Error::invalid(
                "to_vec_f32",
                format!("tensor is {:?}", self.dtype()),
            ));
        }
        let bytes = self.gpu().read(&self.0.buf, 0, (self.numel() * 4) as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Downloads i32 data.
    pub fn to_vec_i32(&self) -> Result<Vec<i32>> {
        if self.dtype() != DType::I32 {
            return Err(Error::invalid(
                "to_vec_i32",
                format!("tensor is {:?}", self.dtype()),
            ));
        }
        let bytes = self.gpu().read(&self.0.buf, 0, (self.numel() * 4) as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Downloads a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "item",
                format!("tensor of shape {:?} is not a scalar", self.shape()),
            ));
        }
        Ok(self.to_vec_f32()?[0])
    }

    /// Same storage viewed with another shape of equal element count (differentiable).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                self.shape(),
                shape,
                "element counts differ",
            ));
        }
        let out = Self::with_meta(self.0.buf.clone(), shape, self.0.dtype, Meta::None);
        let old = self.shape().to_vec();
        Ok(Tensor::from_op(out, "reshape", [self], |_| {
            move |g: &Tensor, _: [bool; 1]| Ok([Some(g.reshape(&old)?)])
        }))
    }

    pub(crate) fn expect_f32(&self, op: &'static str) -> Result<()> {
        if self.dtype() != DType::F32 {
            return Err(Error::invalid(
                op,
                format!(
                    "expected an f32 tensor, got {:?} of shape {:?}",
                    self.dtype(),
                    self.shape()
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn expect_ndim(&self, op: &'static str, n: usize) -> Result<()> {
        if self.ndim() != n {
            return Err(Error::invalid(
                op,
                format!("expected a {n}-d tensor, got shape {:?}", self.shape()),
            ));
        }
        Ok(())
    }
}
