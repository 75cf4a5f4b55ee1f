//! Converts published pretrained RAW denoisers into rawnr `.rnm` models.
//!
//! Today: PMRID (Wang et al., "Practical Deep Raw Image Denoising on Mobile Devices", ECCV 2020,
//! Apache-2.0), from the `.npz` export of its PyTorch checkpoint. See [`pmrid`].
#![warn(missing_docs)]

pub mod npz;
pub mod pmrid;

/// Errors of reading weights and building a model.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the input failed.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The archive is not a readable zip (npz).
    #[error("{path}: not a readable .npz archive: {reason}")]
    Archive {
        /// File.
        path: String,
        /// Cause.
        reason: String,
    },
    /// An array is not a little-endian float32 C-order `.npy`.
    #[error("array {name}: {reason}")]
    Npy {
        /// Array name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the architecture needs is missing.
    #[error("missing tensor {0}")]
    Missing(String),
    /// A tensor has an unexpected shape.
    #[error("tensor {name} has shape {got:?}, expected {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape found.
        got: Vec<usize>,
        /// Shape expected.
        expected: Vec<usize>,
    },
    /// The assembled model failed validation.
    #[error("model: {0}")]
    Model(#[from] rawnr_core::Error),
}
