//! Data streams of a run: one seeded infinite loader per stream over its subset of the
//! training split, uploaded to the GPU as batches. Positions are saved in checkpoints so a
//! resumed run continues with exactly the batches an uninterrupted run would have drawn.

use super::method::{StreamSpec, Subset};
use crate::data::{AugConfig, Dataset, Loader, LoaderConfig, Normalise};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::ops::softmax::check_labels;
use crate::tensor::Tensor;
use crate::train::error::Result;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A training batch on the GPU.
pub struct GpuBatch {
    /// [N, 3, H, W] normalised images.
    pub images: Tensor,
    /// I32 [N, H, W] class ids or the ignore index.
    pub labels: Tensor,
    /// [N, classes] multi-hot image-level labels.
    pub image_labels: Tensor,
    /// The same multi-hot labels on the host (weak methods plan per-class work from them
    /// without a GPU read-back).
    pub image_labels_host: Vec<f32>,
    /// [N, H, W] on the host: 1 inside the image, 0 in crop padding (uploaded by the methods
    /// that need it, RRM's dense loss).
    pub roi_host: Vec<f32>,
    /// How `images` were normalised (to recover 0–255 RGB for CRFs and bilateral kernels).
    pub normalise: Normalise,
    pub names: Vec<String>,
}

pub struct Streams {
    gpu: Arc<Gpu>,
    loaders: BTreeMap<&'static str, Loader>,
    classes: usize,
    ignore: i32,
    normalise: Normalise,
}

/// Per-stream settings shared by all streams of a run.
pub struct StreamSetup {
    pub batch: usize,
    pub workers: usize,
    pub seed: u64,
    pub aug: AugConfig,
    /// `on_bad_sample=skip`: loaders skip samples that fail to load.
    pub skip_bad: bool,
}

impl Streams {
    /// Opens `specs` over `labelled` / `unlabelled` indices of `ds`, each starting at its saved
    /// position (0 for a new run). A stream over an empty subset is left out.
    pub fn open(
        gpu: &Arc<Gpu>,
        ds: Arc<dyn Dataset>,
        specs: &[StreamSpec],
        labelled: &[usize],
        unlabelled: &[usize],
        setup: &StreamSetup,
        positions: &BTreeMap<String, u64>,
    ) -> Result<Streams> {
        let mut loaders = BTreeMap::new();
        for (i, s) in specs.iter().enumerate() {
            let subset = match s.subset {
                Subset::Labelled => labelled.to_vec(),
                Subset::Unlabelled => unlabelled.to_vec(),
                Subset::All => (0..ds.len()).collect(),
            };
            if subset.is_empty() {
                continue;
            }
            let cfg = LoaderConfig {
                batch: setup.batch,
                workers: setup.workers,
                prefetch: 4,
                shuffle: true,
                infinite: true,
                drop_last: false,
                // Streams over the same subset must not draw identical batches.
                seed: crate::rng::Rng::derive_named(setup.seed, &format!("stream{i}:{}", s.name))
                    .next_u64(),
                aug: setup.aug.clone(),
                skip_bad: setup.skip_bad,
            };
            let start = positions.get(s.name).copied().unwrap_or(0);
            loaders.insert(
                s.name,
                Loader::new_at(ds.clone(), Some(subset), cfg, start)?,
            );
        }
        Ok(Streams {
            gpu: gpu.clone(),
            loaders,
            classes: ds.num_classes(),
            ignore: ds.ignore_index() as i32,
            normalise: setup.aug.normalise.clone(),
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.loaders.contains_key(name)
    }

    /// Samples skipped as bad since the last call, over all streams: (name, error).
    pub fn take_skipped(&mut self) -> Vec<(String, String)> {
        self.loaders
            .values_mut()
            .flat_map(|l| l.take_skipped())
            .collect()
    }

    /// Items consumed per stream (the resume point).
    pub fn positions(&self) -> BTreeMap<String, u64> {
        self.loaders
            .iter()
            .map(|(k, l)| (k.to_string(), l.position()))
            .collect()
    }

    pub fn next(&mut self, name: &str) -> Result<GpuBatch> {
        let l = self.loaders.get_mut(name).ok_or_else(|| {
            Error::invalid(
                "train",
                format!("the method asked for missing stream {name:?}"),
            )
        })?;
        let b = l
            .next()
            .ok_or_else(|| Error::invalid("train", format!("stream {name:?} ended")))??;
        check_labels(&b.labels, self.classes, self.ignore)?;
        Ok(GpuBatch {
            images: Tensor::from_f32(&self.gpu, &b.images, &[b.n, 3, b.h, b.w])?,
            labels: Tensor::from_i32(&self.gpu, &b.labels, &[b.n, b.h, b.w])?,
            image_labels: Tensor::from_f32(&self.gpu, &b.image_labels, &[b.n, b.num_classes])?,
            image_labels_host: b.image_labels,
            roi_host: b.roi,
            normalise: self.normalise.clone(),
            names: b.names,
        })
    }
}
