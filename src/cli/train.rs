//! `advseg train`, `advseg eval`, `advseg predict`: the headless front end of the trainer.
//! The progress bar and the run directory are observers of the trainer's event stream.

use advseg::data::io::{read_image, write_gray_png};
use advseg::data::save::{save_overlay, save_prediction};
use advseg::data::{self, DataSpec};
use advseg::train::checkpoint;
use advseg::train::config::parse_value;
use advseg::train::eval::{eval_batch, evaluate};
use advseg::train::{EvalResult, Event, Observer, Outcome, ResumeFrom, RunSession, TrainError};
use advseg::{Gpu, Tensor};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
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

/// Progress bar and log lines.
struct Console {
    bar: ProgressBar,
    log_every: usize,
    balance: advseg::train::balance::BalanceMonitor,
}

impl Console {
    fn new(log_every: usize, quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
            )
            .expect("valid template"),
        );
        Console {
            bar,
            log_every: log_every.max(1),
            balance: Default::default(),
        }
    }
    fn say(&self, s: String) {
        self.bar.suspend(|| println!("{s}"));
    }
}

/// The losses shown on the bar.
const MAIN: &[&str] = &["loss_seg", "loss_adv", "loss_semi", "loss_d"];

impl Observer for Console {
    fn on_event(&mut self, e: &Event) {
        match e {
            Event::Started {
                method,
                start_step,
                iters,
                run_dir,
            } => {
                self.bar.set_length(*iters as u64);
                self.bar.set_position(*start_step as u64);
                self.bar.reset_eta();
                let dir = run_dir
                    .as_ref()
                    .map(|d| format!(" -> {}", d.display()))
                    .unwrap_or_default();
                self.say(format!("{method}: steps {start_step}..{iters}{dir}"));
            }
            Event::Step(s) => {
                if let Some(w) = self.balance.observe(s) {
                    self.say(format!("warning: {w}"));
                }
                self.bar.set_position(s.step as u64);
                let main: Vec<String> = MAIN
                    .iter()
                    .filter_map(|k| s.get(k).map(|v| format!("{k} {v:.4}")))
                    .collect();
                self.bar
                    .set_message(format!("{:.2} it/s {}", s.it_per_s, main.join(" ")));
                if s.step.is_multiple_of(self.log_every) || s.step == s.iters {
                    let all: Vec<String> = s
                        .scalars
                        .iter()
                        .map(|(k, v)| format!("{k}={v:.5}"))
                        .collect();
                    self.say(format!(
                        "step {:>6}/{} {:.2} it/s {}",
                        s.step,
                        s.iters,
                        s.it_per_s,
                        all.join(" ")
                    ));
                }
            }
            Event::Eval(r) => self.say(eval_table(r)),
            Event::Checkpoint { step, path, kind } if *kind == "best" => {
                self.say(format!("step {step}: new best -> {}", path.display()))
            }
            Event::Finished { step, seconds } => {
                self.bar.finish_and_clear();
                self.say(format!("finished at step {step} in {seconds:.1} s"));
            }
            _ => {}
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:6.2}", 100.0 * x))
        .unwrap_or_else(|| "   n/a".into())
}

fn eval_table(r: &EvalResult) -> String {
    let mut s = format!(
        "eval step {} on {} ({} images, {:.1} s): mIoU {} pixel acc {} mean class acc {}\n",
        r.step,
        r.split,
        r.images,
        r.seconds,
        pct(r.miou),
        pct(r.pixel_acc),
        pct(r.mean_class_acc)
    );
    if let Some(line) = signals_line(&r.signals) {
        s += &format!("  {line}\n");
    }
    for (n, v) in &r.per_class_iou {
        s += &format!("  {n:<16} {}\n", pct(*v));
    }
    s.pop();
    s
}

/// The method's signals in one line (docs/SIGNALS.md says what they mean); `None` when the
/// method has none.
fn signals_line(g: &advseg::metrics::signals::SignalScores) -> Option<String> {
    let p = |v: Option<f64>| v.map_or("n/a".into(), |x| format!("{:.1}%", 100.0 * x));
    let mut parts = Vec::new();
    if let Some(a) = g.d_auroc {
        parts.push(format!("D-uncertainty AUROC {a:.3}"));
    }
    if let Some(t) = g.gate_t {
        parts.push(format!(
            "gate T {t:.2}: precision {} coverage {}",
            p(g.gate_precision),
            p(g.gate_coverage)
        ));
    }
    if g.cam_miou.is_some() {
        parts.push(format!("thresholded-CAM mIoU {}", p(g.cam_miou)));
    }
    (!parts.is_empty()).then(|| format!("signals: {}", parts.join(" · ")))
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
}

pub fn run_eval(a: EvalArgs) -> Result<()> {
    let gpu = Gpu::shared()?;
    let (method, cfg, meta) = checkpoint::load_method(&gpu, &a.checkpoint)?;
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
        println!(
            "{}",
            serde_json::json!({
                "checkpoint": a.checkpoint.display().to_string(), "method": meta.method,
                "arch": meta.arch, "step": meta.step, "data": spec.to_string(), "split": r.split,
                "images": r.images, "miou": r.miou, "pixel_acc": r.pixel_acc,
                "mean_class_acc": r.mean_class_acc, "iou": iou,
                "confusion": r.confusion.chunks(r.per_class_iou.len().max(1)).collect::<Vec<_>>(),
                "signals": r.signals.to_json(),
            })
        );
    } else {
        println!("{}", eval_table(&r));
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct PredictArgs {
    /// Training checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// An image or a directory of images (.png, .jpg, .jpeg).
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Also write the confidence and the method's maps (e.g. D confidence) as grayscale PNGs.
    #[arg(long)]
    maps: bool,
}

fn images_in(p: &Path) -> Result<Vec<PathBuf>> {
    if p.is_file() {
        return Ok(vec![p.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .with_context(|| format!("reading {}", p.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| {
            f.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    v.sort();
    if v.is_empty() {
        bail!("{}: no .png/.jpg images", p.display());
    }
    Ok(v)
}

/// The smallest square input side every network of `method` accepts (searched with tiny
/// probes, so a too-small image is refused by name before it fails deep inside a conv).
fn min_side(gpu: &Arc<Gpu>, method: &dyn advseg::train::Method) -> Result<usize> {
    let ok = |s: usize| -> Result<bool> {
        let x = Tensor::zeros(gpu, &[1, 3, s, s], advseg::DType::F32)?;
        Ok(method.probe(&x).is_ok())
    };
    let mut hi = 1;
    while !ok(hi)? {
        if hi >= 1024 {
            bail!("the checkpoint's networks accept no input of side up to 1024");
        }
        hi *= 2;
    }
    let mut lo = hi / 2;
    // Invariant: `lo` fails (or is 0), `hi` works.
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if ok(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

pub fn run_predict(a: PredictArgs) -> Result<()> {
    let gpu = Gpu::shared()?;
    let (method, cfg, meta) = checkpoint::load_method(&gpu, &a.checkpoint)?;
    let colours: Vec<[u8; 3]> = data::open(&cfg.common.data, "train")
        .map(|d| d.colours().to_vec())
        .unwrap_or_else(|_| (0..meta.classes).map(data::palette::voc_colour).collect());
    let files = images_in(&a.input)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let min = min_side(&gpu, method.as_ref())?;
    // One bad file must not cost the rest of a directory: failures are collected and listed.
    let mut failed: Vec<String> = Vec::new();
    for f in &files {
        let net = Net {
            method: method.as_ref(),
            classes: meta.classes,
            colours: &colours,
            min,
            norm: cfg.normalise(),
        };
        if let Err(e) = predict_one(&gpu, &net, f, &a) {
            let why = match too_large(&e) {
                Some(e) => format!("the image is too large for this device ({e}); downscale it"),
                None => format!("{e:#}"),
            };
            // Decoding errors already start with the file's path.
            let file = f.display().to_string();
            let why = if why.contains(&file) {
                why
            } else {
                format!("{file}: {why}")
            };
            eprintln!("error: {why}");
            failed.push(why);
        }
    }
    println!(
        "wrote predictions of {} image(s) to {}",
        files.len() - failed.len(),
        a.out.display()
    );
    if !failed.is_empty() {
        eprintln!("{} of {} image(s) failed:", failed.len(), files.len());
        for why in &failed {
            eprintln!("  {why}");
        }
        bail!("{} of {} image(s) failed", failed.len(), files.len());
    }
    Ok(())
}

/// What `predict` knows about the checkpoint's networks.
struct Net<'a> {
    method: &'a dyn advseg::train::Method,
    classes: usize,
    colours: &'a [[u8; 3]],
    /// The smallest input side they accept ([`min_side`]).
    min: usize,
    /// The normalisation the run trained with (its config's).
    norm: advseg::data::Normalise,
}

fn predict_one(gpu: &Arc<Gpu>, net: &Net<'_>, f: &Path, a: &PredictArgs) -> Result<()> {
    let Net {
        method,
        classes,
        colours,
        min,
        ref norm,
    } = *net;
    let img = read_image(f)?;
    let (h, w) = (img.h, img.w);
    if h < min || w < min {
        bail!("{w}x{h} (WxH) is smaller than the {min}x{min} the checkpoint's networks need");
    }
    let mut x = vec![0f32; 3 * h * w];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            x[c * h * w + i] = norm.apply(c, px[c] as f32);
        }
    }
    let out = method.probe(&Tensor::from_f32(gpu, &x, &[1, 3, h, w])?)?;
    let probs = out.probs.to_vec_f32()?;
    let pred = advseg::metrics::argmax_chw(&probs, classes, h, w);
    let stem = f
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".into());
    save_prediction(&a.out.join(format!("{stem}.png")), w, h, &pred, colours)?;
    save_overlay(
        &a.out.join(format!("{stem}_overlay.png")),
        &img,
        &pred,
        colours,
        0.5,
    )?;
    if a.maps {
        let hw = h * w;
        let conf: Vec<u8> = (0..hw)
            .map(|j| {
                let m = (0..classes).map(|c| probs[c * hw + j]).fold(0.0, f32::max);
                (m.clamp(0.0, 1.0) * 255.0).round() as u8
            })
            .collect();
        write_gray_png(&a.out.join(format!("{stem}_confidence.png")), w, h, &conf)?;
        for m in &out.maps {
            let name = &m.name;
            let v: Vec<u8> = m.tensor.to_vec_f32()?[..hw]
                .iter()
                .map(|x| (x.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect();
            let path = a.out.join(format!("{stem}_{name}.png"));
            // Label maps (RRM's reliable labels) travel as id / 255: a palette PNG keeps
            // the raw ids (255 = unreliable, white) and shows the class colours.
            if m.kind == advseg::train::MapKind::Labels {
                save_prediction(&path, w, h, &v, colours)?;
            } else {
                write_gray_png(&path, w, h, &v)?;
            }
        }
    }
    Ok(())
}

/// The error in `e`'s chain that is a device size limit (buffer, texture or binding), from
/// whichever layer reported it.
fn too_large(e: &anyhow::Error) -> Option<&(dyn std::error::Error + 'static)> {
    e.chain().find(|c| {
        c.downcast_ref::<advseg::train::TrainError>()
            .is_some_and(|t| t.is_too_large())
            || c.downcast_ref::<advseg::nn::NnError>()
                .is_some_and(|t| t.is_too_large())
            || c.downcast_ref::<advseg::Error>()
                .is_some_and(|t| t.is_too_large())
            || c.downcast_ref::<advseg::gpu::GpuError>()
                .is_some_and(|t| t.is_too_large())
    })
}
