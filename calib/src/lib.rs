//! rawnr-calib: sensor noise calibration for rawnr.
//!
//! From dark frames (black level, read noise, row and column noise, hot pixels) and flat
//! frames at several ISOs (Poisson-Gaussian `var = k x + sigma2` per ISO and channel, then
//! `k(ISO)` linear and `sigma2(ISO)` quadratic) to a versioned JSON profile that
//! `denoise-raw --noise-profile` reads; imports from DNG NoiseProfile tags, darktable and
//! the IMX766 YAML; writes NoiseProfile tags into DNGs; plots fits.
#![warn(missing_docs)]

pub mod calibrate;
pub mod darks;
pub mod error;
pub mod estimate;
pub mod fitting;
pub mod flats;
pub mod font;
pub mod frame;
pub mod import;
pub mod plot;
pub mod profile;
pub mod report;
pub mod stats;
pub mod tag;

pub use error::CalibError;
pub use profile::Profile;
