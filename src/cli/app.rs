//! `advseg app`: the desktop app's launch flags.

use advseg::app::state::Tab;
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
    /// Open on this tab: overview, plots, maps, inference or compare.
    #[arg(long, value_parser = parse_tab)]
    tab: Option<Tab>,
    /// Window size in points, WIDTHxHEIGHT (default 1400x860).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    window_size: Option<[f32; 2]>,
}

fn parse_tab(s: &str) -> std::result::Result<Tab, String> {
    Tab::ALL
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(s.trim()))
        .map(|(t, _)| *t)
        .ok_or_else(|| {
            let names: Vec<String> = Tab::ALL.iter().map(|(_, n)| n.to_lowercase()).collect();
            format!("unknown tab {s:?}; tabs: {}", names.join(", "))
        })
}

fn parse_size(s: &str) -> std::result::Result<[f32; 2], String> {
    let bad = || format!("expected WIDTHxHEIGHT (e.g. 1400x2000), got {s:?}");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (f32, f32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(200.0..=16384.0).contains(&w) || !(200.0..=16384.0).contains(&h) {
        return Err(format!("window size {s:?}: each side must be 200..16384"));
    }
    Ok([w, h])
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
        tab: a.tab,
        window_size: a.window_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_and_window_size_flags_parse_or_name_the_fault() {
        assert_eq!(parse_tab("Plots"), Ok(Tab::Plots));
        assert_eq!(parse_tab("maps"), Ok(Tab::Maps));
        let e = parse_tab("graphs").unwrap_err();
        assert!(e.contains("graphs") && e.contains("overview, plots"), "{e}");
        assert_eq!(parse_size("1400x2000"), Ok([1400.0, 2000.0]));
        assert!(parse_size("1400").unwrap_err().contains("WIDTHxHEIGHT"));
        assert!(parse_size("10x10").unwrap_err().contains("200..16384"));
    }
}
