//! Training configuration: the settings every method shares ([`TrainConfig`]) plus one table of
//! the chosen method's own settings (e.g. `[advsemi]`). Defaults are the official code's values
//! (methods.md). Sources, later ones winning: defaults → config file (TOML) → command-line flags
//! → `--set key=value`. A key that belongs to another method, or to none, is an error.

use super::error::TrainError;
use super::methods;
use crate::data::DataSpec;
use serde::{Deserialize, Serialize};

/// Settings shared by all methods.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub method: String,
    pub data: DataSpec,
    /// Segmentation network (`advseg model --list`).
    pub arch: String,
    /// Discriminator / auxiliary network, for methods that have one.
    pub disc: String,
    /// Base width of `fcdisc`; absent = 64 (AdvSemiSeg) except 8 with `tiny`, whose D at 64
    /// would cost ~50x the generator on a software GPU.
    pub ndf: Option<usize>,
    pub iters: usize,
    /// Images per batch (per stream: labelled, unlabelled, D's ground-truth batch).
    pub batch: usize,
    /// Random crop `[h, w]`; absent = 321×321 for datasets on disk, the image size for synthetic.
    pub crop: Option<[usize; 2]>,
    /// Random scale 0.5–1.5 (step 0.1); off in the official AdvSemiSeg command.
    pub random_scale: bool,
    pub random_mirror: bool,
    /// Labelled share of the train split (semi-supervised methods; 1 = all labelled).
    pub labeled_fraction: f64,
    /// Split file to use instead of drawing one (`labelled NAME` / `unlabelled NAME` lines).
    pub split_file: Option<std::path::PathBuf>,
    pub seed: u64,
    /// Segmentation network optimiser: SGD.
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    /// Poly schedule exponent: `lr·(1 − it/iters)^power`.
    pub power: f32,
    /// Evaluate an exponential moving average of the segmentation network's weights (and BN
    /// statistics) instead of the live ones; 0 = off. The decay after step t is
    /// `min(ema_decay, (1+t)/(10+t))`. Checkpoints keep the average as `ema.G.*`; eval,
    /// predict and the app use it (`--raw-weights` for the live ones), `--load-from` does not.
    pub ema_decay: f32,
    /// LR multiplier of the classifier head (DeepLab's ×10).
    pub head_lr_mult: f32,
    /// DeepLab-v2: sum only the rate-6/12 ASPP branches like the official code's early
    /// `return` (false: all four).
    pub aspp_quirk: bool,
    /// `auto` (frozen-affine for DeepLab as the official code, train otherwise), `train`,
    /// `frozen-affine`, `frozen`.
    pub bn_mode: String,
    pub workers: usize,
    pub log_every: usize,
    pub eval_every: usize,
    /// Probe snapshot interval (0 = at evaluations only).
    pub snapshot_every: usize,
    pub checkpoint_every: usize,
    /// Also evaluate (and snapshot) the initial network before step 1.
    pub eval_at_start: bool,
    /// Number of probe images (the first of the evaluation split).
    pub probes: usize,
    pub eval_split: String,
    /// Evaluation batch for synthetic data (other datasets use 1: image sizes differ).
    pub eval_batch: usize,
    /// Metric that selects `best`: `miou` or `pixel_acc`.
    pub best_metric: String,
    /// A training sample that fails to load: `stop` (save `last`, end the run naming the file)
    /// or `skip` (count it, list it in metrics.jsonl and the summary, go on).
    pub on_bad_sample: String,
    /// Network input normalisation: `bgr-mean` (DeepLab: 0..255 minus the mean colour),
    /// `rgb-imagenet` (torchvision: 0..1, ImageNet mean and std) or `none` (raw 0..255).
    /// Kept in checkpoints: eval, predict and the Inference tab use the checkpoint's.
    pub normalise: Normalisation,
    /// What the image-level labels of the weak methods (eader, rrm) describe. Kept here, not in
    /// each method, because the data loader applies it.
    pub image_labels: ImageLabels,
}

/// The `image_labels` setting's values.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ImageLabels {
    /// The classes of the whole source image, as the papers use on VOC, whose crops show most
    /// of an image.
    #[default]
    Image,
    /// The classes inside the training crop. For crops that show a small part of a large
    /// image (128² of CamVid's 360×480), where the whole image's labels would name classes
    /// the network cannot see. Still image-level: the presence of each class, no positions.
    Crop,
}

impl ImageLabels {
    pub const NAMES: &'static [&'static str] = &["image", "crop"];
}

/// The `normalise` setting's values (`data::Normalise` is the arithmetic; this is the name
/// a config file stores).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Normalisation {
    /// What every run used before the setting existed, so older configs mean the same.
    #[default]
    BgrMean,
    RgbImagenet,
    None,
}

impl Normalisation {
    pub const NAMES: &'static [&'static str] = &["bgr-mean", "rgb-imagenet", "none"];

    pub fn normalise(self) -> crate::data::Normalise {
        match self {
            Normalisation::BgrMean => crate::data::Normalise::BgrMean,
            Normalisation::RgbImagenet => crate::data::Normalise::imagenet(),
            Normalisation::None => crate::data::Normalise::None,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            method: "advsemi".into(),
            data: DataSpec::Synthetic(Default::default()),
            arch: "tiny".into(),
            disc: "fcdisc".into(),
            ndf: None,
            iters: 20_000,
            batch: 10,
            crop: None,
            random_scale: false,
            random_mirror: false,
            labeled_fraction: 0.125,
            split_file: None,
            seed: 0,
            lr: 2.5e-4,
            momentum: 0.9,
            weight_decay: 5e-4,
            power: 0.9,
            ema_decay: 0.0,
            head_lr_mult: 10.0,
            aspp_quirk: true,
            bn_mode: "auto".into(),
            workers: 2,
            log_every: 10,
            eval_every: 1000,
            snapshot_every: 0,
            checkpoint_every: 1000,
            eval_at_start: false,
            probes: 4,
            eval_split: "val".into(),
            eval_batch: 8,
            best_metric: "miou".into(),
            on_bad_sample: "stop".into(),
            normalise: Normalisation::default(),
            image_labels: ImageLabels::default(),
        }
    }
}

/// The resolved configuration of a run: shared settings plus the method's own table.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    pub common: TrainConfig,
    pub method: toml::Table,
}

/// Every shared key, optional ones included.
pub fn common_keys() -> Vec<String> {
    let t = toml::Table::try_from(TrainConfig::default()).expect("serialisable defaults");
    let mut k: Vec<String> = t.keys().cloned().collect();
    // Optional keys are absent from the serialised defaults.
    k.extend(["crop", "split_file", "ndf"].map(String::from));
    k.sort();
    k.dedup();
    k
}

/// Parses a `--set` value as TOML (numbers, booleans, arrays), else as a bare string.
pub fn parse_value(v: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {v}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_string()))
}

impl RunConfig {
    /// Defaults for `method`.
    pub fn new(method: &str) -> Result<RunConfig, TrainError> {
        let info = methods::find(method)?;
        Ok(RunConfig {
            common: methods::common_defaults(
                method,
                TrainConfig {
                    method: method.to_string(),
                    ..TrainConfig::default()
                },
            ),
            method: (info.defaults)(),
        })
    }

    pub fn method_name(&self) -> &str {
        &self.common.method
    }

    /// Sets one key: `name` (shared or the method's) or `method.name`.
    pub fn set(&mut self, key: &str, value: toml::Value) -> Result<(), TrainError> {
        let method = self.common.method.clone();
        let (section, name) = match key.split_once('.') {
            Some((s, n)) => (Some(s), n),
            None => (None, key),
        };
        if let Some(s) = section {
            if s != method {
                if methods::find(s).is_ok() {
                    return Err(TrainError::KeyNotForMethod {
                        key: key.into(),
                        owner: s.into(),
                        method,
                    });
                }
                return Err(self.unknown(key));
            }
        }
        if section.is_none() && common_keys().iter().any(|k| k == name) {
            if name == "method" {
                return Err(TrainError::bad_value(
                    key,
                    "choose the method with --method (its settings differ)",
                ));
            }
            let mut t = toml::Table::try_from(&self.common).expect("serialisable");
            t.insert(name.to_string(), value.clone());
            self.common = t.try_into().map_err(|e: toml::de::Error| {
                // serde names the allowed variants only for a string; a number would not.
                let why = match name {
                    "normalise" => format!("use one of {}", Normalisation::NAMES.join(", ")),
                    "image_labels" => format!("use one of {}", ImageLabels::NAMES.join(", ")),
                    _ => e.message().to_string(),
                };
                TrainError::bad_value(key, format!("{value} does not fit: {why}"))
            })?;
            return Ok(());
        }
        let defaults = (methods::find(&method)?.defaults)();
        if defaults.contains_key(name) {
            let mut t = self.method.clone();
            t.insert(name.to_string(), value.clone());
            (methods::find(&method)?.validate)(&t).map_err(|why| {
                TrainError::bad_value(key, format!("{value} does not fit: {why}"))
            })?;
            self.method = t;
            return Ok(());
        }
        if let Some(owner) = methods::METHODS
            .iter()
            .find(|m| m.name != method && (m.defaults)().contains_key(name))
        {
            return Err(TrainError::KeyNotForMethod {
                key: key.into(),
                owner: owner.name.into(),
                method,
            });
        }
        Err(self.unknown(key))
    }

    fn unknown(&self, key: &str) -> TrainError {
        let mut known = common_keys();
        if let Ok(m) = methods::find(&self.common.method) {
            known.extend((m.defaults)().keys().cloned());
        }
        TrainError::UnknownKey {
            key: key.into(),
            method: self.common.method.clone(),
            known: known.join(", "),
        }
    }

    /// Applies a TOML document: shared keys at the top level, the method's in `[method]` (or at
    /// the top level). A `method = ...` line must match the chosen method.
    pub fn apply_toml(&mut self, text: &str, path: &std::path::Path) -> Result<(), TrainError> {
        let bad = |why: String| TrainError::ConfigFile {
            path: path.to_path_buf(),
            why,
        };
        let t: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if let Some(m) = t.get("method") {
            if m.as_str() != Some(self.common.method.as_str()) {
                return Err(bad(format!(
                    "method = {m} but the run's method is {:?}",
                    self.common.method
                )));
            }
        }
        for (k, v) in t {
            if k == "method" {
                continue;
            }
            match v {
                toml::Value::Table(sub) if methods::find(&k).is_ok() => {
                    for (sk, sv) in sub {
                        self.set(&format!("{k}.{sk}"), sv)
                            .map_err(|e| bad(e.to_string()))?;
                    }
                }
                v => self.set(&k, v).map_err(|e| bad(e.to_string()))?,
            }
        }
        Ok(())
    }

    /// The resolved configuration as TOML (saved in the run directory and in checkpoints).
    pub fn to_toml(&self) -> String {
        let mut t = toml::Table::try_from(&self.common).expect("serialisable");
        t.insert(
            self.common.method.clone(),
            toml::Value::Table(self.method.clone()),
        );
        toml::to_string(&t).expect("serialisable")
    }

    /// Reads a resolved configuration back (from a run directory or checkpoint).
    pub fn from_toml(text: &str, path: &std::path::Path) -> Result<RunConfig, TrainError> {
        let t: toml::Table = toml::from_str(text).map_err(|e| TrainError::ConfigFile {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        let method = t
            .get("method")
            .and_then(|v| v.as_str())
            .ok_or_else(|| TrainError::ConfigFile {
                path: path.to_path_buf(),
                why: "no method".into(),
            })?
            .to_string();
        let mut c = RunConfig::new(&method)?;
        c.apply_toml(text, path)?;
        Ok(c)
    }

    /// Typed view of the method's table.
    pub fn method_config<T: serde::de::DeserializeOwned>(&self) -> Result<T, TrainError> {
        self.method
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| {
                TrainError::bad_value(self.common.method.clone(), e.message().to_string())
            })
    }

    /// The crop size, resolving the default.
    pub fn crop(&self) -> [usize; 2] {
        match (&self.common.crop, &self.common.data) {
            (Some(c), _) => *c,
            (None, DataSpec::Synthetic(s)) => [s.h, s.w],
            (None, _) => [321, 321],
        }
    }

    /// How this run's images are normalised for its networks: the one place training, probes,
    /// evaluation and inference (`predict`, the app's Inference tab, from the checkpoint's
    /// config) take it from.
    pub fn normalise(&self) -> crate::data::Normalise {
        self.common.normalise.normalise()
    }

    /// The discriminator width, resolving the default.
    pub fn ndf(&self) -> usize {
        self.common.ndf.unwrap_or_else(|| {
            crate::nn::registry::find(&self.common.arch).map_or(64, |a| a.quirks.paired_ndf)
        })
    }

    /// Checks values that serde cannot (ranges, names).
    pub fn validate(&self) -> Result<(), TrainError> {
        let c = &self.common;
        let pos = |k: &str, v: usize| {
            if v == 0 {
                Err(TrainError::bad_value(k, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        pos("iters", c.iters)?;
        pos("batch", c.batch)?;
        pos("workers", c.workers)?;
        pos("ndf", self.ndf())?;
        pos("eval_batch", c.eval_batch)?;
        if !(c.labeled_fraction > 0.0 && c.labeled_fraction <= 1.0) {
            return Err(TrainError::bad_value(
                "labeled_fraction",
                format!("{} is not in (0, 1]", c.labeled_fraction),
            ));
        }
        if let Some([h, w]) = c.crop {
            if h == 0 || w == 0 {
                return Err(TrainError::bad_value("crop", "sizes must be >= 1"));
            }
        }
        for (k, v) in [
            ("lr", c.lr),
            ("momentum", c.momentum),
            ("weight_decay", c.weight_decay),
            ("power", c.power),
            ("head_lr_mult", c.head_lr_mult),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(TrainError::bad_value(
                    k,
                    format!("{v} must be finite and >= 0"),
                ));
            }
        }
        if !(0.0..1.0).contains(&c.ema_decay) {
            return Err(TrainError::bad_value(
                "ema_decay",
                format!("{} is not in [0, 1) (0 turns the average off)", c.ema_decay),
            ));
        }
        if !["auto", "train", "frozen-affine", "frozen"].contains(&c.bn_mode.as_str()) {
            return Err(TrainError::bad_value(
                "bn_mode",
                format!("{:?}: use auto, train, frozen-affine or frozen", c.bn_mode),
            ));
        }
        if !["stop", "skip"].contains(&c.on_bad_sample.as_str()) {
            return Err(TrainError::bad_value(
                "on_bad_sample",
                format!("{:?}: use stop or skip", c.on_bad_sample),
            ));
        }
        // Checked here, before the run writes anything, so a typo leaves no files behind.
        for (k, v) in [("arch", &c.arch), ("disc", &c.disc)] {
            if crate::nn::registry::find(v).is_none() {
                return Err(TrainError::bad_value(
                    k,
                    format!(
                        "unknown arch {v:?}; known: {}",
                        crate::nn::registry::known()
                    ),
                ));
            }
        }
        if !["miou", "pixel_acc"].contains(&c.best_metric.as_str()) {
            return Err(TrainError::bad_value(
                "best_metric",
                format!("{:?}: use miou or pixel_acc", c.best_metric),
            ));
        }
        (methods::find(&c.method)?.validate)(&self.method)
            .map_err(|why| TrainError::bad_value(c.method.clone(), why))
    }
}
