//! `advseg app`: the desktop app's launch flags.

use advseg::app::{self, AppOptions};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Default)]
pub struct AppArgs {
    /// Method selected in the setup panel.
    #[arg(long)]
    method: Option<String>,
    /// Preset a setup field: key=value (e.g. iters=100, data=camvid:PATH, advsemi.mask_t=0.2).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Start training as soon as the window opens.
    #[arg(long)]
    start: bool,
    /// Write a PNG screenshot of the window to this path after --after-secs, then quit.
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Seconds before the screenshot.
    #[arg(long, default_value_t = 10.0)]
    after_secs: f64,
    /// Start from default UI state, ignoring the persisted one (which is kept for the next
    /// launch).
    #[arg(long)]
    fresh: bool,
}

pub fn run(a: AppArgs) -> Result<()> {
    let preset = a
        .set
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("--set {kv:?}: expected KEY=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    // Checked before any window opens, as `train --set` checks its keys.
    app::setup::check_presets(a.method.as_deref(), &preset).map_err(anyhow::Error::msg)?;
    if !app::display_available() {
        bail!("no display (DISPLAY / WAYLAND_DISPLAY unset): the app needs a window; try xvfb-run");
    }
    app::run_native(AppOptions {
        start: a.start,
        preset,
        method: a.method,
        screenshot: a.screenshot,
        after_secs: a.after_secs,
        fresh: a.fresh,
    })
}
