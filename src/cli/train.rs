//! `advseg train`, `advseg eval`: the headless front end of the trainer (`advseg predict` is
//! in `predict.rs`). The progress bar (`console.rs`) and the run directory are observers of the
//! trainer's event stream.

use super::console::{eval_table, Console};
use advseg::data::{self, DataSpec};
use advseg::train::checkpoint;
use advseg::train::config::parse_value;
use advseg::train::eval::{eval_batch, evaluate};
use advseg::train::{Outcome, ResumeFrom, RunSession, TrainError};
use advseg::Gpu;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Training method: supervised, advsemi (default advsemi). Settings of every method are in
    /// the run's config.toml.
    #[arg(long)]
    method: Option<String>,
    /// Dataset spec: synthetic[:k=v,..], camvid:PATH, voc:PATH, cityscapes:PATH, folder:PATH.
    #[arg(long)]
    data: Option<String>,
    /// Segmentation network (`advseg model --list`).
    #[arg(long)]
    arch: Option<String>,
    /// Discriminator network (methods with one).
    #[arg(long)]
    disc: Option<String>,
    /// Discriminator base width.
    #[arg(long)]
    ndf: Option<usize>,
    /// TOML config: shared keys at the top level, the method's under [method].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override any setting: key=value (shared or the method's), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Training iterations (default 20000).
    #[arg(long)]
    iters: Option<usize>,
    /// Images per batch and stream (default 10).
    #[arg(long)]
    batch: Option<usize>,
    /// Random crop H,W.
    #[arg(long, value_name = "H,W")]
    crop: Option<String>,
    /// Labelled share of the train split: 0.125, 1/8 or 1.
    #[arg(long)]
    labeled_fraction: Option<String>,
    /// Seed of initialisation, split and data order.
    #[arg(long)]
    seed: Option<u64>,
    /// Run directory (default runs/<method>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue a run: `auto` (OUT/last.safetensors if present) or a checkpoint path.
    #[arg(long)]
    resume: Option<String>,
    /// Initialise the segmentation network from weights (advseg checkpoint or state_dict).
    #[arg(long)]
    load_from: Option<PathBuf>,
    /// Print a log line every N steps.
    #[arg(long)]
    log_every: Option<usize>,
    /// Evaluate every N steps.
    #[arg(long)]
    eval_every: Option<usize>,
    /// No progress bar (log lines only).
    #[arg(long)]
    quiet: bool,
}

fn parse_fraction(s: &str) -> Result<f64> {
    data::semi::parse_fraction(s).with_context(|| format!("--labeled-fraction {s:?}"))
}

/// Explicit flags and `--set`s, in order of precedence (later wins).
fn overrides(a: &TrainArgs) -> Result<Vec<(String, toml::Value)>> {
    let mut v: Vec<(String, toml::Value)> = Vec::new();
    let s = |x: &str| toml::Value::String(x.to_string());
    let int = |x: usize| toml::Value::Integer(x as i64);
    if let Some(x) = &a.data {
        x.parse::<DataSpec>()?;
        v.push(("data".into(), s(x)));
    }
    for (k, x) in [("arch", &a.arch), ("disc", &a.disc)] {
        if let Some(x) = x {
            v.push((k.into(), s(x)));
        }
    }
    for (k, x) in [
        ("ndf", a.ndf),
        ("iters", a.iters),
        ("batch", a.batch),
        ("log_every", a.log_every),
        ("eval_every", a.eval_every),
    ] {
        if let Some(x) = x {
            v.push((k.into(), int(x)));
        }
    }
    if let Some(c) = &a.crop {
        let p: Vec<usize> = c
            .split(',')
            .map(|t| t.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .with_context(|| format!("--crop {c:?}: expected H,W"))?;
        let p = match p.as_slice() {
            [h, w] => [*h, *w],
            [s] => [*s, *s],
            _ => bail!("--crop {c:?}: expected H,W"),
        };
        v.push(("crop".into(), toml::Value::Array(p.map(int).to_vec())));
    }
    if let Some(f) = &a.labeled_fraction {
        v.push((
            "labeled_fraction".into(),
            toml::Value::Float(parse_fraction(f)?),
        ));
    }
    if let Some(x) = a.seed {
        v.push(("seed".into(), toml::Value::Integer(x as i64)));
    }
    for kv in &a.set {
        v.push(parse_set(kv)?);
    }
    Ok(v)
}

/// One `--set KEY=VALUE` (also `advseg sweep`'s).
pub(crate) fn parse_set(kv: &str) -> Result<(String, toml::Value)> {
    let (k, x) = kv
        .split_once('=')
        .with_context(|| format!("--set {kv:?}: expected KEY=VALUE"))?;
    Ok((k.trim().to_string(), parse_value(x.trim())))
}

/// The `method` a `--config` file names, if any: without `--method`, a preset such as
/// `assets/presets/demo/ssgan.toml` trains its own method.
fn config_method(f: &std::path::Path) -> Result<Option<String>> {
    let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
    let v: toml::Table =
        toml::from_str(&text).with_context(|| format!("config {}", f.display()))?;
    match v.get("method") {
        None => Ok(None),
        Some(toml::Value::String(m)) => Ok(Some(m.clone())),
        Some(x) => bail!("config {}: method must be a string, got {x}", f.display()),
    }
}

pub fn run_train(a: TrainArgs) -> Result<()> {
    let file_method = match (&a.method, &a.config) {
        (None, Some(f)) => config_method(f)?,
        _ => None,
    };
    let default_method = a
        .method
        .clone()
        .or(file_method)
        .unwrap_or_else(|| "advsemi".into());
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&default_method));
    let session = RunSession::open(
        a.method.as_deref(),
        &default_method,
        Some(out.clone()),
        &ResumeFrom::from_flag(a.resume.as_deref()),
    )
    .map_err(|e| match e {
        TrainError::RunDirTaken { dir } => anyhow::anyhow!(
            "{} already holds a run; pass --resume auto to continue it or choose another --out",
            dir.display()
        ),
        e => e.into(),
    })?;
    let mut session = session.load_from(a.load_from.clone());
    let cfg = session.config_mut();
    if let Some(f) = &a.config {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        cfg.apply_toml(&text, f)?;
    }
    for (k, v) in overrides(&a)? {
        cfg.set(&k, v)?;
    }
    session.validate()?;

    if session.resume_step().is_none() && a.load_from.is_none() {
        let c = &session.config().common;
        if advseg::train::models::bn_mode(&c.bn_mode, &c.arch) == advseg::nn::BnMode::Frozen {
            // Frozen BN normalises with running statistics that random weights do not have:
            // activations grow through every block and the losses blow up within steps.
            eprintln!(
                "warning: {} keeps BatchNorm frozen (bn_mode={}) as its paper does on \
                 pretrained weights; from random init that diverges: pass --load-from WEIGHTS \
                 or --set bn_mode=train",
                c.arch, c.bn_mode
            );
        }
    }
    let gpu = Gpu::shared()?;
    let stop = Arc::new(AtomicBool::new(false));
    install_sigterm(stop.clone());
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("second interrupt: exiting without saving");
                std::process::exit(130);
            }
            eprintln!("interrupt: saving `last` after the current step (Ctrl-C again to abort)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let log_every = session.config().common.log_every;
    let mut trainer = session
        .stop_flag(stop)
        .start(&gpu, vec![Box::new(Console::new(log_every, a.quiet))])?;
    let outcome = trainer.run();
    let bad = trainer.bad_samples();
    if !bad.is_empty() {
        eprintln!("skipped {} bad sample(s) (on_bad_sample=skip):", bad.len());
        for (step, name, why) in bad {
            eprintln!("  step {step}: {name}: {why}");
        }
    }
    match outcome? {
        Outcome::Finished => Ok(()),
        Outcome::Interrupted => {
            let term = TERM.load(Ordering::SeqCst);
            eprintln!(
                "{} at step {}; continue with --resume auto --out {}",
                if term {
                    "terminated (SIGTERM)"
                } else {
                    "interrupted"
                },
                trainer.step(),
                out.display()
            );
            // The shell's convention: 128 + the signal number.
            std::process::exit(if term { 143 } else { 130 })
        }
    }
}

/// Set by the SIGTERM handler; a watcher thread turns it into the trainer's stop request.
pub(crate) static TERM: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_sigterm(_: libc::c_int) {
    // Only async-signal-safe work in a handler: a flag, or `_exit` on a second SIGTERM.
    if TERM.swap(true, Ordering::SeqCst) {
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(143) };
    }
}

/// Makes SIGTERM (what `kill`, systemd and job schedulers send) act like Ctrl-C: save `last`
/// after the current step and exit with 143. ctrlc's own SIGTERM support would call the same
/// handler for both signals, leaving the exit code unknowable.
pub(crate) fn install_sigterm(stop: Arc<AtomicBool>) {
    #[cfg(unix)]
    {
        let handler: extern "C" fn(libc::c_int) = on_sigterm;
        // SAFETY: the handler only touches an atomic and calls `_exit`.
        unsafe { libc::signal(libc::SIGTERM, handler as libc::sighandler_t) };
    }
    std::thread::spawn(move || loop {
        if TERM.load(Ordering::SeqCst) {
            eprintln!("SIGTERM: saving `last` after the current step");
            stop.store(true, Ordering::SeqCst);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    });
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Training checkpoint (last.safetensors / best.safetensors of a run).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset spec (default: the run's).
    #[arg(long)]
    data: Option<String>,
    #[arg(long, default_value = "val")]
    split: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Change one of the method's settings for this evaluation (repeatable), e.g.
    /// `eader.seed_threshold=0.5`; also `eval_batch`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Evaluate the live weights of a run trained with `ema_decay` instead of their average.
    #[arg(long)]
    raw_weights: bool,
}

pub fn run_eval(a: EvalArgs) -> Result<()> {
    let gpu = Gpu::shared()?;
    let sets = a
        .set
        .iter()
        .map(|kv| parse_set(kv))
        .collect::<Result<Vec<_>>>()?;
    let (method, cfg, meta) =
        checkpoint::load_method_with(&gpu, &a.checkpoint, &sets, a.raw_weights)?;
    let spec: DataSpec = match &a.data {
        Some(s) => s.parse()?,
        None => cfg.common.data.clone(),
    };
    let ds = data::open(&spec, &a.split)?;
    if ds.num_classes() != meta.classes {
        bail!(
            "{}: the checkpoint predicts {} classes but {spec} has {}",
            a.checkpoint.display(),
            meta.classes,
            ds.num_classes()
        );
    }
    let b = eval_batch(ds.as_ref(), cfg.common.eval_batch);
    let (r, _) = evaluate(&gpu, method.as_ref(), &ds, b, meta.step, &cfg.normalise())?;
    if a.json {
        let iou: serde_json::Map<String, serde_json::Value> = r
            .per_class_iou
            .iter()
            .map(|(n, v)| (n.clone(), serde_json::json!(v)))
            .collect();
        outln!(
            "{}",
            serde_json::json!({
                "checkpoint": a.checkpoint.display().to_string(), "method": meta.method,
                "arch": meta.arch, "step": meta.step, "data": spec.to_string(), "split": r.split,
                "images": r.images, "miou": r.miou, "pixel_acc": r.pixel_acc,
                "mean_class_acc": r.mean_class_acc, "iou": iou,
                "confusion": r.confusion.chunks(r.per_class_iou.len().max(1)).collect::<Vec<_>>(),
                "signals": r.signals.to_json(),
            })
        )?;
    } else {
        outln!("{}", eval_table(&r))?;
    }
    Ok(())
}
