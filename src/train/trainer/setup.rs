//! Building a trainer: the checkpoint checked against the run (resume, `--load-from`), the
//! method built and its weights loaded, the semi split, the resumable streams, the probes.

use super::*;

/// Reads the method's checkpoint header to check it against the run before building anything.
pub fn check_resume(
    cfg: &RunConfig,
    ck: &CkptMeta,
    path: &Path,
) -> std::result::Result<(), TrainError> {
    let c = &cfg.common;
    if ck.method != c.method {
        return Err(TrainError::checkpoint(
            path,
            format!("was written by method {:?}, not {:?}", ck.method, c.method),
        ));
    }
    if ck.arch != c.arch {
        return Err(TrainError::checkpoint(
            path,
            format!(
                "holds arch {:?} but the run uses --arch {:?}",
                ck.arch, c.arch
            ),
        ));
    }
    Ok(())
}

/// Refuses `--load-from` of an advseg checkpoint of another arch before building anything.
fn check_load_from(path: &Path, arch: &str) -> Result<()> {
    let bytes = crate::nn::checkpoint::read_safetensors_bytes(path)?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| Error::File {
        path: path.to_path_buf(),
        why: format!("not a safetensors checkpoint: {e}"),
    })?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) == Some(checkpoint::FORMAT) {
        if let Some(a) = meta.get("arch").filter(|a| *a != arch) {
            return Err(TrainError::checkpoint(
                path,
                format!("holds arch {a:?} but the run uses --arch {arch:?}"),
            ));
        }
    }
    Ok(())
}

/// Loads `G` weights for `--load-from`: an advseg checkpoint's `G.*` tensors or a plain
/// state_dict. Refuses a file from which nothing matches (another arch).
fn load_pretrained(gpu: &Arc<Gpu>, g: &Model, path: &Path) -> Result<()> {
    let (mut t, meta) = crate::nn::read_safetensors(path)?;
    crate::nn::checkpoint::refuse_non_finite(&t, path)?;
    if meta.get("format").map(String::as_str) == Some(checkpoint::FORMAT) {
        t = t
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix("G.").map(|s| (s.to_string(), v)))
            .collect();
    }
    let rep = g.store.load_host(gpu, &t, false, path)?;
    if rep.loaded.is_empty() {
        return Err(TrainError::checkpoint(
            path,
            format!(
                "no tensor matches arch {:?} by name and shape ({rep}); is it from another arch?",
                g.arch
            ),
        ));
    }
    eprintln!("--load-from {}: {rep}", path.display());
    Ok(())
}

impl Trainer {
    pub fn new(gpu: &Arc<Gpu>, cfg: RunConfig, opts: TrainerOptions) -> Result<Trainer> {
        Self::with_checkpoint(gpu, cfg, opts, None)
    }

    /// [`Trainer::new`] with the checkpoint of `opts.resume` already read (by
    /// [`crate::train::session::RunSession`]), so it is not read again.
    pub fn with_checkpoint(
        gpu: &Arc<Gpu>,
        cfg: RunConfig,
        opts: TrainerOptions,
        preread: Option<Checkpoint>,
    ) -> Result<Trainer> {
        cfg.validate()?;
        let c = &cfg.common;
        // The input batch is the first tensor a crop sizes: allocating it now (the pool keeps
        // it for the first upload) reports a crop the engine cannot hold by its setting,
        // before any loader decodes ahead and before any file is written.
        let crop = cfg.crop();
        let batch_bytes = (c.batch as u64)
            .saturating_mul(3 * 4)
            .saturating_mul(crop[0] as u64)
            .saturating_mul(crop[1] as u64);
        drop(gpu.alloc("crop", batch_bytes).map_err(|e| match e {
            GpuError::TooLarge { .. } => crop_too_large(crop, c.batch, &e),
            e => e.into(),
        })?);
        if let Some(d) = &opts.run_dir {
            // Temp files of a killed run (a half-written checkpoint) would otherwise stay for
            // good; only dead writers' files go, so a live run in the same dir is untouched.
            for p in crate::atomic::sweep_stale_temps(d) {
                eprintln!("removed {} (left by an interrupted write)", p.display());
            }
        }
        let train_ds = data::open(&c.data, "train")?;
        let eval_ds = data::open(&c.data, &c.eval_split)?;
        let classes = train_ds.num_classes();
        let ignore = train_ds.ignore_index();

        if let Some(p) = &opts.load_from {
            check_load_from(p, &c.arch)?;
        }
        let ckpt = match &opts.resume {
            Some(p) => {
                let ck = match preread {
                    Some(ck) => ck,
                    None => Checkpoint::read(p)?,
                };
                check_resume(&cfg, &ck.meta, p)?;
                if ck.meta.classes != classes {
                    return Err(TrainError::checkpoint(
                        p,
                        format!("has {} classes, the data {classes}", ck.meta.classes),
                    ));
                }
                Some(ck)
            }
            None => None,
        };

        // The labelled subset: a saved split file wins (a resumed run keeps its split).
        let split_path = opts.run_dir.as_ref().map(|d| d.join("split.txt"));
        let split = match (&c.split_file, &split_path) {
            (Some(f), _) => SemiSplit::load(f, train_ds.as_ref())?,
            (None, Some(p)) if ckpt.is_some() && p.exists() => {
                SemiSplit::load(p, train_ds.as_ref())?
            }
            _ if c.labeled_fraction >= 1.0 => SemiSplit {
                labelled: (0..train_ds.len()).collect(),
                unlabelled: vec![],
            },
            _ => SemiSplit::draw(
                train_ds.as_ref(),
                Amount::Fraction(c.labeled_fraction),
                c.seed,
            )?,
        };
        let init = |name: &str, m: &Model| -> Result<()> {
            if let (Some(ck), Some(p)) = (&ckpt, &opts.resume) {
                return checkpoint::load_model(gpu, m, &ck.model(name), p);
            }
            if let (Some(p), "G") = (&opts.load_from, name) {
                return load_pretrained(gpu, m, p);
            }
            Ok(())
        };
        let mut method = (methods::find(&c.method)?.build)(&BuildEnv {
            gpu,
            cfg: &cfg,
            classes,
            ignore: ignore as i32,
            init: &init,
        })?;
        let (step, positions, best) = match (&ckpt, &opts.resume) {
            (Some(ck), Some(p)) => {
                ck.load_optimizers(method.as_mut(), p)?;
                (
                    ck.meta.step,
                    ck.meta.positions.clone(),
                    ck.meta.best.clone(),
                )
            }
            _ => (0, BTreeMap::new(), None),
        };
        let ema = match c.ema_decay {
            d if d > 0.0 => Some(start_average(
                method.as_ref(),
                d,
                ckpt.as_ref().zip(opts.resume.as_deref()),
            )?),
            _ => None,
        };

        let aug = AugConfig {
            scale: c.random_scale.then_some(crate::data::augment::ScaleRange {
                min: 0.5,
                max: 1.5,
                step: 0.1,
            }),
            crop: Some((crop[0], crop[1])),
            flip: c.random_mirror,
            normalise: cfg.normalise(),
            crop_image_labels: c.image_labels == crate::train::config::ImageLabels::Crop,
            ..AugConfig::default()
        };
        let streams = Streams::open(
            gpu,
            train_ds.clone(),
            &method.streams(),
            &split.labelled,
            &split.unlabelled,
            &StreamSetup {
                batch: c.batch,
                workers: c.workers,
                seed: c.seed,
                aug,
                skip_bad: c.on_bad_sample == "skip",
            },
            &positions,
        )?;

        let mut probes = Vec::new();
        for i in 0..c.probes.min(eval_ds.len()) {
            let s = eval_ds.get(i)?;
            let a = augment::augment(
                &s,
                &AugConfig {
                    normalise: cfg.normalise(),
                    ..AugConfig::default()
                },
                ignore,
                &mut crate::rng::Rng::new(0),
            );
            probes.push(Probe {
                name: s.name.clone(),
                x: Tensor::from_f32(gpu, &a.image, &[1, 3, a.h, a.w])?,
                image: s.image,
                label: s.label.data,
            });
        }
        // Written only once everything above succeeded, so a failing setup leaves no files.
        if let Some(p) = &split_path {
            split.save(
                p,
                train_ds.as_ref(),
                &format!("labeled_fraction {} seed {}", c.labeled_fraction, c.seed),
            )?;
        }
        if let Some(d) = &opts.run_dir {
            crate::nn::write_atomic(&d.join("config.toml"), cfg.to_toml().as_bytes())?;
            crate::train::rundir::write_classes(d, train_ds.classes())?;
        }
        let colours = train_ds.colours().to_vec();
        let last_saved = opts.resume.clone().map(|p| (p, step));
        Ok(Trainer {
            gpu: gpu.clone(),
            method,
            streams,
            eval_ds,
            probes,
            step,
            best,
            last_saved,
            observers: Vec::new(),
            opts,
            pause: None,
            classes,
            colours,
            ignore,
            split,
            cfg,
            bad_samples: Vec::new(),
            ema,
        })
    }
}

/// The weight average of `G`: a resumed run's from its checkpoint, else the current weights.
fn start_average(
    method: &dyn Method,
    decay: f32,
    resumed: Option<(&Checkpoint, &Path)>,
) -> Result<WeightEma> {
    let slots = g_slots(method)?;
    let mut ema = WeightEma::new(&live_tensors(&slots)?, decay)?;
    let Some((ck, path)) = resumed else {
        return Ok(ema);
    };
    let mut saved = ck.averaged("G");
    if saved.is_empty() {
        eprintln!(
            "{}: no weight average (ema.G.*) in the checkpoint; the average starts from its \
             weights",
            path.display()
        );
        return Ok(ema);
    }
    let mut values = Vec::with_capacity(slots.len());
    for s in &slots {
        let (shape, data) = saved.remove(&s.name).ok_or_else(|| {
            TrainError::checkpoint(
                path,
                format!("{}G.{} is missing", checkpoint::EMA_PREFIX, s.name),
            )
        })?;
        values.push((data, shape));
    }
    if let Some(k) = saved.keys().next() {
        return Err(TrainError::checkpoint(
            path,
            format!(
                "{}G.{k} is not a tensor of this run's G",
                checkpoint::EMA_PREFIX
            ),
        ));
    }
    ema.load(&values)
        .map_err(|e| TrainError::checkpoint(path, format!("weight average: {e}")))?;
    Ok(ema)
}
