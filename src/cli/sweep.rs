//! `advseg sweep`: runs the cells of a grid (method × labelled fraction × seed) as child
//! `advseg train` processes, one run directory each, skipping finished runs and resuming
//! interrupted ones. `--list` / `--index I` let a Slurm job array or a Kubernetes Indexed Job
//! run one cell per task (docs/SWEEPS.md); there is no scheduler here.

use advseg::sweep::grid::{Cell, CellState, Flags, Grid};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(clap::Args)]
pub struct SweepArgs {
    /// Grid file (TOML: `out`, `[set]`, `[set.METHOD]`, `[[grid]]` groups; see
    /// assets/sweeps/). Without it, --methods/--fractions/--seeds make the grid.
    grid: Option<PathBuf>,
    /// Methods (comma-separated). With a grid file: keep only these cells.
    #[arg(long, value_delimiter = ',')]
    methods: Vec<String>,
    /// Labelled fractions, e.g. 1/8,1 (default 1). With a grid file: keep only these cells.
    #[arg(long, value_delimiter = ',')]
    fractions: Vec<String>,
    /// Seeds (initialisation, labelled split and data order). With a grid file: keep only these.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Setting for every run, key=value as `train --set` (after the grid file's), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Output directory; each cell runs in OUT/<method>-f<fraction>-s<seed>. Default: the grid
    /// file's `out`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs at a time (child processes).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Print the cells (index, run directory, new/partial/done) and exit.
    #[arg(long)]
    list: bool,
    /// Run only cell I (e.g. $SLURM_ARRAY_TASK_ID, $JOB_COMPLETION_INDEX); its output goes to
    /// this process's stdout/stderr, the scheduler's log.
    #[arg(long, value_name = "I")]
    index: Option<usize>,
}

pub fn run(a: SweepArgs) -> Result<()> {
    let flags = Flags {
        methods: a.methods.clone(),
        fractions: a.fractions.clone(),
        seeds: a.seeds.clone(),
        sets: a
            .set
            .iter()
            .map(|kv| super::train::parse_set(kv))
            .collect::<Result<_>>()?,
    };
    let text = match &a.grid {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("reading grid {}", p.display()))?,
        ),
        None => None,
    };
    let grid = Grid::build(
        a.grid.as_deref().zip(text.as_deref()).map(|(p, t)| (t, p)),
        &flags,
    )?;
    let Some(out) = a.out.clone().or(grid.out.clone()) else {
        bail!("no output directory: pass --out DIR (or set `out` in the grid file)");
    };
    // Every cell's settings are checked before anything runs: a typo in the grid must not
    // surface hours later, in the last cell.
    let mut iters = Vec::with_capacity(grid.cells.len());
    for c in &grid.cells {
        iters.push(c.config()?.common.iters);
    }
    let state = |i: usize| CellState::of(&out.join(grid.cells[i].name()), iters[i]);

    if a.list {
        for (i, c) in grid.cells.iter().enumerate() {
            outln!("{i}\t{}\t{}", out.join(c.name()).display(), state(i).word())?;
        }
        return Ok(());
    }
    if let Some(i) = a.index {
        let n = grid.cells.len();
        let Some(cell) = grid.cells.get(i) else {
            bail!("--index {i}: the grid has {n} cells (0..={})", n - 1);
        };
        let dir = out.join(cell.name());
        if state(i) == CellState::Done {
            outln!("cell {i} {}: done, skipped", dir.display())?;
            return Ok(());
        }
        outln!("cell {i} {}: {}", dir.display(), state(i).word())?;
        return exec_train(cell, &dir);
    }
    run_all(&grid.cells, &out, &iters, a.jobs.max(1))
}

/// The supervisor's progress lines: a closed stdout must not stop the sweep, whose runs log to
/// their own files and keep going.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = outln!($($t)*);
    }};
}

fn train_command(cell: &Cell, dir: &Path) -> Result<Command> {
    let exe = std::env::current_exe().context("locating the advseg binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(cell.train_args(dir));
    Ok(cmd)
}

/// One cell in place of this process (Unix `exec`): the scheduler's signals (SIGTERM on
/// preemption or time limit) then reach the trainer itself, which saves `last` and exits 143.
fn exec_train(cell: &Cell, dir: &Path) -> Result<()> {
    let mut cmd = train_command(cell, dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = cmd.exec();
        bail!("starting advseg train for {}: {e}", dir.display())
    }
    #[cfg(not(unix))]
    {
        let s = cmd.status().context("starting advseg train")?;
        std::process::exit(s.code().unwrap_or(1))
    }
}

/// How a child run ended.
enum Ended {
    Done(f64),
    Interrupted(i32),
    Failed(String),
}

/// Runs the cells that are not done, `jobs` at a time, each child's output in its run
/// directory's `train.log`. Ctrl-C reaches the children too (same process group): they save
/// `last` and the sweep starts nothing new. A SIGTERM to the sweep alone stops it starting new
/// runs and lets the running ones finish; a SIGTERM to the group (Slurm, systemd) stops them too.
fn run_all(cells: &[Cell], out: &Path, iters: &[usize], jobs: usize) -> Result<()> {
    let todo: Vec<usize> = (0..cells.len())
        .filter(|&i| {
            let dir = out.join(cells[i].name());
            let done = CellState::of(&dir, iters[i]) == CellState::Done;
            if done {
                say!("[{i}] {}: done, skipped", dir.display());
            }
            !done
        })
        .collect();
    if todo.is_empty() {
        say!("all {} runs are done", cells.len());
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    super::train::install_sigterm(stop.clone());
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            stop.store(true, Ordering::SeqCst);
            eprintln!("interrupt: the running runs save `last`; the sweep starts no new run");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let t0 = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Ended)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(todo.len()) {
            s.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { return };
                let ended = run_one(i, &cells[i], &out.join(cells[i].name()), iters[i]);
                results.lock().expect("no panics hold it").push((i, ended));
            });
        }
    });
    let mut results = results.into_inner().expect("threads joined");
    results.sort_by_key(|r| r.0);
    let (mut failed, mut interrupted) = (Vec::new(), 0);
    for (i, e) in &results {
        match e {
            Ended::Done(_) => {}
            Ended::Interrupted(_) => interrupted += 1,
            Ended::Failed(why) => failed.push(format!("[{i}] {}: {why}", cells[*i].name())),
        }
    }
    let done = results
        .iter()
        .filter(|r| matches!(r.1, Ended::Done(_)))
        .count();
    say!(
        "sweep: {done} run(s) finished, {} skipped as done, {interrupted} interrupted, {} \
         failed, {} not started, in {:.0} s",
        cells.len() - todo.len(),
        failed.len(),
        todo.len() - results.len(),
        t0.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        bail!(
            "{} run(s) failed:\n  {}\n(fix and run the sweep again: finished runs are skipped)",
            failed.len(),
            failed.join("\n  ")
        );
    }
    if stop.load(Ordering::SeqCst) || interrupted > 0 {
        eprintln!("interrupted; run the sweep again to resume");
        let term = super::train::TERM.load(Ordering::SeqCst);
        std::process::exit(if term { 143 } else { 130 });
    }
    Ok(())
}

fn run_one(i: usize, cell: &Cell, dir: &Path, iters: usize) -> Ended {
    let log_path = dir.join("train.log");
    let start = CellState::of(dir, iters);
    say!(
        "[{i}] {}: {} (log {})",
        dir.display(),
        if start == CellState::Partial {
            "resuming"
        } else {
            "starting"
        },
        log_path.display()
    );
    let t0 = Instant::now();
    let status = std::fs::create_dir_all(dir)
        .and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
        })
        .map_err(|e| format!("{}: {e}", log_path.display()))
        .and_then(|log| {
            let err = log
                .try_clone()
                .map_err(|e| format!("{}: {e}", log_path.display()))?;
            let mut cmd = train_command(cell, dir).map_err(|e| e.to_string())?;
            cmd.stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(err))
                .status()
                .map_err(|e| format!("starting advseg train: {e}"))
        });
    let secs = t0.elapsed().as_secs_f64();
    let ended = match status {
        Err(why) => Ended::Failed(why),
        Ok(s) if s.success() => {
            if CellState::of(dir, iters) == CellState::Done {
                Ended::Done(secs)
            } else {
                Ended::Failed(format!(
                    "exited 0 without the evaluation of step {iters}; see {}",
                    log_path.display()
                ))
            }
        }
        Ok(s) if matches!(s.code(), Some(130 | 143)) => Ended::Interrupted(s.code().unwrap_or(0)),
        Ok(s) => Ended::Failed(format!(
            "{s}: {}",
            last_line(&log_path).unwrap_or_else(|| format!("see {}", log_path.display()))
        )),
    };
    match &ended {
        Ended::Done(t) => say!("[{i}] {}: finished in {t:.0} s", dir.display()),
        Ended::Interrupted(c) => say!(
            "[{i}] {}: interrupted (exit {c}) after {secs:.0} s",
            dir.display()
        ),
        Ended::Failed(why) => say!("[{i}] {}: FAILED: {why}", dir.display()),
    }
    ended
}

/// The last non-empty line of a log (the trainer's `error: …` line when it failed).
fn last_line(p: &Path) -> Option<String> {
    let t = std::fs::read_to_string(p).ok()?;
    t.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}
