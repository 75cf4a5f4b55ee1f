//! Synthetic dead-leaves Bayer frames: scenes with edges at every scale and a known clean
//! signal, for measuring (and training) without real data.

use rand::Rng;
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};

use crate::CleanFrame;

/// Smallest disc radius in pixels (finer detail than a lens passes is rare in real raw).
const MIN_RADIUS: f64 = 4.0;
/// Largest disc radius as a fraction of the frame's shorter side.
const MAX_RADIUS: f64 = 0.3;
/// Supersampling per axis (anti-aliased edges).
const SUPERSAMPLE: usize = 3;

impl CleanFrame {
    /// A dead-leaves frame of `width x height` (even) samples: opaque discs with uniform
    /// centres and radii of density `r^-3` (scale invariance, as natural images) from 4 pixels
    /// to 0.3 of the shorter side, each a
    /// random colour (a luminance in 0.02..0.9 times a tint of 0.6..1.4 per channel, half of
    /// them with a linear gradient), painted over
    /// each other until the frame is covered, rendered at 3x3 samples per pixel and averaged
    /// (anti-aliased), then mosaicked to the CFA phase `cfa`. Deterministic for a given `rng`.
    pub fn dead_leaves(
        width: usize,
        height: usize,
        cfa: CfaPhase,
        levels: Levels,
        rng: &mut impl Rng,
    ) -> CleanFrame {
        let (sw, sh) = (width * SUPERSAMPLE, height * SUPERSAMPLE);
        let short = sw.min(sh) as f64;
        let a = MIN_RADIUS * SUPERSAMPLE as f64;
        let b = (MAX_RADIUS * short).max(2.0 * a);
        // Painted back to front: a disc painted later covers earlier ones; a pixel's colour is
        // the last disc over it. Enough discs that uncovered pixels are rare; those keep a
        // background grey.
        let mut rgb = vec![[0.18f32; 3]; sw * sh];
        // E[r^2] for density r^-3 on [a, b]; 6 frame areas of discs leave exp(-6) = 0.25%
        // of the pixels uncovered on average.
        let mean_r2 = 2.0 * (b / a).ln() / (a.powi(-2) - b.powi(-2));
        let mean_area = std::f64::consts::PI * mean_r2;
        let discs = ((sw * sh) as f64 / mean_area * 6.0).clamp(200.0, 500_000.0) as usize;
        for _ in 0..discs {
            let u: f64 = rng.random();
            let r = (a.powi(-2) - u * (a.powi(-2) - b.powi(-2))).powf(-0.5);
            let (cx, cy) = (
                rng.random::<f64>() * sw as f64,
                rng.random::<f64>() * sh as f64,
            );
            // A luminance and a moderate tint (channels correlate as in natural scenes).
            let luma = rng.random_range(0.02f32..0.9);
            let colour: [f32; 3] =
                std::array::from_fn(|_| (luma * rng.random_range(0.6f32..1.4)).min(0.98));
            let gradient = if rng.random_bool(0.5) {
                let angle = rng.random::<f64>() * std::f64::consts::TAU;
                let amount = rng.random_range(0.0..0.5) / r;
                Some((angle.cos() * amount, angle.sin() * amount))
            } else {
                None
            };
            let (y0, y1) = (
                (cy - r).max(0.0) as usize,
                ((cy + r).ceil() as usize).min(sh),
            );
            let (x0, x1) = (
                (cx - r).max(0.0) as usize,
                ((cx + r).ceil() as usize).min(sw),
            );
            for y in y0..y1 {
                let dy = y as f64 + 0.5 - cy;
                for x in x0..x1 {
                    let dx = x as f64 + 0.5 - cx;
                    if dx * dx + dy * dy > r * r {
                        continue;
                    }
                    let shade = gradient.map_or(1.0, |(gx, gy)| 1.0 + gx * dx + gy * dy) as f32;
                    rgb[y * sw + x] = colour.map(|c| (c * shade).clamp(0.0, 1.0));
                }
            }
        }
        let ch = cfa.channels();
        let n = (SUPERSAMPLE * SUPERSAMPLE) as f64;
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (y, x)))
            .map(|(y, x)| {
                // Canonical channel R, Gr, Gb, B -> RGB component 0, 1, 1, 2.
                let comp = match ch[(y % 2) * 2 + x % 2] {
                    0 => 0,
                    3 => 2,
                    _ => 1,
                };
                let mut sum = 0.0f64;
                for sy in 0..SUPERSAMPLE {
                    for sx in 0..SUPERSAMPLE {
                        let p = (y * SUPERSAMPLE + sy) * sw + x * SUPERSAMPLE + sx;
                        sum += rgb[p][comp] as f64;
                    }
                }
                sum / n
            })
            .collect();
        CleanFrame {
            data,
            layout: FrameLayout::new(width, height, cfa),
            levels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn dead_leaves_are_deterministic_varied_and_in_range() {
        let levels = Levels::uniform(64.0, 1023.0);
        let make = |seed| {
            CleanFrame::dead_leaves(
                96,
                64,
                CfaPhase::Grbg,
                levels,
                &mut rand::rngs::StdRng::seed_from_u64(seed),
            )
        };
        let (a, b) = (make(1), make(2));
        assert_eq!(a.data, make(1).data);
        assert_ne!(a.data, b.data);
        assert!(a.data.iter().all(|v| (0.0..=1.0).contains(v)));
        // Edges at many scales: many distinct values, and both flat and busy neighbourhoods.
        let mut distinct: Vec<u64> = a.data.iter().map(|v| v.to_bits()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 500, "{} distinct values", distinct.len());
        let mean = a.data.iter().sum::<f64>() / a.data.len() as f64;
        assert!((0.1..0.8).contains(&mean), "mean {mean}");
    }
}
