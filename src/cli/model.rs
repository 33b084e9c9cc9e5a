//! `advseg model`: layer table, parameter count, freshly initialised checkpoint, checkpoint
//! load report.

use advseg::nn::imgdisc::Encoding;
use advseg::nn::{arch, Kind};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ModelArgs {
    /// Architecture name (see `advseg model --list`).
    #[arg(long, required_unless_present = "list")]
    arch: Option<String>,
    /// Output classes (classification classes for backbones).
    #[arg(long, default_value_t = 21)]
    classes: usize,
    /// Write a freshly initialised checkpoint (safetensors, PyTorch state_dict names).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// List known architectures.
    #[arg(long)]
    list: bool,
    /// Load a safetensors checkpoint (PyTorch state_dict names) and print what matched.
    #[arg(long)]
    load: Option<PathBuf>,
    /// With --load: refuse any missing, unexpected or mismatched tensor (non-zero exit).
    #[arg(long, requires = "load")]
    strict: bool,
    /// Output stride of deeplabv3-* (8 or 16).
    #[arg(long, default_value_t = 8)]
    output_stride: usize,
    /// imgdisc input encoding: basic, product or concat.
    #[arg(long, default_value = "basic")]
    encoding: String,
    /// deeplabv2-*: sum only the first two ASPP branches (the official code's behaviour).
    #[arg(long)]
    aspp_quirk: bool,
}

pub fn run(a: ModelArgs) -> Result<()> {
    if a.list {
        for a in advseg::nn::registry::ARCH_REGISTRY {
            outln!("{:<22} {}", a.name, a.about)?;
        }
        return Ok(());
    }
    let name = a.arch.expect("clap requires --arch");
    let opts = arch::ArchOpts {
        output_stride: a.output_stride,
        aspp_quirk: a.aspp_quirk,
        encoding: Encoding::parse(&a.encoding)?,
        ..arch::ArchOpts::default()
    };
    let m = arch::build_with(&name, a.classes, &opts)?;
    outln!("{:<48} {:>20} {:>12}  kind", "name", "shape", "elements")?;
    for s in m.store.slots() {
        let kind = if s.kind == Kind::Param {
            "param"
        } else {
            "buffer"
        };
        outln!(
            "{:<48} {:>20} {:>12}  {kind}",
            s.name,
            format!("{:?}", s.shape),
            s.numel()
        )?;
    }
    outln!(
        "{}: {} parameters in {} tensors",
        name,
        m.store.num_params(),
        m.store.slots().len()
    )?;
    if a.load.is_none() && a.save.is_none() {
        return Ok(());
    }
    let gpu = advseg::Gpu::shared()?;
    m.store.materialize(&gpu, a.seed)?;
    if let Some(path) = &a.load {
        let rep = m
            .store
            .load(&gpu, path, a.strict)
            .with_context(|| format!("loading {} into {name}", path.display()))?;
        outln!(
            "{}: loaded {} of {} tensors",
            path.display(),
            rep.loaded.len(),
            m.store.slots().len()
        )?;
        for n in &rep.missing {
            outln!("  missing (kept at init): {n}")?;
        }
        for n in &rep.unexpected {
            outln!("  unexpected (ignored): {n}")?;
        }
        for (n, ms, fs) in &rep.mismatched {
            outln!("  shape mismatch (kept at init): {n}: model {ms:?}, file {fs:?}")?;
        }
        if rep.is_exact() {
            outln!("  exact match")?;
        }
    }
    if let Some(path) = a.save {
        let meta = HashMap::from([
            ("arch".to_string(), name.clone()),
            ("classes".to_string(), a.classes.to_string()),
        ]);
        m.store
            .save(&path, &meta)
            .with_context(|| format!("writing {}", path.display()))?;
        outln!("wrote {}", path.display())?;
    }
    Ok(())
}
