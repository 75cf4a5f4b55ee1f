//! Calibration over a sensor's operating range: clean frames with synthetic noise at many
//! noise levels (sensor profiles x ISOs), each calibrating the noise band(s) the runtime will
//! pick for frames like it.
//!
//! Every (frame, noise level) case draws its noise from its own seed ([`case_seed`]), so any
//! subset of bands can be recalibrated alone and give the same ranges as the full run.

use rand::SeedableRng;
use rawnr_core::bayer::{CfaPhase, Levels};
use rawnr_core::format::Model;
use rawnr_core::noise::NoiseParams;
use rawnr_engine::denoiser::{Denoiser, TileOptions};
use rawnr_engine::graph::Engine;
use rawnr_quality::CleanFrame;

use crate::{calibrate_frame, Calibration, QuantError, RangeMethod};

/// Seed of the first synthetic dead-leaves calibration frame (`denoise-raw eval
/// --dead-leaves` scores others, from seed 1001).
pub const DEAD_LEAVES_SEED: u64 = 2000;

/// Dead-leaves calibration frame `i` (seed [`DEAD_LEAVES_SEED`] + `i`): 1024x768, 14-bit
/// (black 512, white 16383), RGGB.
pub fn calibration_dead_leaves(i: usize) -> CleanFrame {
    let mut rng = rand::rngs::StdRng::seed_from_u64(DEAD_LEAVES_SEED + i as u64);
    let levels = Levels::uniform(512.0, 16383.0);
    CleanFrame::dead_leaves(1024, 768, CfaPhase::Rggb, levels, &mut rng)
}

/// Noise bands: the least noise-transform gain of each band (the first 0, then strictly
/// increasing) and how far beyond its own gains each band takes calibration cases.
#[derive(Debug, Clone, PartialEq)]
pub struct BandEdges {
    /// Least gain of each band; band `b` serves gains `edges[b]..edges[b + 1]`.
    pub edges: Vec<f32>,
    /// A case of gain `g` calibrates every band meeting `g / overlap ..= g * overlap`
    /// (1: only the band the runtime picks for it; above 1, neighbouring bands too, which
    /// widens each band's ranges towards content its own cases lack).
    pub overlap: f32,
}

impl BandEdges {
    /// Bands from gain 0 and from each of `least_gains` (increasing, above 0).
    pub fn new(least_gains: &[f32], overlap: f32) -> Result<Self, QuantError> {
        let mut edges = vec![0f32];
        edges.extend(least_gains);
        if edges.windows(2).any(|w| !(w[1].is_finite() && w[1] > w[0])) {
            return Err(QuantError::BadBands(
                "band gains must be positive and increasing",
            ));
        }
        if !(overlap.is_finite() && overlap >= 1.0) {
            return Err(QuantError::BadBands("band overlap must be at least 1"));
        }
        Ok(BandEdges { edges, overlap })
    }

    /// Number of bands.
    pub fn len(&self) -> usize {
        self.edges.len()
    }

    /// Whether there is no band (never, for edges made by [`BandEdges::new`]).
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// The band the runtime picks for gain `g`.
    pub fn band_of(&self, g: f32) -> usize {
        self.edges.iter().rposition(|&e| e <= g).unwrap_or(0)
    }

    /// The bands a case of gain `g` calibrates.
    pub fn bands_of(&self, g: f32) -> Vec<usize> {
        let (lo, hi) = (g / self.overlap, g * self.overlap);
        (0..self.len())
            .filter(|&b| {
                let end = self.edges.get(b + 1).copied().unwrap_or(f32::INFINITY);
                self.edges[b] <= hi && lo < end
            })
            .collect()
    }
}

/// One calibration case: clean frame `frame` with noise `noise`.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseCase {
    /// Index of the clean frame.
    pub frame: usize,
    /// Index of the noise level (in the caller's list).
    pub level: usize,
    /// The noise.
    pub noise: NoiseParams,
    /// The model's noise-transform gain at this noise ([`Denoiser::noise_gain`]).
    pub gain: f32,
    /// The bands it calibrates ([`BandEdges::bands_of`]).
    pub bands: Vec<usize>,
}

/// The cases of every frame at every noise level, frame-major.
pub fn noise_cases(
    model: Model<'_>,
    n_frames: usize,
    levels: &[NoiseParams],
    edges: &BandEdges,
) -> Result<Vec<NoiseCase>, QuantError> {
    let d = Denoiser::new(Engine::new(model));
    let mut cases = Vec::with_capacity(n_frames * levels.len());
    for frame in 0..n_frames {
        for (level, &noise) in levels.iter().enumerate() {
            let gain = d.noise_gain(&noise.into())?;
            cases.push(NoiseCase {
                frame,
                level,
                noise,
                gain,
                bands: edges.bands_of(gain),
            });
        }
    }
    Ok(cases)
}

/// The noise seed of case `index` of a run with seed `seed`.
pub fn case_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(index as u64)
}

/// Calibrates the bands `calibrate(b)` selects (the others stay empty) on `cases` of
/// `frames`, tile by tile as the runtime runs; `on_case` sees each case calibrated. Errors
/// with [`QuantError::EmptyBand`] when a selected band gets no case.
#[allow(clippy::too_many_arguments)]
pub fn calibrate_bands(
    model: Model<'_>,
    frames: &[CleanFrame],
    cases: &[NoiseCase],
    edges: &BandEdges,
    method: RangeMethod,
    tile: &TileOptions,
    seed: u64,
    calibrate: impl Fn(usize) -> bool,
    mut on_case: impl FnMut(usize, &NoiseCase),
) -> Result<Vec<(f32, Calibration)>, QuantError> {
    let mut bands: Vec<(f32, Calibration)> = edges
        .edges
        .iter()
        .map(|&g| (g, Calibration::new(model.n_values())))
        .collect();
    for b in (0..bands.len()).filter(|&b| calibrate(b)) {
        if !cases.iter().any(|c| c.bands.contains(&b)) {
            return Err(QuantError::EmptyBand(b));
        }
    }
    // Histogram-based ranges need a second pass over the same noisy frames.
    let passes = if matches!(method, RangeMethod::Mse | RangeMethod::MseOrMean) {
        2
    } else {
        1
    };
    for pass in 0..passes {
        if pass == 1 {
            for (_, cal) in &mut bands {
                cal.begin_histograms();
            }
        }
        for (i, case) in cases.iter().enumerate() {
            let todo: Vec<usize> = case
                .bands
                .iter()
                .copied()
                .filter(|&b| calibrate(b))
                .collect();
            if todo.is_empty() {
                continue;
            }
            let frame = frames.get(case.frame).ok_or(QuantError::BadBands(
                "a noise case names a frame that is not there",
            ))?;
            let mut rng = rand::rngs::StdRng::seed_from_u64(case_seed(seed, i));
            let noisy = frame.noisy_raw(&case.noise.into(), &mut rng);
            let run = |cal: &mut Calibration| {
                calibrate_frame(
                    model,
                    &noisy,
                    &frame.layout,
                    &frame.levels,
                    case.noise,
                    tile,
                    cal,
                )
            };
            if pass == 0 {
                // The extremes of one run serve every band of the case.
                let mut one = Calibration::new(model.n_values());
                run(&mut one)?;
                for b in todo {
                    bands[b].1.merge(&one)?;
                }
            } else {
                // Histograms follow each band's own first-pass range.
                for b in todo {
                    run(&mut bands[b].1)?;
                }
            }
            on_case(pass, case);
        }
    }
    Ok(bands)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_calibrate_their_band_and_overlapping_neighbours() {
        let e = BandEdges::new(&[1.0, 2.0, 4.0], 1.0).unwrap();
        assert_eq!(e.len(), 4);
        for (g, band) in [(0.0, 0), (0.99, 0), (1.0, 1), (3.9, 2), (4.0, 3), (1e9, 3)] {
            assert_eq!(e.band_of(g), band, "gain {g}");
            assert_eq!(e.bands_of(g), vec![band], "gain {g}, no overlap");
        }
        let e = BandEdges::new(&[1.0, 2.0, 4.0], 2.0).unwrap();
        assert_eq!(e.bands_of(1.5), vec![0, 1, 2]);
        assert_eq!(e.bands_of(0.3), vec![0]);
        assert_eq!(e.bands_of(2.5), vec![1, 2, 3]);
        assert_eq!(e.bands_of(100.0), vec![3]);
    }

    #[test]
    fn bad_edges_are_refused() {
        assert!(BandEdges::new(&[], 1.0).is_ok());
        assert!(BandEdges::new(&[0.0], 1.0).is_err());
        assert!(BandEdges::new(&[2.0, 1.0], 1.0).is_err());
        assert!(BandEdges::new(&[f32::NAN], 1.0).is_err());
        assert!(BandEdges::new(&[1.0], 0.5).is_err());
        assert!(BandEdges::new(&[1.0], f32::INFINITY).is_err());
    }
}
