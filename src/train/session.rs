//! One run setup for every front end (`advseg train`, the desktop app): where the run
//! continues from (`--resume auto|PATH`, the app's "Resume run dir"), whether the run
//! directory may be written, the starting config (the checkpoint's own, else the method's
//! defaults), and the trainer with its run-directory observer attached. The checkpoint is
//! read once here and handed to the trainer.

use super::checkpoint::Checkpoint;
use super::config::RunConfig;
use super::error::Result;
use super::error::TrainError;
use super::event::Observer;
use super::rundir::RunDirWriter;
use super::trainer::{check_resume, Trainer, TrainerOptions};
use crate::error::Error;
use crate::gpu::Gpu;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The file a run directory's latest checkpoint lives in.
pub const LAST: &str = "last.safetensors";

/// Where a run continues from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResumeFrom {
    /// A new run: the run directory must not hold one.
    Fresh,
    /// The run directory's `last` checkpoint if there is one, else a new run.
    Auto,
    /// This checkpoint, or a run directory's `last` checkpoint.
    Path(PathBuf),
}

impl ResumeFrom {
    /// `--resume`'s value: absent, `auto` or a path.
    pub fn from_flag(v: Option<&str>) -> ResumeFrom {
        match v {
            None => ResumeFrom::Fresh,
            Some("auto") => ResumeFrom::Auto,
            Some(p) => ResumeFrom::Path(PathBuf::from(p)),
        }
    }

    /// The checkpoint to read, if any.
    fn resolve(&self, run_dir: Option<&Path>) -> Option<PathBuf> {
        match self {
            ResumeFrom::Fresh => None,
            ResumeFrom::Auto => run_dir.map(|d| d.join(LAST)).filter(|p| p.exists()),
            ResumeFrom::Path(p) if p.is_dir() => Some(p.join(LAST)),
            ResumeFrom::Path(p) => Some(p.clone()),
        }
    }
}

/// A run about to start: config, run directory, the checkpoint it continues (read once).
pub struct RunSession {
    cfg: RunConfig,
    run_dir: Option<PathBuf>,
    resume: Option<(PathBuf, Checkpoint)>,
    load_from: Option<PathBuf>,
    stop: Option<Arc<AtomicBool>>,
    pause: Option<Arc<AtomicBool>>,
}

impl RunSession {
    /// Resolves `resume` against `run_dir`, refuses a run directory that already holds a run
    /// unless it is being continued, and starts from the checkpoint's config (its method must
    /// be `method` when one is given) or from `method`'s defaults (`default_method` without).
    pub fn open(
        method: Option<&str>,
        default_method: &str,
        run_dir: Option<PathBuf>,
        resume: &ResumeFrom,
    ) -> Result<RunSession> {
        let resume = match resume.resolve(run_dir.as_deref()) {
            Some(p) => {
                let ck = Checkpoint::read(&p)?;
                if let Some(m) = method.filter(|m| **m != ck.meta.method) {
                    return Err(TrainError::checkpoint(
                        &p,
                        format!(
                            "checkpoint of method {:?}, not --method {m:?}",
                            ck.meta.method
                        ),
                    ));
                }
                Some((p, ck))
            }
            None => None,
        };
        Self::check_dir(run_dir.as_deref(), resume.is_some())?;
        let cfg = match &resume {
            Some((p, ck)) => RunConfig::from_toml(&ck.meta.config_toml, p)?,
            None => RunConfig::new(method.unwrap_or(default_method))?,
        };
        Ok(RunSession {
            cfg,
            run_dir,
            resume,
            load_from: None,
            stop: None,
            pause: None,
        })
    }

    /// A new run with a config built elsewhere (the app's setup panel).
    pub fn fresh(cfg: RunConfig, run_dir: Option<PathBuf>) -> Result<RunSession> {
        Self::check_dir(run_dir.as_deref(), false)?;
        Ok(RunSession {
            cfg,
            run_dir,
            resume: None,
            load_from: None,
            stop: None,
            pause: None,
        })
    }

    fn check_dir(dir: Option<&Path>, resuming: bool) -> Result<()> {
        match dir {
            Some(d) if !resuming && d.join(LAST).exists() => Err(TrainError::RunDirTaken {
                dir: d.to_path_buf(),
            }),
            _ => Ok(()),
        }
    }

    pub fn config(&self) -> &RunConfig {
        &self.cfg
    }

    /// For the front end's own settings (config file, flags, `--set`) on top of the start.
    pub fn config_mut(&mut self) -> &mut RunConfig {
        &mut self.cfg
    }

    pub fn run_dir(&self) -> Option<&Path> {
        self.run_dir.as_deref()
    }

    /// The checkpoint's step when the run continues one.
    pub fn resume_step(&self) -> Option<usize> {
        self.resume.as_ref().map(|(_, ck)| ck.meta.step)
    }

    pub fn resume_path(&self) -> Option<&Path> {
        self.resume.as_ref().map(|(p, _)| p.as_path())
    }

    /// Initialise the segmentation network from weights (`--load-from`).
    pub fn load_from(mut self, p: Option<PathBuf>) -> Self {
        self.load_from = p;
        self
    }

    /// Stop after the current step when set (Ctrl-C, the app's Stop).
    pub fn stop_flag(mut self, f: Arc<AtomicBool>) -> Self {
        self.stop = Some(f);
        self
    }

    /// Wait between steps while set (the app's Pause).
    pub fn pause_flag(mut self, f: Arc<AtomicBool>) -> Self {
        self.pause = Some(f);
        self
    }

    /// Validates the (possibly changed) config, also against the checkpoint it continues.
    pub fn validate(&self) -> Result<()> {
        self.cfg.validate()?;
        if let Some((p, ck)) = &self.resume {
            check_resume(&self.cfg, &ck.meta, p)?;
        }
        Ok(())
    }

    /// Builds the trainer (checkpoint loaded, run directory prepared) and attaches the run
    /// directory writer, then `observers` in order.
    pub fn start(self, gpu: &Arc<Gpu>, observers: Vec<Box<dyn Observer>>) -> Result<Trainer> {
        self.validate()?;
        let log_every = self.cfg.common.log_every;
        let resume_step = self.resume_step();
        let (resume, ck) = match self.resume {
            Some((p, ck)) => (Some(p), Some(ck)),
            None => (None, None),
        };
        let mut t = Trainer::with_checkpoint(
            gpu,
            self.cfg,
            TrainerOptions {
                run_dir: self.run_dir.clone(),
                resume,
                load_from: self.load_from,
                stop: self.stop,
            },
            ck,
        )?;
        if let Some(p) = self.pause {
            t.set_pause(p);
        }
        if let Some(d) = &self.run_dir {
            let w = RunDirWriter::new(d, log_every, resume_step).map_err(|e| Error::File {
                path: d.clone(),
                why: format!("run directory: {e}"),
            })?;
            t.add_observer(Box::new(w));
        }
        for o in observers {
            t.add_observer(o);
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_resolution() {
        let dir = std::env::temp_dir().join(format!("advseg_session_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(ResumeFrom::from_flag(None), ResumeFrom::Fresh);
        assert_eq!(ResumeFrom::Auto.resolve(Some(&dir)), None);
        let f = ResumeFrom::from_flag(Some(dir.to_str().unwrap()));
        assert_eq!(f.resolve(None), Some(dir.join(LAST)));
        std::fs::write(dir.join(LAST), b"x").unwrap();
        assert_eq!(ResumeFrom::Auto.resolve(Some(&dir)), Some(dir.join(LAST)));
        // A taken run directory is refused for a new run, by name.
        let e = RunSession::open(
            Some("supervised"),
            "advsemi",
            Some(dir.clone()),
            &ResumeFrom::Fresh,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("already holds a run"), "{e}");
        // The broken checkpoint is named when continuing.
        let e = RunSession::open(None, "advsemi", Some(dir.clone()), &ResumeFrom::Auto)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(LAST), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
