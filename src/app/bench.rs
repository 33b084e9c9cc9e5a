//! `advseg bench app`: what watching a run costs. The same tiny training runs headless (no
//! observer but a clock) and under the app — its training thread and observer, and a
//! headless egui frame loop that draws the app (Overview, Plots, Maps in turn) and renders
//! it offscreen through egui-wgpu on a second device, as a window would, at most 60 frames
//! per second. Prints both runs' steps/s and the frame times.

use super::offscreen::Offscreen;
use super::state::{Tab, UiState};
use super::{AdvsegApp, AppOptions};
use crate::train::{Event, Observer, Trainer, TrainerOptions};
use crate::Gpu;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct AppBenchOptions {
    pub method: String,
    pub data: String,
    pub iters: usize,
    pub batch: usize,
    pub snapshot_every: usize,
    pub eval_every: usize,
    pub size: [u32; 2],
    /// Frame period cap (a vsynced window draws at most this often).
    pub max_fps: f64,
}

impl Default for AppBenchOptions {
    fn default() -> Self {
        AppBenchOptions {
            method: "advsemi".into(),
            data: "synthetic:size=48,n=32,val=4".into(),
            iters: 60,
            batch: 2,
            snapshot_every: 5,
            eval_every: 20,
            size: [1400, 860],
            max_fps: 60.0,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct AppBenchReport {
    pub adapter: String,
    pub iters: usize,
    pub headless_steps_per_s: f64,
    pub app_steps_per_s: f64,
    /// (headless − app) / headless, in percent.
    pub overhead_pct: f64,
    pub frames: usize,
    pub fps: f64,
    pub frame_ms_median: f64,
    pub frame_ms_p95: f64,
    pub frame_ms_max: f64,
    /// The UI pass alone (layout and tessellation, CPU), median.
    pub ui_ms_median: f64,
}

impl AppBenchOptions {
    fn preset(&self) -> Vec<(String, String)> {
        [
            ("data", self.data.clone()),
            ("iters", self.iters.to_string()),
            ("batch", self.batch.to_string()),
            ("snapshot_every", self.snapshot_every.to_string()),
            ("eval_every", self.eval_every.to_string()),
            ("checkpoint_every", "0".into()),
            ("probes", "2".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn app(&self, iters: usize) -> AdvsegApp {
        let mut preset = self.preset();
        preset.push(("iters".into(), iters.to_string()));
        AdvsegApp::new(
            UiState::default(),
            &AppOptions {
                fresh: true,
                method: Some(self.method.clone()),
                preset,
                ..Default::default()
            },
        )
    }
}

struct Seconds(Arc<Mutex<Option<f64>>>);

impl Observer for Seconds {
    fn on_event(&mut self, e: &Event) {
        if let Event::Finished { seconds, .. } = e {
            *self.0.lock().unwrap() = Some(*seconds);
        }
    }
}

/// Steps per second of a run with nothing watching (the trainer's own clock).
fn headless(o: &AppBenchOptions, gpu: &Arc<Gpu>, iters: usize) -> anyhow::Result<f64> {
    let a = o.app(iters);
    let cfg = a.st.run_config("").map_err(anyhow::Error::msg)?;
    let mut t = Trainer::new(
        gpu,
        cfg,
        TrainerOptions {
            run_dir: None,
            resume: None,
            load_from: None,
            stop: None,
        },
    )?;
    let secs = Arc::new(Mutex::new(None));
    t.add_observer(Box::new(Seconds(secs.clone())));
    t.run()?;
    let s = secs.lock().unwrap().unwrap_or(f64::NAN);
    Ok(iters as f64 / s)
}

/// Steps per second with the app watching, and every frame's time in ms.
struct AppRun {
    steps_per_s: f64,
    frame_ms: Vec<f64>,
    ui_ms: Vec<f64>,
    wall: f64,
}

fn with_app(o: &AppBenchOptions, iters: usize) -> anyhow::Result<AppRun> {
    let mut app = o.app(iters);
    let mut screen = Offscreen::new(o.size)?;
    let ctx = egui::Context::default();
    app.start(Some(ctx.clone()));
    if let Some(e) = &app.error {
        anyhow::bail!("the app did not start the run: {e}");
    }
    let period = Duration::from_secs_f64(1.0 / o.max_fps.max(1.0));
    let tabs = [Tab::Overview, Tab::Plots, Tab::Maps];
    let mut frames = Vec::new();
    let mut ui_ms = Vec::new();
    let t0 = Instant::now();
    while !app.history.finished {
        if t0.elapsed() > Duration::from_secs(3600) {
            anyhow::bail!("the run did not finish within an hour");
        }
        app.st.tab = tabs[(frames.len() / 30) % tabs.len()];
        let start = Instant::now();
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(o.size[0] as f32, o.size[1] as f32),
            )),
            ..Default::default()
        };
        let out = ctx.run_ui(input, |ui| app.show(ui));
        ui_ms.push(start.elapsed().as_secs_f64() * 1e3);
        screen.draw(&ctx, out)?;
        let dt = start.elapsed();
        frames.push(dt.as_secs_f64() * 1e3);
        if dt < period {
            std::thread::sleep(period - dt);
        }
    }
    if let Some(e) = &app.error {
        anyhow::bail!("the run failed under the app: {e}");
    }
    let secs = app
        .history
        .seconds
        .ok_or_else(|| anyhow::anyhow!("the run reported no time"))?;
    Ok(AppRun {
        steps_per_s: iters as f64 / secs,
        frame_ms: frames,
        ui_ms,
        wall: t0.elapsed().as_secs_f64(),
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn run(o: &AppBenchOptions) -> anyhow::Result<AppBenchReport> {
    let gpu = Gpu::shared()?;
    // Shader compilation and the pipeline cache warm up outside the timed runs.
    headless(o, &gpu, 3)?;
    let head = headless(o, &gpu, o.iters)?;
    let r = with_app(o, o.iters)?;
    let (app, mut frames, mut ui_ms, wall) = (r.steps_per_s, r.frame_ms, r.ui_ms, r.wall);
    frames.sort_by(f64::total_cmp);
    ui_ms.sort_by(f64::total_cmp);
    let n = frames.len();
    Ok(AppBenchReport {
        adapter: gpu.summary.name.clone(),
        iters: o.iters,
        headless_steps_per_s: head,
        app_steps_per_s: app,
        overhead_pct: 100.0 * (head - app) / head,
        frames: n,
        fps: n as f64 / wall,
        frame_ms_median: percentile(&frames, 0.5),
        frame_ms_p95: percentile(&frames, 0.95),
        frame_ms_max: frames.last().copied().unwrap_or(f64::NAN),
        ui_ms_median: percentile(&ui_ms, 0.5),
    })
}
