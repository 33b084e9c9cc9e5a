//! Datasets, augmentation, loading and splits.
//!
//! A dataset is opened from a `--data` spec ([`spec::DataSpec`]) for one split and served through
//! the [`Dataset`] trait: samples are decoded 8-bit RGB images with class-index label maps whose
//! values are class ids `0..num_classes` or the dataset's ignore index (255 for every built-in
//! dataset; raw encodings such as CamVid's void=11 or Cityscapes' label ids are mapped on read).

pub mod augment;
pub mod check;
pub mod error;
pub mod files;
pub mod io;
pub mod layouts;
pub mod loader;
pub mod palette;
pub mod save;
pub mod semi;
pub mod spec;
pub mod synthetic;

pub use augment::{AugConfig, Normalise, PadImage};
pub use error::{DataError, DataResult};
pub use io::{LabelMap, RgbImage};
pub use loader::{Batch, Loader, LoaderConfig};
pub use spec::{open, DataSpec};

/// Class names and colours of a dataset, and the label value that marks ignored pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassInfo {
    pub names: Vec<String>,
    pub colours: Vec<[u8; 3]>,
    pub ignore: u8,
}

impl ClassInfo {
    pub fn new(names: &[&str], colours: &[[u8; 3]], ignore: u8) -> Self {
        ClassInfo {
            names: names.iter().map(|s| s.to_string()).collect(),
            colours: colours.to_vec(),
            ignore,
        }
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One decoded training/evaluation example.
#[derive(Clone, Debug)]
pub struct Sample {
    pub image: RgbImage,
    /// HxW class ids or the ignore index; same size as `image`.
    pub label: LabelMap,
    pub name: String,
    /// Multi-hot: which classes occur in `label` (ignored pixels excluded). For weak supervision.
    pub image_labels: Vec<bool>,
}

/// Classes present in a label map (ignore excluded); values beyond `num_classes` are skipped.
pub fn image_labels(label: &[u8], num_classes: usize) -> Vec<bool> {
    let mut seen = [false; 256];
    for &v in label {
        seen[v as usize] = true;
    }
    seen[..num_classes.min(256)].to_vec()
}

/// A split of a dataset. Implementations are cheap to share across loader threads.
pub trait Dataset: Send + Sync {
    /// Kind, e.g. "camvid".
    fn kind(&self) -> &str;
    /// Split name, e.g. "train".
    fn split(&self) -> &str;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn classes(&self) -> &ClassInfo;
    /// Sample name (file stem or generated id) of index `i`, without decoding it.
    fn name(&self, i: usize) -> String;
    /// Decodes and validates sample `i`.
    fn get(&self, i: usize) -> DataResult<Sample>;

    fn num_classes(&self) -> usize {
        self.classes().len()
    }
    fn class_names(&self) -> &[String] {
        &self.classes().names
    }
    fn colours(&self) -> &[[u8; 3]] {
        &self.classes().colours
    }
    fn ignore_index(&self) -> u8 {
        self.classes().ignore
    }
}

/// Split names that every dataset accepts (folder datasets also take any list file's stem).
pub const SPLITS: [&str; 2] = ["train", "val"];

impl std::fmt::Debug for dyn Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} ({} samples, {} classes)",
            self.kind(),
            self.split(),
            self.len(),
            self.num_classes()
        )
    }
}
