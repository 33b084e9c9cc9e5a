//! Typed errors of the data pipeline. Every variant names the file (or spec, or field) at fault
//! and what is wrong with it, so `advseg data check` can print them as they are.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("bad --data spec {spec:?}: {why}")]
    Spec { spec: String, why: String },

    #[error("{path}: missing {what}")]
    Missing { path: PathBuf, what: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: unreadable or truncated image: {why}")]
    Decode { path: PathBuf, why: String },

    #[error("{path}: label map is {label_w}x{label_h} (WxH) but its image {image} is {image_w}x{image_h}")]
    SizeMismatch {
        path: PathBuf,
        image: PathBuf,
        label_w: usize,
        label_h: usize,
        image_w: usize,
        image_h: usize,
    },

    #[error("{path}: label value {value} at (x={x}, y={y}) ({count} pixels) is neither a class (0..{num_classes}) nor the ignore index {ignore}")]
    LabelValue {
        path: PathBuf,
        value: u32,
        x: usize,
        y: usize,
        count: usize,
        num_classes: usize,
        ignore: u8,
    },

    #[error("{path}: unsupported label format: {why} (need an 8-bit grayscale or palette PNG holding class indices)")]
    LabelFormat { path: PathBuf, why: String },

    #[error("{dataset} split {split:?} is empty ({path})")]
    EmptySplit {
        dataset: String,
        split: String,
        path: PathBuf,
    },

    #[error("{dataset}: unknown split {split:?} (known: {known})")]
    UnknownSplit {
        dataset: String,
        split: String,
        known: String,
    },

    #[error("{path}:{line}: {why}")]
    ListFile {
        path: PathBuf,
        line: usize,
        why: String,
    },

    #[error("{path}: {why}")]
    Classes { path: PathBuf, why: String },

    #[error("{what}: {why}")]
    Invalid { what: String, why: String },

    #[error("sample {index} ({name}) of {dataset}/{split}: {source}")]
    Sample {
        dataset: String,
        split: String,
        index: usize,
        name: String,
        #[source]
        source: Box<DataError>,
    },
}

pub type DataResult<T> = std::result::Result<T, DataError>;

impl DataError {
    pub(crate) fn spec(spec: &str, why: impl Into<String>) -> Self {
        DataError::Spec {
            spec: spec.to_string(),
            why: why.into(),
        }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        DataError::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }
}
