//! Dark (black) frames: per-CFA-channel black level, read-noise variance, row and column
//! noise, hot pixels.
//!
//! With `m` frames and `M(p)` the per-pixel mean over frames, the temporal residual
//! `d_f(p) = y_f(p) - M(p)` cancels every fixed pattern. The read-noise variance is
//! `sum (d - row mean of d)^2 / ((m - 1) sum_rows (n_row - 1))` (unbiased for independent
//! pixel noise; temporal row offsets are removed and reported apart). Hot pixels are pixels
//! whose mean `M(p)` lies more than `hot_sigma` robust standard deviations (1.4826 MAD of
//! `M` over the channel) above the channel median; they are left out of everything else.

use serde::{Deserialize, Serialize};

use crate::error::CalibError;
use crate::frame::{Frame, CHANNEL_NAMES};
use crate::stats::{clamp_factor, median_mad, sample_var};

/// Dark sets with more samples clipped at 0 than this fraction (in any channel) are not
/// used in fits: the clamping correction holds to about 0.5% up to here.
pub const MAX_DARK_CLIPPED: f64 = 0.02;

/// Hot pixel positions listed at most (the count is always complete).
pub const MAX_LISTED_HOT: usize = 10_000;

/// Row or column noise figures of one channel, in DN.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LineNoise {
    /// Standard deviation of the line means of each frame (RMS over frames): fixed and
    /// temporal line offsets plus the pixel noise averaged along the line.
    pub std_dn: f64,
    /// The same on the temporal residual (frame minus mean frame): temporal part only.
    pub temporal_std_dn: f64,
    /// Temporal line noise beyond what independent pixel noise explains:
    /// `sqrt(max(temporal^2 - read_var / n_line, 0))`.
    pub excess_std_dn: f64,
}

/// Dark-frame figures of one canonical channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DarkChannel {
    /// "R", "Gr", "Gb" or "B".
    pub channel: String,
    /// Measured black level (mean, hot pixels excluded), DN.
    pub black_dn: f64,
    /// Black level written in the file, DN.
    pub file_black_dn: f64,
    /// Variance of `black_dn` as an estimate (temporal pixel and row noise averaged over
    /// the set), DN^2.
    pub black_var_dn2: f64,
    /// Read-noise variance (temporal, row offsets removed), DN^2, corrected for samples
    /// clamped at 0 (divided by `clip_factor`).
    pub read_var_dn2: f64,
    /// Fraction of this channel's samples at 0.
    pub clipped_fraction: f64,
    /// Variance ratio of a Gaussian clamped with that fraction at the clamp (1 if none).
    pub clip_factor: f64,
    /// The same, normalised by `(white - file black)^2`.
    pub read_var: f64,
    /// Degrees of freedom of `read_var_dn2`.
    pub read_dof: f64,
    /// Temporal variance including row and column offsets, DN^2.
    pub temporal_var_dn2: f64,
    /// Row noise.
    pub row: LineNoise,
    /// Column noise.
    pub col: LineNoise,
    /// Hot pixels in this channel.
    pub hot_pixels: usize,
}

/// The analysis of a dark-frame set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DarkReport {
    /// Files.
    pub files: Vec<String>,
    /// ISO of the set.
    pub iso: Option<u32>,
    /// Exposure of the set, seconds.
    pub exposure_s: Option<f64>,
    /// Active width and height.
    pub size: [usize; 2],
    /// White level, DN.
    pub white: f64,
    /// R, Gr, Gb, B.
    pub channels: Vec<DarkChannel>,
    /// Mean of the channels' normalised read-noise variances.
    pub read_var: f64,
    /// Largest fraction of one channel's samples at 0 (clipped): high ISOs on sensors with a
    /// low black level. The read noise is corrected for it; above [`MAX_DARK_CLIPPED`] the
    /// set is not used in fits.
    pub clipped_fraction: f64,
    /// Hot-pixel threshold in robust standard deviations.
    pub hot_sigma: f64,
    /// Number of hot pixels.
    pub hot_count: usize,
    /// Hot pixel positions `[x, y]` in active-area coordinates, row by row (at most
    /// [`MAX_LISTED_HOT`]).
    pub hot_positions: Vec<[usize; 2]>,
    /// Warnings.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Checks that `frames` form one set: at least two frames, one size, CFA, white level, ISO
/// and exposure. `what` names the set in errors.
pub fn check_set(frames: &[Frame], what: &str, need_same_exposure: bool) -> Result<(), CalibError> {
    let Some(first) = frames.first() else {
        return Err(CalibError::Usage(format!("the {what} is empty")));
    };
    if frames.len() < 2 {
        return Err(CalibError::input(
            &first.path,
            format!("the {what} has 1 frame: at least 2 are needed to separate temporal noise from fixed pattern"),
        ));
    }
    for f in &frames[1..] {
        first.check_same_sensor(f, what)?;
        if f.iso != first.iso {
            let show = |i: Option<u32>| i.map_or("none".to_string(), |i| i.to_string());
            return Err(CalibError::input(
                &f.path,
                format!(
                    "ISO {} differs from {} (ISO {}): mixed ISOs in the {what}",
                    show(f.iso),
                    first.name(),
                    show(first.iso)
                ),
            ));
        }
        let same_exp = match (f.exposure_s, first.exposure_s) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(b.abs()),
            (a, b) => a.is_none() && b.is_none(),
        };
        if need_same_exposure && !same_exp {
            return Err(CalibError::input(
                &f.path,
                format!(
                    "exposure {:?} s differs from {} ({:?} s): mixed exposures in the {what}",
                    f.exposure_s,
                    first.name(),
                    first.exposure_s
                ),
            ));
        }
    }
    Ok(())
}

struct LineAcc {
    mean_y: Vec<Vec<f64>>,
    mean_d: Vec<Vec<f64>>,
    count: Vec<f64>,
}

impl LineAcc {
    fn noise(&self, read_var: f64, m: usize) -> LineNoise {
        let lines: Vec<usize> = (0..self.count.len())
            .filter(|&l| self.count[l] > 0.0)
            .collect();
        if lines.len() < 2 {
            return LineNoise {
                std_dn: 0.0,
                temporal_std_dn: 0.0,
                excess_std_dn: 0.0,
            };
        }
        let pick = |v: &Vec<f64>| lines.iter().map(|&l| v[l]).collect::<Vec<f64>>();
        let std_dn = (self
            .mean_y
            .iter()
            .map(|v| sample_var(&pick(v)))
            .sum::<f64>()
            / m as f64)
            .sqrt();
        // Each pixel's residuals sum to zero over the m frames: m - 1 degrees of freedom.
        let temporal = self
            .mean_d
            .iter()
            .map(|v| sample_var(&pick(v)))
            .sum::<f64>()
            / (m - 1) as f64;
        let inv_n = lines.iter().map(|&l| 1.0 / self.count[l]).sum::<f64>() / lines.len() as f64;
        LineNoise {
            std_dn,
            temporal_std_dn: temporal.sqrt(),
            excess_std_dn: (temporal - read_var * inv_n).max(0.0).sqrt(),
        }
    }
}

/// Analyses a dark-frame set (see the module documentation). `hot_sigma` is the hot-pixel
/// threshold in robust standard deviations.
pub fn analyse(frames: &[Frame], hot_sigma: f64) -> Result<DarkReport, CalibError> {
    check_set(frames, "dark set", true)?;
    if !(hot_sigma.is_finite() && hot_sigma > 0.0) {
        return Err(CalibError::Usage("--hot-sigma must be positive".into()));
    }
    let f0 = &frames[0];
    let m = frames.len();
    let mut channels = Vec::with_capacity(4);
    let mut hot_positions = Vec::new();
    let mut notes = Vec::new();
    for (c, name) in CHANNEL_NAMES.iter().enumerate() {
        let (pw, ph) = f0.plane_dims(c);
        let n = pw * ph;
        let mut mean = vec![0.0f64; n];
        for f in frames {
            for i in 0..ph {
                for j in 0..pw {
                    mean[i * pw + j] += f.plane_sample(c, i, j) as f64;
                }
            }
        }
        mean.iter_mut().for_each(|v| *v /= m as f64);
        let (med, mad) = median_mad(&mean);
        let scale = mad.max(0.5 / (m as f64).sqrt());
        let thr = med + hot_sigma * scale;
        let hot: Vec<bool> = mean.iter().map(|&v| v > thr).collect();
        let hot_n = hot.iter().filter(|&&h| h).count();
        for i in 0..ph {
            for j in 0..pw {
                if hot[i * pw + j] {
                    let (x, y) = f0.plane_to_active(c, i, j);
                    hot_positions.push([x, y]);
                }
            }
        }
        let mut rows = LineAcc {
            mean_y: vec![vec![0.0; ph]; m],
            mean_d: vec![vec![0.0; ph]; m],
            count: vec![0.0; ph],
        };
        let mut cols = LineAcc {
            mean_y: vec![vec![0.0; pw]; m],
            mean_d: vec![vec![0.0; pw]; m],
            count: vec![0.0; pw],
        };
        let (mut sum_y, mut ss_rr, mut ss_tot, mut dof_rr, mut n_good) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let mut zeros_c = 0usize;
        for (fi, f) in frames.iter().enumerate() {
            for i in 0..ph {
                let (mut sd, mut qd, mut sy, mut nr) = (0.0, 0.0, 0.0, 0.0);
                for j in 0..pw {
                    if hot[i * pw + j] {
                        continue;
                    }
                    let y = f.plane_sample(c, i, j) as f64;
                    zeros_c += (y <= 0.0) as usize;
                    let d = y - mean[i * pw + j];
                    sd += d;
                    qd += d * d;
                    sy += y;
                    nr += 1.0;
                    cols.mean_y[fi][j] += y;
                    cols.mean_d[fi][j] += d;
                    if fi == 0 {
                        cols.count[j] += 1.0;
                    }
                }
                if nr > 0.0 {
                    ss_rr += qd - sd * sd / nr;
                    ss_tot += qd;
                    sum_y += sy;
                    rows.mean_y[fi][i] = sy / nr;
                    rows.mean_d[fi][i] = sd / nr;
                    if fi == 0 {
                        rows.count[i] = nr;
                        dof_rr += (m - 1) as f64 * (nr - 1.0);
                        n_good += nr;
                    }
                }
            }
        }
        for fi in 0..m {
            for j in 0..pw {
                if cols.count[j] > 0.0 {
                    cols.mean_y[fi][j] /= cols.count[j];
                    cols.mean_d[fi][j] /= cols.count[j];
                }
            }
        }
        if dof_rr < 1.0 {
            return Err(CalibError::input(
                &f0.path,
                format!("channel {}: too few usable dark pixels", name),
            ));
        }
        let clipped_fraction = zeros_c as f64 / (n_good * m as f64);
        let clip_factor = clamp_factor(clipped_fraction.min(0.5));
        let read_var_dn2 = ss_rr / dof_rr / clip_factor;
        let temporal_var_dn2 = ss_tot / ((m - 1) as f64 * n_good);
        let row = rows.noise(read_var_dn2, m);
        let range = f0.range(c);
        channels.push(DarkChannel {
            channel: name.to_string(),
            black_dn: sum_y / (n_good * m as f64),
            file_black_dn: f0.levels.black[c] as f64,
            black_var_dn2: read_var_dn2 / (n_good * m as f64)
                + row.temporal_std_dn.powi(2) / (ph * m) as f64,
            read_var_dn2,
            read_var: read_var_dn2 / (range * range),
            clipped_fraction,
            clip_factor,
            read_dof: dof_rr,
            temporal_var_dn2,
            row,
            col: cols.noise(read_var_dn2, m),
            hot_pixels: hot_n,
        });
    }
    let worst_clip = channels
        .iter()
        .map(|c| c.clipped_fraction)
        .fold(0.0, f64::max);
    if worst_clip > MAX_DARK_CLIPPED {
        notes.push(format!(
            "{:.1}% of a channel's dark samples are at 0 (clipped): the read noise is too uncertain to anchor fits",
            100.0 * worst_clip
        ));
    } else if worst_clip > 0.0 {
        notes.push(format!(
            "up to {:.3}% of the dark samples are at 0: read-noise variance corrected for the clamping",
            100.0 * worst_clip
        ));
    }
    hot_positions.sort_by_key(|p| (p[1], p[0]));
    let hot_count = hot_positions.len();
    hot_positions.truncate(MAX_LISTED_HOT);
    for ch in &channels {
        if (ch.black_dn - ch.file_black_dn).abs() > 1.0 {
            notes.push(format!(
                "channel {}: measured black {:.2} DN differs from the file's {} DN",
                ch.channel, ch.black_dn, ch.file_black_dn
            ));
        }
    }
    Ok(DarkReport {
        files: frames.iter().map(Frame::name).collect(),
        iso: f0.iso,
        exposure_s: f0.exposure_s,
        size: [f0.active.w, f0.active.h],
        white: f0.levels.white as f64,
        read_var: channels.iter().map(|c| c.read_var).sum::<f64>() / 4.0,
        clipped_fraction: worst_clip,
        channels,
        hot_sigma,
        hot_count,
        hot_positions,
        notes,
    })
}
