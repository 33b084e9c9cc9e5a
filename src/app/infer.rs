//! Inference tab: a checkpoint and an image in, a one-probe snapshot out, shown with the same
//! viewer as training snapshots. The work runs off the UI thread.

use super::browse::{self, PathField};
use crate::data::{self, io::read_image};
use crate::train::checkpoint;
use crate::train::event::ProbeSnapshot;
use crate::train::Snapshot;
use crate::{Gpu, Tensor};
use std::path::Path;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

pub struct InferResult {
    pub snap: Arc<Snapshot>,
    pub names: Vec<String>,
    pub about: String,
}

#[derive(Default)]
pub struct Infer {
    pub result: Option<InferResult>,
    pub error: Option<String>,
    pending: Option<Receiver<Result<InferResult, String>>>,
    pub viewer: super::viewer::Viewer,
}

pub fn run(ckpt: &Path, image: &Path) -> anyhow::Result<InferResult> {
    let gpu = Gpu::shared()?;
    let (method, cfg, meta) = checkpoint::load_method(&gpu, ckpt)?;
    let ds = data::open(&cfg.common.data, "train").ok();
    let colours: Vec<[u8; 3]> = ds
        .as_ref()
        .map(|d| d.colours().to_vec())
        .unwrap_or_else(|| (0..meta.classes).map(data::palette::voc_colour).collect());
    let names: Vec<String> = ds
        .as_ref()
        .map(|d| d.class_names().to_vec())
        .filter(|n| n.len() == meta.classes)
        .unwrap_or_else(|| (0..meta.classes).map(|c| format!("class {c}")).collect());
    let img = read_image(image)?;
    let (h, w) = (img.h, img.w);
    let norm = cfg.normalise();
    let mut x = vec![0f32; 3 * h * w];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            x[c * h * w + i] = norm.apply(c, px[c] as f32);
        }
    }
    let out = method.probe(&Tensor::from_f32(&gpu, &x, &[1, 3, h, w])?)?;
    let probs = out.probs.to_vec_f32()?;
    let pred = crate::metrics::argmax_chw(&probs, meta.classes, h, w);
    let maps = out
        .maps
        .iter()
        .map(crate::train::maps::HostMap::read)
        .collect::<crate::Result<_>>()?;
    let probe = ProbeSnapshot {
        name: image
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "image".into()),
        h,
        w,
        input: img.data.clone(),
        gt: vec![255; h * w],
        pred,
        probs,
        maps,
    };
    Ok(InferResult {
        snap: Arc::new(Snapshot {
            step: meta.step,
            classes: meta.classes,
            colours,
            ignore: 255,
            probes: vec![probe],
            train_maps: vec![],
            signals: Default::default(),
        }),
        names,
        about: format!("{} / {} at step {}", meta.method, meta.arch, meta.step),
    })
}

impl Infer {
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    pub fn start(&mut self, ckpt: String, image: String, wake: egui::Context) {
        let (tx, rx) = channel();
        self.error = None;
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| run(Path::new(&ckpt), Path::new(&image)));
            let r = match r {
                Ok(r) => r.map_err(|e| format!("{e:#}")),
                Err(_) => Err("inference panicked".to_string()),
            };
            let _ = tx.send(r);
            wake.request_repaint();
        });
        self.pending = Some(rx);
    }

    pub fn poll(&mut self) {
        if let Some(rx) = &self.pending {
            if let Ok(r) = rx.try_recv() {
                self.pending = None;
                match r {
                    Ok(r) => self.result = Some(r),
                    Err(e) => self.error = Some(e),
                }
            }
        }
    }

    /// Draws the tab; returns the path field whose "Browse…" button was clicked.
    pub fn ui(&mut self, ui: &mut egui::Ui, st: &mut super::state::UiState) -> Option<PathField> {
        self.poll();
        let mut browse = None;
        // Rows, not a grid: a grid cell's first-frame width (40 px) capped the text fields.
        let label_w = 100.0;
        for (name, field) in [
            ("checkpoint", PathField::Checkpoint),
            ("image", PathField::Image),
            ("export folder", PathField::ExportDir),
        ] {
            ui.horizontal(|ui| {
                let l = ui.add_sized([label_w, 18.0], egui::Label::new(name));
                let text = match field {
                    PathField::Checkpoint => &mut st.checkpoint,
                    PathField::Image => &mut st.image,
                    _ => &mut st.export_dir,
                };
                let w = (ui.available_width() - 90.0).clamp(200.0, 640.0);
                ui.add(egui::TextEdit::singleline(text).desired_width(w))
                    .labelled_by(l.id);
                if browse::button(ui, field, true) {
                    browse = Some(field);
                }
            });
        }
        ui.horizontal_wrapped(|ui| {
            ui.label("samples:");
            for (name, _) in super::assets::SAMPLES {
                let short = name.trim_end_matches(".png");
                if ui
                    .small_button(short)
                    .on_hover_text("a synthetic scene shipped with the app (assets/samples)")
                    .clicked()
                {
                    match super::assets::sample_path(name) {
                        Ok(p) => st.image = p.display().to_string(),
                        Err(e) => self.error = Some(e),
                    }
                }
            }
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!self.busy(), egui::Button::new("Run inference"))
                .clicked()
            {
                self.start(st.checkpoint.clone(), st.image.clone(), ui.ctx().clone());
            }
            if self.busy() {
                ui.spinner();
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::LIGHT_RED, e);
        }
        if let Some(r) = &self.result {
            ui.label(&r.about);
            let names = r.names.clone();
            let snaps = [r.snap.clone()];
            self.viewer.ui(
                ui,
                &snaps,
                &|_| names.clone(),
                st,
                super::state::Tab::Inference,
            );
        }
        browse
    }
}
