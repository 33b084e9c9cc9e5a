//! Run comparison: several run directories' logged curves overlaid (one colour per run) and a
//! table of their final and best metrics.

use super::history::History;
use super::plots::{self, Axes, Series};
use super::state::UiState;
use std::path::Path;

/// Distinct colours for runs (the plots' own palette is per series name, not per run).
const RUN_COLOURS: [[u8; 3]; 8] = [
    [230, 85, 13],
    [49, 130, 189],
    [49, 163, 84],
    [117, 107, 177],
    [214, 39, 40],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

pub fn run_colour(i: usize) -> egui::Color32 {
    let c = RUN_COLOURS[i % RUN_COLOURS.len()];
    egui::Color32::from_rgb(c[0], c[1], c[2])
}

/// Final and best numbers of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub last_step: usize,
    pub final_miou: Option<f64>,
    pub best_miou: Option<(f64, usize)>,
    pub final_pixel_acc: Option<f64>,
    pub seconds: f64,
}

pub fn summary(h: &History) -> Summary {
    Summary {
        last_step: h.step,
        final_miou: h.evals.last().and_then(|r| r.miou),
        best_miou: h
            .evals
            .iter()
            .filter_map(|r| r.miou.map(|m| (m, r.step)))
            .max_by(|a, b| a.0.total_cmp(&b.0)),
        final_pixel_acc: h.evals.last().and_then(|r| r.pixel_acc),
        seconds: h.elapsed(),
    }
}

#[derive(Default)]
pub struct Compare {
    /// (run directory, what it logged).
    pub runs: Vec<(String, History)>,
    pub error: Option<String>,
    /// The readout under the cursor (tests read it).
    pub hover: Option<String>,
    input: String,
    loaded: bool,
}

impl Compare {
    /// Loads one run directory's logged metrics (not its snapshots: only curves are compared).
    pub fn add(&mut self, st: &mut UiState, dir: &str) {
        let dir = dir.trim().to_string();
        if dir.is_empty() || self.runs.iter().any(|r| r.0 == dir) {
            return;
        }
        match History::load_metrics(Path::new(&dir)) {
            Ok(mut h) => {
                h.classes = super::history::run_classes(Path::new(&dir), &mut h.log)
                    .ok()
                    .flatten();
                self.runs.push((dir.clone(), h));
                if !st.compare_dirs.contains(&dir) {
                    st.compare_dirs.push(dir);
                }
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    pub fn remove(&mut self, st: &mut UiState, i: usize) {
        let (dir, _) = self.runs.remove(i);
        st.compare_dirs.retain(|d| *d != dir);
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, st: &mut UiState) {
        if !self.loaded {
            // The saved list reloads once, when the tab is first shown.
            self.loaded = true;
            for d in st.compare_dirs.clone() {
                self.add(st, &d);
            }
        }
        ui.horizontal(|ui| {
            let l = ui.label("run dir");
            ui.add(egui::TextEdit::singleline(&mut self.input).desired_width(360.0))
                .labelled_by(l.id);
            if ui.button("Add run").clicked() {
                let d = std::mem::take(&mut self.input);
                self.add(st, &d);
            }
            if ui
                .add_enabled(
                    !st.run_dir.trim().is_empty(),
                    egui::Button::new("Add setup's run dir"),
                )
                .clicked()
            {
                let d = st.run_dir.clone();
                self.add(st, &d);
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::LIGHT_RED, e);
        }
        if self.runs.is_empty() {
            ui.label("Add run directories to overlay their curves.");
            return;
        }
        let mut remove = None;
        egui::Grid::new("compare_table")
            .striped(true)
            .num_columns(7)
            .show(ui, |ui| {
                for t in [
                    "run",
                    "steps",
                    "final mIoU (%)",
                    "best mIoU (%)",
                    "best at",
                    "pixel acc (%)",
                    "",
                ] {
                    ui.strong(t);
                }
                ui.end_row();
                for (i, (dir, h)) in self.runs.iter().enumerate() {
                    let s = summary(h);
                    let pct =
                        |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}", 100.0 * v));
                    ui.label(
                        egui::RichText::new(dir.as_str())
                            .strong()
                            .color(run_colour(i)),
                    );
                    ui.label(s.last_step.to_string());
                    ui.label(pct(s.final_miou));
                    ui.label(pct(s.best_miou.map(|b| b.0)));
                    ui.label(s.best_miou.map_or("–".into(), |b| format!("step {}", b.1)));
                    ui.label(pct(s.final_pixel_acc));
                    if ui.small_button("remove").clicked() {
                        remove = Some(i);
                    }
                    ui.end_row();
                }
            });
        if let Some(i) = remove {
            self.remove(st, i);
            return;
        }
        let mut names: Vec<String> = self
            .runs
            .iter()
            .flat_map(|r| r.1.scalars.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        plots::controls(ui, st, &names);
        let axes = Axes::of(st);
        let a = st.smoothing as f64;
        let runs = &self.runs;
        let series_of = |pts: &dyn Fn(&History) -> Vec<[f64; 2]>| -> Vec<Series> {
            runs.iter()
                .enumerate()
                .map(|(i, (dir, h))| {
                    let p = pts(h);
                    Series {
                        name: dir.clone(),
                        pts: if axes.time_x {
                            p.iter().map(|q| [h.time_at(q[0]), q[1]]).collect()
                        } else {
                            p
                        },
                        colour: Some(run_colour(i)),
                    }
                })
                .collect()
        };
        let mut over = None;
        egui::ScrollArea::vertical()
            .id_salt("compare_plots")
            .show(ui, |ui| {
                let miou = series_of(&|h: &History| {
                    h.evals
                        .iter()
                        .filter_map(|r| r.miou.map(|m| [r.step as f64, 100.0 * m]))
                        .collect()
                });
                let mut keep = |o: Option<String>| {
                    if o.is_some() {
                        over = o;
                    }
                };
                keep(plots::plot(ui, "mIoU (%) by run", 180.0, miou, axes));
                for n in names.iter().filter(|n| !st.hidden_series.contains(n)) {
                    let s = series_of(&|h: &History| {
                        h.scalars.get(n).map_or(vec![], |p| plots::smooth(p, a))
                    });
                    keep(plots::plot(ui, n, 160.0, s, axes));
                }
            });
        if over.is_some() {
            self.hover = over;
        }
    }
}
