//! Named parameters and buffers with PyTorch `state_dict` names, materialised on the GPU lazily
//! so architectures can be inspected (layer table, parameter count) without allocating.

use super::error::{NnError, Result};
use crate::gpu::Gpu;
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::sync::{Arc, Mutex};

/// How a tensor is initialised (matching the PyTorch originals).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    Const(f32),
    /// N(0, std²)
    Normal(f32),
    /// Kaiming normal, fan_out, gain √2 (torchvision ResNet convs).
    KaimingNormalFanOut,
    /// Kaiming normal, fan_in, gain √2.
    KaimingNormalFanIn,
    /// Xavier/Glorot uniform, gain 1: U(−b, b), b = √(6 / (fan_in + fan_out)).
    XavierUniform,
    /// PyTorch's default for Conv/Linear weights: U(−b, b), b = 1/√fan_in (kaiming_uniform a=√5).
    TorchDefaultWeight,
    /// PyTorch's default for Conv/Linear biases: U(−b, b), b = 1/√fan_in of the layer's weight.
    TorchDefaultBias {
        fan_in: usize,
    },
}

/// A trainable parameter or a non-trainable buffer (running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Param,
    Buffer,
}

/// One named tensor of a model.
pub struct Slot {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    pub kind: Kind,
    tensor: Mutex<Option<Tensor>>,
    trainable: std::sync::atomic::AtomicBool,
}

/// Shared handle to a [`Slot`].
pub type Param = Arc<Slot>;

impl Slot {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The GPU tensor; errors if the model was never materialised.
    pub fn get(&self) -> Result<Tensor> {
        self.tensor
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| NnError::NotMaterialized {
                name: self.name.clone(),
            })
    }

    /// Replaces the tensor (shape-checked). Parameters become autograd leaves.
    pub fn set(&self, t: Tensor) -> Result<()> {
        if t.shape() != self.shape.as_slice() {
            return Err(NnError::ParamShape {
                name: self.name.clone(),
                want: self.shape.clone(),
                got: t.shape().to_vec(),
            });
        }
        let t = match self.kind {
            Kind::Param => {
                let p = t.detach().into_param();
                p.set_requires_grad(self.trainable())?;
                p
            }
            Kind::Buffer => t.detach(),
        };
        *self.tensor.lock().unwrap() = Some(t);
        Ok(())
    }

    pub fn is_materialized(&self) -> bool {
        self.tensor.lock().unwrap().is_some()
    }

    pub fn trainable(&self) -> bool {
        self.kind == Kind::Param && self.trainable.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Freezes/unfreezes a parameter; gradients still flow through it.
    pub fn set_trainable(&self, on: bool) -> Result<()> {
        self.trainable
            .store(on, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.tensor.lock().unwrap().as_ref() {
            if self.kind == Kind::Param {
                t.set_requires_grad(on)?;
            }
        }
        Ok(())
    }

    /// Host values per `init`, deterministic in (seed, name).
    pub fn init_values(&self, seed: u64) -> Vec<f32> {
        let n = self.numel();
        let mut rng = Rng::derive_named(seed, &self.name);
        let fan_in: usize = self.shape.iter().skip(1).product::<usize>().max(1);
        let fan_out: usize = (self.shape.first().copied().unwrap_or(1)
            * self.shape.iter().skip(2).product::<usize>())
        .max(1);
        match self.init {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Const(v) => vec![v; n],
            Init::Normal(std) => (0..n).map(|_| rng.normal() * std).collect(),
            Init::KaimingNormalFanOut => {
                let std = (2.0 / fan_out as f64).sqrt();
                (0..n).map(|_| rng.normal() * std as f32).collect()
            }
            Init::KaimingNormalFanIn => {
                let std = (2.0 / fan_in as f64).sqrt();
                (0..n).map(|_| rng.normal() * std as f32).collect()
            }
            Init::XavierUniform => {
                let b = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
                (0..n).map(|_| rng.range(-b, b)).collect()
            }
            Init::TorchDefaultWeight => {
                let b = 1.0 / (fan_in as f64).sqrt();
                (0..n).map(|_| rng.range(-b as f32, b as f32)).collect()
            }
            Init::TorchDefaultBias { fan_in } => {
                let b = 1.0 / (fan_in.max(1) as f64).sqrt();
                (0..n).map(|_| rng.range(-b as f32, b as f32)).collect()
            }
        }
    }
}

/// All named tensors of a model, in registration (= PyTorch `state_dict`) order.
#[derive(Default, Clone)]
pub struct ParamStore {
    slots: Vec<Param>,
}

impl ParamStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a tensor; names must be unique.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        init: Init,
        kind: Kind,
    ) -> Param {
        let name = name.into();
        debug_assert!(
            self.slots.iter().all(|s| s.name != name),
            "duplicate parameter {name}"
        );
        let s = Arc::new(Slot {
            name,
            shape: shape.to_vec(),
            init,
            kind,
            tensor: Mutex::new(None),
            trainable: std::sync::atomic::AtomicBool::new(true),
        });
        self.slots.push(s.clone());
        s
    }

    pub fn slots(&self) -> &[Param] {
        &self.slots
    }

    pub fn find(&self, name: &str) -> Option<&Param> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// Number of trainable-kind parameters' elements (what PyTorch's `sum(p.numel())` counts).
    pub fn num_params(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.kind == Kind::Param)
            .map(|s| s.numel())
            .sum()
    }

    /// Allocates every tensor on the GPU with its initialiser.
    pub fn materialize(&self, gpu: &Arc<Gpu>, seed: u64) -> Result<()> {
        for s in &self.slots {
            let v = s.init_values(seed);
            s.set(Tensor::from_f32(gpu, &v, &s.shape)?)?;
        }
        Ok(())
    }

    /// Trainable parameter tensors (materialised), for optimizers.
    pub fn trainable(&self) -> Result<Vec<Tensor>> {
        self.slots
            .iter()
            .filter(|s| s.trainable())
            .map(|s| s.get())
            .collect()
    }

    /// Parameters whose names start with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<Param> {
        self.slots
            .iter()
            .filter(|s| s.name.starts_with(prefix))
            .cloned()
            .collect()
    }
}
