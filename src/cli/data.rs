//! `advseg data check`: walk a dataset, summarise it and list every bad sample.

use advseg::data::{check, open, DataError, DataSpec};
use anyhow::{bail, Result};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DataCmd {
    /// Decode every sample of a dataset; report counts, image sizes, per-class pixel shares and
    /// every bad sample. Exits non-zero when any sample is bad.
    Check {
        /// Dataset spec: synthetic[:k=v,..], camvid:PATH, voc:PATH, cityscapes:PATH, folder:PATH.
        #[arg(long, env = "ADVSEG_DATA")]
        data: String,
        /// Split to check (default: train and val).
        #[arg(long)]
        split: Option<String>,
        /// Check only the first N samples of each split.
        #[arg(long)]
        limit: Option<usize>,
        /// Decoding threads.
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
}

pub fn run(cmd: DataCmd) -> Result<()> {
    match cmd {
        DataCmd::Check {
            data,
            split,
            limit,
            workers,
        } => run_check(&data, split.as_deref(), limit, workers),
    }
}

fn run_check(spec: &str, split: Option<&str>, limit: Option<usize>, workers: usize) -> Result<()> {
    let spec: DataSpec = spec.parse()?;
    let splits: Vec<&str> = match split {
        Some(s) => vec![s],
        None => vec!["train", "val"],
    };
    let mut bad_total = 0usize;
    let mut failed_splits = 0usize;
    for s in splits {
        let ds = match open(&spec, s) {
            Ok(d) => d,
            Err(e) => {
                // With no explicit split, a dataset without a val list is not an error.
                let absent = match &e {
                    DataError::UnknownSplit { .. } => true,
                    DataError::Missing { what, .. } => what.contains("list file"),
                    _ => false,
                };
                if split.is_none() && s != "train" && absent {
                    outln!("{spec} split {s}: not present ({e})")?;
                    continue;
                }
                outln!("{spec} split {s}: ERROR {e}")?;
                failed_splits += 1;
                continue;
            }
        };
        let r = check::check(ds.as_ref(), limit, workers);
        outln!(
            "{}/{}: {} samples ({} checked), {} classes, ignore index {}",
            r.kind,
            r.split,
            ds.len(),
            r.checked,
            r.num_classes,
            ds.ignore_index()
        )?;
        let sizes: Vec<String> = r
            .sizes
            .iter()
            .map(|((h, w), n)| format!("{w}x{h} (WxH): {n}"))
            .collect();
        outln!(
            "  image sizes: {}",
            if sizes.is_empty() {
                "-".into()
            } else {
                sizes.join(", ")
            }
        )?;
        outln!("  pixel shares:")?;
        for (name, share) in r.class_names.iter().zip(r.class_shares()) {
            outln!("    {name:<16} {:6.2}%", share * 100.0)?;
        }
        outln!("    {:<16} {:6.2}%", "(ignore)", r.ignore_share() * 100.0)?;
        if r.bad.is_empty() {
            outln!("  bad samples: none")?;
        } else {
            outln!("  bad samples: {}", r.bad.len())?;
            for (i, name, e) in &r.bad {
                outln!("    [{i}] {name}: {e}")?;
            }
        }
        bad_total += r.bad.len();
    }
    if bad_total > 0 || failed_splits > 0 {
        bail!("{bad_total} bad samples, {failed_splits} splits failed to open");
    }
    Ok(())
}
