//! Blind noise estimate from one ordinary picture: the read noise from its darkest flat
//! regions.
//!
//! Each colour plane is cut into small cells; a cell is kept when it is dark (normalised
//! mean at most `max_level`), unclipped, and flat: its residual variance after removing row
//! and column means is at most `flat_ratio` times the variance of its same-colour second
//! differences (texture raises the former much more). The line `var = k x + sigma2` fitted
//! through the kept cells of all channels gives the read-noise variance `sigma2`. Texture
//! that passes the test can only add variance: the result is an upper bound.

use serde::Serialize;

use crate::error::CalibError;
use crate::fitting::{fit_line, Sample};
use crate::flats::{second_diff_var, two_way};
use crate::frame::Frame;

/// Options of [`estimate`].
#[derive(Debug, Clone, Copy)]
pub struct EstimateOptions {
    /// Cell side in samples per colour plane.
    pub cell: usize,
    /// Brightest normalised cell mean used.
    pub max_level: f64,
    /// Largest ratio of two-way to second-difference variance of a flat cell.
    pub flat_ratio: f64,
}

impl Default for EstimateOptions {
    fn default() -> Self {
        EstimateOptions {
            cell: 6,
            max_level: 0.03,
            flat_ratio: 1.3,
        }
    }
}

/// The estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// File.
    pub file: String,
    /// Cells examined.
    pub cells: usize,
    /// Dark cells (mean at most `max_level`).
    pub dark_cells: usize,
    /// Dark cells that passed the flatness test and the fit.
    pub used_cells: usize,
    /// Mean normalised level of the used cells.
    pub mean_level: f64,
    /// Read-noise variance, normalised.
    pub sigma2: f64,
    /// Shot-noise gain of the same fit, normalised (rough: the levels span little).
    pub k: f64,
    /// Read-noise standard deviation in DN (of the mean channel range).
    pub read_std_dn: f64,
}

/// Estimates the read noise of one frame (see the module documentation).
pub fn estimate(f: &Frame, opts: EstimateOptions) -> Result<Estimate, CalibError> {
    if opts.cell < 4 {
        return Err(CalibError::Usage("--cell must be at least 4".into()));
    }
    let white = f.levels.white as f64;
    let (mut cells, mut dark) = (0, 0);
    let mut samples = Vec::new();
    let n = opts.cell;
    let mut block = vec![0.0f64; n * n];
    for c in 0..4 {
        let (pw, ph) = f.plane_dims(c);
        let black = f.levels.black[c] as f64;
        let range = white - black;
        for i0 in (0..ph.saturating_sub(n - 1)).step_by(n) {
            for j0 in (0..pw.saturating_sub(n - 1)).step_by(n) {
                cells += 1;
                for i in 0..n {
                    for j in 0..n {
                        block[i * n + j] = f.plane_sample(c, i0 + i, j0 + j) as f64;
                    }
                }
                if block.iter().any(|&y| y <= 0.0 || y >= white) {
                    continue;
                }
                let (var, mean, dof) = two_way(&block, n, n);
                let x = (mean - black) / range;
                if x > opts.max_level {
                    continue;
                }
                dark += 1;
                let v2 = second_diff_var(&block, n, n);
                if var > 0.0 && v2 > 0.0 && var <= opts.flat_ratio * v2 {
                    samples.push(Sample {
                        x,
                        var: var / (range * range),
                        dof,
                        x_var: var / (range * range * (n * n) as f64),
                    });
                }
            }
        }
    }
    let fit = fit_line(&samples).ok_or_else(|| {
        CalibError::input(
            &f.path,
            format!(
                "too few dark flat regions for a noise estimate ({} flat of {dark} dark cells)",
                samples.len()
            ),
        )
    })?;
    let mean_range = (0..4).map(|c| f.range(c)).sum::<f64>() / 4.0;
    Ok(Estimate {
        file: f.name(),
        cells,
        dark_cells: dark,
        used_cells: fit.used,
        mean_level: samples.iter().map(|s| s.x).sum::<f64>() / samples.len() as f64,
        sigma2: fit.sigma2,
        k: fit.k,
        read_std_dn: fit.sigma2.max(0.0).sqrt() * mean_range,
    })
}
