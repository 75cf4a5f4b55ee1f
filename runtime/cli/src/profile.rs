//! Noise profile files (`--noise-profile`): JSON with the curves of the Poisson-Gaussian model
//! in normalised units (signal in [0, 1] after black subtraction and white scaling):
//!
//! ```json
//! { "format": "rawnr-noise-profile", "version": 1, "sensor": "IMX766",
//!   "k": [slope, intercept], "sigma2": [a, b, c] }
//! ```
//!
//! `k(ISO) = slope * ISO + intercept`, `sigma2(ISO) = a * ISO^2 + b * ISO + c`.

use std::path::Path;

use rawnr_core::noise::{ChannelNoise, NoiseCurves};
use serde::Deserialize;

use crate::CliError;

#[derive(Deserialize)]
struct Curve {
    k: [f32; 2],
    sigma2: [f32; 3],
}

#[derive(Deserialize)]
struct Channels {
    r: Curve,
    g: Curve,
    b: Curve,
}

#[derive(Deserialize)]
struct ProfileFile {
    format: Option<String>,
    version: Option<u32>,
    k: [f32; 2],
    sigma2: [f32; 3],
    channels: Option<Channels>,
}

/// The curves of a profile file: pooled, and per R, G, B when the file has them.
pub struct Profile {
    /// Curves pooled over the channels.
    pub pooled: NoiseCurves,
    /// Per-channel curves (R, G, B), if present.
    pub rgb: Option<[NoiseCurves; 3]>,
}

impl Profile {
    /// Per-channel parameters at `iso` (the pooled curve on every channel if the file has no
    /// per-channel curves).
    pub fn at(&self, iso: f32) -> Result<ChannelNoise, rawnr_core::Error> {
        match &self.rgb {
            Some([r, g, b]) => Ok(ChannelNoise::from_rgb([r.at(iso)?, g.at(iso)?, b.at(iso)?])),
            None => Ok(self.pooled.at(iso)?.into()),
        }
    }
}

/// Reads a noise profile file.
pub fn read(path: &Path) -> Result<Profile, CliError> {
    let err = |reason: String| CliError::Usage(format!("{}: {reason}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let p: ProfileFile =
        serde_json::from_str(&text).map_err(|e| err(format!("not a noise profile: {e}")))?;
    if p.format
        .as_deref()
        .is_some_and(|f| f != "rawnr-noise-profile")
    {
        return Err(err("format must be \"rawnr-noise-profile\"".into()));
    }
    if p.version.is_some_and(|v| v != 1) {
        return Err(err("unsupported profile version".into()));
    }
    let curve = |c: &Curve| -> Result<NoiseCurves, CliError> {
        if c.k.iter().chain(&c.sigma2).any(|x| !x.is_finite()) {
            return Err(err("coefficients must be finite".into()));
        }
        Ok(NoiseCurves {
            k: c.k,
            sigma2: c.sigma2,
        })
    };
    let pooled = curve(&Curve {
        k: p.k,
        sigma2: p.sigma2,
    })?;
    let rgb = match &p.channels {
        Some(ch) => Some([curve(&ch.r)?, curve(&ch.g)?, curve(&ch.b)?]),
        None => None,
    };
    Ok(Profile { pooled, rgb })
}
