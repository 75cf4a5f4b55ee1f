//! The noise profile file: versioned JSON, a superset of what `denoise-raw --noise-profile`
//! reads (`format`, `version`, top-level `k` and `sigma2`). See `calib/README.md`.

use std::path::Path;

use rawnr_core::noise::{NoiseCurves, NoiseParams, RgbNoiseCurves};
use serde::{Deserialize, Serialize};

use crate::darks::DarkReport;
use crate::error::CalibError;

/// The `format` field.
pub const FORMAT: &str = "rawnr-noise-profile";
/// The `version` field this tool writes and reads.
pub const VERSION: u32 = 1;
/// The `units` field.
pub const UNITS: &str = "normalised: x = (raw - black) / (white - black); var = k x + sigma2";

/// `k(ISO) = k[0] ISO + k[1]`, `sigma2(ISO) = sigma2[0] ISO^2 + sigma2[1] ISO + sigma2[2]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Slope and intercept of k(ISO).
    pub k: [f64; 2],
    /// Coefficients of sigma2(ISO), highest power first.
    pub sigma2: [f64; 3],
}

impl Curve {
    /// `(k, sigma2)` at `iso`, without clamping.
    pub fn at(&self, iso: f64) -> (f64, f64) {
        (
            self.k[0] * iso + self.k[1],
            (self.sigma2[0] * iso + self.sigma2[1]) * iso + self.sigma2[2],
        )
    }
    /// The runtime's f32 form.
    pub fn to_core(&self) -> NoiseCurves {
        NoiseCurves {
            k: self.k.map(|v| v as f32),
            sigma2: self.sigma2.map(|v| v as f32),
        }
    }
    fn finite(&self) -> bool {
        self.k.iter().chain(&self.sigma2).all(|v| v.is_finite())
    }
}

/// Curves per colour channel (Gr and Gb share G).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelCurves {
    /// Red.
    pub r: Curve,
    /// Green (Gr and Gb).
    pub g: Curve,
    /// Blue.
    pub b: Curve,
}

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

/// A noise profile file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Sensor or camera name.
    #[serde(default)]
    pub sensor: String,
    /// Where the numbers come from: "calibration", "dng", "darktable", "imx766-yaml".
    #[serde(default)]
    pub source: String,
    /// Always [`UNITS`].
    #[serde(default)]
    pub units: String,
    /// Pooled k(ISO): slope, intercept (what `denoise-raw` reads).
    pub k: [f64; 2],
    /// Pooled sigma2(ISO): a, b, c (what `denoise-raw` reads).
    pub sigma2: [f64; 3],
    /// Per-channel curves; absent in minimal files, where the pooled curves apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<ChannelCurves>,
    /// Black levels R, Gr, Gb, B (DN) of the frames the profile was measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub black: Option<[f64; 4]>,
    /// White level (DN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub white: Option<f64>,
    /// CFA phase at the active area's top-left corner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfa: Option<String>,
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
    /// Pooled curves.
    pub fn pooled(&self) -> Curve {
        Curve {
            k: self.k,
            sigma2: self.sigma2,
        }
    }

    /// Per-channel curves for the runtime (the pooled ones for every channel when the file
    /// has none).
    pub fn rgb_curves(&self) -> RgbNoiseCurves {
        match &self.channels {
            Some(c) => RgbNoiseCurves {
                r: c.r.to_core(),
                g: c.g.to_core(),
                b: c.b.to_core(),
            },
            None => RgbNoiseCurves::uniform(self.pooled().to_core()),
        }
    }

    /// The DNG NoiseProfile pairs `(S, O)` at `iso`: R, G, B when the profile has channel
    /// curves, else one pair for all planes.
    pub fn dng_pairs(&self, iso: f32) -> Result<Vec<(f64, f64)>, rawnr_core::Error> {
        if self.channels.is_some() {
            Ok(self
                .rgb_curves()
                .at(iso)?
                .iter()
                .map(|p| p.to_dng_pair())
                .collect())
        } else {
            Ok(vec![self.pooled().to_core().at(iso)?.to_dng_pair()])
        }
    }

    /// Pooled parameters at `iso`, as the runtime computes them.
    pub fn at(&self, iso: f32) -> Result<NoiseParams, rawnr_core::Error> {
        self.pooled().to_core().at(iso)
    }

    /// Parses and checks a profile (`path` names the file in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Profile, CalibError> {
        let p: Profile = serde_json::from_str(text)
            .map_err(|e| CalibError::input(path, format!("not a noise profile: {e}")))?;
        if p.format != FORMAT {
            return Err(CalibError::input(
                path,
                format!("format must be \"{FORMAT}\", not \"{}\"", p.format),
            ));
        }
        if p.version != VERSION {
            return Err(CalibError::input(
                path,
                format!(
                    "unsupported profile version {} (this tool reads {VERSION})",
                    p.version
                ),
            ));
        }
        let channels_ok = p
            .channels
            .as_ref()
            .is_none_or(|c| c.r.finite() && c.g.finite() && c.b.finite());
        if !p.pooled().finite() || !channels_ok {
            return Err(CalibError::input(path, "curve coefficients must be finite"));
        }
        Ok(p)
    }

    /// Reads a profile file.
    pub fn read(path: &Path) -> Result<Profile, CalibError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| CalibError::input(path, e.to_string()))?;
        Profile::parse(&text, path)
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
        assert_eq!(prof.dng_pairs(100.0).unwrap().len(), 1);
        assert!(Profile::parse(&min.replace("\"version\": 1", "\"version\": 2"), p).is_err());
        assert!(Profile::parse(&min.replace("rawnr-noise-profile", "other"), p).is_err());
        assert!(Profile::parse("{", p).is_err());
        let e = Profile::parse(r#"{"format": "rawnr-noise-profile", "version": 1}"#, p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.json: not a noise profile"), "{e}");
    }
}
