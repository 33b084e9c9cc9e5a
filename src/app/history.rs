//! What the app has seen of a run: scalar series, evaluations and every snapshot, so the plots
//! and the step slider can go back in time.

use crate::train::{EvalResult, Event, Snapshot};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default)]
pub struct History {
    pub method: String,
    pub iters: usize,
    pub step: usize,
    pub it_per_s: f64,
    /// name -> (step, value), in arrival order.
    pub scalars: BTreeMap<String, Vec<[f64; 2]>>,
    pub evals: Vec<EvalResult>,
    pub snapshots: Vec<Arc<Snapshot>>,
    pub checkpoints: Vec<(usize, String)>,
    /// Human-readable log of notable events and errors, newest last.
    pub log: Vec<String>,
    pub finished: bool,
    /// The trainer's own time for the run, once it finished.
    pub seconds: Option<f64>,
}

impl History {
    pub fn apply(&mut self, e: Event) {
        match e {
            Event::Started {
                method,
                start_step,
                iters,
                run_dir,
            } => {
                self.method = method.clone();
                self.iters = iters;
                self.step = start_step;
                let dir = run_dir
                    .map(|d| format!(" -> {}", d.display()))
                    .unwrap_or_default();
                self.log
                    .push(format!("{method}: steps {start_step}..{iters}{dir}"));
            }
            Event::Step(s) => {
                self.step = s.step;
                self.it_per_s = s.it_per_s;
                for (k, v) in &s.scalars {
                    self.scalars
                        .entry(k.clone())
                        .or_default()
                        .push([s.step as f64, *v as f64]);
                }
            }
            Event::Eval(r) => {
                self.log.push(format!(
                    "eval step {}: mIoU {}",
                    r.step,
                    r.miou
                        .map(|m| format!("{:.2}%", 100.0 * m))
                        .unwrap_or_else(|| "n/a".into())
                ));
                self.evals.push(r);
            }
            Event::Snapshot(s) => self.snapshots.push(Arc::from(s)),
            Event::Checkpoint { step, path, kind } => {
                self.checkpoints.push((step, path.display().to_string()));
                if kind == "best" {
                    self.log
                        .push(format!("step {step}: new best -> {}", path.display()));
                }
            }
            Event::Interrupted { step } => {
                self.finished = true;
                self.log
                    .push(format!("stopped at step {step}; `last` checkpoint saved"));
            }
            Event::Finished { step, seconds } => {
                self.finished = true;
                self.seconds = Some(seconds);
                self.log
                    .push(format!("finished at step {step} in {seconds:.1} s"));
            }
        }
    }

    /// Reads a run directory's `metrics.jsonl` (step scalars every `log_every` steps and
    /// evaluations), so an existing run's curves show before or without resuming it.
    pub fn load_metrics(dir: &std::path::Path) -> Result<History, String> {
        let path = dir.join("metrics.jsonl");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut h = History::default();
        for (n, line) in text.lines().enumerate().filter(|l| !l.1.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
            let step = v["step"].as_u64().unwrap_or(0) as usize;
            h.step = h.step.max(step);
            match v["type"].as_str() {
                Some("step") => {
                    for (k, x) in v.as_object().into_iter().flatten() {
                        if let (false, Some(x)) = (
                            ["type", "step", "it_per_s"].contains(&k.as_str()),
                            x.as_f64(),
                        ) {
                            h.scalars
                                .entry(k.clone())
                                .or_default()
                                .push([step as f64, x]);
                        }
                    }
                }
                Some("eval") => h.evals.push(EvalResult {
                    step,
                    split: v["split"].as_str().unwrap_or("").to_string(),
                    miou: v["miou"].as_f64(),
                    pixel_acc: v["pixel_acc"].as_f64(),
                    mean_class_acc: v["mean_class_acc"].as_f64(),
                    per_class_iou: v["iou"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, x)| (k.clone(), x.as_f64()))
                        .collect(),
                    images: v["images"].as_u64().unwrap_or(0) as usize,
                    seconds: v["seconds"].as_f64().unwrap_or(0.0),
                }),
                _ => {}
            }
        }
        h.log
            .push(format!("loaded {} (up to step {})", path.display(), h.step));
        Ok(h)
    }

    /// A run directory as the app would have seen it: logged metrics and the snapshot PNGs
    /// up to `up_to` (the checkpoint a resumed run continues from).
    pub fn load_run(dir: &std::path::Path, up_to: Option<usize>) -> Result<History, String> {
        let mut h = History::load_metrics(dir)?;
        let classes = h.evals.last().map(|r| r.per_class_iou.len());
        h.snapshots = super::load::load_snapshots(dir, up_to, classes)?;
        if let Some(s) = h.snapshots.last() {
            h.log.push(format!(
                "loaded {} snapshots (steps {}..{})",
                h.snapshots.len(),
                h.snapshots[0].step,
                s.step
            ));
        }
        Ok(h)
    }

    /// Class names from the latest evaluation (snapshots carry colours only).
    pub fn class_names(&self, classes: usize) -> Vec<String> {
        match self.evals.last() {
            Some(r) if r.per_class_iou.len() == classes => {
                r.per_class_iou.iter().map(|c| c.0.clone()).collect()
            }
            _ => (0..classes).map(|c| format!("class {c}")).collect(),
        }
    }
}
