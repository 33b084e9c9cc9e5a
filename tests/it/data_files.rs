//! VOC-, Cityscapes- and folder-layout fixtures written by the tests themselves (palette PNGs,
//! truncated files, wrong sizes, out-of-range labels), and `advseg data check` on them.

use advseg::data::check::check;
use advseg::data::io::{write_gray_png, write_palette_png};
use advseg::data::palette::voc_colour;
use advseg::data::{open, DataSpec, Dataset};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("advseg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mkdir(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
}

fn write_image(path: &Path, w: u32, h: u32) {
    mkdir(path.parent().unwrap());
    let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
    image::save_buffer(path, &data, w, h, image::ExtendedColorType::Rgb8).unwrap();
}

fn truncate(path: &Path) {
    let b = std::fs::read(path).unwrap();
    std::fs::write(path, &b[..b.len() / 2]).unwrap();
}

fn voc_palette() -> Vec<[u8; 3]> {
    (0..256).map(voc_colour).collect()
}

/// A label whose rows cycle through `values`.
fn label(w: usize, h: usize, values: &[u8]) -> Vec<u8> {
    (0..w * h).map(|i| values[(i / w) % values.len()]).collect()
}

fn open_str(spec: &str, split: &str) -> Arc<dyn Dataset> {
    open(&spec.parse::<DataSpec>().unwrap(), split).unwrap()
}

fn open_err(spec: &str, split: &str) -> String {
    open(&spec.parse::<DataSpec>().unwrap(), split)
        .unwrap_err()
        .to_string()
}

/// good: a, b; bad: c (label wrong size), d (label value 30), e (truncated JPEG),
/// f (no files at all), g (truncated label PNG).
fn make_voc(root: &Path) {
    let (w, h) = (20, 12);
    let pal = voc_palette();
    for n in ["a", "b", "c", "d", "e", "g"] {
        write_image(
            &root.join(format!("JPEGImages/{n}.jpg")),
            w as u32,
            h as u32,
        );
    }
    truncate(&root.join("JPEGImages/e.jpg"));
    let seg = root.join("SegmentationClass");
    write_palette_png(&seg.join("a.png"), w, h, &label(w, h, &[0, 15, 255]), &pal).unwrap();
    write_palette_png(&seg.join("b.png"), w, h, &label(w, h, &[0, 1, 20]), &pal).unwrap();
    write_palette_png(&seg.join("c.png"), w + 1, h, &label(w + 1, h, &[0]), &pal).unwrap();
    write_palette_png(&seg.join("d.png"), w, h, &label(w, h, &[0, 30, 30]), &pal).unwrap();
    write_palette_png(&seg.join("e.png"), w, h, &label(w, h, &[0]), &pal).unwrap();
    write_palette_png(&seg.join("g.png"), w, h, &label(w, h, &[0, 3]), &pal).unwrap();
    truncate(&seg.join("g.png"));
    let sets = root.join("ImageSets/Segmentation");
    mkdir(&sets);
    std::fs::write(sets.join("train.txt"), "a\nb\n").unwrap();
    std::fs::write(sets.join("val.txt"), "a\nc\nd\ne\nf\ng\n").unwrap();
    std::fs::write(sets.join("trainval.txt"), "").unwrap();
    // SBD-aug list in its two-column form, grayscale labels.
    std::fs::write(
        root.join("train_aug.txt"),
        "/JPEGImages/a.jpg /SegmentationClassAug/a.png\n/JPEGImages/b.jpg /SegmentationClassAug/b.png\n",
    )
    .unwrap();
    let aug = root.join("SegmentationClassAug");
    write_gray_png(&aug.join("a.png"), w, h, &label(w, h, &[5, 255])).unwrap();
    write_gray_png(&aug.join("b.png"), w, h, &label(w, h, &[7])).unwrap();
}

#[test]
fn voc_layout_reads_palette_indices_and_names_bad_files() {
    let root = tmp_dir("voc");
    make_voc(&root);
    let spec = format!("voc:{}", root.display());
    let train = open_str(&spec, "train");
    assert_eq!(
        (train.len(), train.num_classes(), train.ignore_index()),
        (2, 21, 255)
    );
    assert_eq!(train.class_names()[15], "person");
    assert_eq!(train.colours()[1], [128, 0, 0]);
    let a = train.get(0).unwrap();
    assert_eq!((a.image.w, a.image.h), (20, 12));
    assert_eq!(&a.label.data[..20], &[0; 20]);
    assert_eq!(a.label.data[20], 15, "palette index, not colour");
    assert_eq!(a.label.data[40], 255);
    let mut want = vec![false; 21];
    want[0] = true;
    want[15] = true;
    assert_eq!(a.image_labels, want, "ignore excluded from image labels");

    let aug = open_str(&spec, "train_aug");
    assert_eq!(aug.len(), 2);
    assert_eq!(aug.name(1), "b");
    assert_eq!(aug.get(0).unwrap().label.data[0], 5);
    assert!(aug.get(1).unwrap().label.data.iter().all(|&v| v == 7));

    let val = open_str(&spec, "val");
    let err = |i: usize| val.get(i).unwrap_err().to_string();
    let e = err(1);
    assert!(
        e.contains("c.png") && e.contains("21x12") && e.contains("c.jpg") && e.contains("20x12"),
        "{e}"
    );
    let e = err(2);
    assert!(
        e.contains("d.png") && e.contains("label value 30") && e.contains("(x=0, y=1)"),
        "{e}"
    );
    let e = err(3);
    assert!(e.contains("e.jpg") && e.contains("truncated"), "{e}");
    let e = err(4);
    assert!(e.contains("f.jpg") && e.contains("missing"), "{e}");
    let e = err(5);
    assert!(e.contains("g.png") && e.contains("truncated"), "{e}");

    let rep = check(val.as_ref(), None, 2);
    assert_eq!(rep.checked, 6);
    assert_eq!(
        rep.bad.iter().map(|b| b.1.as_str()).collect::<Vec<_>>(),
        ["c", "d", "e", "f", "g"]
    );
    assert_eq!(rep.sizes.get(&(12, 20)), Some(&1));
    assert_eq!(rep.class_pixels[15], 80);
    assert_eq!(rep.ignore_pixels, 80);

    let e = open_err(&spec, "trainval");
    assert!(e.contains("empty") && e.contains("trainval.txt"), "{e}");
    let e = open_err(&spec, "test");
    assert!(e.contains("unknown split \"test\""), "{e}");
    let e = open_err(&format!("voc:{}/nope", root.display()), "train");
    assert!(e.contains("nope") && e.contains("missing"), "{e}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn cityscapes_layout_maps_label_ids_to_train_ids() {
    let root = tmp_dir("cityscapes");
    let (w, h) = (16, 8);
    let img = |split: &str, city: &str, stem: &str| {
        root.join(format!("leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png"))
    };
    let gt = |split: &str, city: &str, stem: &str| {
        root.join(format!("gtFine/{split}/{city}/{stem}_gtFine_labelIds.png"))
    };
    write_image(&img("train", "aachen", "aachen_000001_000019"), w, h);
    write_image(&img("train", "aachen", "aachen_000000_000019"), w, h);
    write_image(&img("train", "bremen", "bremen_000000_000019"), w, h);
    let (wu, hu) = (w as usize, h as usize);
    // ids: 7 road → 0, 26 car → 13, 0 unlabeled → ignore, 33 bicycle → 18, 4 static → ignore.
    write_gray_png(
        &gt("train", "aachen", "aachen_000000_000019"),
        wu,
        hu,
        &label(wu, hu, &[7, 26, 0, 33, 4]),
    )
    .unwrap();
    write_gray_png(
        &gt("train", "aachen", "aachen_000001_000019"),
        wu,
        hu,
        &label(wu, hu, &[7, 40]),
    )
    .unwrap();
    // bremen has no ground truth file.
    write_image(&img("val", "lindau", "lindau_000000_000019"), w, h);
    write_gray_png(
        &gt("val", "lindau", "lindau_000000_000019"),
        wu,
        hu,
        &label(wu, hu, &[21]),
    )
    .unwrap();
    truncate(&img("val", "lindau", "lindau_000000_000019"));

    let spec = format!("cityscapes:{}", root.display());
    let ds = open_str(&spec, "train");
    assert_eq!((ds.len(), ds.num_classes()), (3, 19));
    assert_eq!(
        ds.name(0),
        "aachen_000000_000019",
        "sorted by city then file"
    );
    let s = ds.get(0).unwrap();
    let rows: Vec<u8> = (0..5).map(|r| s.label.data[r * wu]).collect();
    assert_eq!(rows, vec![0, 13, 255, 18, 255]);
    assert_eq!(s.image_labels.iter().filter(|&&p| p).count(), 3);
    let e = ds.get(1).unwrap_err().to_string();
    assert!(
        e.contains("aachen_000001_000019_gtFine_labelIds.png") && e.contains("label value 40"),
        "{e}"
    );
    let e = ds.get(2).unwrap_err().to_string();
    assert!(
        e.contains("bremen_000000_000019_gtFine_labelIds.png") && e.contains("missing"),
        "{e}"
    );
    let val = open_str(&spec, "val");
    let e = val.get(0).unwrap_err().to_string();
    assert!(
        e.contains("lindau_000000_000019_leftImg8bit.png") && e.contains("truncated"),
        "{e}"
    );
    let e = open_err(&spec, "test");
    assert!(
        e.contains("leftImg8bit/test") && e.contains("missing"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn folder_layout_with_and_without_classes_toml() {
    let root = tmp_dir("folder");
    let (w, h) = (10, 6);
    for n in ["x", "y", "z"] {
        write_image(&root.join(format!("images/{n}.png")), w as u32, h as u32);
    }
    write_gray_png(&root.join("labels/x.png"), w, h, &label(w, h, &[0, 1])).unwrap();
    write_gray_png(&root.join("labels/y.png"), w, h, &label(w, h, &[2, 255])).unwrap();
    write_palette_png(
        &root.join("labels/z.png"),
        w,
        h,
        &label(w, h, &[1]),
        &voc_palette(),
    )
    .unwrap();
    let spec = format!("folder:{}", root.display());

    // No lists, no classes.toml: every image is train; classes 0..=max seen.
    let ds = open_str(&spec, "train");
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.num_classes(), 3);
    assert_eq!(ds.class_names()[2], "class2");
    assert_eq!(ds.get(1).unwrap().label.data[w], 255);
    let e = open_err(&spec, "val");
    assert!(e.contains("val.txt"), "{e}");

    std::fs::write(
        root.join("classes.toml"),
        "ignore = 255\n[[classes]]\nname = \"sky\"\ncolour = [1, 2, 3]\n[[classes]]\nname = \"sea\"\n",
    )
    .unwrap();
    std::fs::write(root.join("train.txt"), "x\nz\n").unwrap();
    std::fs::write(root.join("val.txt"), "y\n").unwrap();
    let ds = open_str(&spec, "train");
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.class_names(), &["sky".to_string(), "sea".to_string()]);
    assert_eq!(ds.colours()[0], [1, 2, 3]);
    assert_eq!(ds.colours()[1], voc_colour(1));
    assert!(ds.get(1).is_ok());
    let val = open_str(&spec, "val");
    let e = val.get(0).unwrap_err().to_string();
    assert!(
        e.contains("y.png") && e.contains("label value 2") && e.contains("0..2"),
        "{e}"
    );

    std::fs::write(root.join("classes.toml"), "[[classes]]\nnaem = \"sky\"\n").unwrap();
    let e = open_err(&spec, "train");
    assert!(e.contains("classes.toml") && e.contains("naem"), "{e}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn data_check_command_exit_status() {
    let root = tmp_dir("check-cli");
    make_voc(&root);
    let bin = env!("CARGO_BIN_EXE_advseg");
    let out = std::process::Command::new(bin)
        .args([
            "data",
            "check",
            "--data",
            &format!("voc:{}", root.display()),
            "--split",
            "val",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "bad samples → non-zero exit\n{stdout}"
    );
    assert!(
        stdout.contains("bad samples: 5") && stdout.contains("d.png"),
        "{stdout}"
    );
    assert!(stdout.contains("person"), "{stdout}");

    let out = std::process::Command::new(bin)
        .args(["data", "check", "--data", "synthetic:size=16,n=8,val=4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("synthetic/train: 8 samples")
            && stdout.contains("synthetic/val: 4 samples"),
        "{stdout}"
    );

    let out = std::process::Command::new(bin)
        .args(["data", "check", "--data", "synthetic:bogus=1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
    let _ = std::fs::remove_dir_all(root);
}
