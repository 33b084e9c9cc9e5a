//! "Browse…" buttons: a native file dialog (rfd through the xdg-desktop-portal on Linux, no
//! GTK) runs on its own thread and its answer is applied to the path field it was opened
//! for. The dialog cannot be driven in tests, so the picker is replaceable and what a picked
//! path does to a field ([`apply`]) is a plain function.

use super::state::UiState;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};

/// The path fields that have a "Browse…" button.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathField {
    /// The dataset directory inside the `data` spec (`camvid:PATH`, ...).
    Data,
    RunDir,
    Config,
    Checkpoint,
    Image,
    ExportDir,
}

/// What the dialog is asked for.
#[derive(Clone, Debug)]
pub struct Request {
    pub field: PathField,
    pub folder: bool,
    pub title: &'static str,
    pub filters: Vec<(&'static str, &'static [&'static str])>,
    pub start: Option<PathBuf>,
}

pub type Picker = dyn Fn(Request) -> Option<PathBuf> + Send + Sync;

/// The native dialog. Where no portal answers (no D-Bus session), it returns `None`.
pub fn native_picker(r: Request) -> Option<PathBuf> {
    let mut d = rfd::FileDialog::new().set_title(r.title);
    if let Some(s) = &r.start {
        d = d.set_directory(s);
    }
    for (name, ext) in &r.filters {
        d = d.add_filter(*name, ext);
    }
    if r.folder {
        d.pick_folder()
    } else {
        d.pick_file()
    }
}

/// The dataset path inside a `data` spec, if it has one.
fn data_path(spec: &str) -> Option<&str> {
    match spec.split_once(':') {
        Some((k, p)) if k != "synthetic" && !p.is_empty() => Some(p),
        _ => None,
    }
}

/// The field's current text (the dialog starts there).
pub fn current(field: PathField, st: &UiState) -> String {
    let data = || {
        st.fields
            .get(&st.method)
            .and_then(|f| f.get("data"))
            .cloned()
            .unwrap_or_default()
    };
    match field {
        PathField::Data => data_path(&data()).unwrap_or("").to_string(),
        PathField::RunDir => st.run_dir.clone(),
        PathField::Config => st.config_path.clone(),
        PathField::Checkpoint => st.checkpoint.clone(),
        PathField::Image => st.image.clone(),
        PathField::ExportDir => st.export_dir.clone(),
    }
}

pub fn request(field: PathField, st: &UiState) -> Request {
    use PathField::*;
    let (folder, title, filters): (
        bool,
        &'static str,
        Vec<(&'static str, &'static [&'static str])>,
    ) = match field {
        Data => (true, "Dataset folder", vec![]),
        RunDir => (true, "Run directory", vec![]),
        ExportDir => (true, "Export folder", vec![]),
        Config => (false, "Run config", vec![("TOML run config", &["toml"])]),
        Checkpoint => (false, "Checkpoint", vec![("safetensors", &["safetensors"])]),
        Image => (false, "Image", vec![("images", &["png", "jpg", "jpeg"])]),
    };
    let cur = PathBuf::from(current(field, st).trim());
    // A file field starts in the file's folder; a folder field in the folder itself.
    let start = if folder && cur.is_dir() {
        Some(cur)
    } else {
        cur.parent().filter(|p| p.is_dir()).map(Path::to_path_buf)
    };
    Request {
        field,
        folder,
        title,
        filters,
        start,
    }
}

/// The dataset kind a folder looks like, by the layouts' marker files.
pub fn guess_kind(dir: &Path) -> &'static str {
    if dir.join("leftImg8bit").is_dir() {
        "cityscapes"
    } else if dir.join("JPEGImages").is_dir() {
        "voc"
    } else if dir.join("train.txt").is_file() && dir.join("train").join("images").is_dir() {
        "camvid"
    } else {
        "folder"
    }
}

/// Puts a picked path into its field. The dataset keeps its kind when the spec already had a
/// path kind (`camvid:OLD` → `camvid:NEW`); otherwise the kind is guessed from the folder.
pub fn apply(field: PathField, st: &mut UiState, picked: &Path) {
    let p = picked.display().to_string();
    match field {
        PathField::Data => {
            let f = st.fields.entry(st.method.clone()).or_default();
            let old = f.get("data").cloned().unwrap_or_default();
            let kind = match old.split_once(':') {
                Some((k, _)) if k != "synthetic" => k.to_string(),
                _ => guess_kind(picked).to_string(),
            };
            f.insert("data".into(), format!("{kind}:{p}"));
        }
        PathField::RunDir => st.run_dir = p,
        PathField::Config => st.config_path = p,
        PathField::Checkpoint => st.checkpoint = p,
        PathField::Image => st.image = p,
        PathField::ExportDir => st.export_dir = p,
    }
}

/// At most one dialog at a time; its answer arrives through [`Browse::poll`].
pub struct Browse {
    pub picker: std::sync::Arc<Picker>,
    pending: Option<(PathField, Receiver<Option<PathBuf>>)>,
}

impl Default for Browse {
    fn default() -> Self {
        Browse {
            picker: std::sync::Arc::new(native_picker),
            pending: None,
        }
    }
}

impl Browse {
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Opens the dialog for `field` off the UI thread (a portal dialog blocks its caller).
    pub fn open(&mut self, field: PathField, st: &UiState, wake: Option<egui::Context>) {
        if self.busy() {
            return;
        }
        let (tx, rx) = channel();
        let req = request(field, st);
        let picker = self.picker.clone();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| picker(req)));
            let _ = tx.send(r.ok().flatten());
            if let Some(c) = wake {
                c.request_repaint();
            }
        });
        self.pending = Some((field, rx));
    }

    /// Applies a finished dialog's answer; returns a log line.
    pub fn poll(&mut self, st: &mut UiState) -> Option<String> {
        let (field, rx) = self.pending.as_ref()?;
        let field = *field;
        let r = match rx.try_recv() {
            Ok(r) => r,
            Err(std::sync::mpsc::TryRecvError::Empty) => return None,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
        };
        self.pending = None;
        Some(match r {
            Some(p) => {
                apply(field, st, &p);
                format!("{field:?}: {}", p.display())
            }
            None => format!(
                "{field:?}: no path chosen (the dialog needs xdg-desktop-portal; \
                 the text field still works)"
            ),
        })
    }
}

/// A "Browse…" button; true when clicked.
pub fn button(ui: &mut egui::Ui, field: PathField, enabled: bool) -> bool {
    ui.add_enabled(enabled, egui::Button::new("Browse…").small())
        .on_hover_text(format!("choose the {field:?} path in a file dialog"))
        .clicked()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keeps_its_kind_or_guesses_it() {
        let mut st = UiState::default();
        let set = |st: &mut UiState, v: &str| {
            st.fields
                .entry(st.method.clone())
                .or_default()
                .insert("data".into(), v.into());
        };
        let get = |st: &UiState| st.fields[&st.method]["data"].clone();
        set(&mut st, "camvid:/old/camvid");
        assert_eq!(current(PathField::Data, &st), "/old/camvid");
        apply(PathField::Data, &mut st, Path::new("/new/place"));
        assert_eq!(get(&st), "camvid:/new/place");
        set(&mut st, "synthetic:size=48");
        assert_eq!(current(PathField::Data, &st), "");
        let d = std::env::temp_dir().join(format!("advseg_browse_{}", std::process::id()));
        std::fs::create_dir_all(d.join("JPEGImages")).unwrap();
        apply(PathField::Data, &mut st, &d);
        assert_eq!(get(&st), format!("voc:{}", d.display()));
        let r = request(PathField::Data, &st);
        assert!(r.folder);
        assert_eq!(r.start.as_deref(), Some(d.as_path()));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn file_fields_start_in_their_folder() {
        let mut st = UiState::default();
        let d = std::env::temp_dir();
        apply(PathField::Checkpoint, &mut st, &d.join("x.safetensors"));
        assert_eq!(st.checkpoint, d.join("x.safetensors").display().to_string());
        let r = request(PathField::Checkpoint, &st);
        assert!(!r.folder && r.filters[0].1 == ["safetensors"]);
        assert_eq!(r.start.as_deref(), Some(d.as_path()));
    }
}
