//! The signal metrics in the Plots tab (docs/SIGNALS.md says what they mean): D-uncertainty
//! AUROC, semi-gate precision / coverage at T_semi and thresholded-CAM mIoU over the
//! evaluations; the gate's precision / coverage curve over T_semi at the latest evaluation;
//! and which confusion matrix the per-class view shows (the whole split's when the
//! evaluation logged one, else the probes').

use super::history::History;
use super::plots::{plot, Axes, Series};
use crate::metrics::signals::SignalScores;
use egui_plot::{Legend, Line, Plot, PlotPoints, VLine};

/// Title of the signals-over-steps plot.
pub const SIGNALS_TITLE: &str = "signal quality at evaluations";

/// The signal series over the evaluations' steps (values in [0, 1]), and D's AUROC on the
/// probe images at each snapshot; empty series dropped.
pub fn signal_series(h: &History) -> Vec<(&'static str, Vec<[f64; 2]>)> {
    type Field = fn(&SignalScores) -> Option<f64>;
    let fields: [(&'static str, Field); 4] = [
        ("D-uncertainty AUROC", |s| s.d_auroc),
        ("gate precision", |s| s.gate_precision),
        ("gate coverage", |s| s.gate_coverage),
        ("thresholded-CAM mIoU", |s| s.cam_miou),
    ];
    fields
        .iter()
        .map(|(name, f)| {
            let pts: Vec<[f64; 2]> = h
                .evals
                .iter()
                .filter_map(|r| f(&r.signals).map(|v| [r.step as f64, v]))
                .collect();
            (*name, pts)
        })
        .chain(std::iter::once((
            "D-uncertainty AUROC, probes",
            // Reopened runs too: `History::load_run` reads them from `probe_signals` lines.
            h.snapshots
                .iter()
                .filter_map(|s| s.signals.d_auroc.map(|v| [s.step as f64, v]))
                .collect(),
        )))
        .filter(|s| !s.1.is_empty())
        .collect()
}

/// The signals plot and the gate curve; returns the readout under the cursor.
pub fn signals_ui(ui: &mut egui::Ui, h: &History, axes: Axes, height: f32) -> Option<String> {
    let series: Vec<Series> = signal_series(h)
        .into_iter()
        .map(|(name, pts)| Series {
            name: name.into(),
            pts: super::plots::to_axis(h, &pts, axes),
            colour: None,
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    let over = plot(ui, SIGNALS_TITLE, height, series, axes);
    gate_curve_ui(ui, h, height);
    over
}

/// Title of the gate-curve plot for the evaluation at `step`.
pub fn gate_curve_title(step: usize) -> String {
    format!("semi gate over T_semi at step {step} (precision, coverage; line: current T_semi)")
}

/// Precision and coverage of the gate `σ(D) ≥ T` against T at the latest evaluation that has
/// the curve, with the method's T_semi marked.
fn gate_curve_ui(ui: &mut egui::Ui, h: &History, height: f32) {
    let Some(r) = h
        .evals
        .iter()
        .rev()
        .find(|r| !r.signals.gate_curve.is_empty())
    else {
        return;
    };
    let c = &r.signals.gate_curve;
    let title = gate_curve_title(r.step);
    ui.label(&title);
    let precision: Vec<[f64; 2]> = c
        .iter()
        .filter_map(|p| p.precision.map(|v| [p.t, v]))
        .collect();
    let coverage: Vec<[f64; 2]> = c.iter().map(|p| [p.t, p.coverage]).collect();
    Plot::new(title)
        .height(height)
        .legend(Legend::default())
        .allow_scroll(false)
        .include_x(0.0)
        .include_x(1.0)
        .include_y(0.0)
        .include_y(1.0)
        .x_axis_label("T_semi")
        .show(ui, |p| {
            p.line(Line::new("precision", PlotPoints::from(precision)));
            p.line(Line::new("coverage", PlotPoints::from(coverage)));
            if let Some(t) = r.signals.gate_t {
                p.vline(VLine::new("T_semi", t));
            }
        });
}

/// A confusion matrix to show: title and `m[gt][pred]`.
pub struct ConfusionView {
    pub title: String,
    pub m: Vec<Vec<u64>>,
}

/// The latest evaluation's whole-split matrix when it has one, else the latest snapshot's
/// probe images.
pub fn confusion_view(h: &History) -> Option<ConfusionView> {
    if let Some(r) = h.evals.last() {
        let n = r.per_class_iou.len();
        if n > 0 && r.confusion.len() == n * n {
            return Some(ConfusionView {
                title: format!(
                    "confusion matrix, whole {} split ({} images) at step {}",
                    r.split, r.images, r.step
                ),
                m: r.confusion.chunks(n).map(<[u64]>::to_vec).collect(),
            });
        }
    }
    let s = h.snapshots.last()?;
    Some(ConfusionView {
        title: format!("confusion matrix, probe images at step {}", s.step),
        m: super::plots::confusion(s),
    })
}
