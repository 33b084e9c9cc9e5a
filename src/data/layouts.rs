//! The on-disk layouts: CamVid, PASCAL VOC (+ SBD aug), Cityscapes and a plain folder.
//! Each lists image/label pairs for a split and builds a [`FileDataset`].

use super::error::{DataError, DataResult};
use super::files::{identity_table, read_list, FileDataset, Item, LabelTable};
use super::io::read_label;
use super::palette::*;
use super::ClassInfo;
use std::path::{Path, PathBuf};

fn unknown_split(kind: &str, split: &str, known: &[&str]) -> DataError {
    DataError::UnknownSplit {
        dataset: kind.into(),
        split: split.into(),
        known: known.join(", "),
    }
}

fn need_dir(path: &Path, what: &str) -> DataResult<()> {
    if path.is_dir() {
        Ok(())
    } else {
        Err(DataError::Missing {
            path: path.to_path_buf(),
            what: format!("{what} directory"),
        })
    }
}

/// `train.txt`/`val.txt` + `{split}/images/NAME.jpg` + `{split}/labels/NAME.png` (raw void 11).
pub fn camvid(root: &Path, split: &str) -> DataResult<FileDataset> {
    let (list, items) = camvid_items(root, split, "camvid")?;
    let mut table = identity_table(CAMVID_NAMES.len(), 255);
    table[CAMVID_VOID as usize] = Some(255);
    let classes = ClassInfo::new(&CAMVID_NAMES, &CAMVID_COLOURS, 255);
    FileDataset::new("camvid", split, &list, items, classes, table)
}

/// The CamVid files with its stuff classes merged into background ([`CAMVID_THINGS_OF_RAW`]).
pub fn camvid_things(root: &Path, split: &str) -> DataResult<FileDataset> {
    let (list, items) = camvid_items(root, split, "camvid-things")?;
    let mut table: LabelTable = [None; 256];
    for (raw, &class) in CAMVID_THINGS_OF_RAW.iter().enumerate() {
        table[raw] = Some(class);
    }
    table[CAMVID_VOID as usize] = Some(255);
    table[255] = Some(255);
    let classes = ClassInfo::new(&CAMVID_THINGS_NAMES, &CAMVID_THINGS_COLOURS, 255);
    FileDataset::new("camvid-things", split, &list, items, classes, table)
}

fn camvid_items(root: &Path, split: &str, kind: &str) -> DataResult<(PathBuf, Vec<Item>)> {
    if !["train", "val", "test"].contains(&split) {
        return Err(unknown_split(kind, split, &["train", "val", "test"]));
    }
    need_dir(root, "camvid root")?;
    let list = root.join(format!("{split}.txt"));
    let items = read_list(&list)?
        .into_iter()
        .map(|n| Item {
            image: root.join(split).join("images").join(format!("{n}.jpg")),
            label: root.join(split).join("labels").join(format!("{n}.png")),
            name: n,
        })
        .collect();
    Ok((list, items))
}

/// `ImageSets/Segmentation/{split}.txt` + `JPEGImages/` + `SegmentationClass/` palette PNGs;
/// split `train_aug` reads its list from `ImageSets/Segmentation/train_aug.txt` (or
/// `train_aug.txt` at the root) and labels from `SegmentationClassAug/`.
pub fn voc(root: &Path, split: &str) -> DataResult<FileDataset> {
    const SPLITS: [&str; 4] = ["train", "val", "trainval", "train_aug"];
    if !SPLITS.contains(&split) {
        return Err(unknown_split("voc", split, &SPLITS));
    }
    need_dir(root, "VOC root")?;
    let sets = root.join("ImageSets").join("Segmentation");
    let (list, labels) = if split == "train_aug" {
        let in_sets = sets.join("train_aug.txt");
        let l = if in_sets.exists() {
            in_sets
        } else {
            root.join("train_aug.txt")
        };
        (l, root.join("SegmentationClassAug"))
    } else {
        (
            sets.join(format!("{split}.txt")),
            root.join("SegmentationClass"),
        )
    };
    let items = read_list(&list)?
        .into_iter()
        .map(|n| Item {
            image: root.join("JPEGImages").join(format!("{n}.jpg")),
            label: labels.join(format!("{n}.png")),
            name: n,
        })
        .collect();
    let colours: Vec<[u8; 3]> = (0..VOC_NAMES.len()).map(voc_colour).collect();
    let classes = ClassInfo::new(&VOC_NAMES, &colours, 255);
    let table = identity_table(VOC_NAMES.len(), 255);
    FileDataset::new("voc", split, &list, items, classes, table)
}

/// `leftImg8bit/{split}/CITY/X_leftImg8bit.png` + `gtFine/{split}/CITY/X_gtFine_labelIds.png`,
/// label ids mapped to the 19 train ids; other valid ids (0..=33) are ignored.
pub fn cityscapes(root: &Path, split: &str) -> DataResult<FileDataset> {
    need_dir(root, "Cityscapes root")?;
    let img_root = root.join("leftImg8bit").join(split);
    if !img_root.is_dir() {
        if ["train", "val", "test"].contains(&split) {
            need_dir(&img_root, "Cityscapes image")?;
        }
        return Err(unknown_split(
            "cityscapes",
            split,
            &["train", "val", "test"],
        ));
    }
    let gt_root = root.join("gtFine").join(split);
    let mut items = Vec::new();
    let read_dir = |d: &Path| -> DataResult<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| DataError::io(d, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    for city in read_dir(&img_root)?.into_iter().filter(|p| p.is_dir()) {
        let cname = city.file_name().unwrap_or_default().to_owned();
        for f in read_dir(&city)? {
            let fname = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if let Some(stem) = fname.strip_suffix("_leftImg8bit.png") {
                items.push(Item {
                    label: gt_root
                        .join(&cname)
                        .join(format!("{stem}_gtFine_labelIds.png")),
                    image: f,
                    name: stem.to_string(),
                });
            }
        }
    }
    let mut table: LabelTable = [None; 256];
    for e in table.iter_mut().take(CITYSCAPES_MAX_ID as usize + 1) {
        *e = Some(255);
    }
    table[255] = Some(255);
    for (train_id, &id) in CITYSCAPES_TRAIN_IDS.iter().enumerate() {
        table[id as usize] = Some(train_id as u8);
    }
    let classes = ClassInfo::new(&CITYSCAPES_NAMES, &CITYSCAPES_COLOURS, 255);
    FileDataset::new("cityscapes", split, &img_root, items, classes, table)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassesToml {
    ignore: Option<u8>,
    classes: Vec<ClassEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassEntry {
    name: String,
    colour: Option<[u8; 3]>,
}

const IMAGE_EXTS: [&str; 5] = ["png", "jpg", "jpeg", "PNG", "JPG"];

/// Reads `classes.toml`:
///
/// ```toml
/// ignore = 255                       # optional, default 255
/// [[classes]]
/// name = "background"
/// colour = [0, 0, 0]                 # optional, default: the VOC colour map
/// ```
pub fn read_classes_toml(path: &Path) -> DataResult<ClassInfo> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let bad = |why: String| DataError::Classes {
        path: path.to_path_buf(),
        why,
    };
    let c: ClassesToml = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let ignore = c.ignore.unwrap_or(255);
    if c.classes.is_empty() {
        return Err(bad("no [[classes]] entries".into()));
    }
    if (ignore as usize) < c.classes.len() {
        return Err(bad(format!(
            "ignore = {ignore} is a class index ({} classes)",
            c.classes.len()
        )));
    }
    Ok(ClassInfo {
        names: c.classes.iter().map(|e| e.name.clone()).collect(),
        colours: c
            .classes
            .iter()
            .enumerate()
            .map(|(i, e)| e.colour.unwrap_or_else(|| voc_colour(i)))
            .collect(),
        ignore,
    })
}

/// `images/NAME.{png,jpg,jpeg}` + `labels/NAME.png`, optional `{split}.txt` lists (without any,
/// split `train` is every image) and optional `classes.toml` (without it the classes are
/// `0..=max label value` seen, named `class<i>`, found by reading every label once).
pub fn folder(root: &Path, split: &str) -> DataResult<FileDataset> {
    need_dir(root, "folder dataset root")?;
    let images = root.join("images");
    let labels = root.join("labels");
    need_dir(&images, "images")?;
    need_dir(&labels, "labels")?;
    let list = root.join(format!("{split}.txt"));
    let has_lists = ["train.txt", "val.txt"]
        .iter()
        .any(|f| root.join(f).exists());
    let names: Vec<String> = if list.exists() {
        read_list(&list)?
    } else if split == "train" && !has_lists {
        let mut v: Vec<String> = std::fs::read_dir(&images)
            .map_err(|e| DataError::io(&images, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| IMAGE_EXTS.contains(&e.to_string_lossy().as_ref()))
            })
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        v.sort();
        v
    } else {
        return Err(DataError::Missing {
            path: list,
            what: format!("list file for split {split:?}"),
        });
    };
    let items: Vec<Item> = names
        .into_iter()
        .map(|n| {
            let image = IMAGE_EXTS
                .iter()
                .map(|e| images.join(format!("{n}.{e}")))
                .find(|p| p.exists())
                .unwrap_or_else(|| images.join(format!("{n}.png")));
            Item {
                image,
                label: labels.join(format!("{n}.png")),
                name: n,
            }
        })
        .collect();
    let toml_path = root.join("classes.toml");
    let classes = if toml_path.exists() {
        read_classes_toml(&toml_path)?
    } else {
        let mut max = 0u8;
        for it in &items {
            let l = read_label(&it.label)?;
            max = max.max(
                l.data
                    .iter()
                    .copied()
                    .filter(|&v| v != 255)
                    .max()
                    .unwrap_or(0),
            );
        }
        let n = max as usize + 1;
        ClassInfo {
            names: (0..n).map(|i| format!("class{i}")).collect(),
            colours: (0..n).map(voc_colour).collect(),
            ignore: 255,
        }
    };
    let table = identity_table(classes.len(), classes.ignore);
    let list_path = if list.exists() { list } else { images };
    FileDataset::new("folder", split, &list_path, items, classes, table)
}
