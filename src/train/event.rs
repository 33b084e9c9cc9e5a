//! The trainer's event stream. Observers (the CLI's progress bar and run directory, the
//! desktop app through a channel) all receive the same events; the trainer computes them on a
//! fixed schedule whether or not anyone listens, so watching never changes training speed.

pub use super::maps::{HostMap, MapKind};
pub use crate::metrics::signals::SignalScores;
use std::sync::mpsc::Sender;

/// Scalars of one step: every loss term the method reports (unscaled by their λ), D's mean
/// outputs where the method has a D, learning rates (`lr/<optimizer>`) and throughput.
#[derive(Clone, Debug)]
pub struct StepScalars {
    /// 1-based: the number of completed iterations.
    pub step: usize,
    pub iters: usize,
    pub scalars: Vec<(String, f32)>,
    /// Iterations per second over the recent window (wall clock, data waits included).
    pub it_per_s: f64,
}

impl StepScalars {
    pub fn get(&self, name: &str) -> Option<f32> {
        self.scalars.iter().find(|s| s.0 == name).map(|s| s.1)
    }
}

/// Validation scores at one step.
#[derive(Clone, Debug)]
pub struct EvalResult {
    pub step: usize,
    pub split: String,
    pub miou: Option<f64>,
    pub pixel_acc: Option<f64>,
    pub mean_class_acc: Option<f64>,
    /// (class name, IoU); `None` for a class neither present nor predicted.
    pub per_class_iou: Vec<(String, Option<f64>)>,
    pub images: usize,
    pub seconds: f64,
    /// Whole-split pixel confusion matrix, row-major `[gt][pred]` over the classes of
    /// `per_class_iou`, ignored pixels left out.
    pub confusion: Vec<u64>,
    /// The method's own signals scored against the ground truth (`metrics::signals`).
    /// (boxed: keeps `Event` small for the channels that carry it).
    pub signals: Box<SignalScores>,
}

/// One probe image as the model saw it, with what the method computed for it.
#[derive(Clone, Debug)]
pub struct ProbeSnapshot {
    pub name: String,
    pub h: usize,
    pub w: usize,
    /// RGB, HWC, de-normalised to 0..255.
    pub input: Vec<u8>,
    /// Ground-truth class ids / ignore index, HxW.
    pub gt: Vec<u8>,
    /// Predicted class ids, HxW.
    pub pred: Vec<u8>,
    /// Class probabilities, CxHxW.
    pub probs: Vec<f32>,
    /// Method-specific per-pixel maps in [0, 1], HxW each (e.g. `d_confidence`, `semi_mask`),
    /// with their kinds.
    pub maps: Vec<HostMap>,
}

impl ProbeSnapshot {
    /// The values of the map named `name`.
    pub fn map(&self, name: &str) -> Option<&[f32]> {
        self.maps
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.values.as_slice())
    }
}

/// Snapshot of the fixed probe set (read back from the GPU only at the snapshot interval).
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub step: usize,
    pub classes: usize,
    pub colours: Vec<[u8; 3]>,
    pub ignore: u8,
    pub probes: Vec<ProbeSnapshot>,
    /// Maps from the last training batch (their first image), e.g. the semi-supervised mask
    /// actually used there.
    pub train_maps: Vec<HostMap>,
    /// D's confidence maps of the probes scored against their labels (empty for methods
    /// without a `d_confidence` map).
    pub signals: SignalScores,
}

#[derive(Clone, Debug)]
pub enum Event {
    Started {
        method: String,
        start_step: usize,
        iters: usize,
        run_dir: Option<std::path::PathBuf>,
    },
    Step(StepScalars),
    Eval(EvalResult),
    Snapshot(Box<Snapshot>),
    Checkpoint {
        step: usize,
        path: std::path::PathBuf,
        kind: &'static str,
    },
    /// Stopped early on request (Ctrl-C, app button); `last` was saved.
    Interrupted {
        step: usize,
    },
    Finished {
        step: usize,
        seconds: f64,
    },
}

/// Receives every event, in order, on the training thread: keep handlers short.
pub trait Observer {
    fn on_event(&mut self, e: &Event);
}

/// Forwards events to another thread (the desktop app). A dropped receiver is ignored.
pub struct ChannelObserver(pub Sender<Event>);

impl Observer for ChannelObserver {
    fn on_event(&mut self, e: &Event) {
        let _ = self.0.send(e.clone());
    }
}
