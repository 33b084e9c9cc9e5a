//! Walking a dataset split to validate every sample and summarise it (`advseg data check`).

use super::error::DataError;
use super::Dataset;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct CheckReport {
    pub kind: String,
    pub split: String,
    pub num_classes: usize,
    pub class_names: Vec<String>,
    /// Samples checked.
    pub checked: usize,
    /// (height, width) → number of samples.
    pub sizes: BTreeMap<(usize, usize), usize>,
    pub class_pixels: Vec<u64>,
    pub ignore_pixels: u64,
    /// (index, name, error) of every bad sample, by index.
    pub bad: Vec<(usize, String, DataError)>,
}

impl CheckReport {
    pub fn total_pixels(&self) -> u64 {
        self.class_pixels.iter().sum::<u64>() + self.ignore_pixels
    }
    /// Share of all pixels (ignored ones included) per class.
    pub fn class_shares(&self) -> Vec<f64> {
        let t = self.total_pixels().max(1) as f64;
        self.class_pixels.iter().map(|&c| c as f64 / t).collect()
    }
    pub fn ignore_share(&self) -> f64 {
        self.ignore_pixels as f64 / self.total_pixels().max(1) as f64
    }
}

/// Decodes samples `0..limit` (all by default) on `workers` threads.
pub fn check(ds: &dyn Dataset, limit: Option<usize>, workers: usize) -> CheckReport {
    let n = limit.map_or(ds.len(), |l| l.min(ds.len()));
    let nc = ds.num_classes();
    let workers = workers.clamp(1, n.max(1));
    let parts: Vec<CheckReport> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|wk| {
                s.spawn(move || {
                    let mut r = CheckReport {
                        class_pixels: vec![0; nc],
                        ..Default::default()
                    };
                    for i in (wk..n).step_by(workers) {
                        r.checked += 1;
                        match ds.get(i) {
                            Ok(smp) => {
                                *r.sizes.entry((smp.image.h, smp.image.w)).or_default() += 1;
                                for &v in &smp.label.data {
                                    match r.class_pixels.get_mut(v as usize) {
                                        Some(c) => *c += 1,
                                        None => r.ignore_pixels += 1,
                                    }
                                }
                            }
                            Err(e) => r.bad.push((i, ds.name(i), e)),
                        }
                    }
                    r
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("check worker panicked"))
            .collect()
    });
    let mut rep = CheckReport {
        kind: ds.kind().into(),
        split: ds.split().into(),
        num_classes: nc,
        class_names: ds.class_names().to_vec(),
        class_pixels: vec![0; nc],
        ..Default::default()
    };
    for p in parts {
        rep.checked += p.checked;
        for (k, v) in p.sizes {
            *rep.sizes.entry(k).or_default() += v;
        }
        for (a, b) in rep.class_pixels.iter_mut().zip(&p.class_pixels) {
            *a += b;
        }
        rep.ignore_pixels += p.ignore_pixels;
        rep.bad.extend(p.bad);
    }
    rep.bad.sort_by_key(|b| b.0);
    rep
}
