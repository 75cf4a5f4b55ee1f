//! The error type of rawnr-calib: every message is one line naming the file (or the option)
//! and the reason.

use std::path::Path;

/// Errors of the calibration tool.
#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    /// Reading or writing a raw frame failed (the message names the file).
    #[error(transparent)]
    Io(#[from] rawnr_io::IoError),
    /// A file's content is unusable for calibration.
    #[error("{path}: {reason}")]
    Input {
        /// File.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Bad command-line options.
    #[error("{0}")]
    Usage(String),
    /// The data do not allow a fit.
    #[error("{0}")]
    Fit(String),
}

impl CalibError {
    /// An [`CalibError::Input`] error for `path`.
    pub fn input(path: &Path, reason: impl Into<String>) -> Self {
        CalibError::Input {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}
