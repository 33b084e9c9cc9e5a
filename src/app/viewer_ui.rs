//! The map viewer's panel, one small function per part: snapshot and probe pickers, the
//! control rows (opacity, CAM alpha, scale, CAM class), the live T_semi gate, the class
//! legend, the view toggles, the readout box and the grid of views.

use super::compose;
use super::state::{Tab, UiState};
use super::viewer::{
    available_views, cam_classes, colour_bar, export, is_heat, map, per_row, readout,
    shown_cam_class, train_readout, view_dims, view_kind, view_rgba, Viewer, CAM_VIEW, CONF_MAP,
    GATE_VIEW,
};
use crate::train::event::ProbeSnapshot;
use crate::train::Snapshot;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// One control of the viewer's toolbar, drawn into its row.
type ControlFn = dyn FnOnce(&mut egui::Ui, &mut UiState, &mut Viewer);

fn key(parts: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// What one frame of the views needs besides the viewer.
struct Frame<'a> {
    s: &'a Snapshot,
    p: &'a ProbeSnapshot,
    /// The visible part of every view in texture coordinates (shared zoom/pan).
    uv: egui::Rect,
    size: egui::Vec2,
}

/// A frame's pointer results: the hovered pixel, and the new pan / zoom.
struct Gesture {
    hover: Option<(String, usize, usize)>,
    center: egui::Vec2,
    mag: f32,
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
    /// Everything is laid out to the width it is given (a column of the Overview or the whole
    /// Maps tab): control rows and views wrap, and views shrink rather than overflow.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        snaps: &[Arc<Snapshot>],
        names_of: &dyn Fn(usize) -> Vec<String>,
        st: &mut UiState,
        tab: Tab,
    ) {
        self.view_rects.clear();
        self.legend_rects.clear();
        if self.mag < 1.0 {
            self.mag = 1.0;
            self.center = egui::vec2(0.5, 0.5);
        }
        if snaps.is_empty() {
            ui.label("No snapshot yet: start a run (snapshots arrive every snapshot_every steps).");
            return;
        }
        let s = snaps[self.snapshot_row(ui, snaps)].clone();
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
        });
        let p = &s.probes[st.probe];
        self.control_rows(ui, st, p, &names, tab);
        self.gate_row(ui, st, p);
        self.legend(ui, st, &s, &names);
        let shown = view_toggles(ui, st, &available_views(&s, p));
        self.readout_box(ui);
        let half = 0.5 / self.mag;
        let c = egui::vec2(
            self.center.x.clamp(half, 1.0 - half),
            self.center.y.clamp(half, 1.0 - half),
        );
        // Views never get wider than the space they have (a narrow Overview column).
        let scale = st
            .zoom_mut(tab)
            .min((ui.available_width() - 16.0).max(32.0) / p.w as f32);
        let f = Frame {
            s: &s,
            p,
            uv: egui::Rect::from_min_max(
                egui::pos2(c.x - half, c.y - half),
                egui::pos2(c.x + half, c.y + half),
            ),
            size: egui::vec2(p.w as f32, p.h as f32) * scale,
        };
        let mut g = Gesture {
            hover: None,
            center: c,
            mag: self.mag,
        };
        self.views(ui, st, &f, &shown, &mut g);
        self.center = g.center;
        self.mag = g.mag;
        let readout_now = g.hover.map(|(v, x, y)| {
            train_readout(&s, &v, &names, x, y).unwrap_or_else(|| readout(&s, p, &names, x, y, st))
        });
        if readout_now != self.hover {
            self.hover = readout_now;
            ui.ctx().request_repaint();
        }
    }

    /// The snapshot slider and "follow latest"; returns the snapshot shown.
    fn snapshot_row(&mut self, ui: &mut egui::Ui, snaps: &[Arc<Snapshot>]) -> usize {
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
        idx
    }

    /// Opacity, CAM alpha, scale (+ reset zoom) and the CAM class, in rows that fit.
    fn control_rows(
        &mut self,
        ui: &mut egui::Ui,
        st: &mut UiState,
        p: &ProbeSnapshot,
        names: &[String],
        tab: Tab,
    ) {
        let cams = cam_classes(p);
        // Sliders are nested layouts that a wrapping row cannot break, so rows are cut here.
        let sliders = per_row(ui.available_width(), 230.0, 8.0);
        let mut items: Vec<Box<ControlFn>> = vec![
            Box::new(|ui, st, _| {
                ui.add(egui::Slider::new(&mut st.opacity, 0.0..=1.0).text("opacity"));
            }),
            Box::new(|ui, st, _| {
                ui.add(egui::Slider::new(&mut st.cam_alpha, 0.0..=1.0).text("CAM alpha"));
            }),
            Box::new(move |ui, st, v| {
                ui.add(egui::Slider::new(st.zoom_mut(tab), 1.0..=12.0).text("scale"));
                if ui.button("reset zoom").clicked() {
                    v.mag = 1.0;
                    v.center = egui::vec2(0.5, 0.5);
                }
            }),
        ];
        if !cams.is_empty() {
            let shown = shown_cam_class(p, st.cam_class).unwrap_or(0);
            let label = |c: usize| format!("{c}: {}", names.get(c).cloned().unwrap_or_default());
            let sel = label(shown);
            let labels: Vec<(usize, String)> = cams.iter().map(|&c| (c, label(c))).collect();
            items.push(Box::new(move |ui, st, _| {
                st.cam_class = shown;
                egui::ComboBox::from_label("CAM class")
                    .selected_text(sel)
                    .show_ui(ui, |ui| {
                        for (c, l) in labels {
                            ui.selectable_value(&mut st.cam_class, c, l);
                        }
                    });
            }));
        }
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            ui.horizontal(|ui| {
                for f in items.by_ref().take(sliders) {
                    f(ui, st, self);
                }
            });
        }
    }

    /// The T_semi slider and how many pixels pass it (methods with a D confidence map).
    fn gate_row(&mut self, ui: &mut egui::Ui, st: &mut UiState, p: &ProbeSnapshot) {
        let hw = p.h * p.w;
        self.pass_count = None;
        let Some(c) = map(p, CONF_MAP) else { return };
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

    /// Class legend with per-class toggles.
    fn legend(&mut self, ui: &mut egui::Ui, st: &mut UiState, s: &Snapshot, names: &[String]) {
        ui.horizontal_wrapped(|ui| {
            ui.label("classes:");
            for (c, col) in s.colours.iter().enumerate().take(s.classes) {
                let mut on = !st.hidden_classes.contains(&c);
                let label = names
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| format!("class {c}"));
                // A swatch and its checkbox are one item: the row breaks before the pair,
                // never between them.
                let sp = ui.spacing();
                let text = egui::WidgetText::from(label.as_str()).into_galley(
                    ui,
                    Some(egui::TextWrapMode::Extend),
                    f32::INFINITY,
                    egui::TextStyle::Button,
                );
                let need = 12.0
                    + 2.0 * sp.item_spacing.x
                    + sp.icon_width
                    + sp.icon_spacing
                    + text.size().x;
                if ui.available_size_before_wrap().x < need {
                    ui.end_row();
                }
                let h = ui.spacing().interact_size.y;
                let (row, _) = ui.allocate_exact_size(egui::vec2(12.0, h), egui::Sense::hover());
                let r = egui::Rect::from_center_size(row.center(), egui::vec2(12.0, 12.0));
                ui.painter()
                    .rect_filled(r, 2.0, egui::Color32::from_rgb(col[0], col[1], col[2]));
                let cb = ui.checkbox(&mut on, label);
                self.legend_rects.push((c, r, cb.rect));
                if cb.changed() {
                    if on {
                        st.hidden_classes.retain(|&h| h != c);
                    } else {
                        st.hidden_classes.push(c);
                    }
                }
            }
        });
    }

    /// The readout of the previous frame's hover, above the views in a box of fixed size
    /// (clipped), so a long readout never moves the views under the cursor.
    fn readout_box(&self, ui: &mut egui::Ui) {
        let (rect, _) = ui.allocate_exact_size(
            egui::vec2(ui.available_width(), 140.0),
            egui::Sense::hover(),
        );
        let mut child = ui.new_child(egui::UiBuilder::new().max_rect(rect));
        child.set_clip_rect(rect.intersect(ui.clip_rect()));
        child.label(
            egui::RichText::new(
                self.hover
                    .as_deref()
                    .unwrap_or("hover a view to inspect pixels"),
            )
            .monospace(),
        );
        if let Some(m) = &self.message {
            ui.label(m);
        }
    }

    /// The shown views in rows that fit the width.
    fn views(
        &mut self,
        ui: &mut egui::Ui,
        st: &UiState,
        f: &Frame<'_>,
        shown: &[String],
        g: &mut Gesture,
    ) {
        let gap = ui.spacing().item_spacing.x;
        let cols = per_row(ui.available_width() - 16.0, f.size.x, gap);
        egui::ScrollArea::vertical()
            .id_salt("views")
            .show(ui, |ui| {
                for row in shown.chunks(cols) {
                    ui.horizontal(|ui| {
                        for v in row {
                            ui.vertical(|ui| self.view_cell(ui, st, f, v, g));
                        }
                    });
                }
            });
    }

    /// One view: title, image (drag pans, wheel zooms, hover reads out), colour bar, export.
    fn view_cell(
        &mut self,
        ui: &mut egui::Ui,
        st: &UiState,
        f: &Frame<'_>,
        v: &str,
        g: &mut Gesture,
    ) {
        let (s, p) = (f.s, f.p);
        ui.set_width(f.size.x);
        ui.label(v);
        let (vw, vh) = view_dims(s, p, v);
        let k = key((
            s.step,
            st.probe,
            v,
            st.opacity.to_bits(),
            st.cam_alpha.to_bits(),
            &st.hidden_classes,
            (v == GATE_VIEW).then_some(st.t_semi.to_bits()),
            (v == CAM_VIEW).then_some(st.cam_class),
        ));
        let tex = self.texture(ui.ctx(), v, k, vw, vh, || view_rgba(s, p, v, st));
        let (rect, resp) = ui.allocate_exact_size(f.size, egui::Sense::click_and_drag());
        self.view_rects.push((v.to_string(), rect));
        resp.widget_info(|| {
            egui::WidgetInfo::labeled(egui::Role::Image, true, format!("view {v}"))
        });
        if let Some(t) = tex {
            ui.painter().image(t, rect, f.uv, egui::Color32::WHITE);
        }
        if resp.dragged() {
            let d = resp.drag_delta() / rect.size() / self.mag;
            g.center -= d;
        }
        if let Some(pos) = resp.hover_pos() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                g.mag = (self.mag * (1.0 + scroll * 0.005)).clamp(1.0, 32.0);
            }
            let fr = (pos - rect.min) / rect.size();
            let u = f.uv.min + fr * f.uv.size();
            let x = ((u.x * vw as f32) as usize).min(vw - 1);
            let y = ((u.y * vh as f32) as usize).min(vh - 1);
            g.hover = Some((v.to_string(), x, y));
        }
        if is_heat(v, view_kind(s, p, v)) {
            colour_bar(ui, v, f.size.x);
        }
        if ui
            .small_button("export PNG")
            .on_hover_text("write this view to the export folder")
            .clicked()
        {
            self.message = Some(export(s, p, v, st, vw, vh));
        }
    }
}

/// The view toggles; returns the views switched on, in display order.
fn view_toggles(ui: &mut egui::Ui, st: &mut UiState, avail: &[String]) -> Vec<String> {
    ui.horizontal_wrapped(|ui| {
        ui.label("views:");
        for v in avail {
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
    avail
        .iter()
        .filter(|v| st.views.contains(v))
        .cloned()
        .collect()
}
