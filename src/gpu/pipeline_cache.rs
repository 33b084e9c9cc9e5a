//! wgpu's pipeline cache persisted on disk, so a second process skips the driver's shader
//! compilation (where the backend supports `Features::PIPELINE_CACHE`: Vulkan).
//!
//! The file is `<cache dir>/pipelines-<wgpu's adapter key>.bin`: an 8-byte length, an 8-byte
//! FNV-1a checksum, then the driver's blob. Driver blobs are trusted by the driver, so a file
//! whose length or checksum does not match is ignored rather than handed over.
//! `ADVSEG_PIPELINE_CACHE=off` disables it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// advseg's cache directory: `ADVSEG_CACHE_DIR`, else `$XDG_CACHE_HOME/advseg`, else
/// `~/.cache/advseg`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ADVSEG_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("advseg"))
}

/// FNV-1a, 64 bit: a cheap integrity check, not a security boundary.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

pub(super) struct DiskCache {
    pub cache: wgpu::PipelineCache,
    path: PathBuf,
    dirty: AtomicBool,
}

fn read_blob(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let len = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?) as usize;
    let sum = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    let blob = bytes.get(16..)?;
    (blob.len() == len && fnv1a(blob) == sum).then(|| blob.to_vec())
}

impl DiskCache {
    /// Opens (or starts) the cache of this adapter; `None` where unsupported or disabled.
    pub fn open(device: &wgpu::Device, info: &wgpu::AdapterInfo) -> Option<DiskCache> {
        if matches!(
            std::env::var("ADVSEG_PIPELINE_CACHE").as_deref(),
            Ok("off") | Ok("0")
        ) || !device.features().contains(wgpu::Features::PIPELINE_CACHE)
        {
            return None;
        }
        let key = wgpu::util::pipeline_cache_key(info)?;
        let path = cache_dir()?.join(format!("pipelines-{key}.bin"));
        let data = read_blob(&path);
        // SAFETY: the data is exactly what an earlier `get_data` returned for this adapter key
        // (length and checksum verified); `fallback` makes wgpu start empty if the driver
        // rejects it.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("advseg pipeline cache"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        Some(DiskCache {
            cache,
            path,
            dirty: AtomicBool::new(false),
        })
    }

    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the cache if pipelines were added since the last save (atomically; errors are
    /// ignored: the cache only saves time).
    pub fn save_if_dirty(&self) {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let Some(blob) = self.cache.get_data() else {
            return;
        };
        let Some(dir) = self.path.parent() else {
            return;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let mut bytes = Vec::with_capacity(blob.len() + 16);
        bytes.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&fnv1a(&blob).to_le_bytes());
        bytes.extend_from_slice(&blob);
        let tmp = dir.join(format!(".pipelines.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, &bytes).is_err() || std::fs::rename(&tmp, &self.path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_blobs_are_ignored() {
        let dir = std::env::temp_dir().join(format!("advseg_pcache_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.bin");
        let blob = b"driver data".to_vec();
        let mut bytes = (blob.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&fnv1a(&blob).to_le_bytes());
        bytes.extend_from_slice(&blob);
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_blob(&p), Some(blob));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_blob(&p), None);
        std::fs::write(&p, &bytes[..10]).unwrap();
        assert_eq!(read_blob(&p), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
