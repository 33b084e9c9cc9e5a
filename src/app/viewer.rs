//! The map viewer: a probe's input, ground truth, prediction overlay and the method's maps
//! side by side with one shared zoom/pan, a live T_semi gate and a hover readout.

use super::compose::{self, jet};
use super::state::UiState;
use crate::train::event::ProbeSnapshot;
use crate::train::Snapshot;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The view of the AdvSemiSeg gate recomputed at the slider's T_semi.
pub const GATE_VIEW: &str = "semi_mask@T";
const CONF_MAP: &str = "d_confidence";

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
    textures: HashMap<String, (u64, egui::TextureHandle)>,
}

/// Views the probe can show, in display order.
pub fn available_views(p: &ProbeSnapshot) -> Vec<String> {
    let mut v: Vec<String> = ["input", "gt", "prediction", "confidence"]
        .map(String::from)
        .to_vec();
    v.extend(p.maps.iter().map(|m| m.0.clone()));
    if p.maps.iter().any(|m| m.0 == CONF_MAP) {
        v.push(GATE_VIEW.into());
    }
    v
}

fn is_cam(name: &str) -> bool {
    name.to_ascii_lowercase().contains("cam")
}

fn map<'a>(p: &'a ProbeSnapshot, name: &str) -> Option<&'a [f32]> {
    p.maps.iter().find(|m| m.0 == name).map(|m| m.1.as_slice())
}

/// Max class probability per pixel.
pub fn confidence(p: &ProbeSnapshot, classes: usize) -> Vec<f32> {
    let hw = p.h * p.w;
    (0..hw)
        .map(|i| {
            (0..classes)
                .map(|c| p.probs.get(c * hw + i).copied().unwrap_or(0.0))
                .fold(0.0, f32::max)
        })
        .collect()
}

/// RGBA pixels of one view.
pub fn view_rgba(s: &Snapshot, p: &ProbeSnapshot, view: &str, st: &UiState) -> Option<Vec<u8>> {
    let hidden = &st.hidden_classes;
    Some(match view {
        "input" => compose::rgb_to_rgba(&p.input),
        "gt" => compose::label_image(&p.gt, &s.colours, hidden),
        "prediction" => compose::label_overlay(&p.input, &p.pred, &s.colours, st.opacity, hidden),
        "confidence" => compose::map_over(&p.input, &confidence(p, s.classes), jet, 1.0),
        GATE_VIEW => {
            let (m, _) = compose::semi_gate(map(p, CONF_MAP)?, st.t_semi);
            compose::gate_image(&p.input, &m)
        }
        name if is_cam(name) => compose::map_over(&p.input, map(p, name)?, jet, st.cam_alpha),
        name => compose::map_over(&p.input, map(p, name)?, jet, 1.0),
    })
}

/// The hover readout of pixel (x, y).
pub fn readout(
    s: &Snapshot,
    p: &ProbeSnapshot,
    names: &[String],
    x: usize,
    y: usize,
    t_semi: f32,
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
    let top = compose::top_classes(&p.probs, s.classes, hw, i, 3);
    out += &format!(
        "top: {}\n",
        top.iter()
            .map(|(c, v)| format!("{} {:.3}", name(*c as u8), v))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (n, m) in &p.maps {
        out += &format!("{n}: {:.3}\n", m[i]);
    }
    if let Some(c) = map(p, CONF_MAP) {
        let pass = if c[i] >= t_semi { "passes" } else { "fails" };
        out += &format!("T_semi {t_semi:.2}: {pass}\n");
    }
    out.pop();
    out
}

fn key(parts: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

impl Viewer {
    fn texture(
        &mut self,
        ctx: &egui::Context,
        slot: &str,
        k: u64,
        w: usize,
        h: usize,
        rgba: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<egui::TextureId> {
        if let Some((kk, t)) = self.textures.get(slot) {
            if *kk == k {
                return Some(t.id());
            }
        }
        let px = rgba()?;
        let img = egui::ColorImage::from_rgba_unmultiplied([w, h], &px);
        // Label maps must stay crisp when zoomed.
        let t = ctx.load_texture(slot, img, egui::TextureOptions::NEAREST);
        let id = t.id();
        self.textures.insert(slot.to_string(), (k, t));
        Some(id)
    }

    /// Shows snapshot controls and views; `snaps` is the recorded history (oldest first).
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        snaps: &[Arc<Snapshot>],
        names_of: &dyn Fn(usize) -> Vec<String>,
        st: &mut UiState,
    ) {
        if self.mag < 1.0 {
            self.mag = 1.0;
            self.center = egui::vec2(0.5, 0.5);
        }
        if snaps.is_empty() {
            ui.label("No snapshot yet: start a run (snapshots arrive every snapshot_every steps).");
            return;
        }
        let n = snaps.len();
        let mut idx = self.snap_index.unwrap_or(n - 1).min(n - 1);
        ui.horizontal_wrapped(|ui| {
            let mut follow = self.snap_index.is_none();
            let moved = ui
                .add_enabled(
                    n > 1,
                    egui::Slider::new(&mut idx, 0..=n - 1)
                        .text("snapshot")
                        .custom_formatter(|v, _| format!("step {}", snaps[v as usize].step)),
                )
                .changed();
            if moved {
                follow = false;
            }
            ui.checkbox(&mut follow, "follow latest");
            self.snap_index = if follow { None } else { Some(idx) };
        });
        let s = snaps[idx].clone();
        if s.probes.is_empty() {
            ui.label("this snapshot has no probe images");
            return;
        }
        st.probe = st.probe.min(s.probes.len() - 1);
        let names = names_of(s.classes);
        ui.horizontal_wrapped(|ui| {
            ui.label("probe");
            for (i, p) in s.probes.iter().enumerate() {
                ui.selectable_value(&mut st.probe, i, p.name.as_str());
            }
            ui.separator();
            ui.add(egui::Slider::new(&mut st.opacity, 0.0..=1.0).text("opacity"));
            ui.add(egui::Slider::new(&mut st.cam_alpha, 0.0..=1.0).text("CAM alpha"));
            ui.add(egui::Slider::new(&mut st.zoom, 1.0..=12.0).text("scale"));
            if ui.button("reset zoom").clicked() {
                self.mag = 1.0;
                self.center = egui::vec2(0.5, 0.5);
            }
        });
        let p = &s.probes[st.probe];
        let hw = p.h * p.w;
        self.pass_count = None;
        if let Some(c) = map(p, CONF_MAP) {
            let (_, k) = compose::semi_gate(c, st.t_semi);
            self.pass_count = Some((k, hw));
            ui.horizontal_wrapped(|ui| {
                ui.add(egui::Slider::new(&mut st.t_semi, 0.0..=1.0).text("T_semi"));
                // Recomputed after the slider moved, so the label matches the new T.
                let (_, k) = compose::semi_gate(c, st.t_semi);
                self.pass_count = Some((k, hw));
                ui.label(format!(
                    "{k} / {hw} pixels pass ({:.1}%)",
                    100.0 * k as f64 / hw.max(1) as f64
                ));
            });
        }
        // Class legend with per-class toggles.
        ui.horizontal_wrapped(|ui| {
            ui.label("classes:");
            for (c, col) in s.colours.iter().enumerate().take(s.classes) {
                let mut on = !st.hidden_classes.contains(&c);
                let (r, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                ui.painter()
                    .rect_filled(r, 2.0, egui::Color32::from_rgb(col[0], col[1], col[2]));
                if ui.checkbox(&mut on, names[c].as_str()).changed() {
                    if on {
                        st.hidden_classes.retain(|&h| h != c);
                    } else {
                        st.hidden_classes.push(c);
                    }
                }
            }
        });
        let avail = available_views(p);
        ui.horizontal_wrapped(|ui| {
            ui.label("views:");
            for v in &avail {
                let mut on = st.views.contains(v);
                if ui.toggle_value(&mut on, v.as_str()).changed() {
                    if on {
                        st.views.push(v.clone());
                    } else {
                        st.views.retain(|x| x != v);
                    }
                }
            }
        });
        let shown: Vec<String> = avail
            .iter()
            .filter(|v| st.views.contains(v))
            .cloned()
            .collect();
        let size = egui::vec2(p.w as f32, p.h as f32) * st.zoom;
        let half = 0.5 / self.mag;
        let c = egui::vec2(
            self.center.x.clamp(half, 1.0 - half),
            self.center.y.clamp(half, 1.0 - half),
        );
        let uv = egui::Rect::from_min_max(
            egui::pos2(c.x - half, c.y - half),
            egui::pos2(c.x + half, c.y + half),
        );
        // The readout of the previous frame's hover, above the views so the layout stays put.
        ui.add_sized(
            [ui.available_width(), 110.0],
            egui::Label::new(
                egui::RichText::new(
                    self.hover
                        .as_deref()
                        .unwrap_or("hover a view to inspect pixels"),
                )
                .monospace(),
            ),
        );
        if let Some(m) = &self.message {
            ui.label(m);
        }
        let mut hover = None;
        let mut new_center = c;
        let mut new_mag = self.mag;
        egui::ScrollArea::vertical()
            .id_salt("views")
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    for v in &shown {
                        ui.vertical(|ui| {
                            ui.label(v.as_str());
                            let k = key((
                                s.step,
                                st.probe,
                                v,
                                st.opacity.to_bits(),
                                st.cam_alpha.to_bits(),
                                &st.hidden_classes,
                                (v == GATE_VIEW).then_some(st.t_semi.to_bits()),
                            ));
                            let tex =
                                self.texture(ui.ctx(), v, k, p.w, p.h, || view_rgba(&s, p, v, st));
                            let (rect, resp) =
                                ui.allocate_exact_size(size, egui::Sense::click_and_drag());
                            resp.widget_info(|| {
                                egui::WidgetInfo::labeled(
                                    egui::Role::Image,
                                    true,
                                    format!("view {v}"),
                                )
                            });
                            if let Some(t) = tex {
                                ui.painter().image(t, rect, uv, egui::Color32::WHITE);
                            }
                            if resp.dragged() {
                                let d = resp.drag_delta() / rect.size() / self.mag;
                                new_center = c - d;
                            }
                            if let Some(pos) = resp.hover_pos() {
                                let scroll = ui.input(|i| i.smooth_scroll_delta.y);
                                if scroll != 0.0 {
                                    new_mag = (self.mag * (1.0 + scroll * 0.005)).clamp(1.0, 32.0);
                                }
                                let f = (pos - rect.min) / rect.size();
                                let u = uv.min + f * uv.size();
                                let x = ((u.x * p.w as f32) as usize).min(p.w - 1);
                                let y = ((u.y * p.h as f32) as usize).min(p.h - 1);
                                hover = Some((x, y));
                            }
                            if ui
                                .small_button("export PNG")
                                .on_hover_text("write this view to the export folder")
                                .clicked()
                            {
                                let path = std::path::Path::new(&st.export_dir).join(format!(
                                    "{}_step{}_{}.png",
                                    p.name,
                                    s.step,
                                    v.replace(['@', '/'], "_")
                                ));
                                self.message = Some(match view_rgba(&s, p, v, st) {
                                    Some(px) => {
                                        match compose::write_png_atomic(&path, p.w, p.h, &px) {
                                            Ok(()) => format!("wrote {}", path.display()),
                                            Err(e) => format!("export failed: {e}"),
                                        }
                                    }
                                    None => format!("{v}: nothing to export"),
                                });
                            }
                        });
                    }
                });
            });
        self.center = new_center;
        self.mag = new_mag;
        let readout_now = hover.map(|(x, y)| readout(&s, p, &names, x, y, st.t_semi));
        if readout_now != self.hover {
            self.hover = readout_now;
            ui.ctx().request_repaint();
        }
    }
}
