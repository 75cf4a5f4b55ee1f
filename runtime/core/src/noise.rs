//! Poisson-Gaussian noise model and the k-sigma transform (PMRID, Wang et al., ECCV 2020).
//!
//! Units are normalised: `x = (raw - black) / (white - black)`, so a profile is independent of
//! the bit depth. The noisy signal is `y = k * Poisson(x / k) + N(0, sigma2)`, i.e.
//! `var(y | x) = k * x + sigma2`, the same form as the DNG NoiseProfile tag (`S = k`, `O = sigma2`).

use crate::error::Error;

/// Noise parameters at one ISO, normalised units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseParams {
    /// Shot-noise gain k (variance per unit of signal).
    pub k: f32,
    /// Read-noise variance sigma^2.
    pub sigma2: f32,
}

impl NoiseParams {
    /// Checks k > 0 and sigma^2 >= 0, both finite.
    pub fn validate(self) -> Result<Self, Error> {
        if !(self.k.is_finite() && self.k > 0.0) {
            return Err(Error::BadNoise(
                "shot-noise gain k must be positive and finite",
            ));
        }
        if !(self.sigma2.is_finite() && self.sigma2 >= 0.0) {
            return Err(Error::BadNoise(
                "read-noise variance must be >= 0 and finite",
            ));
        }
        // Normalised units (full range = 1): k below 1e-9 would be a full well of over 10^9
        // electrons, and either parameter above 1 a noise standard deviation above the whole
        // range. Outside these the k-sigma transform overflows f32 and every output is garbage.
        if !(NoiseParams::K_RANGE.0..=NoiseParams::K_RANGE.1).contains(&self.k) {
            return Err(Error::BadNoise(
                "shot-noise gain k outside 1e-9..=1 (normalised units: full range = 1)",
            ));
        }
        if self.sigma2 > NoiseParams::SIGMA2_MAX {
            return Err(Error::BadNoise(
                "read-noise variance above 1 (normalised units: full range = 1)",
            ));
        }
        Ok(self)
    }

    /// Accepted shot-noise gains `k` (normalised units), smallest and largest.
    pub const K_RANGE: (f32, f32) = (1e-9, 1.0);
    /// Largest accepted read-noise variance (normalised units).
    pub const SIGMA2_MAX: f32 = 1.0;
    /// Converts parameters given in raw digital numbers above black (for a sensor whose
    /// `white - black` is `range`) into normalised units.
    pub fn from_dn(k_dn: f32, sigma2_dn: f32, range: f32) -> Self {
        NoiseParams {
            k: k_dn / range,
            sigma2: sigma2_dn / (range * range),
        }
    }
}

impl NoiseParams {
    /// The DNG NoiseProfile pair `(S, O)` (same units: `S = k`, `O = sigma2`).
    pub fn to_dng_pair(self) -> (f64, f64) {
        (self.k as f64, self.sigma2 as f64)
    }
    /// Parameters from a DNG NoiseProfile pair `(S, O)`, validated.
    pub fn from_dng_pair(s: f64, o: f64) -> Result<Self, Error> {
        NoiseParams {
            k: s as f32,
            sigma2: o as f32,
        }
        .validate()
    }
}

/// Noise parameters per canonical Bayer channel (R, Gr, Gb, B). Gr and Gb normally share
/// parameters (separate ones cause maze artifacts); [`ChannelNoise::from_rgb`] makes them so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelNoise(pub [NoiseParams; 4]);

impl ChannelNoise {
    /// R, G and B parameters; both greens take G.
    pub const fn from_rgb(rgb: [NoiseParams; 3]) -> Self {
        ChannelNoise([rgb[0], rgb[1], rgb[1], rgb[2]])
    }
    /// Checks every channel.
    pub fn validate(self) -> Result<Self, Error> {
        for p in self.0 {
            p.validate()?;
        }
        Ok(self)
    }
}

impl ChannelNoise {
    /// The parameters averaged over R, Gr, Gb and B (what a model with pooled noise channels
    /// uses on every plane).
    pub fn pooled(&self) -> NoiseParams {
        let n = self.0;
        NoiseParams {
            k: (n[0].k + n[1].k + n[2].k + n[3].k) / 4.0,
            sigma2: (n[0].sigma2 + n[1].sigma2 + n[2].sigma2 + n[3].sigma2) / 4.0,
        }
    }
}

impl From<NoiseParams> for ChannelNoise {
    fn from(p: NoiseParams) -> Self {
        ChannelNoise([p; 4])
    }
}

/// Noise parameters as functions of ISO: `k(ISO) = k[0]*ISO + k[1]` (linear) and
/// `sigma2(ISO) = sigma2[0]*ISO^2 + sigma2[1]*ISO + sigma2[2]` (quadratic).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseCurves {
    /// Slope and intercept of k(ISO).
    pub k: [f32; 2],
    /// Coefficients of sigma^2(ISO), highest power first.
    pub sigma2: [f32; 3],
}

impl NoiseCurves {
    /// Parameters at `iso`. A read-noise variance that the quadratic fit drives below zero is
    /// clamped to zero.
    pub fn at(&self, iso: f32) -> Result<NoiseParams, Error> {
        if !(iso.is_finite() && iso > 0.0) {
            return Err(Error::BadNoise("ISO must be positive"));
        }
        let iso = iso as f64;
        let k = self.k[0] as f64 * iso + self.k[1] as f64;
        let s = (self.sigma2[0] as f64 * iso + self.sigma2[1] as f64) * iso + self.sigma2[2] as f64;
        NoiseParams {
            k: k as f32,
            sigma2: s.max(0.0) as f32,
        }
        .validate()
    }
}

/// Noise curves per colour channel: R, G and B. Gr and Gb share the G curves (separate green
/// parameters make a denoiser leave maze patterns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RgbNoiseCurves {
    /// Red.
    pub r: NoiseCurves,
    /// Green (Gr and Gb).
    pub g: NoiseCurves,
    /// Blue.
    pub b: NoiseCurves,
}

impl RgbNoiseCurves {
    /// The same curves for every channel.
    pub const fn uniform(c: NoiseCurves) -> Self {
        RgbNoiseCurves { r: c, g: c, b: c }
    }
    /// The curves of canonical channel `c` (`channel::R`, `GR`, `GB`, `B`; others read as B).
    pub const fn for_channel(&self, c: usize) -> NoiseCurves {
        match c {
            crate::channel::R => self.r,
            crate::channel::GR | crate::channel::GB => self.g,
            _ => self.b,
        }
    }
    /// Parameters of R, G and B at `iso`, in that order (the plane order of a DNG
    /// NoiseProfile with three pairs).
    pub fn at(&self, iso: f32) -> Result<[NoiseParams; 3], Error> {
        Ok([self.r.at(iso)?, self.g.at(iso)?, self.b.at(iso)?])
    }
}

/// An affine map `y = x * gain + offset` in normalised units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Multiplier.
    pub gain: f64,
    /// Offset.
    pub offset: f64,
}

impl Affine {
    /// The identity map.
    pub const IDENTITY: Affine = Affine {
        gain: 1.0,
        offset: 0.0,
    };

    /// The k-sigma transform that maps noise `at` to the statistics of `anchor`:
    /// `y = x * k_a / k + (sigma2 / k^2 - sigma2_a / k_a^2) * k_a`. After it, the noise of `y`
    /// is Poisson-Gaussian with the anchor's parameters (exactly for the Poisson part, to first
    /// order for the Gaussian part), which is what a k-sigma network was trained on.
    pub fn k_sigma(at: NoiseParams, anchor: NoiseParams) -> Result<Affine, Error> {
        let at = at.validate()?;
        let anchor = anchor.validate()?;
        let (k, s) = (at.k as f64, at.sigma2 as f64);
        let (ka, sa) = (anchor.k as f64, anchor.sigma2 as f64);
        Ok(Affine {
            gain: ka / k,
            offset: (s / (k * k) - sa / (ka * ka)) * ka,
        })
    }

    /// The inverse map.
    pub fn inverse(self) -> Affine {
        Affine {
            gain: 1.0 / self.gain,
            offset: -self.offset / self.gain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_sigma_maps_noise_to_anchor() {
        // Variance of y = g*x_noisy + o is g^2 (k x + s); written in terms of the mapped
        // signal m = g x + o it must equal k_a m + s_a when s/k^2 - s_a/k_a^2 terms cancel.
        let at = NoiseParams {
            k: 0.004,
            sigma2: 2e-5,
        };
        let anchor = NoiseParams {
            k: 0.001,
            sigma2: 1e-6,
        };
        let t = Affine::k_sigma(at, anchor).unwrap();
        for x in [0.0, 0.1, 0.5, 1.0] {
            let var_y = t.gain * t.gain * (at.k as f64 * x + at.sigma2 as f64);
            let m = t.gain * x + t.offset;
            let anchor_var = anchor.k as f64 * m + anchor.sigma2 as f64;
            assert!(
                (var_y - anchor_var).abs() < 1e-9 * anchor_var.max(1e-9),
                "{var_y} {anchor_var}"
            );
        }
        let back = t.inverse();
        let x = 0.37;
        assert!(((t.gain * x + t.offset) * back.gain + back.offset - x).abs() < 1e-12);
    }

    #[test]
    fn rgb_curves_and_dng_pairs() {
        let c = |k1: f32| NoiseCurves {
            k: [k1, 0.001],
            sigma2: [0.0, 1e-8, 1e-6],
        };
        let rgb = RgbNoiseCurves {
            r: c(1e-5),
            g: c(2e-5),
            b: c(3e-5),
        };
        assert_eq!(rgb.for_channel(crate::channel::GB), rgb.g);
        assert_eq!(rgb.for_channel(crate::channel::GR), rgb.g);
        let p = rgb.at(100.0).unwrap();
        assert!((p[1].k - 0.003).abs() < 1e-7);
        let (s, o) = p[2].to_dng_pair();
        assert_eq!(NoiseParams::from_dng_pair(s, o).unwrap(), p[2]);
        assert!(NoiseParams::from_dng_pair(-1.0, 0.0).is_err());
        assert_eq!(RgbNoiseCurves::uniform(rgb.r).b, rgb.r);
    }

    #[test]
    fn bad_noise_is_an_error() {
        let c = NoiseCurves {
            k: [0.0, 0.0],
            sigma2: [0.0, 0.0, 0.0],
        };
        assert!(c.at(100.0).is_err());
        assert!(c.at(-1.0).is_err());
        assert!(NoiseParams {
            k: f32::NAN,
            sigma2: 0.0
        }
        .validate()
        .is_err());
        // Finite but absurd (fuzz findings: every output sample became 0).
        for (k, sigma2) in [(1e-45, 1e-6), (1e-3, 3e38), (1e30, 0.0), (1e-3, 1.5)] {
            assert!(
                NoiseParams { k, sigma2 }.validate().is_err(),
                "k {k} sigma2 {sigma2} accepted"
            );
        }
        for (k, sigma2) in [(1e-9, 0.0), (1.0, 1.0), (2e-6, 1e-12)] {
            assert!(NoiseParams { k, sigma2 }.validate().is_ok());
        }
    }
}
