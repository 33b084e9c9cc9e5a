//! Device loss during a run (its own test binary: it destroys the process's shared GPU
//! device). The app shows a message, keeps the window, and the run's last checkpoint stays.

use advseg::app::state::UiState;
use advseg::app::{AdvsegApp, AppOptions};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use std::time::{Duration, Instant};

#[test]
fn device_loss_is_a_message_and_keeps_the_checkpoint() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let run = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("app_device_lost");
    let _ = std::fs::remove_dir_all(&run);
    let preset: Vec<(String, String)> = [
        ("data", "synthetic:size=32,n=8,val=2"),
        ("iters", "100000"),
        ("batch", "2"),
        ("snapshot_every", "0"),
        ("eval_every", "0"),
        ("checkpoint_every", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut a = AdvsegApp::new(
        UiState::default(),
        &AppOptions {
            fresh: true,
            preset,
            ..Default::default()
        },
    );
    a.st.run_dir = run.display().to_string();
    let mut h = Harness::builder()
        .with_size([1200.0, 800.0])
        .build_ui_state(|ui, app: &mut AdvsegApp| app.show(ui), a);
    h.get_by_label("Start").click();
    let t = Instant::now();
    let mut lost = false;
    while !h.state().history.finished {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{:?}",
            h.state().history.log
        );
        if !lost && !h.state().history.checkpoints.is_empty() {
            // What a driver reset looks like to wgpu.
            advseg::Gpu::shared().unwrap().lose_device();
            lost = true;
        }
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.run_steps(2);
    let e = h.state().error.clone().expect("error shown");
    assert!(
        e.starts_with("GPU device lost") && e.contains("is kept at"),
        "{e}\n{:?}",
        h.state().history.log
    );
    assert!(run.join("last.safetensors").exists());
    h.get_by_label_contains("Error: GPU device lost");
}
