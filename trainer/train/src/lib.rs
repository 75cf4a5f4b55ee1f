//! rawnr's trainer: denoisers trained with [burn](https://burn.dev) on pairs made on the fly from
//! clean raw and a calibrated noise profile, exported to `.rnm` for the runtime.
//!
//! One file per concern, as burn's examples lay it out:
//! - [`config`]: the training configuration (saved beside the weights of every run);
//! - [`data`]: clean sources (dead leaves, raw folders, noisy/clean pairs), Bayer-safe crops and
//!   flips, Poisson-Gaussian noise from a profile, the k-sigma mapping the runtime applies, and a
//!   background loader;
//! - [`model`]: the model families (PMRID-style, UNet), each a burn `Module` with its `Config`,
//!   receptive field, MAC count and export to `.rnm`;
//! - [`loss`]: L1, Charbonnier and MS-SSIM;
//! - [`training`]: the loop (AdamW, warm-up + cosine schedule, gradient clipping, checkpoints,
//!   resume, validation per ISO, metrics CSV); a run can start from the published PMRID
//!   weights (`run.init`) to fine-tune them to a new sensor.
#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod loss;
pub mod model;
pub mod training;

/// Errors of the trainer.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A raw frame, profile or weight file could not be read.
    #[error("{0}")]
    Input(String),
    /// Saving or loading weights or optimizer state failed.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// File.
        path: String,
        /// Cause.
        reason: String,
    },
    /// Building the `.rnm` failed.
    #[error("export: {0}")]
    Export(#[from] rawnr_core::Error),
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
