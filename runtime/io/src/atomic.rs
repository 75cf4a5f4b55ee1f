//! Whole-or-nothing file writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::IoError;

fn os(path: &Path) -> impl Fn(std::io::Error) -> IoError + '_ {
    move |source| IoError::Os {
        path: path.display().to_string(),
        source,
    }
}

/// Writes a file through `fill` into a temporary sibling of `path`, syncs it and renames it
/// onto `path`. On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), IoError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(os(path))?;
        let mut w = std::io::BufWriter::new(file);
        fill(&mut w).map_err(os(path))?;
        let file = w.into_inner().map_err(|e| os(path)(e.into_error()))?;
        file.sync_all().map_err(os(path))?;
        std::fs::rename(&tmp, path).map_err(os(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
