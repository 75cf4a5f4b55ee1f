//! rawnr file IO (std): reading and writing raw Bayer frames (DNG, PGM), noise profile files
//! and previews.
//!
//! Everything written goes to a temporary file in the target folder, is synced, then renamed
//! over the target: an output appears whole or not at all.
#![warn(missing_docs)]

pub mod atomic;
pub mod dng;
pub mod pgm;
pub mod preview;
pub mod profile;
pub mod tiff_check;

/// Errors of rawnr-io, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The operating system refused (missing file, permissions, full disk...).
    #[error("{path}: {source}")]
    Os {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file's content is not what the format requires.
    #[error("{path}: {reason}")]
    Format {
        /// File.
        path: String,
        /// What is wrong.
        reason: String,
    },
}
