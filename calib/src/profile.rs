//! The calibration's profile file: the noise curves of [`rawnr_io::profile::NoiseProfile`] (the
//! one definition of what `denoise-raw --noise-profile` reads) plus the calibration records:
//! the fit, the per-ISO measurements and the dark-frame analyses. See `calib/README.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::darks::DarkReport;
use crate::error::CalibError;

pub use rawnr_io::profile::{ChannelCurves, Curve, NoiseProfile, FORMAT, UNITS, VERSION};

/// The fit of one channel group at one ISO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelPoint {
    /// Shot-noise gain k at this ISO.
    pub k: f64,
    /// Read-noise variance sigma2 at this ISO.
    pub sigma2: f64,
    /// Standard error of `k` (absent for imported values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_se: Option<f64>,
    /// Standard error of `sigma2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma2_se: Option<f64>,
    /// Mean-variance cells used by the fit.
    #[serde(default)]
    pub cells: usize,
    /// Cells rejected as outliers.
    #[serde(default)]
    pub rejected: usize,
    /// Chi-square per degree of freedom of the line fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi2_dof: Option<f64>,
    /// `(curve - point) / point` for k: how far the ISO curve is from this point.
    #[serde(default)]
    pub k_curve_residual: f64,
    /// `(curve - point) / point` for sigma2.
    #[serde(default)]
    pub sigma2_curve_residual: f64,
    /// Binned mean-variance samples `[x, var, dof]` (for plots).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<[f64; 3]>,
}

impl ChannelPoint {
    /// A point with only `k` and `sigma2` (imports).
    pub fn bare(k: f64, sigma2: f64) -> Self {
        ChannelPoint {
            k,
            sigma2,
            k_se: None,
            sigma2_se: None,
            cells: 0,
            rejected: 0,
            chi2_dof: None,
            k_curve_residual: 0.0,
            sigma2_curve_residual: 0.0,
            samples: Vec::new(),
        }
    }
}

/// Everything measured at one ISO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoPoint {
    /// ISO.
    pub iso: f64,
    /// All channels pooled: the source of the top-level curves.
    pub all: ChannelPoint,
    /// Red.
    pub r: ChannelPoint,
    /// Green (Gr and Gb pooled).
    pub g: ChannelPoint,
    /// Blue.
    pub b: ChannelPoint,
    /// Frames used.
    #[serde(default)]
    pub frames: usize,
    /// Temporal row-noise variance (normalised) of R, G, B, measured in the flats and
    /// excluded from `sigma2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_noise_var: Option<[f64; 3]>,
}

/// How the curves were fitted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FitInfo {
    /// Degree of k(ISO).
    pub k_degree: usize,
    /// Degree of sigma2(ISO).
    pub sigma2_degree: usize,
    /// Weighting of the fits over ISO.
    pub iso_weighting: String,
    /// The per-ISO estimator.
    #[serde(default)]
    pub estimator: String,
    /// RMS over ISOs of the pooled curves' relative residual in k.
    pub k_rms_residual: f64,
    /// RMS over ISOs of the pooled curves' relative residual in sigma2.
    pub sigma2_rms_residual: f64,
    /// Fallbacks and warnings.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A noise profile file as `rawnr-calib` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The noise curves (the fields every reader uses).
    #[serde(flatten)]
    pub noise: NoiseProfile,
    /// How the curves were fitted.
    #[serde(default)]
    pub fit: FitInfo,
    /// The per-ISO measurements.
    #[serde(default)]
    pub points: Vec<IsoPoint>,
    /// The analyses of the dark-frame sets, when dark frames were given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub darks: Vec<DarkReport>,
}

impl Profile {
    /// Parses and checks a profile (`path` names the file in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Profile, CalibError> {
        let p: Profile = serde_json::from_str(text).map_err(|e| {
            CalibError::input(
                path,
                rawnr_io::profile::ProfileError::Syntax(e.to_string()).to_string(),
            )
        })?;
        p.noise
            .check()
            .map_err(|e| CalibError::input(path, e.to_string()))?;
        Ok(p)
    }

    /// Reads a profile file.
    pub fn read(path: &Path) -> Result<Profile, CalibError> {
        Profile::parse(&rawnr_io::profile::read_bounded(path)?, path)
    }

    /// Writes the profile as pretty JSON, atomically; an existing file needs `overwrite`.
    pub fn write(&self, path: &Path, overwrite: bool) -> Result<(), CalibError> {
        check_output(path, overwrite)?;
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CalibError::input(path, format!("cannot encode the profile: {e}")))?;
        rawnr_io::atomic::write_atomic(path, |w| {
            w.write_all(text.as_bytes())?;
            w.write_all(b"\n")
        })?;
        Ok(())
    }
}

/// Refuses an existing output file unless `overwrite`.
pub fn check_output(path: &Path, overwrite: bool) -> Result<(), CalibError> {
    if !overwrite && path.exists() {
        return Err(CalibError::input(
            path,
            "output exists (pass --overwrite to replace it)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_cli_profile_reads_and_bad_ones_fail() {
        let p = Path::new("p.json");
        let min = r#"{"format": "rawnr-noise-profile", "version": 1, "k": [1e-6, 0.001], "sigma2": [0, 1e-9, 1e-6]}"#;
        let prof = Profile::parse(min, p).unwrap();
        assert_eq!(prof.noise.dng_pairs(100.0).unwrap().len(), 1);
        assert!(prof.points.is_empty());
        assert!(Profile::parse(&min.replace("\"version\": 1", "\"version\": 2"), p).is_err());
        assert!(Profile::parse(&min.replace("rawnr-noise-profile", "other"), p).is_err());
        assert!(Profile::parse("{", p).is_err());
        let e = Profile::parse(r#"{"format": "rawnr-noise-profile", "version": 1}"#, p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.json: not a noise profile"), "{e}");
    }
}
