//! Training checkpoints: one safetensors file holding every network (`<model>.<param>`, e.g.
//! `G.layer5.conv2d_list.0.weight`), every optimiser state (`optim.<name>.<entry>`) and, in
//! its metadata, the step, stream positions, best score and the resolved config. A run with
//! `ema_decay` adds the weight average of `G` as `ema.G.<param>`, which inference loads in
//! place of `G`. Written atomically (temp file + rename), so a crash never leaves a
//! half-written `last`.

use super::error::TrainError;
use super::method::Method;
use crate::gpu::Gpu;
use crate::nn::checkpoint::{
    parse_safetensors, read_safetensors_bytes, refuse_non_finite, to_safetensors, write_atomic,
    HostTensors,
};
use crate::train::error::Result;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

pub const FORMAT: &str = "advseg-train-v1";

/// Prefix of a model's weight average in a checkpoint (`ema.G.<param>`).
pub const EMA_PREFIX: &str = "ema.";

/// What a checkpoint says about its run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CkptMeta {
    pub method: String,
    pub arch: String,
    pub classes: usize,
    /// Completed iterations.
    pub step: usize,
    pub positions: BTreeMap<String, u64>,
    /// (metric, value, step) of the best evaluation so far.
    pub best: Option<(String, f64, usize)>,
    pub config_toml: String,
}

impl CkptMeta {
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("method".to_string(), self.method.clone()),
            ("arch".to_string(), self.arch.clone()),
            ("classes".to_string(), self.classes.to_string()),
            ("step".to_string(), self.step.to_string()),
            (
                "positions".to_string(),
                serde_json::to_string(&self.positions).expect("serialisable"),
            ),
            ("config".to_string(), self.config_toml.clone()),
        ]);
        if let Some((k, v, s)) = &self.best {
            m.insert(
                "best".into(),
                serde_json::json!({"metric": k, "value": v, "step": s}).to_string(),
            );
        }
        m
    }

    fn from_map(m: &HashMap<String, String>, path: &Path) -> std::result::Result<Self, TrainError> {
        let bad = |why: String| TrainError::checkpoint(path, why);
        if m.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(format!(
                "not an advseg training checkpoint (format {:?}, expected {FORMAT:?}); \
                 plain model weights load with --load-from",
                m.get("format")
            )));
        }
        let get = |k: &str| m.get(k).ok_or_else(|| bad(format!("metadata lacks {k:?}")));
        let num = |k: &str| -> std::result::Result<usize, TrainError> {
            get(k)?
                .parse()
                .map_err(|_| bad(format!("metadata {k:?} is not a number")))
        };
        let best = match m.get("best") {
            None => None,
            Some(s) => {
                let v: serde_json::Value =
                    serde_json::from_str(s).map_err(|e| bad(format!("best: {e}")))?;
                Some((
                    v["metric"].as_str().unwrap_or("miou").to_string(),
                    v["value"].as_f64().unwrap_or(f64::NAN),
                    v["step"].as_u64().unwrap_or(0) as usize,
                ))
            }
        };
        Ok(CkptMeta {
            method: get("method")?.clone(),
            arch: get("arch")?.clone(),
            classes: num("classes")?,
            step: num("step")?,
            positions: serde_json::from_str(get("positions")?)
                .map_err(|e| bad(format!("positions: {e}")))?,
            best,
            config_toml: get("config")?.clone(),
        })
    }
}

/// A checkpoint read into host memory.
pub struct Checkpoint {
    pub meta: CkptMeta,
    pub tensors: HostTensors,
}

impl Checkpoint {
    /// Reads a checkpoint; one holding NaN/inf anywhere is refused with the tensors named.
    pub fn read(path: &Path) -> Result<Checkpoint> {
        Self::from_bytes(&read_safetensors_bytes(path)?, path)
    }

    /// [`Checkpoint::read`] on bytes in memory; `path` names them in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        let (tensors, meta) = parse_safetensors(bytes, path)?;
        let meta = CkptMeta::from_map(&meta, path)?;
        refuse_non_finite(&tensors, path)?;
        Ok(Checkpoint { meta, tensors })
    }

    /// Tensors of one model, prefix stripped.
    pub fn model(&self, name: &str) -> HostTensors {
        let p = format!("{name}.");
        self.tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&p).map(|s| (s.to_string(), v.clone())))
            .collect()
    }

    /// The weight average of a model (`ema.<name>.*`, prefix stripped); empty when the run
    /// kept none.
    pub fn averaged(&self, name: &str) -> HostTensors {
        self.model(&format!("{EMA_PREFIX}{name}"))
    }

    /// The tensors inference should load for a model: its weight average when the run kept
    /// one (that is what the run evaluated), else its live weights; `raw` forces the latter.
    pub fn eval_model(&self, name: &str, raw: bool) -> HostTensors {
        let avg = self.averaged(name);
        if raw || avg.is_empty() {
            self.model(name)
        } else {
            avg
        }
    }

    /// Loads the optimisers' states (after the method was built on the loaded weights).
    pub fn load_optimizers(&self, method: &mut dyn Method, path: &Path) -> Result<()> {
        for slot in method.optimizers() {
            let p = format!("optim.{}.", slot.name);
            let entries: Vec<_> = self
                .tensors
                .iter()
                .filter_map(|(k, (shape, data))| {
                    k.strip_prefix(&p)
                        .map(|s| (s.to_string(), data.clone(), shape.clone()))
                })
                .collect();
            slot.opt.load_state_dict(&entries).map_err(|e| {
                TrainError::checkpoint(path, format!("optimiser {}: {e}", slot.name))
            })?;
        }
        Ok(())
    }
}

/// Counts NaN/inf values in every network tensor and optimiser state buffer on the GPU (one
/// read-back of per-tensor counts); returns the tensors that hold any as (name, NaN/inf
/// count, element count), as [`crate::nn::checkpoint::non_finite`] does for host tensors.
pub fn non_finite_state(
    gpu: &Arc<Gpu>,
    method: &mut dyn Method,
) -> Result<Vec<(String, usize, usize)>> {
    let mut named: Vec<(String, crate::tensor::Tensor)> = Vec::new();
    for (name, m) in method.models() {
        for s in m.store.slots() {
            named.push((format!("{name}.{}", s.name), s.get()?));
        }
    }
    for slot in method.optimizers() {
        for (k, t) in slot.opt.state_tensors() {
            named.push((format!("optim.{}.{k}", slot.name), t));
        }
    }
    let refs: Vec<&crate::tensor::Tensor> = named.iter().map(|(_, t)| t).collect();
    let counts = crate::ops::count_non_finite(gpu, &refs)?;
    Ok(named
        .into_iter()
        .zip(counts)
        .filter(|(_, c)| *c > 0)
        .map(|((k, t), c)| (k, c as usize, t.numel()))
        .collect())
}

/// Writes networks + optimiser states + `extra` (named host tensors, e.g. the weight
/// average) + `meta` to `path` atomically.
pub fn save(
    path: &Path,
    method: &mut dyn Method,
    meta: &CkptMeta,
    extra: HostTensors,
) -> Result<()> {
    let mut all: HostTensors = extra;
    for (name, m) in method.models() {
        for (k, v) in m.store.to_host()? {
            all.insert(format!("{name}.{k}"), v);
        }
    }
    for slot in method.optimizers() {
        for (k, data, shape) in slot.opt.state_dict()? {
            all.insert(format!("optim.{}.{k}", slot.name), (shape, data));
        }
    }
    Ok(write_atomic(path, &to_safetensors(&all, &meta.to_map())?)?)
}

/// Loads a model's tensors strictly (a checkpoint of another arch is refused by name).
pub fn load_model(
    gpu: &Arc<Gpu>,
    model: &crate::nn::arch::Model,
    tensors: &HostTensors,
    path: &Path,
) -> Result<()> {
    model.store.load_host(gpu, tensors, true, path)?;
    Ok(())
}

/// A method rebuilt from a training checkpoint for inference (eval, predict): every network
/// loaded strictly, `G` from its weight average when the run kept one, optimiser state
/// ignored.
pub fn load_method(
    gpu: &Arc<Gpu>,
    path: &Path,
) -> Result<(Box<dyn Method>, super::config::RunConfig, CkptMeta)> {
    load_method_with(gpu, path, &[], false)
}

/// [`load_method`] with some of the method's own settings changed first (`advseg eval --set`:
/// e.g. eader's `seed_threshold`, chosen on val after training). Shared settings other than
/// `eval_batch` are refused: the networks and data come from the checkpoint. `raw` loads the
/// live weights even where the run kept a weight average.
pub fn load_method_with(
    gpu: &Arc<Gpu>,
    path: &Path,
    overrides: &[(String, toml::Value)],
    raw: bool,
) -> Result<(Box<dyn Method>, super::config::RunConfig, CkptMeta)> {
    let ck = Checkpoint::read(path)?;
    let mut cfg = super::config::RunConfig::from_toml(&ck.meta.config_toml, path)?;
    for (k, v) in overrides {
        let name = k.split_once('.').map_or(k.as_str(), |(_, n)| n);
        if k != "eval_batch" && !cfg.method.contains_key(name) {
            return Err(TrainError::bad_value(
                k.clone(),
                format!(
                    "not a setting of method {} that evaluation can change; the checkpoint \
                     fixes the networks and data (its method's settings: {})",
                    cfg.method_name(),
                    cfg.method.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        cfg.set(k, v.clone())?;
    }
    let init = |name: &str, m: &crate::nn::arch::Model| {
        load_model(gpu, m, &ck.eval_model(name, raw), path)
    };
    let method = (super::methods::find(&ck.meta.method)?.build)(&super::methods::BuildEnv {
        gpu,
        cfg: &cfg,
        classes: ck.meta.classes,
        ignore: 255,
        init: &init,
    })?;
    Ok((method, cfg, ck.meta))
}
