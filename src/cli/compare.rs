//! `advseg compare`: the table of a sweep: mean ± std over seeds of final and best validation
//! mIoU and per-class IoU per (method, fraction), and paired differences against `supervised`
//! with a bootstrap interval. Text, `--markdown` (docs/RESULTS.md) or `--json`.

use advseg::sweep::compare::{
    compare, find_runs, fraction_text, name_variants_by_dir, read_run, Comparison,
};
use advseg::sweep::stats::{Interval, Summary, DEFAULT_BOOTSTRAP_SEED, DEFAULT_RESAMPLES};
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Run directories, or directories of runs (e.g. a sweep's OUT).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Machine-readable output (every run's values, differences and intervals).
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Markdown tables (for docs/RESULTS.md).
    #[arg(long)]
    markdown: bool,
    /// Bootstrap resamples of the paired differences.
    #[arg(long, default_value_t = DEFAULT_RESAMPLES)]
    resamples: usize,
    /// Seed of the bootstrap draws (the interval is deterministic given it).
    #[arg(long, default_value_t = DEFAULT_BOOTSTRAP_SEED)]
    bootstrap_seed: u64,
    /// Group each method's runs by the directory they sit in (one sweep per setting tried,
    /// e.g. `runs/advsemi-dlr3e5`), each group paired against the supervised runs given.
    #[arg(long)]
    variants: bool,
    /// Leave a class out of every mIoU (repeatable), e.g. `background` on camvid-things,
    /// where predicting background everywhere already scores 15.6.
    #[arg(long = "exclude-class", value_name = "NAME")]
    exclude_class: Vec<String>,
    /// Take each run's final mIoU and per-class IoU as the mean of its last K evaluations
    /// (the final one included), which damps the swing of single evaluations on a small
    /// validation set. Best mIoU and the signals stay single evaluations.
    #[arg(long, value_name = "K", default_value_t = 1)]
    last_evals: usize,
}

pub fn run(a: CompareArgs) -> Result<()> {
    if a.resamples == 0 {
        bail!("--resamples must be at least 1");
    }
    if a.last_evals == 0 {
        bail!("--last-evals must be at least 1");
    }
    let mut runs = Vec::new();
    let mut unfinished = Vec::new();
    for d in find_runs(&a.runs)? {
        match read_run(&d)? {
            Ok(mut r) => {
                r.exclude_classes(&a.exclude_class)?;
                r.average_last_evals(a.last_evals)?;
                runs.push(r)
            }
            Err(u) => unfinished.push(u),
        }
    }
    for u in &unfinished {
        eprintln!("left out {}: {}", u.dir.display(), u.why);
    }
    if runs.is_empty() {
        bail!("no finished run among {} director(ies)", unfinished.len());
    }
    if a.variants {
        name_variants_by_dir(&mut runs);
    }
    let mut c = compare(&runs, unfinished, a.resamples, a.bootstrap_seed)?;
    c.excluded_classes = a.exclude_class;
    c.last_evals = a.last_evals;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&c)?)?;
    } else {
        out!("{}", render(&c, a.markdown))?;
    }
    Ok(())
}

/// mIoU-like values in percent, as papers print them.
fn pm(s: &Summary) -> String {
    match s.std {
        Some(sd) => format!("{:.2} ± {:.2}", 100.0 * s.mean, 100.0 * sd),
        None => format!("{:.2}", 100.0 * s.mean),
    }
}

fn signed_pm(s: &Summary) -> String {
    match s.std {
        Some(sd) => format!("{:+.2} ± {:.2}", 100.0 * s.mean, 100.0 * sd),
        None => format!("{:+.2}", 100.0 * s.mean),
    }
}

/// A ratio in percent with its interval: `34.1 ± 5.2 [28.0, 40.3]`, and how many seeds it
/// rests on when a baseline of 0 left some out of `paired` seeds.
fn percent(s: &Option<Summary>, i: &Option<Interval>, paired: usize) -> String {
    let Some(s) = s else { return "—".into() };
    let mut t = pm(s);
    if let Some(i) = i {
        t += &format!(" [{:.2}, {:.2}]", 100.0 * i.lo, 100.0 * i.hi);
    }
    if s.n < paired {
        t += &format!(" (n={}; supervised 0 elsewhere)", s.n);
    }
    t
}

fn ci(i: &Option<Interval>) -> String {
    i.as_ref()
        .map(|i| format!("[{:+.2}, {:+.2}]", 100.0 * i.lo, 100.0 * i.hi))
        .unwrap_or_else(|| "—".into())
}

fn table(rows: &[Vec<String>], markdown: bool) -> String {
    let mut s = String::new();
    if markdown {
        for (i, r) in rows.iter().enumerate() {
            s += &format!("| {} |\n", r.join(" | "));
            if i == 0 {
                s += &format!("|{}\n", "---|".repeat(r.len()));
            }
        }
        return s;
    }
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c).map(|x| x.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, x)| format!("{x:<w$}", w = width[c]))
            .collect();
        s += cells.join("  ").trim_end();
        s.push('\n');
    }
    s
}

pub fn render(c: &Comparison, markdown: bool) -> String {
    let mut rows = vec![[
        "method",
        "fraction",
        "seeds",
        "final mIoU",
        "best mIoU",
        "Δ final vs supervised",
        "95% CI",
        "Δ best vs supervised",
        "95% CI",
        "final as % of supervised [95% CI]",
    ]
    .map(String::from)
    .to_vec()];
    for g in &c.groups {
        let (d, dci, b, bci, ratio) = match &g.vs_supervised {
            Some(p) => (
                format!("{} (n={})", signed_pm(&p.summary), p.seeds.len()),
                ci(&p.ci),
                signed_pm(&p.best_summary),
                ci(&p.best_ci),
                percent(&p.ratio_summary, &p.ratio_ci, p.seeds.len()),
            ),
            None => ("—".into(), "—".into(), "—".into(), "—".into(), "—".into()),
        };
        rows.push(vec![
            g.label(),
            fraction_text(g.fraction),
            g.seeds.len().to_string(),
            pm(&g.final_miou),
            pm(&g.best_miou),
            d,
            dci,
            b,
            bci,
            ratio,
        ]);
    }
    let over = if c.excluded_classes.is_empty() {
        String::new()
    } else {
        format!(" over every class but {}", c.excluded_classes.join(", "))
    };
    let last = if c.last_evals > 1 {
        format!(
            "; final: each run's mean over its last {} evaluations",
            c.last_evals
        )
    } else {
        String::new()
    };
    let mut s = format!(
        "Validation mIoU (%){over}, mean ± sample std over seeds{last}; Δ: paired by seed against \
         supervised at the same fraction, 95% percentile bootstrap of the mean difference \
         ({} resamples, seed {}); % of supervised: the paired ratio of final mIoUs, bootstrapped \
         alike.\n\n",
        c.resamples, c.bootstrap_seed
    );
    s += &table(&rows, markdown);
    let mut rows = vec![["method".to_string(), "fraction".to_string()]
        .into_iter()
        .chain(c.classes.iter().cloned())
        .collect::<Vec<_>>()];
    for g in &c.groups {
        let mut r = vec![g.label(), fraction_text(g.fraction)];
        for cl in &c.classes {
            r.push(
                g.iou
                    .iter()
                    .find(|(n, _)| n == cl)
                    .map(|(_, x)| pm(x))
                    .unwrap_or_else(|| "—".into()),
            );
        }
        rows.push(r);
    }
    s += &format!(
        "\nFinal per-class IoU (%){}, mean ± std over seeds:\n\n",
        if c.last_evals > 1 {
            format!(
                " (each run's mean over its last {} evaluations)",
                c.last_evals
            )
        } else {
            String::new()
        }
    );
    s += &table(&rows, markdown);
    if c.groups.iter().any(|g| !g.signals.is_empty()) {
        let names = [
            ("d_auroc", "D-uncertainty AUROC"),
            ("gate_precision", "gate precision"),
            ("gate_coverage", "gate coverage"),
            ("cam_miou", "thresholded-CAM mIoU"),
        ];
        let mut rows = vec![["method".to_string(), "fraction".to_string()]
            .into_iter()
            .chain(names.iter().map(|(_, n)| format!("{n} (%)")))
            .collect::<Vec<_>>()];
        for g in c.groups.iter().filter(|g| !g.signals.is_empty()) {
            let mut r = vec![g.label(), fraction_text(g.fraction)];
            for (k, _) in names {
                r.push(
                    g.signals
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, x)| pm(x))
                        .unwrap_or_else(|| "—".into()),
                );
            }
            rows.push(r);
        }
        s += "\nSignals at the final evaluation (docs/SIGNALS.md), mean ± std over seeds:\n\n";
        s += &table(&rows, markdown);
    }
    if !c.unfinished.is_empty() {
        s += &format!("\n{} unfinished run(s) left out.\n", c.unfinished.len());
    }
    s
}
