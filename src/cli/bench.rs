//! `advseg bench ...`: kernel benchmarks.
//!
//! `bench ops` times each op at DeepLab/discriminator training shapes; its rows come from the
//! per-op functions in [`rows`].

mod rows;

use advseg::gpu::CounterSnapshot;
use advseg::ops::conv::{Family, GemmConfig, Tile};
use advseg::Gpu;
use anyhow::Result;
use clap::{Args, Subcommand};
use rows::{ops_rows, Ctx};
use serde::Serialize;
use std::time::Instant;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Per-op forward/backward timings at DeepLab training shapes.
    Ops(OpsArgs),
    /// One method's whole training step: ms/step, time to first step, GFLOP/s, counters.
    Step(super::bench_step::StepArgs),
    /// The desktop app's overhead: a tiny run headless vs. under the app's observer and a
    /// headless egui frame loop (offscreen wgpu rendering); steps/s of both and frame times.
    #[cfg(feature = "app")]
    App(AppArgs),
}

#[cfg(feature = "app")]
#[derive(Args, Clone)]
pub struct AppArgs {
    #[arg(long, default_value = "advsemi")]
    method: String,
    #[arg(long, default_value = "synthetic:size=48,n=32,val=4")]
    data: String,
    #[arg(long, default_value_t = 60)]
    iters: usize,
    #[arg(long, default_value_t = 2)]
    batch: usize,
    #[arg(long, default_value_t = 5)]
    snapshot_every: usize,
    #[arg(long, default_value_t = 20)]
    eval_every: usize,
    /// Frame cap, as a vsynced window.
    #[arg(long, default_value_t = 60.0)]
    max_fps: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[cfg(feature = "app")]
fn app(a: AppArgs) -> Result<()> {
    let o = advseg::app::bench::AppBenchOptions {
        method: a.method,
        data: a.data,
        iters: a.iters,
        batch: a.batch,
        snapshot_every: a.snapshot_every,
        eval_every: a.eval_every,
        max_fps: a.max_fps,
        ..Default::default()
    };
    let r = advseg::app::bench::run(&o)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        outln!("adapter              {}", r.adapter)?;
        outln!("iters                {}", r.iters)?;
        outln!("headless             {:.2} steps/s", r.headless_steps_per_s)?;
        outln!("with app             {:.2} steps/s", r.app_steps_per_s)?;
        outln!("overhead             {:.1}%", r.overhead_pct)?;
        outln!(
            "frames               {} ({:.1} fps; cap {})",
            r.frames,
            r.fps,
            a.max_fps
        )?;
        outln!(
            "frame time           median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            r.frame_ms_median,
            r.frame_ms_p95,
            r.frame_ms_max
        )?;
        outln!("  of which UI pass    median {:.1} ms", r.ui_ms_median)?;
    }
    Ok(())
}

#[derive(Args, Clone)]
pub struct OpsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Tiny shapes that finish in seconds on a software rasteriser (smoke tests).
    #[arg(long)]
    quick: bool,
    /// Batch size of the convolution shapes.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed samples per row (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Only rows whose op or shape contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Force a GEMM tile preset (64, 128 or 32x128) instead of the automatic choice (tuning).
    #[arg(long)]
    tile: Option<String>,
    /// Force the split-K factor (tuning).
    #[arg(long)]
    splits: Option<usize>,
    /// Row set: `deeplab` (DeepLab / discriminator layers, default) or `burn` (the shapes of
    /// ../shared/tools/burn-bench: conv1..conv6 at their batch sizes, matmul 1024³ and 2048³,
    /// the FCDiscriminator forward and forward+backward), for side-by-side tables.
    #[arg(long, default_value = "deeplab")]
    suite: String,
    /// Measure the convolution variants again for every row's shape class (refreshes the
    /// on-disk choices for this device), then print the choices.
    #[arg(long)]
    tune: bool,
    /// Force the convolution kernel family: tiled (shared-memory tiles) or texture.
    #[arg(long)]
    family: Option<String>,
    /// Force the texture family's register-block rows (8, 16 or 32).
    #[arg(long)]
    rm: Option<u32>,
}

/// One timed measurement.
#[derive(Serialize, Clone, Debug)]
pub struct BenchRow {
    pub op: String,
    pub shape: String,
    /// Median milliseconds per call.
    pub ms: f64,
    /// Floating-point operations per call, when meaningful.
    pub flops: Option<f64>,
    pub gflops: Option<f64>,
    /// Process CPU milliseconds (user + sys, the driver's threads included) per call: on a CPU
    /// driver the load-independent cost.
    pub cpu_ms: Option<f64>,
    /// GFLOP per CPU-second of the process.
    pub gflop_per_cpu_s: Option<f64>,
    /// Bytes moved per call (minimum: inputs read once, outputs written once), for
    /// memory-bound ops.
    pub bytes: Option<f64>,
    pub gbps: Option<f64>,
    /// Calls per timed sample (several when one call is short).
    pub iters: usize,
    /// Timed samples (each of `iters` calls).
    pub samples: usize,
    /// Engine counters over the timed samples (deltas; live/peak bytes as of the end).
    pub counters: CounterSnapshot,
}

#[derive(Serialize)]
struct Report {
    device: String,
    backend: String,
    batch: usize,
    quick: bool,
    rows: Vec<BenchRow>,
    /// Whole-run engine counters.
    counters: CounterSnapshot,
}

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Ops(a) => ops(a),
        #[cfg(feature = "app")]
        BenchCmd::App(a) => app(a),
        BenchCmd::Step(a) => super::bench_step::run(a, Instant::now()),
    }
}

fn ops(a: OpsArgs) -> Result<()> {
    let gpu = Gpu::shared()?;
    let cx = Ctx {
        gpu: gpu.clone(),
        reps: if a.quick { a.reps.min(3) } else { a.reps },
        filter: a.filter.clone(),
        gemm: GemmConfig {
            family: a
                .family
                .as_deref()
                .map(|f| {
                    Family::parse(f)
                        .ok_or_else(|| anyhow::anyhow!("--family {f:?}: expected tiled or texture"))
                })
                .transpose()?,
            tile: a.tile.as_deref().map(parse_tile).transpose()?,
            splits: a.splits,
            rm: a.rm,
            subgroups: None,
        },
    };
    if a.tune {
        anyhow::ensure!(
            advseg::ops::tune::enabled(),
            "--tune: ADVSEG_TUNE is off in this environment"
        );
        anyhow::ensure!(
            cx.gemm.family.is_none() && cx.gemm.rm.is_none(),
            "--tune measures every variant: drop --family / --rm"
        );
        advseg::ops::tune::reset(&gpu);
    }
    let start = gpu.counters();
    let rows = ops_rows(&cx, &a)?;
    let report = Report {
        device: gpu.summary.name.clone(),
        backend: gpu.summary.backend.clone(),
        batch: a.batch,
        quick: a.quick,
        rows,
        counters: gpu.counters().since(&start),
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_table(&report)?;
        if a.tune {
            outln!("tuned choices ({}):", advseg::ops::tune::device_key(&gpu))?;
            for (class, v) in advseg::ops::tune::choices(&gpu) {
                outln!("  {class:<48} {v}")?;
            }
        }
    }
    Ok(())
}

fn parse_tile(s: &str) -> Result<Tile> {
    Ok(match s {
        "64" => Tile::T64,
        "128" => Tile::T128,
        "32x128" => Tile::T32X128,
        _ => anyhow::bail!("--tile {s:?}: expected 64, 128 or 32x128"),
    })
}

fn print_table(r: &Report) -> Result<()> {
    outln!("device: {} ({}), batch {}", r.device, r.backend, r.batch)?;
    outln!(
        "{:<28} {:<36} {:>10} {:>10} {:>8} {:>8} {:>6} {:>9} {:>8} {:>9}",
        "op",
        "shape",
        "ms",
        "GFLOP/s",
        "GF/cpu-s",
        "GB/s",
        "iters",
        "disp/call",
        "allocs",
        "peak MiB"
    )?;
    for row in &r.rows {
        let per_call = row.counters.dispatches as f64 / (row.iters * row.samples).max(1) as f64;
        outln!(
            "{:<28} {:<36} {:>10.3} {:>10} {:>8} {:>8} {:>6} {:>9.1} {:>8} {:>9.1}",
            row.op,
            row.shape,
            row.ms,
            row.gflops.map_or("-".to_string(), |g| format!("{g:.2}")),
            row.gflop_per_cpu_s
                .map_or("-".to_string(), |g| format!("{g:.2}")),
            row.gbps.map_or("-".to_string(), |g| format!("{g:.2}")),
            row.iters,
            per_call,
            row.counters.buffers_allocated,
            row.counters.bytes_peak as f64 / (1 << 20) as f64,
        )?;
    }
    let c = &r.counters;
    outln!(
        "engine counters: dispatches {}, submits {}, readbacks {}, pipelines {}, buffers allocated {} ({:.1} MiB), peak live {:.1} MiB",
        c.dispatches,
        c.submits,
        c.readbacks,
        c.pipelines,
        c.buffers_allocated,
        c.bytes_allocated as f64 / (1 << 20) as f64,
        c.bytes_peak as f64 / (1 << 20) as f64
    )
}
