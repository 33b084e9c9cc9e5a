//! PyTorch parity cases: safetensors files holding an op name, its params, inputs, expected
//! outputs and expected input gradients (format in README "PyTorch parity suite").

use crate::autograd;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
pub use crate::ops::cases::{CaseArgs, OpFn, Outputs};
use crate::tensor::Tensor;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A host-side tensor from a case file.
#[derive(Clone, Debug)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: HostData,
}

#[derive(Clone, Debug)]
pub enum HostData {
    F32(Vec<f32>),
    /// I64 in the file, narrowed to i32 (labels and indices).
    I32(Vec<i32>),
}

impl HostTensor {
    pub fn f32(&self) -> Option<&[f32]> {
        match &self.data {
            HostData::F32(v) => Some(v),
            _ => None,
        }
    }
}

/// One parity case.
#[derive(Debug)]
pub struct Case {
    pub path: PathBuf,
    pub op: String,
    pub params: serde_json::Map<String, Value>,
    pub atol: f32,
    pub rtol: f32,
    pub inputs: BTreeMap<String, HostTensor>,
    pub out: HostTensor,
    pub extra_out: BTreeMap<String, HostTensor>,
    pub upstream: Option<HostTensor>,
    pub grads: BTreeMap<String, HostTensor>,
}

fn ferr(path: &Path, why: impl Into<String>) -> Error {
    Error::File {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Reads a case file.
pub fn load_case(path: &Path) -> Result<Case> {
    use crate::nn::NnError;
    // testing reports in the core's terms; a reader's failure keeps its path and reason.
    let bytes = crate::nn::checkpoint::read_safetensors_bytes(path).map_err(|e| match e {
        NnError::Op(e) => e,
        NnError::Io { path, source } => Error::Io { path, source },
        NnError::File { path, why } => Error::File { path, why },
        e => ferr(path, e.to_string()),
    })?;
    parse_case(&bytes, path)
}

/// [`load_case`] on bytes in memory; `path` names them in errors.
pub fn parse_case(bytes: &[u8], path: &Path) -> Result<Case> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| ferr(path, format!("not a safetensors file: {e}")))?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| ferr(path, format!("not a safetensors file: {e}")))?;
    let md = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        md.get(k)
            .cloned()
            .ok_or_else(|| ferr(path, format!("metadata field {k:?} is missing")))
    };
    let op = get("op")?;
    let params: Value = serde_json::from_str(&get("params")?)
        .map_err(|e| ferr(path, format!("metadata field \"params\" is not JSON: {e}")))?;
    let params = params
        .as_object()
        .cloned()
        .ok_or_else(|| ferr(path, "metadata field \"params\" is not a JSON object"))?;
    let num = |k: &str| -> Result<f32> {
        get(k)?
            .trim()
            .parse::<f32>()
            .map_err(|e| ferr(path, format!("metadata field {k:?} is not a number: {e}")))
    };
    let (atol, rtol) = (num("atol")?, num("rtol")?);
    let mut inputs = BTreeMap::new();
    let mut extra_out = BTreeMap::new();
    let mut grads = BTreeMap::new();
    let mut out = None;
    let mut upstream = None;
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = match view.dtype() {
            Dtype::F32 => HostData::F32(bytemuck::pod_collect_to_vec(view.data())),
            Dtype::I64 => {
                let v: Vec<i64> = bytemuck::pod_collect_to_vec(view.data());
                HostData::I32(v.into_iter().map(|x| x as i32).collect())
            }
            Dtype::I32 => HostData::I32(bytemuck::pod_collect_to_vec(view.data())),
            d => {
                return Err(ferr(
                    path,
                    format!("tensor {name:?} has unsupported dtype {d:?} (F32, I64, I32 are)"),
                ))
            }
        };
        let t = HostTensor { shape, data };
        if name == "out" {
            out = Some(t);
        } else if name == "upstream" {
            upstream = Some(t);
        } else if let Some(n) = name.strip_prefix("in.") {
            inputs.insert(n.to_string(), t);
        } else if let Some(n) = name.strip_prefix("out.") {
            extra_out.insert(n.to_string(), t);
        } else if let Some(n) = name.strip_prefix("grad.") {
            grads.insert(n.to_string(), t);
        } else {
            return Err(ferr(
                path,
                format!("tensor {name:?} is none of in.*, out, out.*, upstream, grad.*"),
            ));
        }
    }
    let out = out.ok_or_else(|| ferr(path, "tensor \"out\" is missing"))?;
    for g in grads.keys() {
        if !inputs.contains_key(g) {
            return Err(ferr(path, format!("grad.{g} has no matching in.{g}")));
        }
    }
    if !grads.is_empty() && upstream.is_none() {
        return Err(ferr(path, "grad.* tensors need an \"upstream\" tensor"));
    }
    Ok(Case {
        path: path.to_path_buf(),
        op,
        params,
        atol,
        rtol,
        inputs,
        out,
        extra_out,
        upstream,
        grads,
    })
}

/// Inputs and params of a case as an op implementation sees them. Params that are never read
/// make the case fail, so a typo or an unsupported option is never silently ignored.
pub struct CaseCtx<'a> {
    pub gpu: Arc<Gpu>,
    case: &'a Case,
    tensors: BTreeMap<String, Tensor>,
    read: RefCell<BTreeSet<String>>,
    used_inputs: RefCell<BTreeSet<String>>,
}

impl CaseCtx<'_> {
    fn param(&self, k: &str) -> Option<&Value> {
        self.read.borrow_mut().insert(k.to_string());
        self.case.params.get(k)
    }
    fn bad(&self, why: String) -> Error {
        Error::invalid(
            "parity",
            format!("{}: op {}: {why}", self.case.path.display(), self.case.op),
        )
    }
}

impl CaseArgs for CaseCtx<'_> {
    /// A required input.
    fn input(&self, name: &str) -> Result<Tensor> {
        self.opt_input(name)?
            .ok_or_else(|| self.bad(format!("input in.{name} is missing")))
    }
    /// An optional input.
    fn opt_input(&self, name: &str) -> Result<Option<Tensor>> {
        self.used_inputs.borrow_mut().insert(name.to_string());
        Ok(self.tensors.get(name).cloned())
    }
    fn has(&self, k: &str) -> bool {
        self.param(k).is_some_and(|v| !v.is_null())
    }
    fn f32(&self, k: &str, default: Option<f32>) -> Result<f32> {
        match self.param(k) {
            Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(0.0) as f32),
            None | Some(Value::Null) => {
                default.ok_or_else(|| self.bad(format!("param {k:?} is required")))
            }
            Some(v) => Err(self.bad(format!("param {k:?} should be a number, got {v}"))),
        }
    }
    fn i64(&self, k: &str, default: Option<i64>) -> Result<i64> {
        match self.param(k) {
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.bad(format!("param {k:?} should be an integer, got {n}"))),
            None | Some(Value::Null) => {
                default.ok_or_else(|| self.bad(format!("param {k:?} is required")))
            }
            Some(v) => Err(self.bad(format!("param {k:?} should be an integer, got {v}"))),
        }
    }
    fn bool(&self, k: &str, default: Option<bool>) -> Result<bool> {
        match self.param(k) {
            Some(Value::Bool(b)) => Ok(*b),
            None | Some(Value::Null) => {
                default.ok_or_else(|| self.bad(format!("param {k:?} is required")))
            }
            Some(v) => Err(self.bad(format!("param {k:?} should be a boolean, got {v}"))),
        }
    }
    fn str(&self, k: &str, default: Option<&str>) -> Result<String> {
        match self.param(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            None | Some(Value::Null) => default
                .map(str::to_string)
                .ok_or_else(|| self.bad(format!("param {k:?} is required"))),
            Some(v) => Err(self.bad(format!("param {k:?} should be a string, got {v}"))),
        }
    }
    /// A list of non-negative integers.
    fn usize_list(&self, k: &str) -> Result<Option<Vec<usize>>> {
        match self.param(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(Some(vec![n
                .as_u64()
                .ok_or_else(|| self.bad(format!("param {k:?} should be a non-negative integer")))?
                as usize])),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_u64().map(|v| v as usize).ok_or_else(|| {
                        self.bad(format!(
                            "param {k:?} should hold non-negative integers, got {x}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(self.bad(format!("param {k:?} should be a list of integers, got {v}"))),
        }
    }
    /// A pair `[h, w]`; a single integer `k` means `[k, k]` (PyTorch's convention).
    fn pair(&self, k: &str, default: Option<[usize; 2]>) -> Result<[usize; 2]> {
        match self.param(k) {
            Some(Value::Number(n)) => {
                let v = n.as_u64().ok_or_else(|| {
                    self.bad(format!("param {k:?} should be a non-negative integer"))
                })? as usize;
                Ok([v, v])
            }
            Some(Value::Array(a)) if a.len() == 2 => {
                let mut r = [0usize; 2];
                for (i, x) in a.iter().enumerate() {
                    r[i] = x.as_u64().ok_or_else(|| {
                        self.bad(format!(
                            "param {k:?} should hold non-negative integers, got {x}"
                        ))
                    })? as usize;
                }
                Ok(r)
            }
            None | Some(Value::Null) => {
                default.ok_or_else(|| self.bad(format!("param {k:?} is required")))
            }
            Some(v) => Err(self.bad(format!("param {k:?} should be [h, w], got {v}"))),
        }
    }
}

/// Result of one case.
#[derive(Debug)]
pub struct CaseReport {
    pub path: PathBuf,
    pub op: String,
    /// Worst `|got − want| / (atol + rtol·|want|)` over all compared tensors (≤ 1 passes).
    pub worst: f32,
    /// Which tensor was worst.
    pub worst_at: String,
    pub compared: usize,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.worst <= 1.0
    }
}

fn compare(
    name: &str,
    got: &[f32],
    got_shape: &[usize],
    want: &HostTensor,
    atol: f32,
    rtol: f32,
) -> Result<f32> {
    if got_shape != want.shape.as_slice() {
        return Err(Error::shape(
            "parity",
            got_shape,
            &want.shape,
            format!("{name}: got vs expected shape"),
        ));
    }
    let w: Vec<f32> = match &want.data {
        HostData::F32(v) => v.clone(),
        HostData::I32(v) => v.iter().map(|&x| x as f32).collect(),
    };
    let mut worst = 0.0f32;
    for (g, w) in got.iter().zip(&w) {
        let tol = atol + rtol * w.abs();
        let r = if g.is_nan() != w.is_nan() {
            f32::INFINITY
        } else if g.is_nan() {
            0.0
        } else {
            (g - w).abs() / tol.max(f32::MIN_POSITIVE)
        };
        worst = worst.max(r);
    }
    Ok(worst)
}

fn to_host(t: &Tensor) -> Result<Vec<f32>> {
    match t.dtype() {
        crate::DType::F32 => t.to_vec_f32(),
        crate::DType::I32 => Ok(t.to_vec_i32()?.into_iter().map(|x| x as f32).collect()),
    }
}

/// Runs one case: forward, compare outputs, backward with `upstream`, compare gradients.
pub fn run_case(gpu: &Arc<Gpu>, case: &Case) -> Result<CaseReport> {
    let f = crate::ops::cases::find(&case.op).ok_or_else(|| {
        Error::invalid(
            "parity",
            format!("{}: unknown op {:?}", case.path.display(), case.op),
        )
    })?;
    let mut tensors = BTreeMap::new();
    for (name, h) in &case.inputs {
        let t = match &h.data {
            HostData::F32(v) => Tensor::from_f32(gpu, v, &h.shape)?,
            HostData::I32(v) => Tensor::from_i32(gpu, v, &h.shape)?,
        };
        let t = if case.grads.contains_key(name) {
            t.into_param()
        } else {
            t
        };
        tensors.insert(name.clone(), t);
    }
    let ctx = CaseCtx {
        gpu: gpu.clone(),
        case,
        tensors,
        read: RefCell::new(BTreeSet::new()),
        used_inputs: RefCell::new(BTreeSet::new()),
    };
    let outs = f(&ctx)?;
    let unknown: Vec<&String> = case
        .params
        .keys()
        .filter(|k| !ctx.read.borrow().contains(*k))
        .collect();
    if !unknown.is_empty() {
        return Err(ctx.bad(format!("unknown parameter(s) {unknown:?}")));
    }
    let unused: Vec<&String> = case
        .inputs
        .keys()
        .filter(|k| !ctx.used_inputs.borrow().contains(*k))
        .collect();
    if !unused.is_empty() {
        return Err(ctx.bad(format!("unknown input(s) {unused:?}")));
    }
    let mut worst = 0.0f32;
    let mut worst_at = String::from("out");
    let mut compared = 0;
    let mut check = |name: &str, got: &Tensor, want: &HostTensor| -> Result<()> {
        let r = compare(
            name,
            &to_host(got)?,
            got.shape(),
            want,
            case.atol,
            case.rtol,
        )?;
        compared += 1;
        if r > worst || compared == 1 {
            worst = worst.max(r);
            worst_at = name.to_string();
        }
        Ok(())
    };
    check("out", &outs.out, &case.out)?;
    for (name, want) in &case.extra_out {
        let got = outs
            .extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| ctx.bad(format!("op produced no extra output {name:?}")))?;
        check(&format!("out.{name}"), got, want)?;
    }
    if let Some(up) = &case.upstream {
        if !case.grads.is_empty() {
            let upstream = Tensor::from_f32(
                gpu,
                up.f32()
                    .ok_or_else(|| ctx.bad("upstream must be F32".into()))?,
                &up.shape,
            )?;
            autograd::backward(&outs.out, Some(upstream), false)?;
            for (name, want) in &case.grads {
                let t = &ctx.tensors[name];
                let g = t
                    .grad()
                    .ok_or_else(|| ctx.bad(format!("no gradient reached input {name:?}")))?;
                check(&format!("grad.{name}"), &g, want)?;
            }
        }
    }
    Ok(CaseReport {
        path: case.path.clone(),
        op: case.op.clone(),
        worst,
        worst_at,
        compared,
    })
}

/// All `*.safetensors` case files under `dir` (sorted, recursive).
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in rd {
        let p = e
            .map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if p.is_dir() {
            out.extend(case_files(&p)?);
        } else if p.extension().is_some_and(|x| x == "safetensors") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
