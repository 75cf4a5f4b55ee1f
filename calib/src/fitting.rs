//! Least-squares fits: the Poisson-Gaussian line `var = k x + sigma2` through mean-variance
//! samples of one ISO, and the polynomials `k(ISO)` (linear) and `sigma2(ISO)` (quadratic)
//! through the per-ISO parameters.

use crate::error::CalibError;
use crate::profile::Curve;

/// One mean-variance sample: normalised mean, noise variance, and the degrees of freedom of
/// the variance estimate (its relative standard error is about `sqrt(2 / dof)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Normalised mean level.
    pub x: f64,
    /// Normalised noise variance.
    pub var: f64,
    /// Degrees of freedom of `var`.
    pub dof: f64,
    /// Variance of the estimate `x` itself (row noise and flicker average out slowly): the
    /// fit counts `k^2 x_var` as extra uncertainty of `var`.
    pub x_var: f64,
}

/// Result of [`fit_line`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    /// Slope: shot-noise gain k.
    pub k: f64,
    /// Intercept: read-noise variance sigma^2.
    pub sigma2: f64,
    /// Standard error of `k`.
    pub k_se: f64,
    /// Standard error of `sigma2`.
    pub sigma2_se: f64,
    /// Samples used.
    pub used: usize,
    /// Samples rejected as outliers.
    pub rejected: usize,
    /// Chi-square per degree of freedom of the used samples (about 1 when the model and the
    /// error model hold).
    pub chi2_dof: f64,
}

/// Outliers are samples more than this many standard errors from the line.
pub const OUTLIER_Z: f64 = 5.0;

fn solve_line(s: &[Sample], w: &[f64], keep: &[bool]) -> Option<(f64, f64, [f64; 3])> {
    let (mut s1, mut sx, mut sxx, mut sv, mut sxv) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for ((p, &w), &k) in s.iter().zip(w).zip(keep) {
        if k {
            s1 += w;
            sx += w * p.x;
            sxx += w * p.x * p.x;
            sv += w * p.var;
            sxv += w * p.x * p.var;
        }
    }
    let det = sxx * s1 - sx * sx;
    if !det.is_finite() || det <= 1e-12 * sxx * s1 {
        return None;
    }
    let k = (sxv * s1 - sx * sv) / det;
    let c = (sxx * sv - sx * sxv) / det;
    // Inverse of the normal matrix: var(k), var(c), cov.
    Some((k, c, [s1 / det, sxx / det, -sx / det]))
}

/// Weighted least-squares fit of `var = k x + sigma2`, iteratively reweighted with the
/// uncertainty of each sample (`2 pred^2 / dof + k^2 x_var`), rejecting samples more than
/// [`OUTLIER_Z`] standard errors away. `None` when fewer than two distinct levels remain.
pub fn fit_line(samples: &[Sample]) -> Option<LineFit> {
    let s: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|p| p.x.is_finite() && p.var.is_finite() && p.var > 0.0 && p.dof >= 1.0)
        .collect();
    if s.len() < 2 {
        return None;
    }
    let min_var = s.iter().map(|p| p.var).fold(f64::INFINITY, f64::min);
    let floor = 0.01 * min_var;
    let mut keep = vec![true; s.len()];
    let mut pred: Vec<f64> = s.iter().map(|p| p.var).collect();
    let mut slope = 0.0;
    let err2 = |p: &Sample, v: f64, k: f64| 2.0 * v * v / p.dof + k * k * p.x_var.max(0.0);
    let mut fit = None;
    for it in 0..12 {
        let w: Vec<f64> = s
            .iter()
            .zip(&pred)
            .map(|(p, &v)| 1.0 / err2(p, v, slope))
            .collect();
        let (k, c, cov) = solve_line(&s, &w, &keep)?;
        pred = s.iter().map(|p| (k * p.x + c).max(floor)).collect();
        slope = k;
        fit = Some((k, c, cov));
        if it >= 2 {
            let new_keep: Vec<bool> = s
                .iter()
                .zip(&pred)
                .map(|(p, &v)| (p.var - v).abs() <= OUTLIER_Z * err2(p, v, k).sqrt())
                .collect();
            if new_keep.iter().filter(|&&k| k).count() >= 2 {
                keep = new_keep;
            }
        }
    }
    let (k, c, cov) = fit?;
    let used = keep.iter().filter(|&&k| k).count();
    let chi2: f64 = s
        .iter()
        .zip(&pred)
        .zip(&keep)
        .filter(|(_, &k)| k)
        .map(|((p, &v), _)| (p.var - v).powi(2) / err2(p, v, k))
        .sum();
    let chi2_dof = if used > 2 {
        chi2 / (used - 2) as f64
    } else {
        1.0
    };
    let scale = chi2_dof.max(1.0);
    Some(LineFit {
        k,
        sigma2: c,
        k_se: (cov[0] * scale).sqrt(),
        sigma2_se: (cov[1] * scale).sqrt(),
        used,
        rejected: s.len() - used,
        chi2_dof,
    })
}

/// Weights of the polynomial fits over ISO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weighting {
    /// Minimise relative residuals (weights `1 / y^2`): every ISO counts the same in
    /// relative terms, which is what a denoiser needs.
    Relative,
    /// Plain least squares (what `numpy.polyfit` does).
    Uniform,
}

/// Least-squares polynomial of `degree` (0..=2) through `(xs, ys)`; coefficients highest
/// power first. `None` if there are too few distinct points or the system is singular.
pub fn fit_poly(xs: &[f64], ys: &[f64], degree: usize, weighting: Weighting) -> Option<Vec<f64>> {
    let n = degree + 1;
    if degree > 2 || xs.len() != ys.len() || xs.len() < n {
        return None;
    }
    let scale = xs.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    if !(scale > 0.0 && scale.is_finite()) {
        return None;
    }
    let ymax = ys.iter().fold(0.0f64, |a, y| a.max(y.abs()));
    // Normal equations in t = x / scale, unknowns c_0..c_degree (lowest power first).
    let mut a = [[0.0f64; 4]; 3];
    for (&x, &y) in xs.iter().zip(ys) {
        let w = match weighting {
            Weighting::Uniform => 1.0,
            Weighting::Relative => 1.0 / y.abs().max(1e-3 * ymax).max(f64::MIN_POSITIVE).powi(2),
        };
        let t = x / scale;
        let pw = [1.0, t, t * t];
        for r in 0..n {
            for c in 0..n {
                a[r][c] += w * pw[r] * pw[c];
            }
            a[r][3] += w * pw[r] * y;
        }
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        a.swap(col, piv);
        let d = a[col][col];
        if d.is_nan() || d.abs() <= 1e-12 * a[0][0].abs().max(f64::MIN_POSITIVE) {
            return None;
        }
        for r in 0..n {
            if r != col {
                let f = a[r][col] / d;
                let pivot_row = a[col];
                for (v, p) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                    *v -= f * p;
                }
            }
        }
    }
    let coef: Vec<f64> = (0..n)
        .rev()
        .map(|p| a[p][3] / a[p][p] / scale.powi(p as i32))
        .collect();
    coef.iter().all(|c| c.is_finite()).then_some(coef)
}

/// Curves through per-ISO parameters, with the degrees used and notes on fallbacks.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveFit {
    /// The fitted curves.
    pub curve: Curve,
    /// Degree of k(ISO): 1, or 0 with a single ISO.
    pub k_degree: usize,
    /// Degree of sigma2(ISO): 2, or lower with fewer than three ISOs.
    pub sigma2_degree: usize,
    /// What was simplified and why.
    pub notes: Vec<String>,
}

fn pad<const N: usize>(c: &[f64]) -> [f64; N] {
    let mut out = [0.0; N];
    out[N - c.len()..].copy_from_slice(c);
    out
}

/// Fits `k(ISO)` (linear) and `sigma2(ISO)` (quadratic) through per-ISO values, falling back
/// to lower orders with fewer ISOs (and saying so in the notes). `what` names the channel
/// in the notes and errors.
pub fn fit_curves(
    isos: &[f64],
    ks: &[f64],
    sigma2s: &[f64],
    weighting: Weighting,
    what: &str,
) -> Result<CurveFit, CalibError> {
    let n = isos.len();
    if n == 0 || ks.len() != n || sigma2s.len() != n {
        return Err(CalibError::Fit(format!(
            "{what}: no per-ISO parameters to fit"
        )));
    }
    let mut distinct: Vec<f64> = isos.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let m = distinct.len();
    let k_degree = 1.min(m - 1);
    let sigma2_degree = 2.min(m - 1);
    let mut notes = Vec::new();
    if m == 1 {
        notes.push(format!(
            "{what}: a single ISO ({}): k and sigma2 are constants, valid at that ISO only",
            distinct[0]
        ));
    } else if m == 2 {
        notes.push(format!(
            "{what}: only 2 ISOs: sigma2(ISO) fitted as a line (quadratic term 0)"
        ));
    }
    let fail = |which: &str| CalibError::Fit(format!("{what}: the {which}(ISO) fit is singular"));
    let k = fit_poly(isos, ks, k_degree, weighting).ok_or_else(|| fail("k"))?;
    let s = fit_poly(isos, sigma2s, sigma2_degree, weighting).ok_or_else(|| fail("sigma2"))?;
    Ok(CurveFit {
        curve: Curve {
            k: pad::<2>(&k),
            sigma2: pad::<3>(&s),
        },
        k_degree,
        sigma2_degree,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_fit_recovers_exact_data_and_rejects_outliers() {
        let mut s: Vec<Sample> = (0..20)
            .map(|i| {
                let x = i as f64 * 0.05;
                Sample {
                    x,
                    var: 0.004 * x + 2e-5,
                    dof: 1000.0,
                    x_var: 0.0,
                }
            })
            .collect();
        s[7].var *= 3.0;
        let f = fit_line(&s).unwrap();
        assert!((f.k - 0.004).abs() < 1e-9 && (f.sigma2 - 2e-5).abs() < 1e-11);
        assert_eq!((f.used, f.rejected), (19, 1));
        assert!(fit_line(&s[..1]).is_none());
        let same_x = vec![
            Sample {
                x: 0.5,
                var: 1.0,
                dof: 10.0,
                x_var: 0.0,
            };
            4
        ];
        assert!(fit_line(&same_x).is_none());
    }

    #[test]
    fn poly_fit_and_fallbacks() {
        let isos = [100.0, 400.0, 1600.0, 6400.0];
        let ys: Vec<f64> = isos
            .iter()
            .map(|i| 3e-11 * i * i + 2e-7 * i + 1e-5)
            .collect();
        let c = fit_poly(&isos, &ys, 2, Weighting::Relative).unwrap();
        assert!((c[0] / 3e-11 - 1.0).abs() < 1e-6 && (c[2] / 1e-5 - 1.0).abs() < 1e-6);
        let f = fit_curves(&isos[..2], &ys[..2], &ys[..2], Weighting::Uniform, "G").unwrap();
        assert_eq!((f.k_degree, f.sigma2_degree), (1, 1));
        assert!(f.notes[0].contains("only 2 ISOs"));
        let f = fit_curves(&[800.0], &[0.01], &[1e-4], Weighting::Relative, "G").unwrap();
        assert_eq!(f.curve.k, [0.0, 0.01]);
        assert_eq!(f.curve.sigma2, [0.0, 0.0, 1e-4]);
        assert!(f.notes[0].contains("single ISO"));
        assert!(fit_curves(&[], &[], &[], Weighting::Relative, "G").is_err());
    }
}
