//! `advseg model`: layer table, parameter count, freshly initialised checkpoint.

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
}

pub fn run(a: ModelArgs) -> Result<()> {
    if a.list {
        for (n, d) in arch::ARCHS {
            println!("{n:<22} {d}");
        }
        return Ok(());
    }
    let name = a.arch.expect("clap requires --arch");
    let m = arch::build(&name, a.classes)?;
    println!("{:<48} {:>20} {:>12}  kind", "name", "shape", "elements");
    for s in m.store.slots() {
        let kind = if s.kind == Kind::Param {
            "param"
        } else {
            "buffer"
        };
        println!(
            "{:<48} {:>20} {:>12}  {kind}",
            s.name,
            format!("{:?}", s.shape),
            s.numel()
        );
    }
    println!(
        "{}: {} parameters in {} tensors",
        name,
        m.store.num_params(),
        m.store.slots().len()
    );
    if let Some(path) = a.save {
        let gpu = advseg::Gpu::shared()?;
        m.store.materialize(&gpu, a.seed)?;
        let meta = HashMap::from([
            ("arch".to_string(), name.clone()),
            ("classes".to_string(), a.classes.to_string()),
        ]);
        m.store
            .save(&path, &meta)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
