//! Synthetic sensor noise from a calibrated profile, and the k-sigma mapping into the network's
//! input domain, exactly as the runtime computes it (`rawnr_core::noise::Affine::k_sigma`, one
//! map per plane, times the input scale).

use rand::Rng;
use rawnr_core::format::{InputConvention, NoiseChannels};
use rawnr_core::noise::{Affine, ChannelNoise, NoiseCurves, NoiseParams};
use rawnr_io::profile::NoiseProfile;

/// How clean and noisy patches are mapped into the network's domain.
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// The sensor's noise profile (validation noise).
    pub profile: NoiseProfile,
    /// Every profile training noise is drawn from, with its ISO range (`profile` first).
    pub sources: Vec<(NoiseProfile, f32, f32)>,
    /// ISO whose noise every input is mapped to.
    pub anchor_iso: f32,
    /// Curves of the anchor (pooled over channels: what the exported model declares as its
    /// default noise).
    pub anchor_curves: NoiseCurves,
    /// Noise at the anchor.
    pub anchor: NoiseParams,
    /// Input scale.
    pub scale: f32,
    /// Clipping below black and pooled or per-plane maps.
    pub input: InputConvention,
}

impl Conditioning {
    /// The conditioning for noise of `sources` (profiles and ISO ranges; the first is the
    /// validation profile), anchored at `anchor_curves` at `anchor_iso`. Every profile must give
    /// valid noise over its range.
    pub fn new(
        sources: Vec<(NoiseProfile, f32, f32)>,
        anchor_curves: NoiseCurves,
        anchor_iso: f32,
        scale: f32,
        input: InputConvention,
    ) -> Result<Conditioning, rawnr_core::Error> {
        let anchor = anchor_curves.at(anchor_iso)?;
        for (p, lo, hi) in &sources {
            // The curves are monotonic in ISO: both ends valid, all valid.
            p.channel_noise_at(*lo)?;
            p.channel_noise_at(*hi)?;
        }
        Ok(Conditioning {
            profile: sources[0].0.clone(),
            sources,
            anchor_iso,
            anchor_curves,
            anchor,
            scale,
            input,
        })
    }

    /// A training noise draw: a source uniformly, an ISO log-uniformly in its range.
    pub fn draw(&self, rng: &mut impl Rng) -> (f32, ChannelNoise) {
        let i = match self.sources.len() {
            1 => 0,
            n => rng.random_range(0..n),
        };
        let (p, lo, hi) = &self.sources[i];
        let iso = if hi > lo {
            rng.random_range(lo.ln()..hi.ln()).exp()
        } else {
            *lo
        };
        let noise = p
            .channel_noise_at(iso)
            .expect("ranges checked in Conditioning::new");
        (iso, noise)
    }

    /// Per-channel noise of the validation profile at `iso` (an error where the profile's
    /// curves give no valid noise there).
    pub fn noise_at(&self, iso: f32) -> Result<ChannelNoise, rawnr_core::Error> {
        self.profile.channel_noise_at(iso)
    }

    /// The normalised-domain affine map of each plane for frame noise `noise`.
    pub fn transforms(&self, noise: &ChannelNoise) -> [Affine; 4] {
        let pooled = noise.pooled();
        std::array::from_fn(|c| {
            let n = match self.input.noise_channels {
                NoiseChannels::PerPlane => noise.0[c],
                NoiseChannels::Pooled => pooled,
            };
            Affine::k_sigma(n, self.anchor).expect("validated noise parameters")
        })
    }

    /// A noisy patch as the runtime reads it: below black raised to black where the
    /// convention clips.
    pub fn clip(&self, mut noisy: Vec<f32>) -> Vec<f32> {
        if self.input.clip_below_black {
            noisy.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        noisy
    }

    /// Maps normalised planes (4 x `p*p`) into the network domain.
    pub fn map(&self, planes: &[f32], p: usize, noise: &ChannelNoise) -> Vec<f32> {
        let ts = self.transforms(noise);
        planes
            .chunks_exact(p * p)
            .zip(ts)
            .flat_map(|(plane, t)| {
                let (g, o, s) = (t.gain as f32, t.offset as f32, self.scale);
                plane.iter().map(move |&x| (x * g + o) * s)
            })
            .collect()
    }

    /// Maps network-domain planes back to normalised units.
    pub fn unmap(&self, planes: &[f32], p: usize, noise: &ChannelNoise) -> Vec<f32> {
        let ts = self.transforms(noise);
        planes
            .chunks_exact(p * p)
            .zip(ts)
            .flat_map(|(plane, t)| {
                let inv = t.inverse();
                let (g, o, s) = (inv.gain as f32, inv.offset as f32, self.scale);
                plane.iter().map(move |&v| (v / s) * g + o)
            })
            .collect()
    }
}

/// `k Poisson(x / k) + N(0, sigma^2)` per plane (R, Gr, Gb, B of `p*p` samples each, with the
/// suite's own sampler [`rawnr_quality::add_noise`]), clipped at white (1.0) as a sensor
/// saturates; `sigma^2` is a variance.
pub fn add_noise(planes: &[f32], p: usize, noise: &ChannelNoise, rng: &mut impl Rng) -> Vec<f32> {
    let mut out = Vec::with_capacity(planes.len());
    for (c, plane) in planes.chunks_exact(p * p).enumerate() {
        let NoiseParams { k, sigma2 } = noise.0[c];
        let clean: Vec<f64> = plane.iter().map(|&x| x as f64).collect();
        let noisy = rawnr_quality::add_noise(&clean, k as f64, sigma2 as f64, rng);
        out.extend(noisy.into_iter().map(|y| (y as f32).min(1.0)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn noise_has_the_profile_variance_and_clips_at_white() {
        let noise = ChannelNoise([
            NoiseParams {
                k: 1e-3,
                sigma2: 1e-5,
            },
            NoiseParams {
                k: 2e-3,
                sigma2: 4e-5,
            },
            NoiseParams {
                k: 2e-3,
                sigma2: 4e-5,
            },
            NoiseParams {
                k: 4e-3,
                sigma2: 0.0,
            },
        ]);
        let p = 128;
        let mut planes = vec![0.25f32; 4 * p * p];
        planes[3 * p * p..].fill(0.999);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let y = add_noise(&planes, p, &noise, &mut rng);
        for c in 0..3 {
            let s = &y[c * p * p..(c + 1) * p * p];
            let mean = s.iter().map(|&v| v as f64).sum::<f64>() / s.len() as f64;
            let var = s.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / s.len() as f64;
            let want = noise.0[c].k as f64 * 0.25 + noise.0[c].sigma2 as f64;
            assert!((mean - 0.25).abs() < 3e-3, "plane {c} mean {mean}");
            assert!(
                (var / want - 1.0).abs() < 0.05,
                "plane {c} var {var} want {want}"
            );
        }
        assert!(y[3 * p * p..].iter().all(|&v| v <= 1.0));
    }

    fn profile(rgb_k: [f64; 3]) -> NoiseProfile {
        let curve = |k: f64| rawnr_io::profile::Curve {
            k: [0.0, k],
            sigma2: [0.0, 0.0, 1e-5],
        };
        NoiseProfile {
            format: rawnr_io::profile::FORMAT.into(),
            version: rawnr_io::profile::VERSION,
            sensor: String::new(),
            source: String::new(),
            units: String::new(),
            k: [0.0, rgb_k[1]],
            sigma2: [0.0, 0.0, 1e-5],
            channels: Some(rawnr_io::profile::ChannelCurves {
                r: curve(rgb_k[0]),
                g: curve(rgb_k[1]),
                b: curve(rgb_k[2]),
            }),
            black: None,
            white: None,
            cfa: None,
        }
    }

    #[test]
    fn maps_follow_the_declared_convention_and_invert() {
        let anchor = NoiseCurves {
            k: [0.0, 1e-3],
            sigma2: [0.0, 0.0, 1e-6],
        };
        let p = profile([2e-3, 4e-3, 8e-3]);
        let noise = p.channel_noise_at(100.0).unwrap();
        let planes: Vec<f32> = [-0.01f32, 0.2, 0.5, 0.9].repeat(4);
        for (clip, channels) in [
            (false, NoiseChannels::PerPlane),
            (true, NoiseChannels::Pooled),
        ] {
            let input = InputConvention {
                clip_below_black: clip,
                noise_channels: channels,
            };
            let c = Conditioning::new(vec![(p.clone(), 100.0, 100.0)], anchor, 100.0, 64.0, input)
                .unwrap();
            let ts = c.transforms(&noise);
            // Per plane: red and blue maps differ; pooled: one map for all planes.
            assert_eq!(ts[0] == ts[3], channels == NoiseChannels::Pooled);
            let want = Affine::k_sigma(
                match channels {
                    NoiseChannels::PerPlane => noise.0[3],
                    NoiseChannels::Pooled => noise.pooled(),
                },
                anchor.at(100.0).unwrap(),
            )
            .unwrap();
            assert_eq!(ts[3], want);
            let clipped = c.clip(planes.clone());
            assert_eq!(clipped[0] == 0.0, clip);
            let back = c.unmap(&c.map(&clipped, 2, &noise), 2, &noise);
            for (a, b) in back.iter().zip(&clipped) {
                assert!((a - b).abs() < 1e-5, "{a} {b}");
            }
        }
        // A profile whose noise is invalid somewhere in its ISO range is refused up front.
        let bad = profile([2e-3, -1.0, 8e-3]);
        let input = InputConvention::LEGACY;
        assert!(Conditioning::new(vec![(bad, 100.0, 200.0)], anchor, 100.0, 1.0, input).is_err());
    }
}
