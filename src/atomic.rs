//! Atomic file replacement and the clean-up of what interrupted writers leave behind.
//!
//! A file is written as `.NAME.tmp<PID>` beside its target, synced, then renamed over it, so a
//! reader sees the old file or the new one, never a mix. The PID in the temp name is what lets
//! a later run tell a dead writer's leftovers from a live writer's work in progress.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The temp file `path` is written through by process `pid`.
pub fn temp_path(path: &Path, pid: u32) -> PathBuf {
    path.with_file_name(format!(
        ".{}.tmp{pid}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ))
}

/// Writes `bytes` to `path` through a temp file and a rename. On any failure (disk full, a
/// rename across devices, ...) the temp file is removed before the error is returned, so a
/// failed write never leaves a full-size orphan. The error carries the path it concerns.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| (dir.to_path_buf(), e))?;
    }
    let tmp = temp_path(path, std::process::id());
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err((tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        (path.to_path_buf(), e)
    })
}

/// Whether process `pid` still exists. Where that cannot be known (no `/proc`), every process
/// counts as alive, so nothing is ever swept from under a live writer.
pub fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// The writer PID of a temp file name made by [`temp_path`], if `name` is one.
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, pid) = rest.rsplit_once(".tmp")?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes temp files of dead writers in `dir` and its subdirectories (a killed run's
/// half-written checkpoint or snapshot); returns what was removed. Unreadable entries are
/// skipped: sweeping is housekeeping and must never stop a run.
pub fn sweep_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() {
                stack.push(p);
            } else if let Some(pid) = temp_owner(&e.file_name().to_string_lossy()) {
                if !pid_alive(pid) && std::fs::remove_file(&p).is_ok() {
                    removed.push(p);
                }
            }
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_parse() {
        let p = temp_path(Path::new("/x/last.safetensors"), 42);
        assert_eq!(p, Path::new("/x/.last.safetensors.tmp42"));
        assert_eq!(temp_owner(".last.safetensors.tmp42"), Some(42));
        assert_eq!(temp_owner("last.safetensors"), None);
        assert_eq!(temp_owner(".a.tmp"), None);
        assert_eq!(temp_owner(".a.tmpx1"), None);
    }
}
