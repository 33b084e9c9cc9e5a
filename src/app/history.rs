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
                self.log
                    .push(format!("finished at step {step} in {seconds:.1} s"));
            }
        }
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
