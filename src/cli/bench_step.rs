//! `advseg bench step`: one method's whole training step on synthetic data — median time after
//! warm-up, time to the first step, GEMM GFLOP/s, and engine counters per step.
//! `bench/torch_step.py` runs the same step in PyTorch for a side-by-side figure.

use advseg::gpu::CounterSnapshot;
use advseg::train::{Event, Observer, RunConfig, Trainer, TrainerOptions};
use advseg::Gpu;
use anyhow::{Context, Result};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct StepArgs {
    #[arg(long, default_value = "advsemi")]
    method: String,
    /// Segmentation network.
    #[arg(long, default_value = "tiny")]
    arch: String,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Square image (and crop) size of the synthetic data.
    #[arg(long, default_value_t = 48)]
    size: usize,
    /// Discriminator base width (methods with one).
    #[arg(long)]
    ndf: Option<usize>,
    /// Untimed steps first (pipeline compiles, pool fills).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Extra settings, key=value (as `train --set`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize, Debug)]
pub struct StepReport {
    pub adapter: String,
    pub method: String,
    pub arch: String,
    pub batch: usize,
    pub size: usize,
    /// Median milliseconds per training step after the warm-up.
    pub ms_per_step: f64,
    /// Fastest and slowest timed step.
    pub ms_min: f64,
    pub ms_max: f64,
    /// From the start of the command (device creation included) to the end of step 1.
    pub first_step_s: f64,
    /// Convolution / linear GFLOP of one step (forward and both gradients).
    pub gflop_per_step: f64,
    pub gflops: f64,
    pub dispatches_per_step: f64,
    pub submits_per_step: f64,
    pub readbacks_per_step: f64,
    pub allocations_per_step: f64,
    /// Most GPU memory held by tensors at once (MiB), over the timed steps.
    pub peak_mib: f64,
    /// Process CPU seconds (user + sys, lavapipe's threads included) per timed step.
    pub cpu_s_per_step: Option<f64>,
    /// Per-kernel time over the timed steps (`ADVSEG_PROFILE` set), slowest first.
    pub profile: Option<Vec<KernelTime>>,
}

#[derive(Serialize, Debug)]
pub struct KernelTime {
    pub kernel: String,
    pub calls_per_step: f64,
    pub ms_per_step: f64,
}

type ProfileSlot = Arc<Mutex<Option<Vec<(String, u64, f64)>>>>;

/// Step-end times and counters, taken on the training thread.
#[derive(Default)]
struct Marks {
    at: Vec<(Instant, CounterSnapshot, Option<f64>)>,
}

struct Recorder {
    gpu: Arc<Gpu>,
    marks: Arc<Mutex<Marks>>,
}

impl Observer for Recorder {
    fn on_event(&mut self, e: &Event) {
        if let Event::Step(_) = e {
            let c = self.gpu.counters();
            self.marks
                .lock()
                .unwrap()
                .at
                .push((Instant::now(), c, cpu_seconds()));
        }
    }
}

/// User + system CPU seconds of this process (Linux `/proc/self/stat`).
pub fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub fn run(a: StepArgs, t0: Instant) -> Result<()> {
    let r = measure(&a, t0)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?)?;
        return Ok(());
    }
    outln!("adapter          {}", r.adapter)?;
    outln!(
        "step             {} {} batch {} size {}",
        r.method,
        r.arch,
        r.batch,
        r.size
    )?;
    outln!(
        "ms/step          {:.1} median (min {:.1}, max {:.1})",
        r.ms_per_step,
        r.ms_min,
        r.ms_max
    )?;
    outln!("first step       {:.2} s after start", r.first_step_s)?;
    outln!(
        "GEMM work        {:.3} GFLOP/step, {:.2} GFLOP/s",
        r.gflop_per_step,
        r.gflops
    )?;
    if let Some(c) = r.cpu_s_per_step {
        outln!(
            "CPU              {c:.3} s/step ({:.2} GFLOP per CPU-second)",
            r.gflop_per_step / c.max(1e-9)
        )?;
    }
    outln!(
        "per step         {:.1} dispatches, {:.2} submits, {:.2} readbacks, {:.2} allocations",
        r.dispatches_per_step,
        r.submits_per_step,
        r.readbacks_per_step,
        r.allocations_per_step
    )?;
    outln!("peak GPU memory  {:.1} MiB", r.peak_mib)?;
    if let Some(prof) = &r.profile {
        let total: f64 = prof.iter().map(|k| k.ms_per_step).sum();
        outln!("kernels per timed step (ADVSEG_PROFILE: each dispatch timed alone):")?;
        for k in prof.iter().take(25) {
            outln!(
                "  {:<40} {:>7.1} calls {:>9.1} ms {:>5.1}%",
                k.kernel,
                k.calls_per_step,
                k.ms_per_step,
                100.0 * k.ms_per_step / total.max(1e-12)
            )?;
        }
    }
    Ok(())
}

pub fn measure(a: &StepArgs, t0: Instant) -> Result<StepReport> {
    let gpu = Gpu::shared()?;
    let mut cfg = RunConfig::new(&a.method)?;
    let n = (4 * a.batch).max(16);
    let total = a.warmup + a.steps;
    let int = |v: usize| toml::Value::Integer(v as i64);
    let mut sets: Vec<(String, toml::Value)> = vec![
        (
            "data".into(),
            toml::Value::String(format!("synthetic:size={},n={n},val=2", a.size)),
        ),
        ("arch".into(), toml::Value::String(a.arch.clone())),
        ("batch".into(), int(a.batch)),
        ("iters".into(), int(total)),
        // Nothing but steps inside the timed window: the final evaluation follows the last
        // step's event.
        ("eval_every".into(), int(0)),
        ("checkpoint_every".into(), int(0)),
        ("snapshot_every".into(), int(0)),
        ("log_every".into(), int(1)),
        ("probes".into(), int(1)),
    ];
    if let Some(ndf) = a.ndf {
        sets.push(("ndf".into(), int(ndf)));
    }
    for kv in &a.set {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set {kv:?}: expected KEY=VALUE"))?;
        sets.push((
            k.trim().to_string(),
            advseg::train::config::parse_value(v.trim()),
        ));
    }
    for (k, v) in sets {
        cfg.set(&k, v)?;
    }
    let mut trainer = Trainer::new(&gpu, cfg, TrainerOptions::default())?;
    let marks = Arc::new(Mutex::new(Marks::default()));
    trainer.add_observer(Box::new(Recorder {
        gpu: gpu.clone(),
        marks: marks.clone(),
    }));
    gpu.reset_peak();
    // Profile only the timed steps: clear what the warm-up recorded once it is over.
    struct ProfileWindow {
        gpu: Arc<Gpu>,
        from: usize,
        to: usize,
        out: ProfileSlot,
    }
    impl Observer for ProfileWindow {
        fn on_event(&mut self, e: &Event) {
            if let Event::Step(s) = e {
                if s.step == self.from {
                    self.gpu.take_profile();
                }
                if s.step == self.to {
                    *self.out.lock().unwrap() = self.gpu.take_profile();
                }
            }
        }
    }
    let profile = ProfileSlot::default();
    trainer.add_observer(Box::new(ProfileWindow {
        gpu: gpu.clone(),
        from: a.warmup.max(1),
        to: total,
        out: profile.clone(),
    }));
    trainer.run()?;
    let profile = profile.lock().unwrap().take();
    let m = marks.lock().unwrap();
    anyhow::ensure!(
        m.at.len() == total,
        "expected {total} step events, got {}",
        m.at.len()
    );
    let first_step_s = m.at[0].0.duration_since(t0).as_secs_f64();
    // Timed window: from the end of the last warm-up step (or the first step) to the end.
    let w0 = a.warmup.max(1) - 1;
    let mut ms: Vec<f64> = m.at[w0..]
        .windows(2)
        .map(|p| p[1].0.duration_since(p[0].0).as_secs_f64() * 1e3)
        .collect();
    anyhow::ensure!(!ms.is_empty(), "no timed steps: use --steps 1 or more");
    let steps = ms.len() as f64;
    let d = m.at[total - 1].1.since(&m.at[w0].1);
    let cpu = match (m.at[w0].2, m.at[total - 1].2) {
        (Some(a), Some(b)) => Some((b - a) / steps),
        _ => None,
    };
    ms.sort_by(f64::total_cmp);
    let med = ms[ms.len() / 2];
    let gflop = d.flops as f64 / 1e9 / steps;
    Ok(StepReport {
        adapter: format!("{} ({})", gpu.summary.name, gpu.summary.backend),
        method: a.method.clone(),
        arch: a.arch.clone(),
        batch: a.batch,
        size: a.size,
        ms_per_step: med,
        ms_min: ms[0],
        ms_max: ms[ms.len() - 1],
        first_step_s,
        gflop_per_step: gflop,
        gflops: gflop / (med / 1e3),
        dispatches_per_step: d.dispatches as f64 / steps,
        submits_per_step: d.submits as f64 / steps,
        readbacks_per_step: d.readbacks as f64 / steps,
        allocations_per_step: d.buffers_allocated as f64 / steps,
        peak_mib: d.bytes_peak as f64 / (1 << 20) as f64,
        cpu_s_per_step: cpu,
        profile: profile.map(|p| {
            p.into_iter()
                .map(|(kernel, calls, s)| KernelTime {
                    kernel,
                    calls_per_step: calls as f64 / steps,
                    ms_per_step: s * 1e3 / steps,
                })
                .collect()
        }),
    })
}
