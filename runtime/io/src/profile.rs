//! The noise profile file: the one definition of the JSON that `rawnr-calib` writes and
//! `denoise-raw --noise-profile` reads. Curves of the Poisson-Gaussian model in normalised
//! units (signal in [0, 1] after black subtraction and white scaling):
//!
//! ```json
//! { "format": "rawnr-noise-profile", "version": 1, "sensor": "IMX766",
//!   "k": [slope, intercept], "sigma2": [a, b, c],
//!   "channels": { "r": {"k": [..], "sigma2": [..]}, "g": {..}, "b": {..} } }
//! ```
//!
//! `k(ISO) = slope * ISO + intercept`, `sigma2(ISO) = a * ISO^2 + b * ISO + c`. Calibration
//! records (fits, per-ISO points, dark-frame analyses) are fields of the same file that
//! `rawnr-calib` adds beside these and readers here ignore.
//!
//! Reading is bounded: a profile file over [`MAX_FILE_BYTES`] is refused before it is read,
//! coefficients must be finite, and the parameters a curve gives at an ISO are checked by
//! [`NoiseParams::validate`] when they are evaluated.

use std::path::Path;

use rawnr_core::noise::{ChannelNoise, NoiseCurves, NoiseParams, RgbNoiseCurves};
use serde::{Deserialize, Serialize};

use crate::IoError;

/// The `format` field.
pub const FORMAT: &str = "rawnr-noise-profile";
/// The `version` field written and read.
pub const VERSION: u32 = 1;
/// The `units` field.
pub const UNITS: &str = "normalised: x = (raw - black) / (white - black); var = k x + sigma2";
/// Largest profile file read (calibration records with plot samples stay far below it).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a profile's text was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// Not JSON of the profile's shape.
    #[error("not a noise profile: {0}")]
    Syntax(String),
    /// The `format` field names another format.
    #[error("format must be \"{FORMAT}\", not \"{0}\"")]
    Format(String),
    /// A `version` this reader does not know.
    #[error("unsupported profile version {0} (this reader reads {VERSION})")]
    Version(u32),
    /// A coefficient is NaN or infinite.
    #[error("curve coefficients must be finite")]
    NotFinite,
}

/// `k(ISO) = k[0] ISO + k[1]`, `sigma2(ISO) = sigma2[0] ISO^2 + sigma2[1] ISO + sigma2[2]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Slope and intercept of k(ISO).
    pub k: [f64; 2],
    /// Coefficients of sigma2(ISO), highest power first.
    pub sigma2: [f64; 3],
}

impl Curve {
    /// `(k, sigma2)` at `iso`, unchecked and in f64 (fits and reports).
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
    /// Whether every coefficient is finite.
    pub fn is_finite(&self) -> bool {
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

/// The noise curves of a profile file and what they were measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseProfile {
    /// Always [`FORMAT`] (a file without it reads as this format).
    #[serde(default = "default_format")]
    pub format: String,
    /// Always [`VERSION`] (a file without it reads as this version).
    #[serde(default = "default_version")]
    pub version: u32,
    /// Sensor or camera name.
    #[serde(default)]
    pub sensor: String,
    /// Where the numbers come from: "calibration", "dng", "darktable", "imx766-yaml".
    #[serde(default)]
    pub source: String,
    /// Always [`UNITS`] when written by rawnr.
    #[serde(default)]
    pub units: String,
    /// Pooled k(ISO): slope, intercept.
    pub k: [f64; 2],
    /// Pooled sigma2(ISO): a, b, c.
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
}

impl NoiseProfile {
    /// Parses and checks a profile's JSON text.
    pub fn parse(text: &str) -> Result<NoiseProfile, ProfileError> {
        let p: NoiseProfile =
            serde_json::from_str(text).map_err(|e| ProfileError::Syntax(e.to_string()))?;
        p.check()?;
        Ok(p)
    }

    /// Checks the format, version and coefficients (what [`NoiseProfile::parse`] checks).
    pub fn check(&self) -> Result<(), ProfileError> {
        if self.format != FORMAT {
            return Err(ProfileError::Format(self.format.clone()));
        }
        if self.version != VERSION {
            return Err(ProfileError::Version(self.version));
        }
        let channels_ok = self
            .channels
            .as_ref()
            .is_none_or(|c| c.r.is_finite() && c.g.is_finite() && c.b.is_finite());
        if !self.pooled().is_finite() || !channels_ok {
            return Err(ProfileError::NotFinite);
        }
        Ok(())
    }

    /// Reads a profile file (at most [`MAX_FILE_BYTES`]).
    pub fn read(path: &Path) -> Result<NoiseProfile, IoError> {
        let text = read_bounded(path)?;
        NoiseProfile::parse(&text).map_err(|e| IoError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

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

    /// Pooled parameters at `iso`, checked.
    pub fn at(&self, iso: f32) -> Result<NoiseParams, rawnr_core::Error> {
        self.pooled().to_core().at(iso)?.validate()
    }

    /// Parameters per CFA channel at `iso`, checked: the channel curves where the file has
    /// them, else the pooled curve on every channel.
    pub fn channel_noise_at(&self, iso: f32) -> Result<ChannelNoise, rawnr_core::Error> {
        let n = match &self.channels {
            Some(_) => ChannelNoise::from_rgb(self.rgb_curves().at(iso)?),
            None => self.pooled().to_core().at(iso)?.into(),
        };
        n.validate()
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
}

fn default_format() -> String {
    FORMAT.into()
}

fn default_version() -> u32 {
    VERSION
}

/// Reads a text file of at most [`MAX_FILE_BYTES`] (the size is checked before reading).
pub fn read_bounded(path: &Path) -> Result<String, IoError> {
    let os = |source| IoError::Os {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(os)?.len();
    if len > MAX_FILE_BYTES {
        return Err(IoError::Format {
            path: path.display().to_string(),
            reason: format!("{len} bytes: a noise profile is at most {MAX_FILE_BYTES} bytes"),
        });
    }
    std::fs::read_to_string(path).map_err(os)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"{"format": "rawnr-noise-profile", "version": 1, "k": [1e-6, 0.001], "sigma2": [0, 1e-9, 1e-6]}"#;

    #[test]
    fn minimal_profile_reads() {
        let p = NoiseProfile::parse(MIN).unwrap();
        assert_eq!(p.dng_pairs(100.0).unwrap().len(), 1);
        let n = p.channel_noise_at(100.0).unwrap();
        assert!((n.0[0].k - 1.1e-3).abs() < 1e-9);
        assert_eq!(n.0[0], n.0[3]);
    }

    #[test]
    fn bad_profiles_get_typed_errors() {
        let v2 = MIN.replace("\"version\": 1", "\"version\": 2");
        assert_eq!(NoiseProfile::parse(&v2), Err(ProfileError::Version(2)));
        let other = MIN.replace("rawnr-noise-profile", "other");
        assert_eq!(
            NoiseProfile::parse(&other),
            Err(ProfileError::Format("other".into()))
        );
        assert!(matches!(
            NoiseProfile::parse("{"),
            Err(ProfileError::Syntax(_))
        ));
        assert!(matches!(
            NoiseProfile::parse(r#"{"format": "rawnr-noise-profile", "version": 1}"#),
            Err(ProfileError::Syntax(_))
        ));
        // Format and version may be left out; then the curves alone make a profile.
        assert!(NoiseProfile::parse(r#"{"k": [0, 1e-3], "sigma2": [0, 0, 1e-6]}"#).is_ok());
        // JSON has no NaN or infinity (1e400 is a syntax error); values set in code are checked.
        let inf = MIN.replace("0.001", "1e400");
        assert!(matches!(
            NoiseProfile::parse(&inf),
            Err(ProfileError::Syntax(_))
        ));
        let mut p = NoiseProfile::parse(MIN).unwrap();
        p.sigma2[1] = f64::NAN;
        assert_eq!(p.check(), Err(ProfileError::NotFinite));
    }

    #[test]
    fn out_of_range_parameters_fail_when_evaluated() {
        for (k, s) in [
            ("-0.001", "1e-6"),
            ("1e30", "1e-6"),
            ("1e-45", "1e-6"),
            ("0.001", "1e30"),
        ] {
            let text = MIN
                .replace("[1e-6, 0.001]", &format!("[0, {k}]"))
                .replace("[0, 1e-9, 1e-6]", &format!("[0, 0, {s}]"));
            let p = NoiseProfile::parse(&text).unwrap();
            assert!(p.channel_noise_at(100.0).is_err(), "k {k} sigma2 {s}");
            assert!(p.at(100.0).is_err(), "k {k} sigma2 {s}");
        }
    }
}
