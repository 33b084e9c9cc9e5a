//! Background loading: worker threads decode and augment ahead of training into bounded
//! queues; the consumer assembles NCHW f32 image and i32 label batches.
//!
//! Determinism: stream item `k` is fully defined by the seed — its dataset index comes from the
//! seeded permutation of epoch `k / n`, its augmentation from `Rng::derive(seed, [1, k])` — and
//! worker `w` produces exactly the items `k ≡ w (mod workers)` into its own queue, which the
//! consumer reads round-robin. Batches are therefore identical whatever the thread timing or
//! worker count.

use super::augment::{augment, AugConfig, Augmented};
use super::error::{DataError, DataResult};
use super::Dataset;
use crate::rng::{permutation, Rng};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch: usize,
    pub workers: usize,
    /// Items each worker may hold ready ahead of the consumer.
    pub prefetch: usize,
    /// Reshuffle the order every epoch (seeded).
    pub shuffle: bool,
    /// Cycle forever (iteration-based training); otherwise one pass.
    pub infinite: bool,
    /// In a finite pass, drop the last incomplete batch.
    pub drop_last: bool,
    pub seed: u64,
    pub aug: AugConfig,
    /// Skip samples that fail to load (recorded, see [`Loader::take_skipped`]) instead of
    /// ending the stream with their error.
    pub skip_bad: bool,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch: 1,
            workers: 2,
            prefetch: 4,
            shuffle: false,
            infinite: false,
            drop_last: false,
            seed: 0,
            aug: AugConfig::default(),
            skip_bad: false,
        }
    }
}

/// A batch in host memory, laid out for upload as tensors.
#[derive(Clone, Debug)]
pub struct Batch {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    /// [n, 3, h, w]
    pub images: Vec<f32>,
    /// [n, h, w]: class ids or the ignore index.
    pub labels: Vec<i32>,
    /// [n, h, w]: 1.0 inside the image, 0.0 in crop padding.
    pub roi: Vec<f32>,
    /// [n, num_classes] multi-hot (1.0 = class present).
    pub image_labels: Vec<f32>,
    pub num_classes: usize,
    pub names: Vec<String>,
    /// Dataset indices of the samples.
    pub indices: Vec<usize>,
}

type Item = (usize, DataResult<Augmented>);

pub struct Loader {
    rx: Vec<Receiver<Item>>,
    handles: Vec<JoinHandle<()>>,
    next: u64,
    start: u64,
    total: Option<u64>,
    cfg: LoaderConfig,
    num_classes: usize,
    subset_len: usize,
    /// (sample name, error) of samples skipped since the last [`Loader::take_skipped`].
    skipped: Vec<(String, String)>,
}

/// Dataset index of stream item `k`.
struct Order {
    subset: Vec<usize>,
    shuffle: bool,
    seed: u64,
    epoch: u64,
    perm: Vec<usize>,
}

impl Order {
    fn index(&mut self, k: u64) -> usize {
        let n = self.subset.len() as u64;
        let (epoch, pos) = (k / n, (k % n) as usize);
        if !self.shuffle {
            return self.subset[pos];
        }
        if self.perm.is_empty() || epoch != self.epoch {
            self.perm = permutation(n as usize, &mut Rng::derive(self.seed, &[0, epoch]));
            self.epoch = epoch;
        }
        self.subset[self.perm[pos]]
    }
}

impl Loader {
    /// Serves `indices` of `ds` (all of it when `None`).
    pub fn new(
        ds: Arc<dyn Dataset>,
        indices: Option<Vec<usize>>,
        cfg: LoaderConfig,
    ) -> DataResult<Loader> {
        Self::new_at(ds, indices, cfg, 0)
    }

    /// Like [`Loader::new`] but starts at stream item `start`, so a resumed run receives exactly
    /// the items an uninterrupted one would have (items are a function of the seed and `k`).
    pub fn new_at(
        ds: Arc<dyn Dataset>,
        indices: Option<Vec<usize>>,
        cfg: LoaderConfig,
        start: u64,
    ) -> DataResult<Loader> {
        let subset = indices.unwrap_or_else(|| (0..ds.len()).collect());
        let what = format!("loader over {}/{}", ds.kind(), ds.split());
        if subset.is_empty() {
            return Err(DataError::invalid(what, "no samples to load"));
        }
        if let Some(&bad) = subset.iter().find(|&&i| i >= ds.len()) {
            return Err(DataError::invalid(
                what,
                format!("index {bad} out of range (dataset has {})", ds.len()),
            ));
        }
        if cfg.batch == 0 || cfg.workers == 0 {
            return Err(DataError::invalid(what, "batch and workers must be >= 1"));
        }
        let total = (!cfg.infinite).then_some(subset.len() as u64);
        let mut rx = Vec::new();
        let mut handles = Vec::new();
        let ignore = ds.ignore_index();
        for wk in 0..cfg.workers {
            let (tx, r) = sync_channel::<Item>(cfg.prefetch.max(1));
            rx.push(r);
            let ds = ds.clone();
            let cfg = cfg.clone();
            let mut order = Order {
                subset: subset.clone(),
                shuffle: cfg.shuffle,
                seed: cfg.seed,
                epoch: 0,
                perm: Vec::new(),
            };
            handles.push(std::thread::spawn(move || {
                let mut k = start + wk as u64;
                while total.is_none_or(|t| k < t) {
                    let idx = order.index(k);
                    let item = ds.get(idx).map_err(|e| DataError::Sample {
                        dataset: ds.kind().into(),
                        split: ds.split().into(),
                        index: idx,
                        name: ds.name(idx),
                        source: Box::new(e),
                    });
                    let item = item.map(|s| {
                        augment(&s, &cfg.aug, ignore, &mut Rng::derive(cfg.seed, &[1, k]))
                    });
                    if tx.send((idx, item)).is_err() {
                        return;
                    }
                    k += cfg.workers as u64;
                }
            }));
        }
        Ok(Loader {
            rx,
            handles,
            next: start,
            start,
            total,
            num_classes: ds.num_classes(),
            subset_len: subset.len(),
            skipped: Vec::new(),
            cfg,
        })
    }

    /// Stream items handed out so far, counting from item 0 (a resume point).
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Samples skipped as bad (with `skip_bad`) since the last call: (name, error).
    pub fn take_skipped(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.skipped)
    }

    /// Samples per pass over the subset.
    pub fn epoch_len(&self) -> Option<u64> {
        self.total
    }

    fn recv(&mut self) -> Option<Item> {
        if self.total.is_some_and(|t| self.next >= t) {
            return None;
        }
        let w = ((self.next - self.start) % self.cfg.workers as u64) as usize;
        self.next += 1;
        self.rx[w].recv().ok()
    }
}

impl Iterator for Loader {
    type Item = DataResult<Batch>;

    fn next(&mut self) -> Option<DataResult<Batch>> {
        let mut items: Vec<(usize, Augmented)> = Vec::with_capacity(self.cfg.batch);
        // A whole pass of bad samples in a row means nothing is left to skip to.
        let mut bad_in_row = 0;
        while items.len() < self.cfg.batch {
            match self.recv() {
                None => break,
                Some((_, Err(e))) if self.cfg.skip_bad && bad_in_row < self.subset_len => {
                    bad_in_row += 1;
                    let name = match &e {
                        DataError::Sample { name, .. } => name.clone(),
                        _ => String::new(),
                    };
                    self.skipped.push((name, e.to_string()));
                }
                Some((_, Err(e))) => return Some(Err(e)),
                Some((i, Ok(a))) => {
                    bad_in_row = 0;
                    items.push((i, a))
                }
            }
        }
        if items.is_empty() || (self.cfg.drop_last && items.len() < self.cfg.batch) {
            return None;
        }
        let (h, w) = (items[0].1.h, items[0].1.w);
        if let Some((_, a)) = items.iter().find(|(_, a)| (a.h, a.w) != (h, w)) {
            return Some(Err(DataError::invalid(
                "batch",
                format!(
                    "sample {} is {}x{} but {} is {}x{} (HxW); set a crop size to batch images of different sizes",
                    a.name, a.h, a.w, items[0].1.name, h, w
                ),
            )));
        }
        let n = items.len();
        let c = self.num_classes;
        let mut b = Batch {
            n,
            h,
            w,
            images: Vec::with_capacity(n * 3 * h * w),
            labels: Vec::with_capacity(n * h * w),
            roi: Vec::with_capacity(n * h * w),
            image_labels: Vec::with_capacity(n * c),
            num_classes: c,
            names: Vec::with_capacity(n),
            indices: Vec::with_capacity(n),
        };
        for (i, a) in items {
            b.images.extend_from_slice(&a.image);
            b.labels.extend(a.label.iter().map(|&v| v as i32));
            b.roi.extend(a.roi.iter().map(|&v| f32::from(v)));
            b.image_labels
                .extend(a.image_labels.iter().map(|&p| if p { 1.0 } else { 0.0 }));
            b.names.push(a.name);
            b.indices.push(i);
        }
        Some(Ok(b))
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Dropping the receivers makes blocked workers' sends fail, so they exit.
        self.rx.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
