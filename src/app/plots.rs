//! Live plots of the run: every loss term, D outputs, learning rates, mIoU and per-class IoU.

use super::history::History;
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

fn plot(ui: &mut egui::Ui, id: &str, height: f32, lines: Vec<(String, Vec<[f64; 2]>)>) {
    ui.label(id);
    Plot::new(id)
        .height(height)
        .legend(Legend::default())
        .allow_scroll(false)
        .show(ui, |p| {
            for (name, pts) in lines {
                p.line(Line::new(name, PlotPoints::from(pts)));
            }
        });
}

pub fn plots_ui(ui: &mut egui::Ui, h: &History, smoothing: &mut f32, height: f32) {
    ui.add(egui::Slider::new(smoothing, 0.0..=0.99).text("smoothing"));
    if h.scalars.is_empty() {
        ui.label("No steps yet.");
    }
    let a = *smoothing as f64;
    for (title, keys) in groups(h) {
        if keys.is_empty() {
            continue;
        }
        let lines = keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    smooth(
                        &h.scalars[k],
                        if title == "learning rates" { 0.0 } else { a },
                    ),
                )
            })
            .collect();
        plot(ui, title, height, lines);
    }
    if !h.evals.is_empty() {
        let miou: Vec<[f64; 2]> = h
            .evals
            .iter()
            .filter_map(|r| r.miou.map(|m| [r.step as f64, 100.0 * m]))
            .collect();
        plot(ui, "mIoU (%)", height, vec![("mIoU".into(), miou)]);
        let classes = h.evals.last().map(|r| r.per_class_iou.len()).unwrap_or(0);
        let per: Vec<(String, Vec<[f64; 2]>)> = (0..classes)
            .map(|c| {
                let name = h.evals.last().expect("non-empty").per_class_iou[c]
                    .0
                    .clone();
                let pts = h
                    .evals
                    .iter()
                    .filter_map(|r| {
                        r.per_class_iou
                            .get(c)
                            .and_then(|x| x.1)
                            .map(|v| [r.step as f64, 100.0 * v])
                    })
                    .collect();
                (name, pts)
            })
            .collect();
        plot(ui, "per-class IoU (%)", height, per);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn smoothing_zero_is_identity() {
        let p = vec![[0.0, 1.0], [1.0, 3.0]];
        assert_eq!(super::smooth(&p, 0.0), p);
        assert_eq!(super::smooth(&p, 0.5)[1][1], 2.0);
    }
}
