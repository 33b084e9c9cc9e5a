//! The `--data` spec: `synthetic[:k=v,...]`, `camvid:PATH`, `camvid-things:PATH`, `voc:PATH`,
//! `cityscapes:PATH`, `folder:PATH`.

use super::error::{DataError, DataResult};
use super::synthetic::{Synthetic, SyntheticConfig};
use super::{layouts, Dataset};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub enum DataSpec {
    Synthetic(SyntheticConfig),
    CamVid(PathBuf),
    /// CamVid's files, stuff classes merged into background (for the weak methods).
    CamVidThings(PathBuf),
    Voc(PathBuf),
    Cityscapes(PathBuf),
    Folder(PathBuf),
}

const KINDS: &str = "synthetic, camvid, camvid-things, voc, cityscapes, folder";

impl std::str::FromStr for DataSpec {
    type Err = DataError;
    fn from_str(spec: &str) -> DataResult<Self> {
        let (kind, rest) = match spec.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (spec, None),
        };
        let path = || -> DataResult<PathBuf> {
            match rest {
                Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
                _ => Err(DataError::spec(
                    spec,
                    format!("{kind} needs a path: {kind}:PATH"),
                )),
            }
        };
        match kind {
            "synthetic" => Ok(DataSpec::Synthetic(parse_synthetic(
                spec,
                rest.unwrap_or(""),
            )?)),
            "camvid" => Ok(DataSpec::CamVid(path()?)),
            "camvid-things" => Ok(DataSpec::CamVidThings(path()?)),
            "voc" => Ok(DataSpec::Voc(path()?)),
            "cityscapes" => Ok(DataSpec::Cityscapes(path()?)),
            "folder" => Ok(DataSpec::Folder(path()?)),
            _ => Err(DataError::spec(
                spec,
                format!("unknown dataset kind {kind:?} (known: {KINDS})"),
            )),
        }
    }
}

fn parse_synthetic(spec: &str, args: &str) -> DataResult<SyntheticConfig> {
    let mut c = SyntheticConfig::default();
    for kv in args.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| DataError::spec(spec, format!("{kv:?} is not key=value")))?;
        let num = |what: &str| -> DataResult<usize> {
            v.parse::<usize>().map_err(|_| {
                DataError::spec(spec, format!("{what}={v:?} is not a non-negative integer"))
            })
        };
        match k {
            "size" => {
                let s = num(k)?;
                c.h = s;
                c.w = s;
            }
            "h" => c.h = num(k)?,
            "w" => c.w = num(k)?,
            "n" => c.n_train = num(k)?,
            "val" => c.n_val = num(k)?,
            "seed" => c.seed = num(k)? as u64,
            "classes" => c.classes = num(k)?,
            "noise" => {
                c.noise = v
                    .parse::<f32>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| {
                        DataError::spec(spec, format!("noise={v:?} is not a number >= 0"))
                    })?
            }
            _ => {
                return Err(DataError::spec(
                    spec,
                    format!(
                    "unknown synthetic key {k:?} (known: size, h, w, n, val, seed, classes, noise)"
                ),
                ))
            }
        }
    }
    c.validate().map_err(|why| DataError::spec(spec, why))?;
    Ok(c)
}

impl std::fmt::Display for DataSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSpec::Synthetic(c) => write!(
                f,
                "synthetic:h={},w={},n={},val={},seed={},classes={},noise={}",
                c.h, c.w, c.n_train, c.n_val, c.seed, c.classes, c.noise
            ),
            DataSpec::CamVid(p) => write!(f, "camvid:{}", p.display()),
            DataSpec::CamVidThings(p) => write!(f, "camvid-things:{}", p.display()),
            DataSpec::Voc(p) => write!(f, "voc:{}", p.display()),
            DataSpec::Cityscapes(p) => write!(f, "cityscapes:{}", p.display()),
            DataSpec::Folder(p) => write!(f, "folder:{}", p.display()),
        }
    }
}

/// Config files hold the spec as the same string as the command line.
impl serde::Serialize for DataSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for DataSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Opens one split of the dataset a spec names.
pub fn open(spec: &DataSpec, split: &str) -> DataResult<Arc<dyn Dataset>> {
    Ok(match spec {
        DataSpec::Synthetic(c) => Arc::new(Synthetic::new(c.clone(), split)?),
        DataSpec::CamVid(p) => Arc::new(layouts::camvid(p, split)?),
        DataSpec::CamVidThings(p) => Arc::new(layouts::camvid_things(p, split)?),
        DataSpec::Voc(p) => Arc::new(layouts::voc(p, split)?),
        DataSpec::Cityscapes(p) => Arc::new(layouts::cityscapes(p, split)?),
        DataSpec::Folder(p) => Arc::new(layouts::folder(p, split)?),
    })
}
