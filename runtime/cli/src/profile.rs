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

use rawnr_core::noise::NoiseCurves;
use serde::Deserialize;

use crate::CliError;

#[derive(Deserialize)]
struct ProfileFile {
    format: Option<String>,
    version: Option<u32>,
    k: [f32; 2],
    sigma2: [f32; 3],
}

/// Reads a noise profile file.
pub fn read(path: &Path) -> Result<NoiseCurves, CliError> {
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
    if p.k.iter().chain(&p.sigma2).any(|x| !x.is_finite()) {
        return Err(err("coefficients must be finite".into()));
    }
    Ok(NoiseCurves {
        k: p.k,
        sigma2: p.sigma2,
    })
}
