//! Measured choice of the convolution core's kernel variant, per (adapter, driver, advseg
//! version, shape class), cached on disk.
//!
//! On the first call of a shape class every candidate variant (the tiled family, the texture
//! family at each register block) runs once to compile and twice timed, and the fastest wins.
//! Choices live in advseg's cache directory (`crate::gpu::cache_dir`), one JSON file per device
//! key, and each new choice is appended to `tune.log` there. `ADVSEG_TUNE=off` uses the static
//! rules of `conv::family_for`; `advseg bench ops --tune` measures again. A variant
//! always gives the same bits; only the choice between them depends on the machine.

use super::conv::{ConvGeom, Family, GemmConfig, GemmMode};
use super::conv_tex;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// One variant of the convolution core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub family: Family,
    /// Register-block rows of the texture family (0 for the tiled family).
    pub rm: u32,
}

impl Variant {
    fn name(&self) -> String {
        match self.family {
            Family::Tiled => "tiled".into(),
            Family::Texture => format!("texture:{}", self.rm),
        }
    }

    fn parse(s: &str) -> Option<Variant> {
        match s.split_once(':') {
            None if s == "tiled" => Some(Variant {
                family: Family::Tiled,
                rm: 0,
            }),
            Some(("texture", rm)) => {
                let rm = rm.parse().ok().filter(|r| [8, 16, 32].contains(r))?;
                Some(Variant {
                    family: Family::Texture,
                    rm,
                })
            }
            _ => None,
        }
    }

    fn apply(&self, cfg: &GemmConfig) -> GemmConfig {
        GemmConfig {
            family: Some(self.family),
            rm: (self.rm > 0).then_some(self.rm),
            ..*cfg
        }
    }
}

#[derive(Default)]
struct State {
    /// Device key the table below belongs to.
    device: String,
    choices: BTreeMap<String, String>,
    loaded: bool,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Whether measured choice is on (`ADVSEG_TUNE` unset or anything but `off`/`0`).
pub fn enabled() -> bool {
    !matches!(
        std::env::var("ADVSEG_TUNE").as_deref().map(str::trim),
        Ok("off") | Ok("0") | Ok("false")
    )
}

/// Adapter, backend, driver and advseg version: a choice is only valid for all four.
pub fn device_key(gpu: &Gpu) -> String {
    let s = &gpu.summary;
    format!(
        "{} | {} | {} | advseg {}",
        s.name,
        s.backend,
        s.driver,
        env!("CARGO_PKG_VERSION")
    )
}

fn cache_file(key: &str) -> Option<PathBuf> {
    // File name from a stable hash of the key, so odd adapter names are harmless.
    let h = crate::gpu::fnv1a(key.as_bytes());
    crate::gpu::cache_dir().map(|d| d.join(format!("tune-{h:016x}.json")))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CacheFile {
    device: String,
    choices: BTreeMap<String, String>,
}

fn with_state<R>(gpu: &Gpu, f: impl FnOnce(&mut State) -> R) -> R {
    let key = device_key(gpu);
    let mut guard = STATE.lock().unwrap();
    let st = guard.get_or_insert_with(State::default);
    if st.device != key {
        *st = State {
            device: key,
            ..Default::default()
        };
    }
    if !st.loaded {
        st.loaded = true;
        // A missing or unreadable cache only means measuring again.
        if let Some(text) = cache_file(&st.device).and_then(|p| std::fs::read_to_string(p).ok()) {
            if let Ok(c) = serde_json::from_str::<CacheFile>(&text) {
                if c.device == st.device {
                    st.choices = c.choices;
                }
            }
        }
    }
    f(st)
}

fn save(st: &State, class: &str, line: &str) {
    let Some(path) = cache_file(&st.device) else {
        return;
    };
    let Some(dir) = path.parent() else {
        return;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let file = CacheFile {
        device: st.device.clone(),
        choices: st.choices.clone(),
    };
    if let Ok(text) = serde_json::to_string_pretty(&file) {
        // Write-then-rename keeps the cache whole if two processes save at once.
        let tmp = dir.join(format!(".tune.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    if let Ok(mut log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tune.log"))
    {
        let _ = writeln!(log, "{} | {class} | {line}", st.device);
    }
}

/// Forgets every choice for `gpu` (memory and disk): the next calls measure again.
pub fn reset(gpu: &Gpu) {
    with_state(gpu, |st| {
        st.choices.clear();
        if let Some(p) = cache_file(&st.device) {
            let _ = std::fs::remove_file(p);
        }
    });
}

/// The recorded choices for `gpu`: (shape class, variant).
pub fn choices(gpu: &Gpu) -> Vec<(String, String)> {
    with_state(gpu, |st| st.choices.clone().into_iter().collect())
}

/// Shape class of a GEMM: mode, sizes rounded up to powers of two, kernel taps and stride.
/// Shapes of one class run best on the same variant.
pub fn shape_class(mode: GemmMode, g: &ConvGeom) -> String {
    let (m, n, k, _) = g.gemm_dims(mode);
    let b = |v: usize| v.next_power_of_two();
    let strided = g.p.stride != [1, 1];
    format!(
        "{mode:?} m{} n{} k{} taps{}{}",
        b(m),
        b(n),
        b(k),
        g.kh * g.kw,
        if strided { " strided" } else { "" }
    )
}

/// Candidates, the static rule's family first so that hopeless ones are cut short early.
fn candidates(gpu: &Gpu, g: &ConvGeom, m: usize) -> Vec<Variant> {
    let tiled = Variant {
        family: Family::Tiled,
        rm: 0,
    };
    let mut v = vec![];
    if conv_tex::supported(gpu, g) {
        for rm in [8u32, 16, 32] {
            // A block much taller than M only wastes rows.
            if rm == 8 || (rm as usize) < 2 * m {
                v.push(Variant {
                    family: Family::Texture,
                    rm,
                });
            }
        }
    }
    if super::conv::family_for(gpu, g, &GemmConfig::default()) == Family::Tiled {
        v.insert(0, tiled);
    } else {
        v.push(tiled);
    }
    v
}

/// Runs one GEMM of `mode` through `exec` with the variant chosen for its shape class,
/// measuring the candidates first when the class has no choice yet.
pub fn run(
    gpu: &Gpu,
    mode: GemmMode,
    g: &ConvGeom,
    cfg: &GemmConfig,
    exec: impl Fn(&GemmConfig) -> Result<Tensor>,
) -> Result<Tensor> {
    let forced = cfg.family.is_some()
        || cfg.rm.is_some()
        || std::env::var_os("ADVSEG_CONV_FAMILY").is_some();
    if forced || !enabled() {
        return exec(cfg);
    }
    let class = shape_class(mode, g);
    let known = with_state(gpu, |st| {
        st.choices.get(&class).and_then(|s| Variant::parse(s))
    });
    if let Some(v) = known {
        // A texture choice that does not fit this particular shape of its class falls back
        // to the tiled family inside `family_for`.
        return exec(&v.apply(cfg));
    }
    let (m, _, _, _) = g.gemm_dims(mode);
    gpu.sync()?;
    let mut timed = Vec::new();
    let mut fastest = f64::INFINITY;
    for v in candidates(gpu, g, m) {
        let c = v.apply(cfg);
        let t = Instant::now();
        drop(exec(&c)?);
        gpu.sync()?;
        // The untimed first run (compilation included) bounds the variant's time: one far
        // slower than the best so far cannot win, and timing it again would cost seconds (the
        // 0.25 s allowance covers a pipeline compilation).
        if t.elapsed().as_secs_f64() > 4.0 * fastest + 0.25 {
            timed.push((v, f64::INFINITY));
            continue;
        }
        // The faster of two runs: one preempted run on a loaded machine must not decide.
        let mut best = f64::INFINITY;
        for _ in 0..2 {
            let t = Instant::now();
            drop(exec(&c)?);
            gpu.sync()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        fastest = fastest.min(best);
        timed.push((v, best));
    }
    let best = timed
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|t| t.0)
        .expect("at least the tiled candidate");
    let line = timed
        .iter()
        .map(|(v, s)| match s.is_finite() {
            true => format!("{} {:.3} ms", v.name(), s * 1e3),
            false => format!("{} cut (first run > 4× the best)", v.name()),
        })
        .collect::<Vec<_>>()
        .join(", ");
    with_state(gpu, |st| {
        st.choices.insert(class.clone(), best.name());
        save(st, &class, &format!("{} ({line})", best.name()));
    });
    exec(&best.apply(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_round_trip() {
        for v in [
            Variant {
                family: Family::Tiled,
                rm: 0,
            },
            Variant {
                family: Family::Texture,
                rm: 16,
            },
        ] {
            assert_eq!(Variant::parse(&v.name()), Some(v));
        }
        assert_eq!(Variant::parse("texture:7"), None);
        assert_eq!(Variant::parse("fast"), None);
    }
}
