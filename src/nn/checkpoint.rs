//! safetensors checkpoints keyed by PyTorch `state_dict` names; atomic writes; load reports.

use super::error::{NnError, Result};
use super::param::ParamStore;
use crate::gpu::Gpu;
use crate::tensor::Tensor;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// Writes `bytes` to `path` atomically (see [`crate::atomic::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic::write_atomic(path, bytes).map_err(|(path, source)| NnError::Io { path, source })
}

/// Host copy of named tensors (for checkpoints, optimizer state, conversion).
pub type HostTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Serialises host tensors (+ string metadata) as safetensors bytes.
pub fn to_safetensors(
    tensors: &HostTensors,
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, (shape, data))| {
            safetensors::tensor::TensorView::new(
                Dtype::F32,
                shape.clone(),
                bytemuck::cast_slice(data),
            )
            .map(|v| (k.clone(), v))
            .map_err(|e| NnError::Serialise {
                why: format!("{k}: {e}"),
            })
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, Some(metadata.clone()))
        .map_err(|e| NnError::Serialise { why: e.to_string() })
}

/// The safetensors crate's own bound on the JSON header.
const MAX_HEADER: u64 = 100_000_000;

/// Reads a safetensors file whole, after checking that the header length it claims fits in
/// the file: a corrupt or hostile length (or a large file of another kind) is refused from its
/// first 8 bytes instead of being read into memory.
pub fn read_safetensors_bytes(path: &Path) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let io = |source| NnError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bad = |why: String| NnError::File {
        path: path.to_path_buf(),
        why: format!("not a safetensors checkpoint: {why}"),
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len < 8 {
        return Err(bad(format!("{len} bytes is too short for a header")));
    }
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(io)?;
    let n = u64::from_le_bytes(n);
    if n > (len - 8).min(MAX_HEADER) {
        return Err(bad(format!(
            "the header claims {n} bytes but the file holds {len}"
        )));
    }
    f.rewind().map_err(io)?;
    let mut bytes = Vec::with_capacity(len as usize);
    f.read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Reads every F32 tensor of a safetensors file (other dtypes, e.g. `num_batches_tracked`, are
/// converted to f32) and its metadata.
pub fn read_safetensors(path: &Path) -> Result<(HostTensors, HashMap<String, String>)> {
    parse_safetensors(&read_safetensors_bytes(path)?, path)
}

/// [`read_safetensors`] on bytes already in memory; `path` only names them in errors. Every
/// allocation is bounded by the length of `bytes`: the crate checks each tensor's offsets and
/// element count against the buffer before any tensor is converted.
pub fn parse_safetensors(
    bytes: &[u8],
    path: &Path,
) -> Result<(HostTensors, HashMap<String, String>)> {
    let bad = |why: String| NnError::File {
        path: path.to_path_buf(),
        why,
    };
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a safetensors checkpoint: {e}")))?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a safetensors checkpoint: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, v) in st.tensors() {
        let data: Vec<f32> = match v.dtype() {
            Dtype::F32 => bytemuck::pod_collect_to_vec(v.data()),
            Dtype::F64 => bytemuck::pod_collect_to_vec::<u8, f64>(v.data())
                .into_iter()
                .map(|x| x as f32)
                .collect(),
            Dtype::I64 => bytemuck::pod_collect_to_vec::<u8, i64>(v.data())
                .into_iter()
                .map(|x| x as f32)
                .collect(),
            Dtype::I32 => bytemuck::pod_collect_to_vec::<u8, i32>(v.data())
                .into_iter()
                .map(|x| x as f32)
                .collect(),
            Dtype::F16 | Dtype::BF16 => {
                return Err(bad(format!(
                    "{name}: {:?} tensors are not supported; convert to float32",
                    v.dtype()
                )))
            }
            d => return Err(bad(format!("{name}: unsupported dtype {d:?}"))),
        };
        out.insert(name, (v.shape().to_vec(), data));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// Tensors holding NaN or ±inf: (name, how many such values, element count).
pub fn non_finite(tensors: &HostTensors) -> Vec<(String, usize, usize)> {
    tensors
        .iter()
        .filter_map(|(k, (_, v))| {
            let bad = v.iter().filter(|x| !x.is_finite()).count();
            (bad > 0).then(|| (k.clone(), bad, v.len()))
        })
        .collect()
}

/// Lists non-finite tensors for an error message (the first few by name, then a count).
pub fn describe_non_finite(bad: &[(String, usize, usize)]) -> String {
    let total: usize = bad.iter().map(|b| b.1).sum();
    let mut names: Vec<String> = bad
        .iter()
        .take(8)
        .map(|(k, n, all)| format!("{k} ({n} of {all})"))
        .collect();
    if bad.len() > 8 {
        names.push(format!("and {} more", bad.len() - 8));
    }
    format!(
        "{total} non-finite values (NaN/inf) in {} tensor(s): {}",
        bad.len(),
        names.join(", ")
    )
}

/// Refuses weights that hold NaN or inf: they would only propagate into every output.
pub fn refuse_non_finite(tensors: &HostTensors, path: &Path) -> Result<()> {
    let bad = non_finite(tensors);
    if bad.is_empty() {
        return Ok(());
    }
    Err(NnError::File {
        path: path.to_path_buf(),
        why: format!(
            "refused: {}; the file is poisoned (a diverged run?): use an earlier checkpoint",
            describe_non_finite(&bad)
        ),
    })
}

/// What a load found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    /// In the model, not in the file.
    pub missing: Vec<String>,
    /// In the file, not in the model (`num_batches_tracked` is never reported).
    pub unexpected: Vec<String>,
    /// (name, model shape, file shape)
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl LoadReport {
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loaded {} tensors", self.loaded.len())?;
        if !self.missing.is_empty() {
            write!(
                f,
                "; missing {}: {}",
                self.missing.len(),
                self.missing.join(", ")
            )?;
        }
        if !self.unexpected.is_empty() {
            write!(
                f,
                "; unexpected {}: {}",
                self.unexpected.len(),
                self.unexpected.join(", ")
            )?;
        }
        for (n, m, g) in &self.mismatched {
            write!(f, "; {n}: model shape {m:?} but file has {g:?}")?;
        }
        Ok(())
    }
}

impl ParamStore {
    /// Host copy of every materialised tensor, by name.
    pub fn to_host(&self) -> Result<HostTensors> {
        let mut out = BTreeMap::new();
        for s in self.slots() {
            out.insert(s.name.clone(), (s.shape.clone(), s.get()?.to_vec_f32()?));
        }
        Ok(out)
    }

    /// Writes the model as a safetensors file with PyTorch names (atomic).
    pub fn save(&self, path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
        write_atomic(path, &to_safetensors(&self.to_host()?, metadata)?)
    }

    /// Loads matching tensors from host tensors. With `strict`, anything missing, unexpected or
    /// of another shape is an error (and nothing is loaded); otherwise what matches is loaded and
    /// the rest reported. Tensors not loaded keep their current values.
    pub fn load_host(
        &self,
        gpu: &Arc<Gpu>,
        file: &HostTensors,
        strict: bool,
        source: &Path,
    ) -> Result<LoadReport> {
        let mut rep = LoadReport::default();
        for s in self.slots() {
            match file.get(&s.name) {
                None => rep.missing.push(s.name.clone()),
                Some((shape, _)) if shape != &s.shape => {
                    rep.mismatched
                        .push((s.name.clone(), s.shape.clone(), shape.clone()))
                }
                Some(_) => rep.loaded.push(s.name.clone()),
            }
        }
        for k in file.keys() {
            if self.find(k).is_none() && !k.ends_with("num_batches_tracked") {
                rep.unexpected.push(k.clone());
            }
        }
        if strict && !rep.is_exact() {
            return Err(NnError::StrictLoad {
                path: source.to_path_buf(),
                report: rep,
            });
        }
        for name in &rep.loaded {
            let s = self.find(name).expect("listed slot");
            let (shape, data) = &file[name];
            s.set(Tensor::from_f32(gpu, data, shape)?)?;
        }
        Ok(rep)
    }

    /// Loads a safetensors checkpoint (see [`ParamStore::load_host`]).
    pub fn load(&self, gpu: &Arc<Gpu>, path: &Path, strict: bool) -> Result<LoadReport> {
        let (file, _) = read_safetensors(path)?;
        self.load_host(gpu, &file, strict, path)
    }
}
