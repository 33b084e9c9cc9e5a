//! The map viewer: a probe's input, ground truth, prediction overlay and the method's maps
//! side by side with one shared zoom/pan, a live T_semi gate and a hover readout. This module
//! holds what a view shows (pixels, readouts); `viewer_ui` draws the panel.

use super::compose::{self, grey, jet};
use super::state::UiState;
use crate::train::event::ProbeSnapshot;
use crate::train::{MapKind, Snapshot};
use std::collections::HashMap;

/// The view of the AdvSemiSeg gate recomputed at the slider's T_semi.
pub const GATE_VIEW: &str = "semi_mask@T";
/// One view for all per-class CAMs (`cam_<c>` maps); the class selector picks which.
pub const CAM_VIEW: &str = "cam";
pub(super) const CONF_MAP: &str = "d_confidence";
/// Training-batch maps (`Snapshot::train_maps`) show as views named with this prefix, as the
/// run directory names their PNGs.
pub const TRAIN_PREFIX: &str = crate::train::rundir::TRAIN_MAP_PREFIX;

#[derive(Default)]
pub struct Viewer {
    /// Index into the snapshots; `None` follows the latest.
    pub snap_index: Option<usize>,
    /// Centre of the visible region in texture coordinates, and the magnification (≥ 1).
    pub center: egui::Vec2,
    pub mag: f32,
    /// Readout of the pixel under the cursor (also what the tests read).
    pub hover: Option<String>,
    /// Pixels passing the live gate, and all pixels, for the shown probe.
    pub pass_count: Option<(usize, usize)>,
    pub message: Option<String>,
    /// Screen rectangles of the views drawn last frame, by view name (layout tests read them).
    pub view_rects: Vec<(String, egui::Rect)>,
    /// Screen rectangles of the class legend's swatches and checkboxes, by class.
    pub legend_rects: Vec<(usize, egui::Rect, egui::Rect)>,
    pub(super) textures: HashMap<String, (u64, egui::TextureHandle)>,
}

// How a map is drawn follows the kind its method declared (`train::MapKind`): CAMs in Jet over
// the input, labels in the class colours, images in grey, any other kind a Jet map.

/// The class of a per-class CAM map (`cam_3` → 3).
pub fn cam_class(name: &str) -> Option<usize> {
    name.strip_prefix("cam_")?.parse().ok()
}

/// Class ids of a label map. Maps are in [0, 1] by the snapshot contract, so ids travel as
/// `id / 255` (1.0 is the ignore index 255, and the run directory's 8-bit PNG then holds the
/// raw ids); a map with values above 1 is taken to hold raw ids. Negative values are ignored.
pub fn label_ids(m: &[f32]) -> Vec<u8> {
    let raw = m.iter().any(|&v| v > 1.0 + 1e-3);
    m.iter()
        .map(|&v| {
            let id = if raw { v } else { v * 255.0 };
            if id.is_finite() && id >= -0.5 {
                id.round().min(255.0) as u8
            } else {
                255
            }
        })
        .collect()
}

/// CAM classes of a probe, ascending.
pub fn cam_classes(p: &ProbeSnapshot) -> Vec<usize> {
    let mut v: Vec<usize> = p
        .maps
        .iter()
        .filter(|m| m.kind == MapKind::Cam)
        .filter_map(|m| cam_class(&m.name))
        .collect();
    v.sort_unstable();
    v
}

/// The CAM class actually shown: the chosen one if the probe has its CAM, else the first.
pub fn shown_cam_class(p: &ProbeSnapshot, chosen: usize) -> Option<usize> {
    let v = cam_classes(p);
    v.contains(&chosen).then_some(chosen).or(v.first().copied())
}

/// Views the snapshot's probe can show, in display order.
pub fn available_views(s: &Snapshot, p: &ProbeSnapshot) -> Vec<String> {
    let mut v: Vec<String> = ["input", "gt", "prediction", "confidence"]
        .map(String::from)
        .to_vec();
    if !cam_classes(p).is_empty() {
        v.push(CAM_VIEW.into());
    }
    v.extend(
        p.maps
            .iter()
            .filter(|m| !is_class_cam(&m.name, m.kind) && m.name != "confidence")
            .map(|m| m.name.clone()),
    );
    if p.map(CONF_MAP).is_some() {
        v.push(GATE_VIEW.into());
    }
    v.extend(
        s.train_maps
            .iter()
            .map(|m| format!("{TRAIN_PREFIX}{}", m.name)),
    );
    v
}

pub(super) fn map<'a>(p: &'a ProbeSnapshot, name: &str) -> Option<&'a [f32]> {
    p.map(name)
}

/// A per-class CAM, shown in the one CAM view.
fn is_class_cam(name: &str, kind: MapKind) -> bool {
    kind == MapKind::Cam && cam_class(name).is_some()
}

/// A training-batch map by its view name.
fn train_map<'a>(s: &'a Snapshot, view: &str) -> Option<&'a crate::train::event::HostMap> {
    let n = view.strip_prefix(TRAIN_PREFIX)?;
    s.train_maps.iter().find(|m| m.name == n)
}

/// The declared kind of a view's map (`None` for the fixed views).
pub fn view_kind(s: &Snapshot, p: &ProbeSnapshot, view: &str) -> Option<MapKind> {
    train_map(s, view)
        .or_else(|| p.maps.iter().find(|m| m.name == view))
        .map(|m| m.kind)
}

/// Max class probability per pixel; a snapshot read back from a run directory has no
/// probabilities, only the `confidence` map written from them.
pub fn confidence(p: &ProbeSnapshot, classes: usize) -> Vec<f32> {
    let hw = p.h * p.w;
    if p.probs.len() < classes * hw {
        if let Some(c) = map(p, "confidence") {
            return c.to_vec();
        }
    }
    (0..hw)
        .map(|i| {
            (0..classes)
                .map(|c| p.probs.get(c * hw + i).copied().unwrap_or(0.0))
                .fold(0.0, f32::max)
        })
        .collect()
}

/// Pixel size of a view: probe views share the probe's size, training maps have their own.
pub fn view_dims(s: &Snapshot, p: &ProbeSnapshot, view: &str) -> (usize, usize) {
    train_map(s, view).map_or((p.w, p.h), |m| (m.w, m.h))
}

/// RGBA pixels of one view.
pub fn view_rgba(s: &Snapshot, p: &ProbeSnapshot, view: &str, st: &UiState) -> Option<Vec<u8>> {
    let hidden = &st.hidden_classes;
    if let Some(tm) = train_map(s, view) {
        // No input image under the last batch's maps: the batch is not the probe.
        let m = &tm.values;
        return Some(match tm.kind {
            MapKind::Labels => compose::label_image(&label_ids(m), &s.colours, hidden),
            MapKind::Image => {
                compose::rgb_to_rgba(&m.iter().flat_map(|&v| grey(v)).collect::<Vec<_>>())
            }
            _ => compose::rgb_to_rgba(&m.iter().flat_map(|&v| jet(v)).collect::<Vec<_>>()),
        });
    }
    Some(match view {
        "input" => compose::rgb_to_rgba(&p.input),
        "gt" => compose::label_image(&p.gt, &s.colours, hidden),
        "prediction" => compose::label_overlay(&p.input, &p.pred, &s.colours, st.opacity, hidden),
        "confidence" => compose::map_over(&p.input, &confidence(p, s.classes), jet, 1.0),
        GATE_VIEW => {
            let (m, _) = compose::semi_gate(map(p, CONF_MAP)?, st.t_semi);
            compose::gate_image(&p.input, &m)
        }
        CAM_VIEW => {
            let c = shown_cam_class(p, st.cam_class)?;
            compose::map_over(&p.input, map(p, &format!("cam_{c}"))?, jet, st.cam_alpha)
        }
        name => {
            let hm = p.maps.iter().find(|m| m.name == name)?;
            let m = &hm.values;
            match hm.kind {
                MapKind::Cam => compose::map_over(&p.input, m, jet, st.cam_alpha),
                MapKind::Labels => {
                    compose::label_overlay(&p.input, &label_ids(m), &s.colours, st.opacity, hidden)
                }
                MapKind::Image => compose::map_over(&p.input, m, grey, 1.0),
                MapKind::Scalar | MapKind::Confidence | MapKind::Mask => {
                    compose::map_over(&p.input, m, jet, 1.0)
                }
            }
        }
    })
}

/// The hover readout of pixel (x, y) of the probe; the CAM line is the selected class's.
pub fn readout(
    s: &Snapshot,
    p: &ProbeSnapshot,
    names: &[String],
    x: usize,
    y: usize,
    st: &UiState,
) -> String {
    let hw = p.h * p.w;
    let i = y * p.w + x;
    let name = |c: u8| -> String {
        if c == s.ignore {
            "ignore".into()
        } else {
            names
                .get(c as usize)
                .cloned()
                .unwrap_or_else(|| format!("class {c}"))
        }
    };
    let mut out = format!(
        "pixel ({x}, {y})\nGT: {}\npred: {}\n",
        name(p.gt[i]),
        name(p.pred[i])
    );
    if p.probs.len() >= s.classes * hw {
        let top = compose::top_classes(&p.probs, s.classes, hw, i, 3);
        out += &format!(
            "top: {}\n",
            top.iter()
                .map(|(c, v)| format!("{} {:.3}", name(*c as u8), v))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let cam = shown_cam_class(p, st.cam_class);
    for hm in &p.maps {
        let (n, m) = (&hm.name, &hm.values);
        match (cam_class(n).filter(|_| hm.kind == MapKind::Cam), hm.kind) {
            (Some(c), _) if Some(c) == cam => {
                out += &format!("CAM {} ({n}): {:.3}\n", name(c as u8), m[i]);
            }
            (Some(_), _) => {}
            (None, MapKind::Labels) => {
                out += &format!("{n}: {}\n", name(label_ids(&m[i..=i])[0]));
            }
            _ => out += &format!("{n}: {:.3}\n", m[i]),
        }
    }
    if let Some(c) = map(p, CONF_MAP) {
        let pass = if c[i] >= st.t_semi { "passes" } else { "fails" };
        let (t, v) = threshold_pair(st.t_semi, c[i]);
        out += &format!("T_semi {t}: {pass} ({CONF_MAP} {v})\n");
    }
    out.pop();
    out
}

/// T_semi and a pixel's confidence with as many decimals (3 to 6) as it takes to tell them
/// apart, so "passes" / "fails" never contradicts the printed numbers.
pub fn threshold_pair(t: f32, c: f32) -> (String, String) {
    for d in 3..=6 {
        let (a, b) = (format!("{t:.d$}"), format!("{c:.d$}"));
        if a != b {
            return (a, b);
        }
    }
    // Equal to six decimals: the same number to the eye, so the short form.
    (format!("{t:.3}"), format!("{c:.3}"))
}

/// Views drawn in Jet (a value in [0, 1] per pixel), which get a colour bar; `kind` is the
/// view's map kind ([`view_kind`]).
pub fn is_heat(view: &str, kind: Option<MapKind>) -> bool {
    match view {
        "input" | "gt" | "prediction" | GATE_VIEW => false,
        "confidence" | CAM_VIEW => true,
        _ => kind.is_none_or(MapKind::is_heat),
    }
}

/// A Jet colour bar with its value scale, under a heat-map view.
pub(super) fn colour_bar(ui: &mut egui::Ui, view: &str, width: f32) {
    let h = 8.0;
    let (rect, resp) = ui.allocate_exact_size(egui::vec2(width, h + 12.0), egui::Sense::hover());
    resp.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::Image,
            true,
            format!("colour bar {view}: 0 to 1"),
        )
    });
    let bar = egui::Rect::from_min_size(rect.min, egui::vec2(width, h));
    let n = 32;
    for k in 0..n {
        let [r, g, b] = jet((k as f32 + 0.5) / n as f32);
        let x0 = bar.min.x + width * k as f32 / n as f32;
        let seg = egui::Rect::from_min_max(
            egui::pos2(x0, bar.min.y),
            egui::pos2(x0 + width / n as f32 + 0.5, bar.max.y),
        );
        ui.painter()
            .rect_filled(seg, 0.0, egui::Color32::from_rgb(r, g, b));
    }
    let font = egui::FontId::proportional(10.0);
    let col = ui.visuals().text_color();
    for (f, text, align) in [
        (0.0, "0", egui::Align2::LEFT_TOP),
        (0.5, "0.5", egui::Align2::CENTER_TOP),
        (1.0, "1", egui::Align2::RIGHT_TOP),
    ] {
        let at = egui::pos2(bar.min.x + f * width, bar.max.y + 1.0);
        ui.painter().text(at, align, text, font.clone(), col);
    }
}

/// The readout over a training-batch map (its own pixel grid).
pub(super) fn train_readout(
    s: &Snapshot,
    view: &str,
    names: &[String],
    x: usize,
    y: usize,
) -> Option<String> {
    let tm = train_map(s, view)?;
    let v = *tm.values.get(y * tm.w + x)?;
    Some(match tm.kind {
        MapKind::Labels => {
            let id = label_ids(&[v])[0];
            let n = names
                .get(id as usize)
                .cloned()
                .unwrap_or_else(|| "ignore".into());
            format!("{view} (last training batch)\npixel ({x}, {y}): {n}")
        }
        _ => format!("{view} (last training batch)\npixel ({x}, {y}): {v:.3}"),
    })
}

/// Splits `n` items of width `item` into rows that fit `avail` (at least one per row).
pub fn per_row(avail: f32, item: f32, gap: f32) -> usize {
    (((avail + gap) / (item + gap)).floor() as usize).max(1)
}

/// Writes one view to the export folder; the message says where or why not.
pub(super) fn export(
    s: &Snapshot,
    p: &ProbeSnapshot,
    v: &str,
    st: &UiState,
    w: usize,
    h: usize,
) -> String {
    let path = std::path::Path::new(&st.export_dir).join(format!(
        "{}_step{}_{}.png",
        p.name,
        s.step,
        v.replace(['@', '/'], "_")
    ));
    match view_rgba(s, p, v, st) {
        Some(px) => match compose::write_png_atomic(&path, w, h, &px) {
            Ok(()) => format!("wrote {}", path.display()),
            Err(e) => format!("export failed: {e}"),
        },
        None => format!("{v}: nothing to export"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        // (Kinds by name: `MapKind::from_legacy_name`'s test.)
        assert_eq!(cam_class("cam_12"), Some(12));
        assert_eq!(cam_class("grad_cam"), None);
    }

    #[test]
    fn label_ids_scaled_or_raw() {
        assert_eq!(label_ids(&[0.0, 3.0 / 255.0, 1.0]), vec![0, 3, 255]);
        assert_eq!(label_ids(&[0.0, 3.0, 20.0, -1.0]), vec![0, 3, 20, 255]);
    }

    #[test]
    fn threshold_shows_enough_decimals() {
        assert_eq!(
            threshold_pair(0.5034, 0.503),
            ("0.5034".into(), "0.5030".into())
        );
        assert_eq!(threshold_pair(0.2, 0.75), ("0.200".into(), "0.750".into()));
        use MapKind::*;
        assert!(is_heat("d_confidence", Some(Confidence)) && is_heat("cam", None));
        assert!(is_heat("train_cegu_weight", Some(Scalar)));
        assert!(!is_heat("reliable_labels", Some(Labels)) && !is_heat("erased", Some(Image)));
        assert!(!is_heat("gt", None));
    }

    #[test]
    fn rows_fit() {
        assert_eq!(per_row(500.0, 128.0, 8.0), 3);
        assert_eq!(per_row(50.0, 128.0, 8.0), 1);
    }
}
