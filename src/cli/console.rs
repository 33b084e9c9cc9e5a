//! The terminal side of a run: the progress bar and log lines observing the trainer's events,
//! and the evaluation table `advseg train` logs and `advseg eval` prints.

use advseg::train::{EvalResult, Event, Observer};
use indicatif::{ProgressBar, ProgressStyle};

/// Progress bar and log lines.
pub(super) struct Console {
    bar: ProgressBar,
    log_every: usize,
    balance: advseg::train::balance::BalanceMonitor,
}

impl Console {
    pub(super) fn new(log_every: usize, quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
            )
            .expect("valid template"),
        );
        Console {
            bar,
            log_every: log_every.max(1),
            balance: Default::default(),
        }
    }
    /// A closed stdout (`advseg train … | head`) is ignored: the run goes on and saves its
    /// checkpoints rather than dying in a panic mid-step.
    fn say(&self, s: String) {
        self.bar.suspend(|| {
            let _ = outln!("{s}");
        });
    }
}

/// The losses shown on the bar.
const MAIN: &[&str] = &["loss_seg", "loss_adv", "loss_semi", "loss_d"];

impl Observer for Console {
    fn on_event(&mut self, e: &Event) {
        match e {
            Event::Started {
                method,
                start_step,
                iters,
                run_dir,
            } => {
                self.bar.set_length(*iters as u64);
                self.bar.set_position(*start_step as u64);
                self.bar.reset_eta();
                let dir = run_dir
                    .as_ref()
                    .map(|d| format!(" -> {}", d.display()))
                    .unwrap_or_default();
                self.say(format!("{method}: steps {start_step}..{iters}{dir}"));
            }
            Event::Step(s) => {
                if let Some(w) = self.balance.observe(s) {
                    self.say(format!("warning: {w}"));
                }
                self.bar.set_position(s.step as u64);
                let main: Vec<String> = MAIN
                    .iter()
                    .filter_map(|k| s.get(k).map(|v| format!("{k} {v:.4}")))
                    .collect();
                self.bar
                    .set_message(format!("{:.2} it/s {}", s.it_per_s, main.join(" ")));
                if s.step.is_multiple_of(self.log_every) || s.step == s.iters {
                    let all: Vec<String> = s
                        .scalars
                        .iter()
                        .map(|(k, v)| format!("{k}={v:.5}"))
                        .collect();
                    self.say(format!(
                        "step {:>6}/{} {:.2} it/s {}",
                        s.step,
                        s.iters,
                        s.it_per_s,
                        all.join(" ")
                    ));
                }
            }
            Event::Eval(r) => self.say(eval_table(r)),
            Event::Checkpoint { step, path, kind } if *kind == "best" => {
                self.say(format!("step {step}: new best -> {}", path.display()))
            }
            Event::Finished { step, seconds } => {
                self.bar.finish_and_clear();
                self.say(format!("finished at step {step} in {seconds:.1} s"));
            }
            _ => {}
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:6.2}", 100.0 * x))
        .unwrap_or_else(|| "   n/a".into())
}

pub(super) fn eval_table(r: &EvalResult) -> String {
    let mut s = format!(
        "eval step {} on {} ({} images, {:.1} s): mIoU {} pixel acc {} mean class acc {}\n",
        r.step,
        r.split,
        r.images,
        r.seconds,
        pct(r.miou),
        pct(r.pixel_acc),
        pct(r.mean_class_acc)
    );
    if let Some(line) = signals_line(&r.signals) {
        s += &format!("  {line}\n");
    }
    for (n, v) in &r.per_class_iou {
        s += &format!("  {n:<16} {}\n", pct(*v));
    }
    s.pop();
    s
}

/// The method's signals in one line (docs/SIGNALS.md says what they mean); `None` when the
/// method has none.
fn signals_line(g: &advseg::metrics::signals::SignalScores) -> Option<String> {
    let p = |v: Option<f64>| v.map_or("n/a".into(), |x| format!("{:.1}%", 100.0 * x));
    let mut parts = Vec::new();
    if let Some(a) = g.d_auroc {
        parts.push(format!("D-uncertainty AUROC {a:.3}"));
    }
    if let Some(t) = g.gate_t {
        parts.push(format!(
            "gate T {t:.2}: precision {} coverage {}",
            p(g.gate_precision),
            p(g.gate_coverage)
        ));
    }
    if g.cam_miou.is_some() {
        parts.push(format!("thresholded-CAM mIoU {}", p(g.cam_miou)));
    }
    (!parts.is_empty()).then(|| format!("signals: {}", parts.join(" · ")))
}
