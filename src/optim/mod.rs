//! Optimizers updating parameters in place on the GPU (SGD, Adam; torch.optim semantics) and
//! learning-rate schedules, and the weight average evaluation can use ([`ema`]). Shader:
//! `shaders/optim.wgsl`.
//!
//! Per-parameter state lives in GPU buffers created on a parameter's first update (like torch's
//! lazy state). Adam's step counter is mirrored on the host so its bias corrections are computed
//! in f64 exactly as torch computes them in Python floats, without reading anything back.

pub mod ema;
pub mod schedule;

pub use schedule::poly_lr;

use crate::error::{Error, Result};
use crate::gpu::{r_elems as r, w_elems as w};
use crate::tensor::{DType, Tensor};
use std::collections::HashMap;

const SHADER: &str = "optim";

/// Mirrors `Params` in optim.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    nesterov: u32,
    lr: f32,
    momentum: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,
    bc2_sqrt: f32,
    _pad: [u32; 3],
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "optim", Params { n, nesterov, lr, momentum, beta2, eps, weight_decay, step_size, bc2_sqrt, _pad });

/// Parameters sharing a learning-rate multiplier and (optionally) their own weight decay.
#[derive(Clone, Debug)]
pub struct ParamGroup {
    pub params: Vec<Tensor>,
    /// Effective lr = base lr · lr_mult.
    pub lr_mult: f32,
    /// Overrides the optimizer's weight decay for this group.
    pub weight_decay: Option<f32>,
}

impl ParamGroup {
    pub fn new(params: Vec<Tensor>) -> Self {
        ParamGroup {
            params,
            lr_mult: 1.0,
            weight_decay: None,
        }
    }
    pub fn lr_mult(mut self, m: f32) -> Self {
        self.lr_mult = m;
        self
    }
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = Some(wd);
        self
    }
}

/// One named host tensor of optimizer state: (name, data, shape).
pub type StateEntry = (String, Vec<f32>, Vec<usize>);

/// What the training loop needs from an optimizer.
pub trait Optimizer {
    /// Updates every parameter that requires a gradient and has one; others are skipped.
    fn step(&mut self) -> Result<()>;
    fn groups(&self) -> &[ParamGroup];
    fn lr(&self) -> f32;
    /// Sets the base lr (each group uses base · lr_mult).
    fn set_lr(&mut self, base: f32);
    /// State as named host tensors (for checkpoints).
    fn state_dict(&self) -> Result<Vec<StateEntry>>;
    /// Restores state written by [`Optimizer::state_dict`] for the same parameter layout.
    fn load_state_dict(&mut self, state: &[StateEntry]) -> Result<()>;
    /// The GPU tensors of the state, named as in [`Optimizer::state_dict`] (for checks that must
    /// not read the state back).
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for g in self.groups() {
            for p in &g.params {
                p.zero_grad();
            }
        }
    }
}

/// Per-parameter state: GPU buffers plus a step count.
struct Slot {
    bufs: Vec<Tensor>,
    step: u64,
}

/// Parameter groups and their lazily created state, shared by the optimizers.
struct Store {
    groups: Vec<ParamGroup>,
    state: Vec<Vec<Option<Slot>>>,
    names: &'static [&'static str],
}

impl Store {
    fn new(groups: Vec<ParamGroup>, names: &'static [&'static str]) -> Result<Self> {
        for (gi, g) in groups.iter().enumerate() {
            for (pi, p) in g.params.iter().enumerate() {
                if p.dtype() != DType::F32 || !p.is_leaf() {
                    return Err(Error::invalid(
                        "optimizer",
                        format!("group {gi} param {pi} ({p:?}) is not an f32 parameter"),
                    ));
                }
            }
        }
        let state = groups
            .iter()
            .map(|g| g.params.iter().map(|_| None).collect())
            .collect();
        Ok(Store {
            groups,
            state,
            names,
        })
    }

    /// Calls `f(group, param, grad, slot)` for every parameter to update, creating its state
    /// (zeros) on first use.
    fn for_each(
        &mut self,
        mut f: impl FnMut(&ParamGroup, &Tensor, &Tensor, &mut Slot) -> Result<()>,
    ) -> Result<()> {
        let nbuf = self.names.len() - 1;
        for (g, states) in self.groups.iter().zip(&mut self.state) {
            for (p, slot) in g.params.iter().zip(states.iter_mut()) {
                if !p.requires_grad() {
                    continue;
                }
                let Some(grad) = p.grad() else { continue };
                if grad.shape() != p.shape() {
                    return Err(Error::shape(
                        "optimizer",
                        p.shape(),
                        grad.shape(),
                        "gradient does not match its parameter",
                    ));
                }
                // A gradient sharing the parameter's storage cannot be bound read-only next to
                // the parameter's read-write binding.
                let grad = if grad.same_storage(p) {
                    let c = Tensor::empty(p.gpu(), "optimizer", p.shape(), DType::F32)?;
                    p.gpu()
                        .copy(grad.buffer(), 0, c.buffer(), 0, (p.numel() * 4) as u64);
                    c
                } else {
                    grad
                };
                if slot.is_none() {
                    let bufs = (0..nbuf)
                        .map(|_| Tensor::zeros(p.gpu(), p.shape(), DType::F32))
                        .collect::<Result<_>>()?;
                    *slot = Some(Slot { bufs, step: 0 });
                }
                f(g, p, &grad, slot.as_mut().expect("state"))?;
            }
        }
        Ok(())
    }

    fn key(gi: usize, pi: usize, what: &str) -> String {
        format!("groups.{gi}.params.{pi}.{what}")
    }

    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (gi, states) in self.state.iter().enumerate() {
            for (pi, slot) in states.iter().enumerate() {
                let Some(s) = slot else { continue };
                for (b, name) in s.bufs.iter().zip(self.names) {
                    out.push((Self::key(gi, pi, name), b.clone()));
                }
            }
        }
        out
    }

    fn state_dict(&self) -> Result<Vec<StateEntry>> {
        let mut out = Vec::new();
        for (gi, states) in self.state.iter().enumerate() {
            for (pi, slot) in states.iter().enumerate() {
                let Some(s) = slot else { continue };
                for (b, name) in s.bufs.iter().zip(self.names) {
                    out.push((Self::key(gi, pi, name), b.to_vec_f32()?, b.shape().to_vec()));
                }
                out.push((Self::key(gi, pi, "step"), vec![s.step as f32], vec![1]));
            }
        }
        Ok(out)
    }

    fn load_state_dict(&mut self, entries: &[StateEntry]) -> Result<()> {
        let mut map: HashMap<&str, &StateEntry> =
            entries.iter().map(|e| (e.0.as_str(), e)).collect();
        let nbuf = self.names.len() - 1;
        for (gi, g) in self.groups.iter().enumerate() {
            for (pi, p) in g.params.iter().enumerate() {
                let keys: Vec<String> = self.names.iter().map(|n| Self::key(gi, pi, n)).collect();
                let found: Vec<Option<&StateEntry>> =
                    keys.iter().map(|k| map.remove(k.as_str())).collect();
                if found.iter().all(Option::is_none) {
                    self.state[gi][pi] = None;
                    continue;
                }
                let mut bufs = Vec::with_capacity(nbuf);
                for (k, e) in keys.iter().zip(&found).take(nbuf) {
                    let e = e.ok_or_else(|| {
                        Error::invalid("load_state_dict", format!("{k} is missing"))
                    })?;
                    if e.2 != p.shape() || e.1.len() != p.numel() {
                        return Err(Error::shape(
                            "load_state_dict",
                            p.shape(),
                            &e.2,
                            format!("{k} does not match its parameter"),
                        ));
                    }
                    bufs.push(Tensor::from_f32(p.gpu(), &e.1, &e.2)?);
                }
                let k = &keys[nbuf];
                let st = found[nbuf]
                    .ok_or_else(|| Error::invalid("load_state_dict", format!("{k} is missing")))?;
                let step = match st.1.as_slice() {
                    [v] if *v >= 0.0 && v.fract() == 0.0 => *v as u64,
                    v => {
                        return Err(Error::invalid(
                            "load_state_dict",
                            format!("{k} should be one non-negative integer, got {v:?}"),
                        ))
                    }
                };
                self.state[gi][pi] = Some(Slot { bufs, step });
            }
        }
        if !map.is_empty() {
            let mut names: Vec<&str> = map.keys().copied().collect();
            names.sort();
            return Err(Error::invalid(
                "load_state_dict",
                format!("unknown state entries {names:?}"),
            ));
        }
        Ok(())
    }
}

/// SGD settings (torch.optim.SGD with dampening 0).
#[derive(Clone, Copy, Debug)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// Stochastic gradient descent with momentum and L2 weight decay.
pub struct Sgd {
    pub cfg: SgdConfig,
    store: Store,
}

impl Sgd {
    pub fn new(groups: Vec<ParamGroup>, cfg: SgdConfig) -> Result<Self> {
        if cfg.nesterov && cfg.momentum <= 0.0 {
            return Err(Error::invalid(
                "sgd",
                "nesterov momentum requires a momentum > 0",
            ));
        }
        Ok(Sgd {
            cfg,
            // Like torch, plain SGD keeps no momentum buffer.
            store: Store::new(
                groups,
                if cfg.momentum == 0.0 {
                    &["step"]
                } else {
                    &["momentum_buffer", "step"]
                },
            )?,
        })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) -> Result<()> {
        let cfg = self.cfg;
        self.store.for_each(|g, p, grad, slot| {
            let gpu = p.gpu();
            let params = Params {
                n: p.numel() as u32,
                nesterov: cfg.nesterov as u32,
                lr: cfg.lr * g.lr_mult,
                momentum: cfg.momentum,
                weight_decay: g.weight_decay.unwrap_or(cfg.weight_decay),
                ..Default::default()
            };
            slot.step += 1;
            // A parameter larger than one storage binding is updated piece by piece.
            for c in gpu.chunks(p.numel(), 4) {
                let params = Params {
                    n: c.len() as u32,
                    ..params
                };
                let grid = gpu.grid_1d(c.len() as u64, 256);
                if cfg.momentum == 0.0 {
                    gpu.dispatch(
                        SHADER,
                        "sgd_plain",
                        &[],
                        &params,
                        &[w(p.buffer(), &c, 4), r(grad.buffer(), &c, 4)],
                        grid,
                    )?;
                } else {
                    let buf = slot.bufs[0].buffer();
                    gpu.dispatch(
                        SHADER,
                        "sgd_momentum",
                        &[],
                        &params,
                        &[w(p.buffer(), &c, 4), r(grad.buffer(), &c, 4), w(buf, &c, 4)],
                        grid,
                    )?;
                }
            }
            Ok(())
        })
    }
    fn groups(&self) -> &[ParamGroup] {
        &self.store.groups
    }
    fn lr(&self) -> f32 {
        self.cfg.lr
    }
    fn set_lr(&mut self, base: f32) {
        self.cfg.lr = base;
    }
    fn state_dict(&self) -> Result<Vec<StateEntry>> {
        self.store.state_dict()
    }
    fn load_state_dict(&mut self, state: &[StateEntry]) -> Result<()> {
        self.store.load_state_dict(state)
    }
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.store.state_tensors()
    }
}

/// Adam settings (torch.optim.Adam, amsgrad off; weight decay is L2 added to the gradient).
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adam with torch's bias correction.
pub struct Adam {
    pub cfg: AdamConfig,
    store: Store,
}

impl Adam {
    pub fn new(groups: Vec<ParamGroup>, cfg: AdamConfig) -> Result<Self> {
        Ok(Adam {
            cfg,
            store: Store::new(groups, &["exp_avg", "exp_avg_sq", "step"])?,
        })
    }
}

impl Optimizer for Adam {
    fn step(&mut self) -> Result<()> {
        let cfg = self.cfg;
        self.store.for_each(|g, p, grad, slot| {
            let gpu = p.gpu();
            slot.step += 1;
            let lr = (cfg.lr * g.lr_mult) as f64;
            let t = slot.step as i32;
            // As torch: Python-float bias corrections, step_size = lr / bc1.
            let bc1 = 1.0 - (cfg.beta1 as f64).powi(t);
            let bc2 = 1.0 - (cfg.beta2 as f64).powi(t);
            let params = Params {
                n: p.numel() as u32,
                lr: lr as f32,
                momentum: cfg.beta1,
                beta2: cfg.beta2,
                eps: cfg.eps,
                weight_decay: g.weight_decay.unwrap_or(cfg.weight_decay),
                step_size: (lr / bc1) as f32,
                bc2_sqrt: bc2.sqrt() as f32,
                ..Default::default()
            };
            let (m, v) = (slot.bufs[0].buffer(), slot.bufs[1].buffer());
            for c in gpu.chunks(p.numel(), 4) {
                let params = Params {
                    n: c.len() as u32,
                    ..params
                };
                gpu.dispatch(
                    SHADER,
                    "adam",
                    &[],
                    &params,
                    &[
                        w(p.buffer(), &c, 4),
                        r(grad.buffer(), &c, 4),
                        w(m, &c, 4),
                        w(v, &c, 4),
                    ],
                    gpu.grid_1d(c.len() as u64, 256),
                )?;
            }
            Ok(())
        })
    }
    fn groups(&self) -> &[ParamGroup] {
        &self.store.groups
    }
    fn lr(&self) -> f32 {
        self.cfg.lr
    }
    fn set_lr(&mut self, base: f32) {
        self.cfg.lr = base;
    }
    fn state_dict(&self) -> Result<Vec<StateEntry>> {
        self.store.state_dict()
    }
    fn load_state_dict(&mut self, state: &[StateEntry]) -> Result<()> {
        self.store.load_state_dict(state)
    }
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.store.state_tensors()
    }
}
