//! The training thread: the trainer owns its GPU work there; the UI thread only drains
//! messages, so drawing never slows a step and a failing run becomes a message, not a crash.

use crate::train::{Event, Observer, RunSession};
use crate::Gpu;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the training thread tells the UI.
#[derive(Debug)]
pub enum Msg {
    Event(Event),
    /// The run could not start or failed; the text is the full chain of causes.
    Failed(String),
    /// wgpu reported the GPU device lost (driver reset, GPU removed). The shared device is
    /// gone for this process: nothing more can run on it until the app restarts.
    DeviceLost(String),
    /// The thread has ended (after `Finished`, `Interrupted` or `Failed`).
    Exited,
}

/// Forwards events and wakes the UI so it redraws without polling.
struct UiObserver {
    tx: Sender<Msg>,
    wake: Option<egui::Context>,
}

impl Observer for UiObserver {
    fn on_event(&mut self, e: &Event) {
        let _ = self.tx.send(Msg::Event(e.clone()));
        if let Some(c) = &self.wake {
            c.request_repaint();
        }
    }
}

pub struct Run {
    pub rx: Receiver<Msg>,
    pub stop: Arc<AtomicBool>,
    pub pause: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Run {
    /// Runs `session` (opened on the UI thread: a refused run directory or unreadable
    /// checkpoint is reported before any thread starts) on the training thread.
    pub fn start(session: RunSession, wake: Option<egui::Context>) -> Run {
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let pause = Arc::new(AtomicBool::new(false));
        let (s, p) = (stop.clone(), pause.clone());
        let handle = std::thread::Builder::new()
            .name("advseg-train".into())
            .spawn(move || {
                let tx2 = tx.clone();
                let w2 = wake.clone();
                // A panic in the engine must not take the window down with it.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    train(session, s, p, UiObserver { tx: tx2, wake: w2 })
                }));
                let failure = match r {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("{e:#}")),
                    Err(p) => Some(format!(
                        "training thread panicked: {}",
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    )),
                };
                if let Some(f) = failure {
                    // A lost device fails the next GPU call (often as a validation error)
                    // before wgpu reports the loss; a poll lets the report go out first.
                    if let Ok(g) = Gpu::shared() {
                        g.settle();
                    }
                    let _ = tx.send(Msg::Failed(f));
                }
                let _ = tx.send(Msg::Exited);
                if let Some(c) = &wake {
                    c.request_repaint();
                }
            })
            .expect("spawning the training thread");
        Run {
            rx,
            stop,
            pause,
            handle: Some(handle),
        }
    }

    pub fn set_paused(&self, on: bool) {
        self.pause.store(on, Ordering::SeqCst);
    }

    pub fn paused(&self) -> bool {
        self.pause.load(Ordering::SeqCst)
    }

    /// Asks for a stop after the current step (`last` is saved first).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.pause.store(false, Ordering::SeqCst);
    }

    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // Closing the window stops training cleanly (its `last` checkpoint is written).
        self.request_stop();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn train(
    session: RunSession,
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    ui: UiObserver,
) -> anyhow::Result<()> {
    let gpu = Gpu::shared()?;
    // The trainer thread then fails on its next GPU call; this says why, first.
    let (tx, wake) = (ui.tx.clone(), ui.wake.clone());
    gpu.on_device_lost(move |why| {
        let _ = tx.send(Msg::DeviceLost(why));
        if let Some(c) = &wake {
            c.request_repaint();
        }
    });
    let mut t = session
        .stop_flag(stop)
        .pause_flag(pause)
        .start(&gpu, vec![Box::new(ui)])?;
    t.run()?;
    Ok(())
}
