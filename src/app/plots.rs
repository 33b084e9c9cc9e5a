//! Live plots of the run: every loss term, D outputs, learning rates, mIoU and per-class IoU
//! (the signal-quality plots are `super::signals`),
//! with EMA smoothing, value readouts under the cursor, log-scale y, per-series toggles and a
//! step or wall-clock x axis. Run comparison overlays several runs through the same plot.

use super::history::History;
use super::state::UiState;
use egui_plot::{Legend, Line, Plot, PlotPoints};

/// Exponential moving average (`a` = 0: raw), as TensorBoard smooths.
pub fn smooth(pts: &[[f64; 2]], a: f64) -> Vec<[f64; 2]> {
    let mut out = Vec::with_capacity(pts.len());
    let mut m: Option<f64> = None;
    for p in pts {
        let v = match m {
            Some(m) => a * m + (1.0 - a) * p[1],
            None => p[1],
        };
        m = Some(v);
        out.push([p[0], v]);
    }
    out
}

/// Scalar names by plot: losses, other step scalars (D outputs, counts), learning rates.
pub fn groups(h: &History) -> [(&'static str, Vec<String>); 3] {
    let mut loss = vec![];
    let mut other = vec![];
    let mut lr = vec![];
    for k in h.scalars.keys() {
        if k.starts_with("lr/") {
            lr.push(k.clone());
        } else if k.starts_with("loss") {
            loss.push(k.clone());
        } else {
            other.push(k.clone());
        }
    }
    [
        ("losses", loss),
        ("D outputs and other scalars", other),
        ("learning rates", lr),
    ]
}

/// One curve: (x, value) points with x already on the chosen axis.
pub struct Series {
    pub name: String,
    pub pts: Vec<[f64; 2]>,
    pub colour: Option<egui::Color32>,
}

/// How the axes are drawn.
#[derive(Clone, Copy)]
pub struct Axes {
    pub log_y: bool,
    pub time_x: bool,
}

impl Axes {
    pub fn of(st: &UiState) -> Axes {
        Axes {
            log_y: st.log_y,
            time_x: st.time_axis,
        }
    }

    fn x_text(self, x: f64) -> String {
        if self.time_x {
            format!("t {}", clock(x))
        } else {
            format!("step {x:.0}")
        }
    }
}

/// `h:mm:ss` (or `m:ss`) of a number of seconds.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A value with about four significant digits.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// The readout at plot x: each series' point nearest to it (series sorted by x).
pub fn readout_at(series: &[Series], x: f64, axes: Axes) -> Option<String> {
    let mut best: Option<f64> = None;
    let near: Vec<(&str, [f64; 2])> = series
        .iter()
        .filter_map(|s| {
            let i = s.pts.partition_point(|p| p[0] < x);
            let cands = [i.checked_sub(1), Some(i)];
            let p = cands
                .iter()
                .flatten()
                .filter_map(|&j| s.pts.get(j))
                .min_by(|a, b| (a[0] - x).abs().total_cmp(&(b[0] - x).abs()))?;
            if best.is_none_or(|b| (p[0] - x).abs() < (b - x).abs()) {
                best = Some(p[0]);
            }
            Some((s.name.as_str(), *p))
        })
        .collect();
    let at = best?;
    let mut lines = vec![axes.x_text(at)];
    for (name, p) in near {
        if (p[0] - at).abs() <= 1e-9 * at.abs().max(1.0) {
            lines.push(format!("{name}: {}", fmt_value(p[1])));
        }
    }
    Some(lines.join("\n"))
}

/// Draws one plot; returns the readout under the cursor, if the cursor is over it.
pub fn plot(
    ui: &mut egui::Ui,
    title: &str,
    height: f32,
    series: Vec<Series>,
    axes: Axes,
) -> Option<String> {
    ui.label(title);
    let mut plot = Plot::new(title)
        .height(height)
        .legend(Legend::default())
        .allow_scroll(false)
        .show_x(false)
        .show_y(false)
        .x_axis_label(if axes.time_x { "time" } else { "step" });
    if axes.time_x {
        plot = plot.x_axis_formatter(|m, _| clock(m.value));
    }
    if axes.log_y {
        plot = plot.y_axis_formatter(|m, _| fmt_value(10f64.powf(m.value)));
    }
    let shown: Vec<Series> = series
        .into_iter()
        .map(|s| Series {
            pts: if axes.log_y {
                s.pts
                    .iter()
                    .filter(|p| p[1] > 0.0)
                    .map(|p| [p[0], p[1].log10()])
                    .collect()
            } else {
                s.pts
            },
            ..s
        })
        .collect();
    let lines: Vec<Line> = shown
        .iter()
        .map(|s| {
            let l = Line::new(s.name.clone(), PlotPoints::from(s.pts.clone()));
            match s.colour {
                Some(c) => l.color(c),
                None => l,
            }
        })
        .collect();
    let r = plot.show(ui, |p| {
        for l in lines {
            p.line(l);
        }
    });
    let pos = r.response.hover_pos()?;
    let x = r.transform.value_from_position(pos).x;
    // Values are shown as logged, not as their logarithms.
    let raw: Vec<Series> = shown
        .into_iter()
        .map(|s| Series {
            pts: if axes.log_y {
                s.pts.iter().map(|p| [p[0], 10f64.powf(p[1])]).collect()
            } else {
                s.pts
            },
            ..s
        })
        .collect();
    let text = readout_at(&raw, x, axes)?;
    r.response.on_hover_text_at_pointer(text.clone());
    Some(text)
}

/// The series' x on the chosen axis.
pub fn to_axis(h: &History, pts: &[[f64; 2]], axes: Axes) -> Vec<[f64; 2]> {
    if axes.time_x {
        pts.iter().map(|p| [h.time_at(p[0]), p[1]]).collect()
    } else {
        pts.to_vec()
    }
}

/// Class colours of the run, for per-class curves and tables.
pub fn class_colour(h: &History, c: usize) -> Option<egui::Color32> {
    let col = h
        .classes
        .as_ref()
        .and_then(|k| k.colours.get(c).copied())
        .or_else(|| h.snapshots.last().and_then(|s| s.colours.get(c).copied()))?;
    Some(egui::Color32::from_rgb(col[0], col[1], col[2]))
}

/// The plot controls: smoothing, log y, x axis and the series toggles.
pub fn controls(ui: &mut egui::Ui, st: &mut UiState, names: &[String]) {
    ui.horizontal_wrapped(|ui| {
        ui.add(egui::Slider::new(&mut st.smoothing, 0.0..=0.99).text("smoothing"));
        ui.checkbox(&mut st.log_y, "log y");
        ui.label("x:");
        ui.selectable_value(&mut st.time_axis, false, "step");
        ui.selectable_value(&mut st.time_axis, true, "wall clock");
    });
    if names.is_empty() {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("series:");
        for n in names {
            let mut on = !st.hidden_series.contains(n);
            if ui
                .toggle_value(&mut on, n.as_str())
                .on_hover_text("show or hide this series in every plot")
                .changed()
            {
                if on {
                    st.hidden_series.retain(|x| x != n);
                } else {
                    st.hidden_series.push(n.clone());
                }
            }
        }
    });
}

/// Every plot of a run; `hover` receives the readout under the cursor.
pub fn plots_ui(
    ui: &mut egui::Ui,
    h: &History,
    st: &mut UiState,
    height: f32,
    hover: &mut Option<String>,
) {
    let names: Vec<String> = h.scalars.keys().cloned().collect();
    controls(ui, st, &names);
    if h.scalars.is_empty() {
        ui.label("No steps yet.");
    }
    let axes = Axes::of(st);
    let a = st.smoothing as f64;
    let mut over = None;
    for (title, keys) in groups(h) {
        let keys: Vec<&String> = keys
            .iter()
            .filter(|k| !st.hidden_series.contains(k))
            .collect();
        if keys.is_empty() {
            continue;
        }
        let series = keys
            .iter()
            .map(|k| Series {
                name: k.to_string(),
                pts: to_axis(
                    h,
                    &smooth(
                        &h.scalars[*k],
                        if title == "learning rates" { 0.0 } else { a },
                    ),
                    axes,
                ),
                colour: None,
            })
            .collect();
        over = plot(ui, title, height, series, axes).or(over);
    }
    if !h.evals.is_empty() {
        let miou: Vec<[f64; 2]> = h
            .evals
            .iter()
            .filter_map(|r| r.miou.map(|m| [r.step as f64, 100.0 * m]))
            .collect();
        let s = vec![Series {
            name: "mIoU".into(),
            pts: to_axis(h, &miou, axes),
            colour: None,
        }];
        over = plot(ui, "mIoU (%)", height, s, axes).or(over);
        let classes = h.evals.last().map(|r| r.per_class_iou.len()).unwrap_or(0);
        let per: Vec<Series> = (0..classes)
            .map(|c| {
                let name = h.evals.last().expect("non-empty").per_class_iou[c]
                    .0
                    .clone();
                let pts: Vec<[f64; 2]> = h
                    .evals
                    .iter()
                    .filter_map(|r| {
                        r.per_class_iou
                            .get(c)
                            .and_then(|x| x.1)
                            .map(|v| [r.step as f64, 100.0 * v])
                    })
                    .collect();
                Series {
                    name,
                    pts: to_axis(h, &pts, axes),
                    colour: class_colour(h, c),
                }
            })
            .collect();
        over = plot(ui, "per-class IoU (%)", height, per, axes).or(over);
        over = super::signals::signals_ui(ui, h, axes, height).or(over);
        iou_table(ui, h);
    }
    if let Some(v) = super::signals::confusion_view(h) {
        confusion_ui(ui, h, &v);
    }
    // Keeps the last readout while the cursor is between plots.
    if over.is_some() {
        *hover = over;
    }
}

/// Per class: the latest IoU and the best with its step, names in the class colour.
pub fn iou_table(ui: &mut egui::Ui, h: &History) {
    let Some(last) = h.evals.last() else { return };
    ui.label("per-class IoU");
    egui::Grid::new("iou_table")
        .striped(true)
        .num_columns(4)
        .show(ui, |ui| {
            for t in ["class", "latest (%)", "best (%)", "best step"] {
                ui.strong(t);
            }
            ui.end_row();
            for (c, (name, v)) in last.per_class_iou.iter().enumerate() {
                let best = h
                    .evals
                    .iter()
                    .filter_map(|r| {
                        r.per_class_iou
                            .get(c)
                            .and_then(|x| x.1)
                            .map(|v| (v, r.step))
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                let text = egui::RichText::new(name.as_str()).strong();
                match class_colour(h, c) {
                    Some(col) => ui.label(text.color(col)),
                    None => ui.label(text),
                };
                let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.1}", 100.0 * v));
                ui.label(pct(*v));
                ui.label(pct(best.map(|b| b.0)));
                ui.label(best.map_or("–".into(), |b| b.1.to_string()));
                ui.end_row();
            }
        });
}

/// Pixel confusion matrix of a snapshot's probe images: `m[gt][pred]`, ignored pixels left
/// out (the view for runs whose evaluations did not log the whole split's).
pub fn confusion(s: &crate::train::Snapshot) -> Vec<Vec<u64>> {
    let c = s.classes;
    let mut m = vec![vec![0u64; c]; c];
    for p in &s.probes {
        for (&g, &q) in p.gt.iter().zip(&p.pred) {
            if g != s.ignore && (g as usize) < c && (q as usize) < c {
                m[g as usize][q as usize] += 1;
            }
        }
    }
    m
}

/// The confusion matrix as a table: rows are ground truth, columns predictions, cells the
/// share of the row, shaded by it.
pub fn confusion_ui(ui: &mut egui::Ui, h: &History, v: &super::signals::ConfusionView) {
    let m = &v.m;
    let classes = m.len();
    let names = h.class_names(classes);
    ui.label(format!(
        "{} (rows: ground truth, columns: prediction, % of row)",
        v.title
    ));
    let name = |c: usize| {
        names
            .get(c)
            .cloned()
            .unwrap_or_else(|| format!("class {c}"))
    };
    let coloured = |c: usize| {
        let t = egui::RichText::new(name(c)).strong();
        match class_colour(h, c) {
            Some(k) => t.color(k),
            None => t,
        }
    };
    egui::Grid::new("confusion")
        .num_columns(classes + 1)
        .show(ui, |ui| {
            ui.label("");
            for c in 0..classes {
                ui.label(coloured(c));
            }
            ui.end_row();
            for (g, row) in m.iter().enumerate() {
                ui.label(coloured(g));
                let total: u64 = row.iter().sum();
                for &n in row {
                    let f = n as f64 / total.max(1) as f64;
                    let shade = (40.0 + 160.0 * f) as u8;
                    ui.label(
                        egui::RichText::new(format!("{:.1}", 100.0 * f))
                            .monospace()
                            .background_color(egui::Color32::from_rgb(20, shade / 2, shade)),
                    );
                }
                ui.end_row();
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_zero_is_identity() {
        let p = vec![[0.0, 1.0], [1.0, 3.0]];
        assert_eq!(super::smooth(&p, 0.0), p);
        assert_eq!(super::smooth(&p, 0.5)[1][1], 2.0);
    }

    #[test]
    fn readout_lists_values_at_the_nearest_step() {
        let s = |n: &str, pts: Vec<[f64; 2]>| Series {
            name: n.into(),
            pts,
            colour: None,
        };
        let series = [
            s("loss_seg", vec![[10.0, 0.5], [20.0, 0.25]]),
            s("loss_adv", vec![[10.0, 0.75], [20.0, 6.5]]),
        ];
        let axes = Axes {
            log_y: false,
            time_x: false,
        };
        let t = readout_at(&series, 18.0, axes).unwrap();
        assert_eq!(t, "step 20\nloss_seg: 0.2500\nloss_adv: 6.5000");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(fmt_value(2.5e-4), "2.500e-4");
    }
}
