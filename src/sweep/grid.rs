//! A sweep grid: groups of method × labelled fraction × seed, each cell one `advseg train` run
//! in its own directory `OUT/<method>-f<fraction>-s<seed>`, plus the `--set` overrides every
//! run, one method's runs or one group's runs get.
//!
//! File format (TOML):
//! ```toml
//! out = "runs/sweep"              # default output directory (`--out` wins), relative to the working directory
//! [set]                           # every run: any `train --set` key
//! iters = 600
//! [set.advsemi]                   # only advsemi's runs (shared or advsemi keys)
//! lambda_adv = 0.01
//! [[grid]]                        # one or more groups; cells in group, method, fraction, seed order
//! methods = ["supervised", "advsemi"]
//! fractions = ["1/8", 1]
//! seeds = [1, 2, 3]
//! set = { batch = 4 }             # optional, this group's runs only
//! ```
//! A `METHOD.key` setting (in `[set]`, a group's `set` or `--set`) applies to that method's
//! runs only.

use super::SweepError;
use crate::data::semi::parse_fraction;
use crate::train::config::RunConfig;
use crate::train::methods;
use std::path::{Path, PathBuf};

/// Settings a cell owns: the grid chooses them, so `set` tables may not.
const AXES: &[&str] = &["method", "seed", "labeled_fraction", "split_file"];

/// One run of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub method: String,
    /// The fraction as written (`1/8`), for names and messages.
    pub fraction_text: String,
    pub fraction: f64,
    pub seed: u64,
    /// `--set` overrides in order of precedence (later wins); the cell's seed and fraction last.
    pub sets: Vec<(String, toml::Value)>,
}

impl Cell {
    /// Directory name: `advsemi-f1_8-s2` (`/` is not allowed in a file name).
    pub fn name(&self) -> String {
        format!(
            "{}-f{}-s{}",
            self.method,
            self.fraction_text.replace('/', "_"),
            self.seed
        )
    }

    /// The run's resolved configuration, as `advseg train` will build it for a new run.
    pub fn config(&self) -> Result<RunConfig, SweepError> {
        let bad = |e: crate::train::TrainError| SweepError::Cell {
            cell: self.name(),
            why: e.to_string(),
        };
        let mut c = RunConfig::new(&self.method).map_err(bad)?;
        for (k, v) in &self.sets {
            c.set(k, v.clone()).map_err(bad)?;
        }
        c.validate().map_err(bad)?;
        Ok(c)
    }

    /// `advseg train` arguments of this cell (the binary's name not included).
    pub fn train_args(&self, dir: &Path) -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--method",
            &self.method,
            "--out",
            &dir.display().to_string(),
            "--resume",
            "auto",
            "--quiet",
        ]
        .map(String::from)
        .to_vec();
        for (k, v) in &self.sets {
            a.push("--set".into());
            a.push(format!("{k}={v}"));
        }
        a
    }
}

/// Where a cell's run stands, from the files the trainer writes.
#[derive(Clone, Debug, PartialEq)]
pub enum CellState {
    /// No checkpoint: the run starts from scratch.
    New,
    /// A `last` checkpoint without the final evaluation: `--resume auto` continues it.
    Partial,
    /// `metrics.jsonl` holds the evaluation of step `iters` (the trainer always evaluates
    /// the last step) and `config.toml` says the run was for `iters` steps.
    Done,
}

impl CellState {
    pub fn of(dir: &Path, iters: usize) -> CellState {
        if finished(dir, iters) {
            CellState::Done
        } else if dir.join("last.safetensors").exists() {
            CellState::Partial
        } else {
            CellState::New
        }
    }

    pub fn word(&self) -> &'static str {
        match self {
            CellState::New => "new",
            CellState::Partial => "partial",
            CellState::Done => "done",
        }
    }
}

fn finished(dir: &Path, iters: usize) -> bool {
    let run_iters = std::fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .and_then(|t| t.get("iters").and_then(|v| v.as_integer()));
    if run_iters != Some(iters as i64) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(dir.join("metrics.jsonl")) else {
        return false;
    };
    text.lines().any(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .is_ok_and(|v| v["type"] == "eval" && v["step"].as_u64() == Some(iters as u64))
    })
}

/// A whole grid: its cells in index order and the default output directory.
#[derive(Clone, Debug, Default)]
pub struct Grid {
    pub out: Option<PathBuf>,
    pub cells: Vec<Cell>,
}

/// One `[[grid]]` group before expansion.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub methods: Vec<String>,
    pub fractions: Vec<String>,
    pub seeds: Vec<u64>,
    pub sets: Vec<(String, toml::Value)>,
}

/// `--set` overrides from the sweep's command line, or a filter of the file's axes.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub methods: Vec<String>,
    pub fractions: Vec<String>,
    pub seeds: Vec<u64>,
    pub sets: Vec<(String, toml::Value)>,
}

impl Grid {
    /// The grid of a file (`text` read from `path`), narrowed by the command line's axes
    /// (`flags.methods` etc. keep only the cells they list) and with its `--set`s last; or,
    /// without a file, the single group the flags describe.
    pub fn build(file: Option<(&str, &Path)>, flags: &Flags) -> Result<Grid, SweepError> {
        let (out, base, per_method, groups, src) = match file {
            Some((text, path)) => {
                let (out, base, per_method, groups) = parse_file(text, path)?;
                (out, base, per_method, groups, path.display().to_string())
            }
            None => {
                if flags.methods.is_empty() || flags.seeds.is_empty() {
                    return Err(SweepError::Flags(
                        "without a grid file, give --methods and --seeds (and --fractions, \
                         default 1)"
                            .into(),
                    ));
                }
                let g = Group {
                    methods: flags.methods.clone(),
                    fractions: if flags.fractions.is_empty() {
                        vec!["1".into()]
                    } else {
                        flags.fractions.clone()
                    },
                    seeds: flags.seeds.clone(),
                    sets: vec![],
                };
                (
                    None,
                    vec![],
                    vec![],
                    vec![g],
                    "--methods/--fractions/--seeds".into(),
                )
            }
        };
        for (k, _) in &flags.sets {
            check_not_axis(k, "--set")?;
        }
        let keep = |list: &Vec<String>, x: &str| list.is_empty() || list.iter().any(|y| y == x);
        let mut cells: Vec<Cell> = Vec::new();
        for g in &groups {
            for m in &g.methods {
                methods::find(m).map_err(|e| SweepError::Grid {
                    src: src.clone(),
                    why: e.to_string(),
                })?;
                if file.is_some() && !keep(&flags.methods, m) {
                    continue;
                }
                for ft in &g.fractions {
                    let fraction = parse_fraction(ft).map_err(|e| SweepError::Grid {
                        src: src.clone(),
                        why: format!("fraction {ft:?}: {e}"),
                    })?;
                    if file.is_some()
                        && !flags.fractions.is_empty()
                        && !flags
                            .fractions
                            .iter()
                            .any(|f| parse_fraction(f).is_ok_and(|x| x == fraction))
                    {
                        continue;
                    }
                    for &seed in &g.seeds {
                        if file.is_some() && !flags.seeds.is_empty() && !flags.seeds.contains(&seed)
                        {
                            continue;
                        }
                        let mut sets: Sets =
                            base.iter().filter_map(|kv| for_method(kv, m)).collect();
                        if let Some((_, s)) = per_method.iter().find(|(pm, _)| pm == m) {
                            sets.extend(s.iter().cloned());
                        }
                        sets.extend(g.sets.iter().filter_map(|kv| for_method(kv, m)));
                        sets.extend(flags.sets.iter().filter_map(|kv| for_method(kv, m)));
                        sets.push(("seed".into(), toml::Value::Integer(seed as i64)));
                        sets.push(("labeled_fraction".into(), toml::Value::Float(fraction)));
                        let cell = Cell {
                            method: m.clone(),
                            fraction_text: ft.clone(),
                            fraction,
                            seed,
                            sets,
                        };
                        if cells.iter().any(|c| c.name() == cell.name()) {
                            return Err(SweepError::Grid {
                                src: src.clone(),
                                why: format!("cell {} appears twice", cell.name()),
                            });
                        }
                        cells.push(cell);
                    }
                }
            }
        }
        if cells.is_empty() {
            return Err(SweepError::Grid {
                src,
                why: "no cells (check methods, fractions and seeds, and any filter flags)".into(),
            });
        }
        Ok(Grid { out, cells })
    }
}

type Sets = Vec<(String, toml::Value)>;
type Parsed = (Option<PathBuf>, Sets, Vec<(String, Sets)>, Vec<Group>);

fn parse_file(text: &str, path: &Path) -> Result<Parsed, SweepError> {
    let bad = |why: String| SweepError::Grid {
        src: path.display().to_string(),
        why,
    };
    let t: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut out = None;
    let mut base = Vec::new();
    let mut per_method = Vec::new();
    let mut groups = Vec::new();
    for (k, v) in t {
        match (k.as_str(), v) {
            // Relative to the working directory, like the `data` paths the runs will open.
            ("out", toml::Value::String(s)) => out = Some(PathBuf::from(s)),
            ("set", toml::Value::Table(s)) => {
                for (sk, sv) in s {
                    match sv {
                        toml::Value::Table(mt) if methods::find(&sk).is_ok() => {
                            let mut v = Vec::new();
                            for (mk, mv) in mt {
                                check_not_axis(&mk, &format!("{}: [set.{sk}]", path.display()))?;
                                v.push((mk, mv));
                            }
                            per_method.push((sk, v));
                        }
                        sv => {
                            check_not_axis(&sk, &format!("{}: [set]", path.display()))?;
                            base.push((sk, sv));
                        }
                    }
                }
            }
            ("grid", toml::Value::Array(gs)) => {
                for (i, g) in gs.into_iter().enumerate() {
                    groups.push(parse_group(g, i, path)?);
                }
            }
            (k, v) => {
                return Err(bad(format!(
                    "unexpected key {k:?} = {v}; a grid file has `out`, `[set]` (with \
                     `[set.METHOD]` tables) and `[[grid]]` groups"
                )))
            }
        }
    }
    if groups.is_empty() {
        return Err(bad("no [[grid]] group".into()));
    }
    Ok((out, base, per_method, groups))
}

fn parse_group(g: toml::Value, i: usize, path: &Path) -> Result<Group, SweepError> {
    let bad = |why: String| SweepError::Grid {
        src: format!("{}: [[grid]] #{}", path.display(), i + 1),
        why,
    };
    let toml::Value::Table(t) = g else {
        return Err(bad("not a table".into()));
    };
    let mut out = Group::default();
    for (k, v) in t {
        let list = |v: &toml::Value| -> Result<Vec<toml::Value>, SweepError> {
            v.as_array()
                .cloned()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| bad(format!("{k} must be a non-empty list, not {v}")))
        };
        match k.as_str() {
            "methods" => {
                for m in list(&v)? {
                    let s = m
                        .as_str()
                        .ok_or_else(|| bad(format!("method {m} is not a string")))?;
                    out.methods.push(s.to_string());
                }
            }
            "fractions" => {
                for f in list(&v)? {
                    out.fractions.push(match f {
                        toml::Value::String(s) => s,
                        toml::Value::Integer(n) => n.to_string(),
                        toml::Value::Float(x) => x.to_string(),
                        f => return Err(bad(format!("fraction {f} is not \"1/8\", 0.125 or 1"))),
                    });
                }
            }
            "seeds" => {
                for s in list(&v)? {
                    let n = s
                        .as_integer()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| bad(format!("seed {s} is not an integer >= 0")))?;
                    out.seeds.push(n as u64);
                }
            }
            "set" => {
                let toml::Value::Table(s) = v else {
                    return Err(bad("set must be a table of train settings".into()));
                };
                for (sk, sv) in s {
                    check_not_axis(&sk, &format!("{}: [[grid]] #{} set", path.display(), i + 1))?;
                    out.sets.push((sk, sv));
                }
            }
            k => {
                return Err(bad(format!(
                    "unexpected key {k:?}; a group has methods, fractions, seeds and set"
                )))
            }
        }
    }
    for (k, empty) in [
        ("methods", out.methods.is_empty()),
        ("seeds", out.seeds.is_empty()),
    ] {
        if empty {
            return Err(bad(format!("no {k}")));
        }
    }
    if out.fractions.is_empty() {
        out.fractions.push("1".into());
    }
    Ok(out)
}

/// A `METHOD.key` setting applies to that method's cells only (as `key`); others to all.
fn for_method((k, v): &(String, toml::Value), method: &str) -> Option<(String, toml::Value)> {
    match k.split_once('.') {
        Some((m, name)) if methods::find(m).is_ok() => {
            (m == method).then(|| (name.to_string(), v.clone()))
        }
        _ => Some((k.clone(), v.clone())),
    }
}

fn check_not_axis(key: &str, src: &str) -> Result<(), SweepError> {
    let name = key.rsplit('.').next().unwrap_or(key);
    if AXES.contains(&name) {
        return Err(SweepError::Grid {
            src: src.to_string(),
            why: format!(
                "{key:?} is chosen by the grid (methods, fractions, seeds), not by a setting"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
out = "runs/x"
[set]
iters = 7
"advsemi.semi_start" = 3
[set.advsemi]
lambda_adv = 0.01
[[grid]]
methods = ["supervised", "advsemi"]
fractions = ["1/8", 1]
seeds = [1, 2]
set = { batch = 3 }
[[grid]]
methods = ["eader"]
seeds = [5]
"#;

    fn value(c: &Cell, k: &str) -> Option<toml::Value> {
        c.sets.iter().rev().find(|s| s.0 == k).map(|s| s.1.clone())
    }

    #[test]
    fn file_groups_expand_in_order_with_their_settings() {
        let g = Grid::build(Some((FILE, Path::new("g.toml"))), &Flags::default()).unwrap();
        assert_eq!(g.out, Some(PathBuf::from("runs/x")));
        let names: Vec<String> = g.cells.iter().map(Cell::name).collect();
        assert_eq!(
            names,
            [
                "supervised-f1_8-s1",
                "supervised-f1_8-s2",
                "supervised-f1-s1",
                "supervised-f1-s2",
                "advsemi-f1_8-s1",
                "advsemi-f1_8-s2",
                "advsemi-f1-s1",
                "advsemi-f1-s2",
                "eader-f1-s5",
            ]
        );
        let adv = &g.cells[4];
        assert_eq!(adv.fraction, 0.125);
        assert_eq!(value(adv, "semi_start"), Some(toml::Value::Integer(3)));
        assert_eq!(value(adv, "lambda_adv"), Some(toml::Value::Float(0.01)));
        assert_eq!(value(adv, "batch"), Some(toml::Value::Integer(3)));
        assert_eq!(value(adv, "seed"), Some(toml::Value::Integer(1)));
        let sup = &g.cells[0];
        assert_eq!(
            value(sup, "semi_start"),
            None,
            "advsemi.* is advsemi's only"
        );
        assert_eq!(value(sup, "lambda_adv"), None);
        assert_eq!(
            value(&g.cells[8], "batch"),
            None,
            "a group's set stays in its group"
        );
        let c = adv.config().unwrap();
        assert_eq!((c.common.iters, c.common.batch, c.common.seed), (7, 3, 1));
        assert_eq!(c.common.labeled_fraction, 0.125);
        let args = adv.train_args(Path::new("o/a"));
        assert_eq!(&args[..5], ["train", "--method", "advsemi", "--out", "o/a"]);
        assert!(
            args.windows(2).any(|w| w == ["--set", "lambda_adv=0.01"]),
            "{args:?}"
        );
    }

    #[test]
    fn flags_filter_a_file_and_override_last() {
        let flags = Flags {
            methods: vec!["advsemi".into()],
            fractions: vec!["0.125".into()],
            seeds: vec![2],
            sets: vec![("batch".into(), toml::Value::Integer(9))],
        };
        let g = Grid::build(Some((FILE, Path::new("g.toml"))), &flags).unwrap();
        assert_eq!(g.cells.len(), 1);
        assert_eq!(g.cells[0].name(), "advsemi-f1_8-s2");
        assert_eq!(value(&g.cells[0], "batch"), Some(toml::Value::Integer(9)));
    }

    #[test]
    fn bad_grids_name_the_place() {
        let e = |text: &str| {
            Grid::build(Some((text, Path::new("g.toml"))), &Flags::default())
                .unwrap_err()
                .to_string()
        };
        assert!(
            e("[set]\nseed = 1\n[[grid]]\nmethods=[\"supervised\"]\nseeds=[1]")
                .contains("[set]: \"seed\" is chosen by the grid")
        );
        assert!(e("[[grid]]\nmethods=[\"nope\"]\nseeds=[1]").contains("unknown method"));
        assert!(
            e("[[grid]]\nmethods=[\"supervised\"]\nseeds=[1]\nfractions=[\"2\"]")
                .contains("fraction \"2\"")
        );
        assert!(e("[[grid]]\nmethods=[\"supervised\"]").contains("[[grid]] #1: no seeds"));
        assert!(e("[[grid]]\nmethods=[\"supervised\"]\nseeds=[1]\n[[grid]]\nmethods=[\"supervised\"]\nseeds=[1]")
            .contains("supervised-f1-s1 appears twice"));
        assert!(e("outt = 1").contains("unexpected key \"outt\""));
        let no_file = Grid::build(None, &Flags::default())
            .unwrap_err()
            .to_string();
        assert!(no_file.contains("--methods and --seeds"), "{no_file}");
    }

    #[test]
    fn state_comes_from_the_run_files() {
        let d = std::env::temp_dir().join(format!("advseg_grid_state_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(CellState::of(&d, 10), CellState::New);
        std::fs::write(d.join("last.safetensors"), b"x").unwrap();
        assert_eq!(CellState::of(&d, 10), CellState::Partial);
        std::fs::write(d.join("config.toml"), "iters = 10\n").unwrap();
        std::fs::write(
            d.join("metrics.jsonl"),
            "{\"type\":\"eval\",\"step\":5}\n{\"type\":\"step\",\"step\":10}\n",
        )
        .unwrap();
        assert_eq!(
            CellState::of(&d, 10),
            CellState::Partial,
            "no eval of step 10"
        );
        std::fs::write(d.join("metrics.jsonl"), "{\"type\":\"eval\",\"step\":10}\n").unwrap();
        assert_eq!(CellState::of(&d, 10), CellState::Done);
        assert_eq!(
            CellState::of(&d, 20),
            CellState::Partial,
            "grid asks for more steps"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
