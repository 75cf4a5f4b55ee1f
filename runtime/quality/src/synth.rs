//! Clean frames and synthetic noise.

use rand::Rng;
use rand_distr::{Distribution, Normal, Poisson};
use rawnr_core::bayer::{FrameLayout, Levels};
use rawnr_core::noise::ChannelNoise;

/// Adds Poisson-Gaussian noise in normalised units to every sample of `clean`:
/// `y = k Poisson(x / k) + N(0, sigma2)` (no clipping, no quantisation). `k > 0` and `sigma2`
/// finite, as `NoiseParams::validate` requires; other values panic.
pub fn add_noise(clean: &[f64], k: f64, sigma2: f64, rng: &mut impl Rng) -> Vec<f64> {
    let normal = Normal::new(0.0, sigma2.max(0.0).sqrt()).expect("finite sigma");
    clean
        .iter()
        .map(|&x| noisy_sample(x, k, &normal, rng))
        .collect()
}

/// One sample of `k Poisson(x / k) + N(0, sigma2)`.
fn noisy_sample(x: f64, k: f64, normal: &Normal<f64>, rng: &mut impl Rng) -> f64 {
    let lambda = (x.max(0.0) / k).max(1e-12);
    let shot: f64 = Poisson::new(lambda).expect("finite lambda").sample(rng);
    k * shot + normal.sample(rng)
}

/// A clean raw frame: normalised samples (`(raw - black[c]) / (white - black[c])`, clipped to
/// [0, 1]), its geometry (stride = width) and levels.
#[derive(Debug, Clone)]
pub struct CleanFrame {
    /// Normalised samples, row-major, `layout.width x layout.height`.
    pub data: Vec<f64>,
    /// Geometry and CFA phase (stride = width).
    pub layout: FrameLayout,
    /// Black and white levels of the raw samples.
    pub levels: Levels,
}

impl CleanFrame {
    /// The region `(x, y, w, h)` of a raw frame (`layout` with its stride; `x`, `y` even so
    /// the CFA phase is kept), normalised.
    pub fn from_raw(
        raw: &[u16],
        layout: &FrameLayout,
        levels: &Levels,
        region: (usize, usize, usize, usize),
    ) -> CleanFrame {
        let (x0, y0, w, h) = region;
        assert!(
            x0 % 2 == 0 && y0 % 2 == 0,
            "region must start on a CFA block"
        );
        assert!(
            x0 + w <= layout.width && y0 + h <= layout.height,
            "region outside the frame"
        );
        let ch = layout.cfa.channels();
        let data = (0..h)
            .flat_map(|y| (0..w).map(move |x| (y, x)))
            .map(|(y, x)| {
                let c = ch[(y % 2) * 2 + x % 2];
                let (b, range) = (
                    levels.black[c] as f64,
                    (levels.white - levels.black[c]) as f64,
                );
                let v = raw[(y0 + y) * layout.stride + x0 + x] as f64;
                ((v - b) / range).clamp(0.0, 1.0)
            })
            .collect();
        CleanFrame {
            data,
            layout: FrameLayout::new(w, h, layout.cfa),
            levels: *levels,
        }
    }

    /// A whole raw file as a clean frame: a DNG's active area, or a PGM (`.pgm` extension)
    /// with the CFA phase and levels given (a PGM carries neither; invalid levels are an
    /// error).
    pub fn read(
        path: &std::path::Path,
        pgm_cfa: rawnr_core::bayer::CfaPhase,
        pgm_levels: &Levels,
    ) -> Result<CleanFrame, rawnr_io::IoError> {
        let is_pgm = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pgm"));
        if is_pgm {
            pgm_levels
                .validate()
                .map_err(|e| rawnr_io::IoError::Format {
                    path: path.display().to_string(),
                    reason: format!("PGM levels: {e}"),
                })?;
            let pgm = rawnr_io::pgm::read(path)?;
            let layout = FrameLayout::new(pgm.width, pgm.height, pgm_cfa);
            Ok(CleanFrame::from_raw(
                &pgm.data,
                &layout,
                pgm_levels,
                (0, 0, pgm.width, pgm.height),
            ))
        } else {
            let f = rawnr_io::dng::read(path)?;
            let (offset, layout) = f.active_region();
            Ok(CleanFrame::from_raw(
                &f.data[offset..],
                &layout,
                &f.levels,
                (0, 0, layout.width, layout.height),
            ))
        }
    }

    /// Canonical channel (R, Gr, Gb, B) of sample `i`.
    fn channel(&self, i: usize) -> usize {
        let (y, x) = (i / self.layout.width, i % self.layout.width);
        self.layout.cfa.channels()[(y % 2) * 2 + x % 2]
    }

    /// The frame as raw samples with Poisson-Gaussian noise of `noise` (per CFA channel,
    /// normalised units): `y = k Poisson(x / k) + N(0, sigma2)`, then
    /// `round(black + y (white - black))` clipped to [0, white], as a sensor records it
    /// (below black down to 0, saturated at white). `noise` must pass
    /// [`ChannelNoise::validate`] (as the parameters of profiles, DNG tags and models do when
    /// read); NaN or infinite parameters panic.
    pub fn noisy_raw(&self, noise: &ChannelNoise, rng: &mut impl Rng) -> Vec<u16> {
        let normals: Vec<Normal<f64>> = noise
            .0
            .iter()
            .map(|p| Normal::new(0.0, (p.sigma2.max(0.0) as f64).sqrt()).expect("finite sigma"))
            .collect();
        self.data
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let c = self.channel(i);
                let y = noisy_sample(x, noise.0[c].k as f64, &normals[c], rng);
                let (b, w) = (self.levels.black[c] as f64, self.levels.white as f64);
                (b + y * (w - b)).round().clamp(0.0, w) as u16
            })
            .collect()
    }

    /// Raw samples of this frame's geometry, normalised as the clean ones are but not
    /// clipped (for scoring a denoiser's output).
    pub fn normalise(&self, raw: &[u16]) -> Vec<f64> {
        raw.iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = self.channel(i);
                let b = self.levels.black[c] as f64;
                (v as f64 - b) / (self.levels.white as f64 - b)
            })
            .collect()
    }

    /// Mean clean value of canonical channel `c` over the block-aligned rectangle
    /// `(x, y, w, h)` (for colour-shift checks on flat patches).
    pub fn channel_mean(
        samples: &[f64],
        layout: &FrameLayout,
        c: usize,
        rect: (usize, usize, usize, usize),
    ) -> f64 {
        let (x0, y0, w, h) = rect;
        let ch = layout.cfa.channels();
        let (mut sum, mut n) = (0.0, 0usize);
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                if ch[(y % 2) * 2 + x % 2] == c {
                    sum += samples[y * layout.width + x];
                    n += 1;
                }
            }
        }
        sum / n.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rawnr_core::bayer::CfaPhase;
    use rawnr_core::noise::NoiseParams;

    #[test]
    fn synthetic_noise_has_the_profile_s_variance_per_channel() {
        let (w, h) = (256, 256);
        let layout = FrameLayout::new(w, h, CfaPhase::Grbg);
        let levels = Levels {
            black: [64.0, 60.0, 62.0, 66.0],
            white: 16383.0,
        };
        let raw = vec![4000u16; w * h];
        let clean = CleanFrame::from_raw(&raw, &layout, &levels, (0, 0, w, h));
        let p = |k: f32, s: f32| NoiseParams { k, sigma2: s };
        let noise = ChannelNoise([p(2e-3, 1e-5), p(1e-3, 4e-6), p(1e-3, 4e-6), p(3e-3, 2e-5)]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let noisy = clean.normalise(&clean.noisy_raw(&noise, &mut rng));
        for c in 0..4 {
            let idx: Vec<usize> = (0..w * h).filter(|&i| clean.channel(i) == c).collect();
            let x = clean.data[idx[0]];
            let mean = idx.iter().map(|&i| noisy[i]).sum::<f64>() / idx.len() as f64;
            let var =
                idx.iter().map(|&i| (noisy[i] - mean).powi(2)).sum::<f64>() / idx.len() as f64;
            let want = noise.0[c].k as f64 * x + noise.0[c].sigma2 as f64;
            assert!((mean - x).abs() < 3e-3, "channel {c}: mean {mean} vs {x}");
            assert!(
                (var / want - 1.0).abs() < 0.05,
                "channel {c}: variance {var} vs {want}"
            );
        }
    }
}
