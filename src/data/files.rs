//! A dataset backed by image/label file pairs, shared by every on-disk layout: the layouts only
//! differ in how they list pairs and how raw label values map to class ids.

use super::error::{DataError, DataResult};
use super::io::{read_image, read_label, LabelMap};
use super::{image_labels, ClassInfo, Dataset, Sample};
use std::path::{Path, PathBuf};

/// One image/label pair.
#[derive(Clone, Debug)]
pub struct Item {
    pub name: String,
    pub image: PathBuf,
    pub label: PathBuf,
}

/// Raw label value → class id or ignore; `None` marks a value that is neither (bad data).
pub type LabelTable = [Option<u8>; 256];

/// Identity on `0..num_classes`, plus `ignore` mapped to itself.
pub fn identity_table(num_classes: usize, ignore: u8) -> LabelTable {
    let mut t = [None; 256];
    for (v, e) in t.iter_mut().enumerate().take(num_classes) {
        *e = Some(v as u8);
    }
    t[ignore as usize] = Some(ignore);
    t
}

pub struct FileDataset {
    kind: String,
    split: String,
    items: Vec<Item>,
    classes: ClassInfo,
    table: LabelTable,
}

impl FileDataset {
    /// Fails with `EmptySplit` (naming `list`) when `items` is empty.
    pub fn new(
        kind: &str,
        split: &str,
        list: &Path,
        items: Vec<Item>,
        classes: ClassInfo,
        table: LabelTable,
    ) -> DataResult<Self> {
        if items.is_empty() {
            return Err(DataError::EmptySplit {
                dataset: kind.into(),
                split: split.into(),
                path: list.to_path_buf(),
            });
        }
        Ok(FileDataset {
            kind: kind.into(),
            split: split.into(),
            items,
            classes,
            table,
        })
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Maps raw label values through the table; the first bad value is reported with its
    /// position and how many pixels carry it.
    fn map_label(&self, path: &Path, raw: LabelMap) -> DataResult<LabelMap> {
        let mut data = raw.data;
        let mut bad: Option<(u8, usize, usize)> = None;
        for (i, v) in data.iter_mut().enumerate() {
            match self.table[*v as usize] {
                Some(m) => *v = m,
                None => {
                    match &mut bad {
                        None => bad = Some((*v, i, 1)),
                        Some((b, _, n)) if *b == *v => *n += 1,
                        _ => {}
                    };
                }
            }
        }
        if let Some((value, at, count)) = bad {
            return Err(DataError::LabelValue {
                path: path.to_path_buf(),
                value: value as u32,
                x: at % raw.w,
                y: at / raw.w,
                count,
                num_classes: self.classes.len(),
                ignore: self.classes.ignore,
            });
        }
        Ok(LabelMap {
            w: raw.w,
            h: raw.h,
            data,
        })
    }
}

impl Dataset for FileDataset {
    fn kind(&self) -> &str {
        &self.kind
    }
    fn split(&self) -> &str {
        &self.split
    }
    fn len(&self) -> usize {
        self.items.len()
    }
    fn classes(&self) -> &ClassInfo {
        &self.classes
    }
    fn name(&self, i: usize) -> String {
        self.items[i].name.clone()
    }
    fn get(&self, i: usize) -> DataResult<Sample> {
        let it = self.items.get(i).ok_or_else(|| {
            DataError::invalid(
                format!("{}/{}", self.kind, self.split),
                format!("index {i} out of range (len {})", self.items.len()),
            )
        })?;
        let image = read_image(&it.image)?;
        let raw = read_label(&it.label)?;
        if (raw.w, raw.h) != (image.w, image.h) {
            return Err(DataError::SizeMismatch {
                path: it.label.clone(),
                image: it.image.clone(),
                label_w: raw.w,
                label_h: raw.h,
                image_w: image.w,
                image_h: image.h,
            });
        }
        let label = self.map_label(&it.label, raw)?;
        let image_labels = image_labels(&label.data, self.classes.len());
        Ok(Sample {
            image,
            label,
            name: it.name.clone(),
            image_labels,
        })
    }
}

/// Reads a list file: one sample per line; blank lines and `#` comments skipped. A line with
/// several columns (e.g. VOC-aug's `/JPEGImages/x.jpg /SegmentationClassAug/x.png`) gives the
/// file stem of its first column.
pub fn read_list(path: &Path) -> DataResult<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
                what: "split list file".into(),
            }
        } else {
            DataError::io(path, e)
        }
    })?;
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or(line);
        let stem = Path::new(first)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| DataError::ListFile {
                path: path.to_path_buf(),
                line: ln + 1,
                why: format!("no sample name in {line:?}"),
            })?;
        out.push(stem);
    }
    Ok(out)
}
