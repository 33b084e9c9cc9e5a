//! End-to-end: a PyTorch `.pth` (DataParallel `module.` names, nested under 'state_dict') →
//! `scripts/convert_pth.py` → `advseg model --load --strict`. Needs /usr/bin/python3 with torch;
//! skipped with a message otherwise (CI has no torch).

use std::path::{Path, PathBuf};
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3";

fn have_torch() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import torch"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn advseg(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_advseg"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap()
}

const MAKE_PTH: &str = r#"
import sys, torch, torch.nn as nn
class FCDiscriminator(nn.Module):
    def __init__(self, num_classes, ndf=64):
        super().__init__()
        self.conv1 = nn.Conv2d(num_classes, ndf, 4, 2, 1)
        self.conv2 = nn.Conv2d(ndf, ndf * 2, 4, 2, 1)
        self.conv3 = nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1)
        self.conv4 = nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1)
        self.classifier = nn.Conv2d(ndf * 8, 1, 4, 2, 1)
torch.manual_seed(0)
m = nn.DataParallel(FCDiscriminator(3))
torch.save({"epoch": 3, "state_dict": m.state_dict()}, sys.argv[1])
"#;

#[test]
fn convert_pth_then_strict_load() {
    if !have_torch() {
        eprintln!("skipping: {PYTHON} with torch not available");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir: PathBuf = std::env::temp_dir().join(format!("advseg_convert_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pth = dir.join("d.pth");
    let st = dir.join("d.safetensors");
    let o = Command::new(PYTHON)
        .args(["-c", MAKE_PTH, pth.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(PYTHON)
        .arg(root.join("scripts/convert_pth.py"))
        .args([pth.to_str().unwrap(), st.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Names without `module.`, values as in torch (spot check via our reader).
    let (t, _) = advseg::nn::read_safetensors(&st).unwrap();
    assert_eq!(t["conv1.weight"].0, vec![64, 3, 4, 4]);
    assert!(t.keys().all(|k| !k.starts_with("module.")));

    let o = advseg(&[
        "model",
        "--arch",
        "fcdisc",
        "--classes",
        "3",
        "--load",
        st.to_str().unwrap(),
        "--strict",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("loaded 10 of 10 tensors") && out.contains("exact match"),
        "{out}"
    );

    // Another class count: a clear report, and --strict fails.
    let o = advseg(&[
        "model",
        "--arch",
        "fcdisc",
        "--classes",
        "4",
        "--load",
        st.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(
        out.contains(
            "shape mismatch (kept at init): conv1.weight: model [64, 4, 4, 4], file [64, 3, 4, 4]"
        ),
        "{out}"
    );
    let o = advseg(&[
        "model",
        "--arch",
        "fcdisc",
        "--classes",
        "4",
        "--load",
        st.to_str().unwrap(),
        "--strict",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("strict") && err.contains("conv1.weight"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
