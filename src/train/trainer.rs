//! The one training loop. It sets the poly learning rates, asks the method for a step, reads
//! the step's scalars back in one transfer (they are needed to stop on NaN/inf anyway),
//! evaluates, snapshots the probe images and checkpoints on fixed intervals, and tells every
//! observer. Whether observers exist never changes what the GPU does. With `ema_decay` it also
//! keeps a weight average of `G`, swapped in for evaluations and snapshots only.

use super::checkpoint::{self, Checkpoint, CkptMeta};
use super::config::RunConfig;
use super::error::TrainError;
use super::eval::{eval_batch, evaluate, probe_signals};
use super::event::{EvalResult, Event, Observer, ProbeSnapshot, Snapshot, StepScalars};
use super::maps::HostMap;
use super::method::{Method, StepCtx, StepLosses};
use super::methods::{self, BuildEnv};
use super::streams::{StreamSetup, Streams};
use crate::data::semi::{Amount, SemiSplit};
use crate::data::{self, augment, AugConfig, Dataset};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::gpu::GpuError;
use crate::nn::arch::Model;
use crate::optim::ema::WeightEma;
use crate::optim::poly_lr;
use crate::tensor::{DType, Tensor};
use crate::train::error::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

mod setup;
pub use setup::check_resume;

/// Where weights come from besides initialisation.
#[derive(Clone, Debug, Default)]
pub struct TrainerOptions {
    /// Run directory (config, split, metrics, snapshots, checkpoints). `None`: nothing written.
    pub run_dir: Option<PathBuf>,
    /// Continue from this training checkpoint (networks, optimisers, step, stream positions).
    pub resume: Option<PathBuf>,
    /// Initialise the segmentation network from these weights (an advseg checkpoint's `G` or a
    /// plain state_dict); tensors whose names/shapes match are copied, as the official code does.
    pub load_from: Option<PathBuf>,
    /// Set to stop after the current step (Ctrl-C, app button); `last` is saved first.
    pub stop: Option<Arc<AtomicBool>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Interrupted,
}

struct Probe {
    name: String,
    x: Tensor,
    image: data::RgbImage,
    label: Vec<u8>,
}

pub struct Trainer {
    gpu: Arc<Gpu>,
    cfg: RunConfig,
    method: Box<dyn Method>,
    streams: Streams,
    eval_ds: Arc<dyn Dataset>,
    probes: Vec<Probe>,
    step: usize,
    best: Option<(String, f64, usize)>,
    last_saved: Option<(PathBuf, usize)>,
    observers: Vec<Box<dyn Observer>>,
    opts: TrainerOptions,
    /// While set, the loop waits between iterations (the app's Pause); a stop request still ends it.
    pause: Option<Arc<AtomicBool>>,
    classes: usize,
    colours: Vec<[u8; 3]>,
    ignore: u8,
    pub split: SemiSplit,
    /// (step, sample name, error) of every sample skipped with `on_bad_sample=skip`.
    bad_samples: Vec<(usize, String, String)>,
    /// The weight average of `G` (`ema_decay` > 0), over `G`'s slots in store order.
    ema: Option<WeightEma>,
}

/// `G`'s slots: the network evaluation scores, whose weights the average follows.
fn g_slots(method: &dyn Method) -> Result<Vec<crate::nn::param::Param>> {
    let models = method.models();
    let (_, g) = models.iter().find(|(n, _)| *n == "G").ok_or_else(|| {
        TrainError::from(Error::invalid(
            "ema",
            "the method has no network named G to average",
        ))
    })?;
    Ok(g.store.slots().to_vec())
}

fn live_tensors(slots: &[crate::nn::param::Param]) -> Result<Vec<Tensor>> {
    Ok(slots
        .iter()
        .map(|s| s.get())
        .collect::<std::result::Result<_, _>>()?)
}

impl Trainer {
    /// Samples skipped so far with `on_bad_sample=skip`: (step, name, error).
    pub fn bad_samples(&self) -> &[(usize, String, String)] {
        &self.bad_samples
    }

    /// Where the last good checkpoint is, for messages about a stopped run.
    fn kept(&self) -> String {
        match &self.last_saved {
            Some((p, s)) => format!(
                "the last good checkpoint (step {s}) is kept at {}",
                p.display()
            ),
            None => "no checkpoint had been written yet".to_string(),
        }
    }

    /// Turns a failed step into the error to report, saving `last` first when the step failed
    /// on a bad sample (nothing was updated yet: every method fetches its batches before its
    /// optimiser steps), so no progress is lost.
    fn step_failed(&mut self, e: TrainError) -> TrainError {
        match e {
            TrainError::Data(d @ crate::data::DataError::Sample { .. }) => {
                let saved = match self.save("last") {
                    Ok(()) if self.opts.run_dir.is_some() => format!(
                        "`last` was saved at step {} ({})",
                        self.step,
                        self.last_saved
                            .as_ref()
                            .map(|p| p.0.display().to_string())
                            .unwrap_or_default()
                    ),
                    Ok(()) => "no run directory, nothing saved".to_string(),
                    Err(se) => format!("saving `last` failed too: {se}; {}", self.kept()),
                };
                TrainError::BadSample {
                    step: self.step + 1,
                    why: d.to_string(),
                    saved,
                }
            }
            e if e.is_too_large() => crop_too_large(self.cfg.crop(), self.cfg.common.batch, &e),
            e => e,
        }
    }

    /// Records samples the loaders skipped in this step (metrics.jsonl and the summary).
    fn note_skipped(&mut self) {
        for (name, why) in self.streams.take_skipped() {
            eprintln!("skipped bad sample {name}: {why}");
            if let Some(d) = &self.opts.run_dir {
                let line = serde_json::json!({"type": "bad_sample", "step": self.step,
                                              "name": name, "error": why});
                let _ = super::rundir::append_jsonl(&d.join("metrics.jsonl"), &line);
            }
            self.bad_samples.push((self.step, name, why));
        }
    }

    /// Installs a pause flag checked between iterations.
    pub fn set_pause(&mut self, pause: Arc<AtomicBool>) {
        self.pause = Some(pause);
    }

    pub fn add_observer(&mut self, o: Box<dyn Observer>) {
        self.observers.push(o);
    }
    pub fn step(&self) -> usize {
        self.step
    }
    pub fn config(&self) -> &RunConfig {
        &self.cfg
    }
    pub fn method(&self) -> &dyn Method {
        self.method.as_ref()
    }

    fn emit(&mut self, e: Event) {
        for o in &mut self.observers {
            o.on_event(&e);
        }
    }

    /// Reads all step scalars with one GPU→host transfer.
    fn read_scalars(&self, losses: &StepLosses) -> Result<Vec<f32>> {
        if losses.is_empty() {
            return Ok(vec![]);
        }
        let all = Tensor::zeros(&self.gpu, &[losses.len()], DType::F32)?;
        for (i, (name, t)) in losses.iter().enumerate() {
            if t.numel() != 1 || t.dtype() != DType::F32 {
                return Err(Error::invalid(
                    "train",
                    format!("scalar {name:?} has shape {:?}", t.shape()),
                )
                .into());
            }
            self.gpu
                .copy(t.buffer(), 0, all.buffer(), (i * 4) as u64, 4);
        }
        Ok(all.to_vec_f32()?)
    }

    /// Trains until `iters` or a stop request.
    pub fn run(&mut self) -> Result<Outcome> {
        let c = self.cfg.common.clone();
        let t_start = Instant::now();
        self.emit(Event::Started {
            method: c.method.clone(),
            start_step: self.step,
            iters: c.iters,
            run_dir: self.opts.run_dir.clone(),
        });
        if self.step == 0 && c.eval_at_start {
            self.evaluate()?;
            self.snapshot()?;
        }
        let mut window = (Instant::now(), self.step);
        while self.step < c.iters {
            let stopping = |t: &Self| {
                t.opts
                    .stop
                    .as_ref()
                    .is_some_and(|s| s.load(Ordering::SeqCst))
            };
            while self
                .pause
                .as_ref()
                .is_some_and(|p| p.load(Ordering::SeqCst))
                && !stopping(self)
            {
                std::thread::sleep(std::time::Duration::from_millis(30));
                // The pause is not training time.
                window = (Instant::now(), self.step);
            }
            if self
                .opts
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::SeqCst))
            {
                self.save("last")?;
                self.emit(Event::Interrupted { step: self.step });
                return Ok(Outcome::Interrupted);
            }
            let mut scalars = Vec::new();
            for slot in self.method.optimizers() {
                let lr = poly_lr(slot.base_lr, self.step, c.iters, c.power);
                slot.opt.set_lr(lr);
                scalars.push((format!("lr/{}", slot.name), lr));
            }
            let losses = {
                let mut ctx = StepCtx {
                    step: self.step,
                    iters: c.iters,
                    streams: &mut self.streams,
                };
                self.method.step(&mut ctx)
            };
            let losses = match losses {
                Ok(l) => l,
                Err(e) => return Err(self.step_failed(e)),
            };
            let values = self.read_scalars(&losses)?;
            for ((name, _), v) in losses.iter().zip(&values) {
                if !v.is_finite() {
                    return Err(TrainError::NonFinite {
                        term: name.clone(),
                        value: *v,
                        step: self.step + 1,
                        kept: self.kept(),
                    });
                }
            }
            self.step += 1;
            if let Some(ema) = &mut self.ema {
                ema.update(&live_tensors(&g_slots(self.method.as_ref())?)?, self.step)?;
            }
            self.note_skipped();
            if !self.bad_samples.is_empty() {
                scalars.push(("bad_samples".into(), self.bad_samples.len() as f32));
            }
            scalars.splice(0..0, losses.iter().map(|l| l.0.clone()).zip(values));
            let dt = window.0.elapsed().as_secs_f64();
            let it_per_s = (self.step - window.1) as f64 / dt.max(1e-9);
            if dt > 2.0 {
                window = (Instant::now(), self.step);
            }
            self.emit(Event::Step(StepScalars {
                step: self.step,
                iters: c.iters,
                scalars,
                it_per_s,
            }));
            let step = self.step;
            let at = |every: usize| every > 0 && step.is_multiple_of(every);
            let last = self.step == c.iters;
            let eval_now = at(c.eval_every) || last;
            let snap = eval_now || at(c.snapshot_every);
            // One swap of the weight average around both: each swap copies all of G twice.
            let improved = if snap {
                self.with_average(|t| {
                    let improved = eval_now && t.evaluate_now()?;
                    t.snapshot_now()?;
                    Ok(improved)
                })?
            } else {
                false
            };
            if eval_now || at(c.checkpoint_every) {
                self.save("last")?;
            }
            if improved {
                self.save("best")?;
            }
        }
        let seconds = t_start.elapsed().as_secs_f64();
        self.emit(Event::Finished {
            step: self.step,
            seconds,
        });
        Ok(Outcome::Finished)
    }

    /// Runs `f` with the weight average swapped into `G` (if the run keeps one), restoring
    /// the live weights afterwards even when `f` fails.
    fn with_average<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        let Some(mut ema) = self.ema.take() else {
            return f(self);
        };
        let live = live_tensors(&g_slots(self.method.as_ref())?)?;
        if let Err(e) = ema.swap(&live) {
            self.ema = Some(ema);
            return Err(e.into());
        }
        let r = f(self);
        let back = ema.swap(&live);
        self.ema = Some(ema);
        let r = r?;
        back?;
        Ok(r)
    }

    /// Evaluates on the evaluation split (with the weight average, if kept); returns whether
    /// the best score improved.
    pub fn evaluate(&mut self) -> Result<bool> {
        self.with_average(Self::evaluate_now)
    }

    fn evaluate_now(&mut self) -> Result<bool> {
        let b = eval_batch(self.eval_ds.as_ref(), self.cfg.common.eval_batch);
        let (res, _) = evaluate(
            &self.gpu,
            self.method.as_ref(),
            &self.eval_ds,
            b,
            self.step,
            &self.cfg.normalise(),
        )?;
        let metric = self.cfg.common.best_metric.clone();
        let v = metric_value(&res, &metric);
        let improved =
            self.step > 0 && v.is_some_and(|v| self.best.as_ref().is_none_or(|b| v > b.1));
        if improved {
            self.best = Some((metric, v.expect("checked"), self.step));
        }
        self.emit(Event::Eval(res));
        Ok(improved)
    }

    /// Reads the probe images' outputs back (with the weight average, if kept) and emits a
    /// snapshot.
    pub fn snapshot(&mut self) -> Result<()> {
        self.with_average(Self::snapshot_now)
    }

    fn snapshot_now(&mut self) -> Result<()> {
        let mut probes = Vec::new();
        for p in &self.probes {
            let out = self.method.probe(&p.x)?;
            let (h, w) = (p.image.h, p.image.w);
            let probs = out.probs.to_vec_f32()?;
            let pred = crate::metrics::argmax_chw(&probs, self.classes, h, w);
            let maps = out
                .maps
                .iter()
                .map(HostMap::read)
                .collect::<crate::Result<_>>()?;
            probes.push(ProbeSnapshot {
                name: p.name.clone(),
                h,
                w,
                input: p.image.data.clone(),
                gt: p.label.clone(),
                pred,
                probs,
                maps,
            });
        }
        let train_maps = (self.method.train_maps().iter())
            .map(HostMap::read)
            .collect::<crate::Result<_>>()?;
        let signals = probe_signals(&probes, self.ignore, self.classes)?;
        let snap = Snapshot {
            step: self.step,
            classes: self.classes,
            colours: self.colours.clone(),
            ignore: self.ignore,
            probes,
            train_maps,
            signals,
        };
        self.emit(Event::Snapshot(Box::new(snap)));
        Ok(())
    }

    fn save(&mut self, kind: &'static str) -> Result<()> {
        let Some(dir) = self.opts.run_dir.clone() else {
            return Ok(());
        };
        let path = dir.join(format!("{kind}.safetensors"));
        // A finite loss can still come with an update that overflowed the weights (lr 1e6:
        // loss 1.5e31, then inf weights); such state must never replace a good checkpoint.
        let bad = checkpoint::non_finite_state(&self.gpu, self.method.as_mut())?;
        if !bad.is_empty() {
            return Err(TrainError::NonFiniteState {
                step: self.step,
                what: crate::nn::checkpoint::describe_non_finite(&bad),
                kept: self.kept(),
            });
        }
        let meta = CkptMeta {
            method: self.cfg.common.method.clone(),
            arch: self.cfg.common.arch.clone(),
            classes: self.classes,
            step: self.step,
            positions: self.streams.positions(),
            best: self.best.clone(),
            config_toml: self.cfg.to_toml(),
        };
        let mut extra = crate::nn::checkpoint::HostTensors::new();
        if let Some(ema) = &self.ema {
            let slots = g_slots(self.method.as_ref())?;
            for (s, a) in slots.iter().zip(ema.averages()) {
                extra.insert(
                    format!("{}G.{}", checkpoint::EMA_PREFIX, s.name),
                    (a.shape().to_vec(), a.to_vec_f32()?),
                );
            }
        }
        checkpoint::save(&path, self.method.as_mut(), &meta, extra)?;
        if kind == "last" {
            self.last_saved = Some((path.clone(), self.step));
        }
        self.emit(Event::Checkpoint {
            step: self.step,
            path,
            kind,
        });
        Ok(())
    }
}

/// The error for a training batch too large for the device (one buffer over
/// `max_buffer_size`, or a tensor over one storage binding in an op that cannot split it),
/// naming the settings to change.
fn crop_too_large(crop: [usize; 2], batch: usize, e: &dyn std::fmt::Display) -> TrainError {
    TrainError::bad_value(
        "crop",
        format!(
            "{}x{} with batch {batch} is too large for this device ({e}); use a smaller \
             --crop or --batch",
            crop[0], crop[1]
        ),
    )
}

/// The value of `metric` in an evaluation.
pub fn metric_value(r: &EvalResult, metric: &str) -> Option<f64> {
    match metric {
        "pixel_acc" => r.pixel_acc,
        _ => r.miou,
    }
}
