//! Flat (gray target) frames: mean-variance cells per CFA channel.
//!
//! Frames are grouped into stacks: same ISO, same exposure time, mean level within 5%.
//! Each stack's active area (or each `--roi`) is cut into cells per colour plane. With
//! `m >= 2` frames in a stack the cell variance is temporal only:
//! `d_f(p) = y_f(p) - mean_f y(p)` cancels fixed pattern (PRNU, DSNU, the target itself),
//! the row mean of `d_f` is removed (temporal row noise, flicker; reported apart), and
//! `var = sum d'^2 / ((m - 1) sum_rows (n_row - 1))`, unbiased for independent pixel noise
//! (for `m = 2` this is `var((a - b) / sqrt(2))` with row offsets removed). A single frame
//! falls back to the residual after removing row and column means (`/(R - 1)(C - 1)`), which
//! keeps fixed-pattern noise, and to a flatness test against same-colour second differences.
//! Hot pixels (from the darks) and pixels clipped in every frame are left out; cells whose
//! mean is within 3.1 standard deviations (of all the cell's samples) of 0 or of the
//! saturation level, or with over 1% clipped samples, are dropped.

use std::path::PathBuf;

use crate::error::CalibError;
use crate::fitting::Sample;
use crate::frame::{Frame, Rect};

/// Options of the flat analysis.
#[derive(Debug, Clone)]
pub struct FlatOptions {
    /// Cell side in raw pixels (even; a cell holds `cell/2 x cell/2` samples per channel).
    pub cell: usize,
    /// Analyse only these rectangles, each one cell (active-area coordinates).
    pub rois: Vec<Rect>,
    /// Pixels to leave out, `[x, y]` in active-area coordinates (hot pixels).
    pub exclude: Vec<[usize; 2]>,
    /// Black levels R, Gr, Gb, B for normalising, instead of the files'.
    pub black: Option<[f64; 4]>,
}

/// What the first pass learns about a flat frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameInfo {
    /// File.
    pub path: PathBuf,
    /// ISO.
    pub iso: u32,
    /// Exposure time, seconds.
    pub exposure_s: Option<f64>,
    /// Mean normalised level over the analysed area.
    pub level: f64,
}

/// Largest accepted fraction of clipped samples in the analysed area of a flat frame.
pub const MAX_SATURATED: f64 = 0.5;
/// Cells whose mean is closer than this many sigma to 0 or saturation are dropped: at most
/// 0.1% of a Gaussian's samples clip there, which lowers its variance by under 0.2%. The
/// decision rests on the cell's mean and variance, not on its count of clipped samples,
/// which would keep the cells whose noise happened to be low.
pub const CLIP_MARGIN_SIGMA: f64 = 3.1;
/// Cells with more clipped samples than this fraction are dropped whatever their mean
/// (a saturation level below the white level, stuck pixels).
pub const MAX_CELL_CLIPPED: f64 = 0.01;

fn black_of(f: &Frame, opts: &FlatOptions, c: usize) -> f64 {
    opts.black.map_or(f.levels.black[c] as f64, |b| b[c])
}

/// The analysed rectangles: the ROIs, or the whole active area.
fn areas(f: &Frame, opts: &FlatOptions) -> Vec<Rect> {
    if opts.rois.is_empty() {
        vec![Rect {
            x: 0,
            y: 0,
            w: f.active.w,
            h: f.active.h,
        }]
    } else {
        opts.rois.clone()
    }
}

/// First pass over a flat frame: its ISO, exposure and level; refuses a frame without ISO,
/// ROIs outside it, and a saturated frame.
pub fn survey(f: &Frame, opts: &FlatOptions) -> Result<FrameInfo, CalibError> {
    let iso = f.iso.ok_or_else(|| {
        CalibError::input(
            &f.path,
            "no ISO in the file: pass --iso for files without one",
        )
    })?;
    for r in &opts.rois {
        f.check_roi(*r)?;
    }
    let white = f.levels.white as f64;
    let (mut sum, mut n, mut clipped) = (0.0, 0usize, 0usize);
    for a in areas(f, opts) {
        for c in 0..4 {
            let black = black_of(f, opts, c);
            let (i0, i1, j0, j1) = f.plane_range(c, a);
            for i in i0..i1 {
                for j in j0..j1 {
                    let y = f.plane_sample(c, i, j) as f64;
                    sum += (y - black) / (white - black);
                    n += 1;
                    clipped += (y >= white) as usize;
                }
            }
        }
    }
    if n == 0 {
        return Err(CalibError::input(
            &f.path,
            "no samples in the analysed area",
        ));
    }
    let frac = clipped as f64 / n as f64;
    if frac > MAX_SATURATED {
        return Err(CalibError::input(
            &f.path,
            format!(
                "saturated flat: {:.0}% of the samples are at the white level {}; lower the exposure",
                100.0 * frac,
                f.levels.white
            ),
        ));
    }
    Ok(FrameInfo {
        path: f.path.clone(),
        iso,
        exposure_s: f.exposure_s,
        level: sum / n as f64,
    })
}

/// Groups frames into stacks (indices into `infos`): same ISO, same exposure, level within
/// 5% (or 0.002) of the stack's first frame. Stacks come out by ISO, exposure and level.
pub fn group_stacks(infos: &[FrameInfo]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..infos.len()).collect();
    let key = |i: usize| {
        (
            infos[i].iso,
            infos[i].exposure_s.unwrap_or(-1.0),
            infos[i].level,
        )
    };
    order.sort_by(|&a, &b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
    });
    let mut stacks: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let fits = stacks.last().is_some_and(|s| {
            let f = &infos[s[0]];
            let g = &infos[i];
            let same_exp = match (f.exposure_s, g.exposure_s) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.max(b),
                (a, b) => a.is_none() && b.is_none(),
            };
            f.iso == g.iso
                && same_exp
                && (g.level - f.level).abs() <= (0.05 * f.level.abs()).max(0.002)
        });
        match stacks.last_mut() {
            Some(s) if fits => s.push(i),
            _ => stacks.push(vec![i]),
        }
    }
    stacks
}

/// One mean-variance cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellPoint {
    /// Canonical channel (R, Gr, Gb, B).
    pub channel: usize,
    /// Normalised mean, variance and degrees of freedom.
    pub sample: Sample,
    /// Plane rows in the cell.
    pub rows: f64,
}

/// One plane row of a stack cell: its per-frame mean temporal residual, less the cell's
/// per-frame mean (which takes out flicker and other per-frame offsets of the cell).
struct RowPart {
    i: usize,
    n: f64,
    rm: Vec<f64>,
    cell_var: f64,
    cell_rows: f64,
}

/// Per plane row, the kept cells' row parts combined along the row.
#[derive(Clone)]
struct RowAcc {
    n: f64,
    s: Vec<f64>,
    q: f64,
    fac: f64,
}

/// The cells of one stack and what was dropped.
#[derive(Debug, Clone, Default)]
pub struct StackResult {
    /// Usable cells.
    pub cells: Vec<CellPoint>,
    /// Cells dropped for clipping.
    pub dropped_clipped: usize,
    /// Cells dropped as not flat (single frames).
    pub dropped_not_flat: usize,
    /// Saturation level used (the white level, or a lower level where samples pile up).
    pub saturation: f64,
    /// Temporal row-noise variance (normalised) and its degrees of freedom, per canonical
    /// channel (stacks of 2+ frames only).
    pub row_var: [Option<(f64, f64)>; 4],
}

/// The saturation level: the white level, or the largest sample when at least 16 samples
/// pile up there between 90% and 100% of white.
fn saturation(frames: &[Frame]) -> f64 {
    let white = frames[0].levels.white as f64;
    let top = frames
        .iter()
        .flat_map(|f| f.data.iter())
        .copied()
        .max()
        .unwrap_or(0) as f64;
    if top < white && top >= 0.9 * white {
        let n: usize = frames
            .iter()
            .map(|f| f.data.iter().filter(|&&v| v as f64 == top).count())
            .sum();
        if n >= 16 {
            return top;
        }
    }
    white
}

struct Cell {
    c: usize,
    i0: usize,
    i1: usize,
    j0: usize,
    j1: usize,
}

enum Outcome {
    Point(CellPoint, Vec<RowPart>),
    Clipped,
    NotFlat,
    Empty,
}

/// Analyses one stack of frames (same sensor, ISO, exposure and scene).
pub fn analyse_stack(frames: &[Frame], opts: &FlatOptions) -> Result<StackResult, CalibError> {
    let Some(f0) = frames.first() else {
        return Ok(StackResult::default());
    };
    if opts.cell < 8 || opts.cell % 2 == 1 {
        return Err(CalibError::Usage(
            "--cell must be even and at least 8".into(),
        ));
    }
    let sat = saturation(frames);
    // Excluded pixels per channel plane.
    let mut masks: Vec<Vec<bool>> = (0..4)
        .map(|c| {
            let (w, h) = f0.plane_dims(c);
            vec![false; w * h]
        })
        .collect();
    for &[x, y] in &opts.exclude {
        if x < f0.active.w && y < f0.active.h {
            let (c, i, j) = f0.active_to_plane(x, y);
            let (w, _) = f0.plane_dims(c);
            masks[c][i * w + j] = true;
        }
    }
    let mut cells = Vec::new();
    for c in 0..4 {
        let (pw, ph) = f0.plane_dims(c);
        if opts.rois.is_empty() {
            let cs = opts.cell / 2;
            for i0 in (0..ph.saturating_sub(cs - 1)).step_by(cs) {
                for j0 in (0..pw.saturating_sub(cs - 1)).step_by(cs) {
                    cells.push(Cell {
                        c,
                        i0,
                        i1: i0 + cs,
                        j0,
                        j1: j0 + cs,
                    });
                }
            }
        } else {
            for r in &opts.rois {
                let (i0, i1, j0, j1) = f0.plane_range(c, *r);
                cells.push(Cell { c, i0, i1, j0, j1 });
            }
        }
    }
    let mut out = StackResult {
        saturation: sat,
        ..Default::default()
    };
    let test_flatness = opts.rois.is_empty();
    let m = frames.len();
    let mut rows: Vec<Vec<Option<RowAcc>>> =
        (0..4).map(|c| vec![None; f0.plane_dims(c).1]).collect();
    for cell in &cells {
        let (w, _) = f0.plane_dims(cell.c);
        let masked = |i: usize, j: usize| masks[cell.c][i * w + j];
        let o = if m >= 2 {
            stack_cell(frames, cell, sat, &masked)
        } else {
            single_cell(f0, cell, sat, &masked, test_flatness)
        };
        match o {
            Outcome::Point(mut p, parts) => {
                let black = black_of(f0, opts, cell.c);
                let range = f0.levels.white as f64 - black;
                p.sample.x = (p.sample.x - black) / range;
                p.sample.var /= range * range;
                p.sample.x_var /= range * range;
                out.cells.push(p);
                for r in parts {
                    let acc = rows[cell.c][r.i].get_or_insert_with(|| RowAcc {
                        n: 0.0,
                        s: vec![0.0; m],
                        q: 0.0,
                        fac: 0.0,
                    });
                    acc.n += r.n;
                    acc.s.iter_mut().zip(&r.rm).for_each(|(a, v)| *a += r.n * v);
                    acc.q += r.n * r.cell_var;
                    acc.fac += r.n * (1.0 - 1.0 / r.cell_rows);
                }
            }
            Outcome::Clipped => out.dropped_clipped += 1,
            Outcome::NotFlat => out.dropped_not_flat += 1,
            Outcome::Empty => {}
        }
    }
    for (c, rows) in rows.iter().enumerate() {
        let black = black_of(f0, opts, c);
        let range = f0.levels.white as f64 - black;
        out.row_var[c] = row_noise(rows, m).map(|(v, d)| (v / (range * range), d));
    }
    // Row offsets average out over a cell's rows and frames only: add them to the
    // uncertainty of its mean.
    for p in &mut out.cells {
        if let Some((rv, _)) = out.row_var[p.channel] {
            p.sample.x_var += rv.max(0.0) / (p.rows * m as f64);
        }
    }
    Ok(out)
}

/// Temporal row-noise variance from rows combined along the plane: with `RM_f` the
/// combined row mean of frame `f` (cell means removed), `E[sum_f RM_f^2] = (m - 1) fac
/// (sigma_row^2 + sum n var / N^2)`, `fac` the mean of `1 - 1 / cell rows`.
fn row_noise(rows: &[Option<RowAcc>], m: usize) -> Option<(f64, f64)> {
    if m < 2 {
        return None;
    }
    let (mut sum, mut n) = (0.0, 0usize);
    for r in rows.iter().flatten() {
        if r.n < 2.0 || r.fac <= 0.0 {
            continue;
        }
        let t: f64 = r.s.iter().map(|v| (v / r.n).powi(2)).sum();
        sum += t / ((m - 1) as f64 * r.fac / r.n) - r.q / (r.n * r.n);
        n += 1;
    }
    (n >= 2).then(|| (sum / n as f64, ((m - 1) * n) as f64))
}

fn clipped(y: f64, sat: f64) -> bool {
    y <= 0.0 || y >= sat
}

fn near_clip(mean: f64, var: f64, sat: f64) -> bool {
    let s = CLIP_MARGIN_SIGMA * var.max(0.0).sqrt();
    mean - s <= 0.0 || mean + s >= sat
}

/// Temporal estimator over a stack (see the module documentation). Means are in DN here.
fn stack_cell(
    frames: &[Frame],
    cell: &Cell,
    sat: f64,
    masked: &dyn Fn(usize, usize) -> bool,
) -> Outcome {
    let m = frames.len();
    let mf = m as f64;
    let (mut ss, mut dof, mut sum_y, mut count, mut n_clip) = (0.0, 0.0, 0.0, 0.0, 0usize);
    let mut sum_y2 = 0.0;
    let mut parts: Vec<RowPart> = Vec::new();
    let mut ys = vec![0.0f64; m];
    let mut s = vec![0.0f64; m];
    let mut q = vec![0.0f64; m];
    for i in cell.i0..cell.i1 {
        s.iter_mut().for_each(|v| *v = 0.0);
        q.iter_mut().for_each(|v| *v = 0.0);
        let mut n = 0.0;
        for j in cell.j0..cell.j1 {
            if masked(i, j) {
                continue;
            }
            let mut nc = 0;
            for (y, f) in ys.iter_mut().zip(frames) {
                *y = f.plane_sample(cell.c, i, j) as f64;
                nc += clipped(*y, sat) as usize;
            }
            if nc == m {
                continue; // stuck: hot, dead or saturated in every frame
            }
            n_clip += nc;
            let mean = ys.iter().sum::<f64>() / mf;
            sum_y2 += ys.iter().map(|y| y * y).sum::<f64>();
            for f in 0..m {
                let d = ys[f] - mean;
                s[f] += d;
                q[f] += d * d;
            }
            sum_y += mean * mf;
            n += 1.0;
        }
        if n < 2.0 {
            continue;
        }
        for f in 0..m {
            ss += q[f] - s[f] * s[f] / n;
        }
        dof += (mf - 1.0) * (n - 1.0);
        count += n * mf;
        parts.push(RowPart {
            i,
            n,
            rm: s.iter().map(|v| v / n).collect(),
            cell_var: 0.0,
            cell_rows: 0.0,
        });
    }
    if dof < 8.0 {
        return Outcome::Empty;
    }
    let var = ss / dof;
    let mean = sum_y / count;
    // Clipping depends on the whole spread of the samples (row noise, fixed pattern too).
    let spread = (sum_y2 - sum_y * sum_y / count) / (count - 1.0);
    if n_clip as f64 > MAX_CELL_CLIPPED * count || near_clip(mean, spread.max(var), sat) {
        return Outcome::Clipped;
    }
    // Take out the cell's per-frame mean of the row means.
    let nrows = parts.len() as f64;
    for f in 0..m {
        let mu = parts.iter().map(|r| r.rm[f]).sum::<f64>() / nrows;
        parts.iter_mut().for_each(|r| r.rm[f] -= mu);
    }
    for r in &mut parts {
        r.cell_var = var;
        r.cell_rows = nrows;
    }
    Outcome::Point(
        CellPoint {
            channel: cell.c,
            sample: Sample {
                x: mean,
                var,
                dof,
                x_var: var / count,
            },
            rows: nrows,
        },
        parts,
    )
}

/// Single-frame estimator: rows with excluded or clipped pixels are left out; the residual
/// after removing row and column means gives the variance.
fn single_cell(
    f: &Frame,
    cell: &Cell,
    sat: f64,
    masked: &dyn Fn(usize, usize) -> bool,
    test_flatness: bool,
) -> Outcome {
    let cols = cell.j1.saturating_sub(cell.j0);
    let mut block: Vec<f64> = Vec::new();
    let (mut rows, mut total, mut n_clip) = (0usize, 0usize, 0usize);
    for i in cell.i0..cell.i1 {
        let row: Vec<f64> = (cell.j0..cell.j1)
            .filter(|&j| !masked(i, j))
            .map(|j| f.plane_sample(cell.c, i, j) as f64)
            .collect();
        total += row.len();
        let nc = row.iter().filter(|&&y| clipped(y, sat)).count();
        n_clip += nc;
        if row.len() == cols && nc == 0 {
            block.extend_from_slice(&row);
            rows += 1;
        }
    }
    if rows < 4 || cols < 4 {
        return Outcome::Empty;
    }
    let (var, mean, dof) = two_way(&block, rows, cols);
    let spread = crate::stats::sample_var(&block);
    if n_clip as f64 > MAX_CELL_CLIPPED * total as f64 || near_clip(mean, spread.max(var), sat) {
        return Outcome::Clipped;
    }
    if test_flatness && !is_flat(&block, rows, cols, var) {
        return Outcome::NotFlat;
    }
    Outcome::Point(
        CellPoint {
            channel: cell.c,
            sample: Sample {
                x: mean,
                var,
                dof,
                x_var: var / block.len() as f64,
            },
            rows: rows as f64,
        },
        Vec::new(),
    )
}

/// Residual variance after removing row and column means of a `rows x cols` block, its
/// mean, and its degrees of freedom `(rows - 1)(cols - 1)`.
pub fn two_way(block: &[f64], rows: usize, cols: usize) -> (f64, f64, f64) {
    let mut rm = vec![0.0; rows];
    let mut cm = vec![0.0; cols];
    for r in 0..rows {
        for c in 0..cols {
            let v = block[r * cols + c];
            rm[r] += v;
            cm[c] += v;
        }
    }
    let grand = rm.iter().sum::<f64>() / (rows * cols) as f64;
    rm.iter_mut().for_each(|v| *v /= cols as f64);
    cm.iter_mut().for_each(|v| *v /= rows as f64);
    let mut ss = 0.0;
    for r in 0..rows {
        for c in 0..cols {
            let e = block[r * cols + c] - rm[r] - cm[c] + grand;
            ss += e * e;
        }
    }
    let dof = ((rows - 1) * (cols - 1)) as f64;
    (ss / dof, grand, dof)
}

/// Noise variance from same-colour second differences `y[k-1] - 2 y[k] + y[k+1]` (variance
/// `6 sigma^2` for independent noise) along rows and columns: blind to linear gradients.
pub fn second_diff_var(block: &[f64], rows: usize, cols: usize) -> f64 {
    let (mut h, mut nh, mut v, mut nv) = (0.0, 0.0, 0.0, 0.0);
    for r in 0..rows {
        for c in 1..cols.saturating_sub(1) {
            let i = r * cols + c;
            h += (block[i - 1] - 2.0 * block[i] + block[i + 1]).powi(2);
            nh += 1.0;
        }
    }
    for r in 1..rows.saturating_sub(1) {
        for c in 0..cols {
            let i = r * cols + c;
            v += (block[i - cols] - 2.0 * block[i] + block[i + cols]).powi(2);
            nv += 1.0;
        }
    }
    if nh == 0.0 || nv == 0.0 {
        return f64::NAN;
    }
    (h / nh + v / nv) / 12.0
}

/// Sub-blocks per side of the flatness test.
const SUB: usize = 4;

/// A cell is flat when the means of its 4 x 4 sub-blocks lie on a plane (a gradient is
/// fine, an edge or texture is not) within the noise: chi-square per degree of freedom of
/// the plane fit at most 3 (13 degrees of freedom: a false alarm about once in 10^4 flat
/// cells). The noise variance is the smaller of the two-way and second-difference
/// estimates (structure inflates both).
pub fn is_flat(block: &[f64], rows: usize, cols: usize, var: f64) -> bool {
    let v2 = second_diff_var(block, rows, cols);
    let noise = var.min(v2);
    if noise.is_nan() || noise <= 0.0 || rows < 2 * SUB || cols < 2 * SUB {
        return noise > 0.0;
    }
    // Sub-block means, centres and sizes.
    let edge = |n: usize, k: usize| k * n / SUB;
    let mut pts = Vec::with_capacity(SUB * SUB);
    for bi in 0..SUB {
        for bj in 0..SUB {
            let (r0, r1, c0, c1) = (
                edge(rows, bi),
                edge(rows, bi + 1),
                edge(cols, bj),
                edge(cols, bj + 1),
            );
            let mut sum = 0.0;
            for r in r0..r1 {
                sum += block[r * cols + c0..r * cols + c1].iter().sum::<f64>();
            }
            let n = ((r1 - r0) * (c1 - c0)) as f64;
            pts.push(((r0 + r1) as f64 / 2.0, (c0 + c1) as f64 / 2.0, sum / n, n));
        }
    }
    // Weighted plane m = a + b r + c c by normal equations (3 x 3, Cramer's rule).
    let mut a = [[0.0f64; 3]; 3];
    let mut y = [0.0f64; 3];
    for &(r, c, m, n) in &pts {
        let v = [1.0, r, c];
        for i in 0..3 {
            for j in 0..3 {
                a[i][j] += n * v[i] * v[j];
            }
            y[i] += n * v[i] * m;
        }
    }
    let det3 = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det3(&a);
    if d.abs() < 1e-12 {
        return false;
    }
    let coef: Vec<f64> = (0..3)
        .map(|k| {
            let mut m = a;
            for i in 0..3 {
                m[i][k] = y[i];
            }
            det3(&m) / d
        })
        .collect();
    let chi2: f64 = pts
        .iter()
        .map(|&(r, c, m, n)| n * (m - coef[0] - coef[1] * r - coef[2] * c).powi(2) / noise)
        .sum();
    chi2 / (SUB * SUB - 3) as f64 <= 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(iso: u32, exp: Option<f64>, level: f64) -> FrameInfo {
        FrameInfo {
            path: "f".into(),
            iso,
            exposure_s: exp,
            level,
        }
    }

    #[test]
    fn stacks_split_by_iso_exposure_and_level() {
        let infos = [
            info(100, Some(0.01), 0.3),
            info(200, Some(0.01), 0.3),
            info(100, Some(0.01), 0.31),
            info(100, Some(0.02), 0.6),
            info(100, None, 0.2),
            info(100, None, 0.5),
        ];
        let s = group_stacks(&infos);
        assert_eq!(s, vec![vec![4], vec![5], vec![0, 2], vec![3], vec![1]]);
    }

    #[test]
    fn flatness_accepts_gradients_and_rejects_edges() {
        let (rows, cols) = (32, 32);
        // Deterministic pseudo-noise of unit variance.
        let mut state = 12345u64;
        let mut noise = || {
            let mut s = 0.0;
            for _ in 0..12 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s += (state >> 11) as f64 / (1u64 << 53) as f64;
            }
            s - 6.0
        };
        let grad: Vec<f64> = (0..rows * cols)
            .map(|k| 100.0 + 0.2 * (k / cols) as f64 + 0.1 * (k % cols) as f64 + noise())
            .collect();
        let (v, _, _) = two_way(&grad, rows, cols);
        assert!(is_flat(&grad, rows, cols, v));
        let edge: Vec<f64> = (0..rows * cols)
            .map(|k| 100.0 + if k % cols > 27 { 6.0 } else { 0.0 } + noise())
            .collect();
        let (v, _, _) = two_way(&edge, rows, cols);
        assert!(!is_flat(&edge, rows, cols, v));
    }

    #[test]
    fn two_way_removes_separable_structure() {
        let (rows, cols) = (6, 5);
        let block: Vec<f64> = (0..rows * cols)
            .map(|k| (k / cols) as f64 * 3.0 + (k % cols) as f64 * 7.0)
            .collect();
        let (var, mean, dof) = two_way(&block, rows, cols);
        assert!(var < 1e-20 && dof == 20.0);
        assert!((mean - (7.5 + 14.0)).abs() < 1e-12);
        assert!(second_diff_var(&block, rows, cols).abs() < 1e-20);
    }
}
