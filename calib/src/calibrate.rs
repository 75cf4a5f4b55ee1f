//! The calibration: dark frames and flat frames in, a [`Profile`] out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::darks::{self, DarkReport};
use crate::error::CalibError;
use crate::fitting::{fit_curves, fit_line, LineFit, Sample, Weighting};
use crate::flats::{self, CellPoint, FlatOptions};
use crate::frame::{Frame, PgmOptions, Rect};
use crate::profile::{
    ChannelCurves, ChannelPoint, Curve, FitInfo, IsoPoint, NoiseProfile, Profile,
};

/// What to calibrate from.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// Flat frames (several ISOs).
    pub flats: Vec<PathBuf>,
    /// Dark-frame sets (each one ISO and exposure, at least 2 frames), optional. A set at
    /// the ISO of flats adds its read noise to that ISO's fit as a point at level 0.
    pub darks: Vec<Vec<PathBuf>>,
    /// Rectangles to analyse instead of automatic cells.
    pub rois: Vec<Rect>,
    /// Cell side in raw pixels.
    pub cell: usize,
    /// Sensor name for the profile (default: the files' make and model).
    pub sensor: Option<String>,
    /// ISO of files that carry none.
    pub iso: Option<u32>,
    /// CFA and levels of PGM inputs.
    pub pgm: PgmOptions,
    /// Hot-pixel threshold in robust standard deviations.
    pub hot_sigma: f64,
    /// Normalise with the black levels measured in the darks instead of the files'.
    pub black_from_darks: bool,
}

/// Default cell side (raw pixels): 32 x 32 samples per channel.
pub const DEFAULT_CELL: usize = 64;
/// Default hot-pixel threshold.
pub const DEFAULT_HOT_SIGMA: f64 = 8.0;
/// Binned samples kept per channel and ISO in the profile (for plots).
pub const PLOT_BINS: usize = 48;

/// Largest weight (degrees of freedom) of a dark-set point in a fit: a 0.5% relative
/// standard error, for what the clamping correction and dark current may leave.
pub const DARK_MAX_DOF: f64 = 2.0 / (0.005 * 0.005);

/// The per-ISO estimator, as written into the profile.
pub const ESTIMATOR: &str = "cells of CxC samples per colour plane; stacks of m >= 2 frames (same ISO, exposure, level): \
var = sum over cell of (d - row mean of d)^2 / ((m-1) sum_rows (n_row-1)) with d = y_f - mean over frames (fixed pattern \
cancels, row noise removed); single frames: residual of row and column means / ((R-1)(C-1)); cells within 3.1 sigma of 0 or \
saturation or with > 1% clipped samples dropped; hot (from darks) and stuck pixels excluded; per ISO and channel \
group an IRLS line var = k x + sigma2 (weights 1 / (2 pred^2 / dof + k^2 var(x)), 5-sigma outlier rejection); a dark set at the ISO adds \
its read-noise variance per channel as a point at level 0 (weight capped at a 0.5% standard error)";

/// Loads a set of frames.
pub fn load_all(paths: &[PathBuf], opts: &CalibrateOptions) -> Result<Vec<Frame>, CalibError> {
    paths
        .iter()
        .map(|p| Frame::load(p, &opts.pgm, opts.iso))
        .collect()
}

fn group(cells: &[CellPoint], channels: &[usize]) -> Vec<Sample> {
    cells
        .iter()
        .filter(|c| channels.contains(&c.channel))
        .map(|c| c.sample)
        .collect()
}

/// Bins samples by level into at most `bins` groups of equal count (dof-weighted means).
fn binned(mut s: Vec<Sample>, bins: usize) -> Vec<[f64; 3]> {
    s.sort_by(|a, b| a.x.total_cmp(&b.x));
    let per = s.len().div_ceil(bins.max(1)).max(1);
    s.chunks(per)
        .map(|ch| {
            let d: f64 = ch.iter().map(|p| p.dof).sum();
            let x = ch.iter().map(|p| p.x * p.dof).sum::<f64>() / d;
            let v = ch.iter().map(|p| p.var * p.dof).sum::<f64>() / d;
            [x, v, d]
        })
        .collect()
}

fn point(fit: &LineFit, samples: Vec<Sample>, keep_samples: bool) -> ChannelPoint {
    ChannelPoint {
        k: fit.k,
        sigma2: fit.sigma2,
        k_se: Some(fit.k_se),
        sigma2_se: Some(fit.sigma2_se),
        cells: fit.used,
        rejected: fit.rejected,
        chi2_dof: Some(fit.chi2_dof),
        k_curve_residual: 0.0,
        sigma2_curve_residual: 0.0,
        samples: if keep_samples {
            binned(samples, PLOT_BINS)
        } else {
            Vec::new()
        },
    }
}

/// dof-weighted mean of the stacks' row-noise variances over `channels`.
fn row_noise(rows: &[[Option<(f64, f64)>; 4]], channels: &[usize]) -> Option<f64> {
    let (mut s, mut d) = (0.0, 0.0);
    for r in rows {
        for &c in channels {
            if let Some((v, dof)) = r[c] {
                s += v * dof;
                d += dof;
            }
        }
    }
    (d > 0.0).then(|| s / d)
}

/// What the stacks of one ISO gave.
#[derive(Default)]
struct IsoData {
    cells: Vec<CellPoint>,
    frames: usize,
    /// Cells dropped for clipping, and as not flat.
    dropped: (usize, usize),
    /// Row-noise variance per stack and channel.
    rows: Vec<[Option<(f64, f64)>; 4]>,
}

/// Channel groups: R, G (Gr + Gb), B, and all.
const GROUPS: [(&str, &[usize]); 4] = [
    ("R", &[0]),
    ("G", &[1, 2]),
    ("B", &[3]),
    ("all", &[0, 1, 2, 3]),
];

/// Per-ISO fits of pooled cells.
fn fit_iso(iso: u32, data: &IsoData) -> Result<IsoPoint, CalibError> {
    let cells = &data.cells;
    let dropped = data.dropped;
    let mut pts = Vec::with_capacity(4);
    for (name, chans) in GROUPS {
        let s = group(cells, chans);
        let fit = fit_line(&s).ok_or_else(|| {
            CalibError::Fit(format!(
                "ISO {iso}, channel {name}: fewer than two usable flat levels ({} cells usable, {} dropped for clipping, {} not flat); \
                 shoot patches of several levels that are neither clipped nor black",
                s.len(),
                dropped.0,
                dropped.1
            ))
        })?;
        if !(fit.k.is_finite() && fit.k > 0.0 && fit.sigma2.is_finite()) {
            return Err(CalibError::Fit(format!(
                "ISO {iso}, channel {name}: the fit gives k = {:.4e}, sigma2 = {:.4e}: no positive shot noise in the flats",
                fit.k, fit.sigma2
            )));
        }
        pts.push(point(&fit, s, name != "all"));
    }
    let row = [
        row_noise(&data.rows, &[0]),
        row_noise(&data.rows, &[1, 2]),
        row_noise(&data.rows, &[3]),
    ];
    let all = pts
        .pop()
        .ok_or_else(|| CalibError::Fit("internal: no pooled fit".into()))?;
    let mut it = pts.into_iter();
    let (Some(r), Some(g), Some(b)) = (it.next(), it.next(), it.next()) else {
        return Err(CalibError::Fit("internal: missing channel fit".into()));
    };
    Ok(IsoPoint {
        iso: iso as f64,
        all,
        r,
        g,
        b,
        frames: data.frames,
        row_noise_var: match row {
            [Some(r), Some(g), Some(b)] => Some([r, g, b]),
            _ => None,
        },
    })
}

/// Fits the curves over ISO for every channel group, fills the points' curve residuals,
/// and returns (pooled curve, channel curves, fit info).
pub fn fit_all_curves(
    points: &mut [IsoPoint],
    weighting: Weighting,
) -> Result<(Curve, ChannelCurves, FitInfo), CalibError> {
    let isos: Vec<f64> = points.iter().map(|p| p.iso).collect();
    let mut notes = Vec::new();
    let mut curves = Vec::new();
    type Get = fn(&mut IsoPoint) -> &mut ChannelPoint;
    let getters: [(&str, Get); 4] = [
        ("all channels", |p| &mut p.all),
        ("R", |p| &mut p.r),
        ("G", |p| &mut p.g),
        ("B", |p| &mut p.b),
    ];
    let mut degrees = (1, 2);
    let mut rms = (0.0, 0.0);
    for (name, get) in getters {
        let ks: Vec<f64> = points.iter_mut().map(|p| get(p).k).collect();
        let ss: Vec<f64> = points.iter_mut().map(|p| get(p).sigma2).collect();
        let f = fit_curves(&isos, &ks, &ss, weighting, name)?;
        if name == "all channels" {
            notes.extend(f.notes.iter().cloned());
            degrees = (f.k_degree, f.sigma2_degree);
        }
        let (mut rk, mut rs) = (0.0, 0.0);
        for p in points.iter_mut() {
            let (kc, sc) = f.curve.at(p.iso);
            let cp = get(p);
            cp.k_curve_residual = (kc - cp.k) / cp.k;
            cp.sigma2_curve_residual = if cp.sigma2 != 0.0 {
                (sc - cp.sigma2) / cp.sigma2.abs()
            } else {
                0.0
            };
            rk += cp.k_curve_residual.powi(2);
            rs += cp.sigma2_curve_residual.powi(2);
        }
        if name == "all channels" {
            let n = points.len().max(1) as f64;
            rms = ((rk / n).sqrt(), (rs / n).sqrt());
        }
        curves.push(f.curve);
    }
    for p in points.iter() {
        if p.all.sigma2 < 0.0 {
            notes.push(format!(
                "ISO {}: the fitted read-noise variance is negative ({:.3e}): below what the flats resolve; the runtime clamps it to 0",
                p.iso, p.all.sigma2
            ));
        }
    }
    let info = FitInfo {
        k_degree: degrees.0,
        sigma2_degree: degrees.1,
        iso_weighting: match weighting {
            Weighting::Relative => "relative (1 / value^2)".into(),
            Weighting::Uniform => "uniform".into(),
        },
        estimator: String::new(),
        k_rms_residual: rms.0,
        sigma2_rms_residual: rms.1,
        notes,
    };
    Ok((
        curves[0],
        ChannelCurves {
            r: curves[1],
            g: curves[2],
            b: curves[3],
        },
        info,
    ))
}

/// Runs the whole calibration. `log` receives progress lines.
pub fn calibrate(
    opts: &CalibrateOptions,
    log: &mut dyn FnMut(String),
) -> Result<Profile, CalibError> {
    if opts.flats.is_empty() {
        return Err(CalibError::Usage("no flat frames given (--flats)".into()));
    }
    let mut darks: Vec<DarkReport> = Vec::new();
    let mut dark_ref: Option<Frame> = None;
    for set in &opts.darks {
        let frames = load_all(set, opts)?;
        if let (Some(r), Some(f)) = (&dark_ref, frames.first()) {
            r.check_same_sensor(f, "dark sets")?;
        }
        let r = darks::analyse(&frames, opts.hot_sigma)?;
        log(format!(
            "darks: {} frames, ISO {}, {} hot pixels, read-noise variance {:.4e} (normalised)",
            r.files.len(),
            r.iso.map_or("?".into(), |i| i.to_string()),
            r.hot_count,
            r.read_var
        ));
        if r.hot_count > r.hot_positions.len() {
            log(format!(
                "warning: only the first {} of {} hot pixels are excluded from the flats",
                r.hot_positions.len(),
                r.hot_count
            ));
        }
        if dark_ref.is_none() {
            dark_ref = frames.into_iter().next().map(|mut f| {
                f.data = Vec::new();
                f
            });
        }
        darks.push(r);
    }
    let mut exclude: Vec<[usize; 2]> = darks
        .iter()
        .flat_map(|d| d.hot_positions.iter().copied())
        .collect();
    exclude.sort_unstable();
    exclude.dedup();
    let fopts = FlatOptions {
        cell: opts.cell,
        rois: opts.rois.clone(),
        exclude,
        black: match (darks.first(), opts.black_from_darks) {
            (Some(d), true) => Some(std::array::from_fn(|c| d.channels[c].black_dn)),
            (None, true) => {
                return Err(CalibError::Usage("--black-from-darks needs --darks".into()))
            }
            _ => None,
        },
    };
    // First pass: metadata, consistency, saturation.
    let mut infos = Vec::with_capacity(opts.flats.len());
    let mut reference: Option<Frame> = None;
    for p in &opts.flats {
        let mut f = Frame::load(p, &opts.pgm, opts.iso)?;
        match (&reference, &dark_ref) {
            (Some(r), _) => r.check_same_sensor(&f, "flat set")?,
            (None, Some(d)) => d.check_same_sensor(&f, "dark and flat sets")?,
            (None, None) => {}
        }
        infos.push(flats::survey(&f, &fopts)?);
        if reference.is_none() {
            f.data = Vec::new();
            reference = Some(f);
        }
    }
    let Some(reference) = reference else {
        return Err(CalibError::Usage("no flat frames given (--flats)".into()));
    };
    let stacks = flats::group_stacks(&infos);
    let mut by_iso: BTreeMap<u32, IsoData> = BTreeMap::new();
    let mut notes = Vec::new();
    for s in &stacks {
        let frames: Vec<Frame> = s
            .iter()
            .map(|&i| Frame::load(&infos[i].path, &opts.pgm, opts.iso))
            .collect::<Result<_, _>>()?;
        let info = &infos[s[0]];
        let r = flats::analyse_stack(&frames, &fopts)?;
        log(format!(
            "ISO {} exposure {} level {:.3}: {} frame(s), {} cells ({} clipped, {} not flat)",
            info.iso,
            info.exposure_s.map_or("?".into(), |e| format!("{e}s")),
            info.level,
            frames.len(),
            r.cells.len(),
            r.dropped_clipped,
            r.dropped_not_flat
        ));
        if frames.len() == 1 {
            notes.push(format!(
                "ISO {}: {} is a single frame: its variance includes fixed-pattern noise (PRNU, column offsets); shoot 2+ frames per exposure",
                info.iso,
                info.path.display()
            ));
        }
        if r.saturation < reference.levels.white as f64 {
            notes.push(format!(
                "ISO {}: samples pile up at {} DN, below the white level {}: treated as saturation",
                info.iso, r.saturation, reference.levels.white
            ));
        }
        let e = by_iso.entry(info.iso).or_default();
        e.cells.extend(r.cells);
        e.frames += frames.len();
        e.dropped.0 += r.dropped_clipped;
        e.dropped.1 += r.dropped_not_flat;
        e.rows.push(r.row_var);
    }
    for d in &darks {
        let Some(entry) = d.iso.and_then(|i| by_iso.get_mut(&i)) else {
            continue;
        };
        let iso = d.iso.unwrap_or(0);
        if d.clipped_fraction > darks::MAX_DARK_CLIPPED {
            notes.push(format!(
                "ISO {iso}: the darks are not used in the fit: {:.2}% of their samples are clipped at 0",
                100.0 * d.clipped_fraction
            ));
            continue;
        }
        for (c, ch) in d.channels.iter().enumerate() {
            let black = fopts
                .black
                .map_or(reference.levels.black[c] as f64, |b| b[c]);
            let range = reference.levels.white as f64 - black;
            entry.cells.push(CellPoint {
                channel: c,
                sample: Sample {
                    x: (ch.black_dn - black) / range,
                    var: ch.read_var_dn2 / (range * range),
                    dof: ch.read_dof.min(DARK_MAX_DOF),
                    // The measured black level is itself noisy (pixel and row noise
                    // averaged over the set).
                    x_var: ch.black_var_dn2 / (range * range),
                },
                rows: 0.0,
            });
        }
        notes.push(format!(
            "ISO {iso}: the dark set ({} frames) adds the read-noise variance of each channel as a point at level 0",
            d.files.len()
        ));
    }
    let mut points = Vec::new();
    for (iso, data) in &by_iso {
        let p = fit_iso(*iso, data)?;
        log(format!(
            "ISO {iso}: k = {:.4e} +- {:.1e}, sigma2 = {:.4e} +- {:.1e} ({} cells, {} rejected)",
            p.all.k,
            p.all.k_se.unwrap_or(0.0),
            p.all.sigma2,
            p.all.sigma2_se.unwrap_or(0.0),
            p.all.cells,
            p.all.rejected
        ));
        points.push(p);
    }
    let (pooled, channels, mut fit) = fit_all_curves(&mut points, Weighting::Relative)?;
    fit.estimator = ESTIMATOR.replace("CxC", &format!("{0}x{0}", opts.cell / 2));
    fit.notes.extend(notes);
    for d in &darks {
        if let Some(p) = points
            .iter()
            .find(|p| d.iso.is_some_and(|i| i as f64 == p.iso))
        {
            fit.notes.push(format!(
                "darks at ISO {}: read-noise variance {:.4e}; fitted sigma2 {:.4e} (ratio {:.3})",
                p.iso,
                d.read_var,
                p.all.sigma2,
                d.read_var / p.all.sigma2
            ));
        }
        fit.notes.extend(
            d.notes
                .iter()
                .map(|n| format!("darks ISO {}: {n}", d.iso.unwrap_or(0))),
        );
    }
    let black = fopts
        .black
        .unwrap_or(reference.levels.black.map(|b| b as f64));
    Ok(Profile {
        noise: NoiseProfile {
            format: crate::profile::FORMAT.into(),
            version: crate::profile::VERSION,
            sensor: opts.sensor.clone().unwrap_or_else(|| {
                if reference.sensor.is_empty() {
                    "unknown".into()
                } else {
                    reference.sensor.clone()
                }
            }),
            source: "calibration".into(),
            units: crate::profile::UNITS.into(),
            k: pooled.k,
            sigma2: pooled.sigma2,
            channels: Some(channels),
            black: Some(black),
            white: Some(reference.levels.white as f64),
            cfa: Some(reference.cfa.name().into()),
        },
        fit,
        points,
        darks,
    })
}
