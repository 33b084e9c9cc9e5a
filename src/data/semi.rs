//! Semi-supervised splits: a seeded labelled subset of a split, the rest served unlabelled.
//!
//! Split file format (plain text, UTF-8): `#` lines are comments; every other line is
//! `labelled NAME` or `unlabelled NAME`, NAME being the dataset's sample name. Samples of the
//! dataset the file does not mention are unlabelled; a name the dataset lacks or a name listed
//! twice is an error naming the file and line.

use super::error::{DataError, DataResult};
use super::io::write_atomic;
use super::Dataset;
use crate::rng::{permutation, Rng};
use std::collections::HashMap;
use std::path::Path;

/// How much of the split is labelled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// A fraction in (0, 1]: `floor(f * n)` samples, at least one.
    Fraction(f64),
    Count(usize),
}

impl std::str::FromStr for Amount {
    type Err = DataError;
    /// `1/8`, `0.125` (fractions) or `100` (a count).
    fn from_str(s: &str) -> DataResult<Amount> {
        let bad = || {
            DataError::invalid(
                "labelled amount",
                format!("{s:?} is not a fraction (1/8, 0.125) or a count (100)"),
            )
        };
        let f = if let Some((a, b)) = s.split_once('/') {
            let a: f64 = a.trim().parse().map_err(|_| bad())?;
            let b: f64 = b.trim().parse().map_err(|_| bad())?;
            a / b
        } else if let Ok(n) = s.trim().parse::<usize>() {
            return if n == 0 {
                Err(bad())
            } else {
                Ok(Amount::Count(n))
            };
        } else {
            s.trim().parse::<f64>().map_err(|_| bad())?
        };
        if f > 0.0 && f <= 1.0 {
            Ok(Amount::Fraction(f))
        } else {
            Err(bad())
        }
    }
}

/// A labelled fraction as `--labeled-fraction` and sweep grids take it: `1/8`, `0.125` or `1`
/// (a count other than 1 is refused: fractions only).
pub fn parse_fraction(s: &str) -> DataResult<f64> {
    match s.parse::<Amount>()? {
        Amount::Fraction(f) => Ok(f),
        Amount::Count(1) => Ok(1.0),
        Amount::Count(n) => Err(DataError::invalid(
            "labelled fraction",
            format!("{n}: give a fraction in (0, 1], e.g. 0.125 or 1/8"),
        )),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SemiSplit {
    /// Dataset indices of labelled samples, in drawn order.
    pub labelled: Vec<usize>,
    /// The remaining indices, ascending.
    pub unlabelled: Vec<usize>,
}

impl SemiSplit {
    /// Draws the labelled subset as the first samples of a seeded permutation (as the
    /// AdvSemiSeg code does).
    pub fn draw(ds: &dyn Dataset, amount: Amount, seed: u64) -> DataResult<SemiSplit> {
        let n = ds.len();
        let k = match amount {
            Amount::Fraction(f) => ((f * n as f64).floor() as usize).max(1),
            Amount::Count(c) => c,
        };
        if k > n {
            return Err(DataError::invalid(
                format!("semi-supervised split of {}/{}", ds.kind(), ds.split()),
                format!("{k} labelled samples requested but the split has {n}"),
            ));
        }
        let perm = permutation(n, &mut Rng::derive(seed, &[0x5e31]));
        let labelled = perm[..k].to_vec();
        let mut unlabelled = perm[k..].to_vec();
        unlabelled.sort_unstable();
        Ok(SemiSplit {
            labelled,
            unlabelled,
        })
    }

    pub fn save(&self, path: &Path, ds: &dyn Dataset, note: &str) -> DataResult<()> {
        let mut s = format!(
            "# advseg semi-supervised split v1\n# dataset {}/{}: {} samples, {} labelled, {} unlabelled\n",
            ds.kind(),
            ds.split(),
            ds.len(),
            self.labelled.len(),
            self.unlabelled.len()
        );
        if !note.is_empty() {
            s += &format!("# {note}\n");
        }
        for &i in &self.labelled {
            s += &format!("labelled {}\n", ds.name(i));
        }
        for &i in &self.unlabelled {
            s += &format!("unlabelled {}\n", ds.name(i));
        }
        write_atomic(path, s.as_bytes())
    }

    pub fn load(path: &Path, ds: &dyn Dataset) -> DataResult<SemiSplit> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(&text, path, ds)
    }

    /// [`SemiSplit::load`] on text in memory; `path` names it in errors.
    pub fn parse(text: &str, path: &Path, ds: &dyn Dataset) -> DataResult<SemiSplit> {
        let index: HashMap<String, usize> = (0..ds.len()).map(|i| (ds.name(i), i)).collect();
        let mut seen = vec![false; ds.len()];
        let mut labelled = Vec::new();
        for (ln, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |why: String| DataError::ListFile {
                path: path.to_path_buf(),
                line: ln + 1,
                why,
            };
            let (tag, name) = line.split_once(char::is_whitespace).ok_or_else(|| {
                err(format!(
                    "expected `labelled NAME` or `unlabelled NAME`, got {line:?}"
                ))
            })?;
            let name = name.trim();
            let &i = index.get(name).ok_or_else(|| {
                err(format!(
                    "sample {name:?} is not in {}/{}",
                    ds.kind(),
                    ds.split()
                ))
            })?;
            if std::mem::replace(&mut seen[i], true) {
                return Err(err(format!("sample {name:?} listed twice")));
            }
            match tag {
                "labelled" => labelled.push(i),
                "unlabelled" => {}
                _ => return Err(err(format!("unknown tag {tag:?} (labelled, unlabelled)"))),
            }
        }
        let is_l: std::collections::HashSet<usize> = labelled.iter().copied().collect();
        let unlabelled = (0..ds.len()).filter(|i| !is_l.contains(i)).collect();
        Ok(SemiSplit {
            labelled,
            unlabelled,
        })
    }
}
