//! Runs every PyTorch parity case in tests/fixtures/torch/ and in each directory listed in
//! ADVSEG_PARITY_DIRS (colon-separated). Prints one line per case; fails on any mismatch,
//! unknown op, unknown parameter or unreadable file.

use advseg::testing::parity::{case_files, load_case, run_case};
use std::path::PathBuf;

#[test]
fn torch_parity() {
    let gpu =
        advseg::Gpu::shared().expect("GPU adapter (see README for the software Vulkan driver)");
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch")];
    if let Ok(extra) = std::env::var("ADVSEG_PARITY_DIRS") {
        dirs.extend(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    let mut failures = Vec::new();
    let mut total = 0;
    for dir in &dirs {
        let files = match case_files(dir) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{e}"));
                continue;
            }
        };
        if files.is_empty() {
            failures.push(format!("{}: no *.safetensors case files", dir.display()));
        }
        for path in files {
            total += 1;
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            match load_case(&path).and_then(|c| run_case(&gpu, &c)) {
                Ok(r) if r.passed() => println!(
                    "ok   {name} [{}] worst {:.3} of tolerance at {}",
                    r.op, r.worst, r.worst_at
                ),
                Ok(r) => {
                    println!(
                        "FAIL {name} [{}] worst {:.3e} of tolerance at {}",
                        r.op, r.worst, r.worst_at
                    );
                    failures.push(format!(
                        "{name}: {} exceeds tolerance {:.3e}x",
                        r.worst_at, r.worst
                    ));
                }
                Err(e) => {
                    println!("ERR  {name}: {e}");
                    failures.push(format!("{name}: {e}"));
                }
            }
        }
    }
    println!("{} cases, {} failed", total, failures.len());
    assert!(
        failures.is_empty(),
        "parity failures:\n{}",
        failures.join("\n")
    );
}
