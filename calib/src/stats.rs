//! Small statistics helpers.

/// Median of `v` (reorders it); NaN for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if v.len() % 2 == 1 {
        m
    } else {
        let lower = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + m)
    }
}

/// Median and the normal-consistent median absolute deviation (1.4826 MAD) of `v`.
pub fn median_mad(v: &[f64]) -> (f64, f64) {
    let mut w = v.to_vec();
    let m = median(&mut w);
    for x in &mut w {
        *x = (*x - m).abs();
    }
    (m, 1.4826 * median(&mut w))
}

/// Sample variance (denominator `n - 1`) of `v`; 0 for fewer than two values.
pub fn sample_var(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error below
/// 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Variance of `max(Z, -a)` for a standard normal `Z`: what clamping at `a` standard
/// deviations below the mean leaves of a unit variance.
pub fn clamped_normal_var(a: f64) -> f64 {
    let p = normal_cdf(-a);
    let phi = (-0.5 * a * a).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let m = -a * p + phi;
    let e2 = a * a * p - a * phi + 1.0 - p;
    e2 - m * m
}

/// The factor by which clamping of a Gaussian shrinks its variance when a fraction `p`
/// (below 0.5) of its samples sit at the clamp: `clamped_normal_var(a)` with
/// `normal_cdf(-a) = p`.
pub fn clamp_factor(p: f64) -> f64 {
    if p.is_nan() || p <= 0.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0f64, 12.0f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(-mid) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    clamped_normal_var(0.5 * (lo + hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
        let (m, s) = median_mad(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        assert_eq!(m, 3.0);
        assert!((s - 1.4826).abs() < 1e-12);
        assert_eq!(sample_var(&[1.0, 3.0]), 2.0);
    }

    #[test]
    fn normal_and_clamping() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(-3.090_232) - 1e-3).abs() < 1e-8);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-7);
        // Numerically integrated values of the clamped normal's variance.
        assert!((clamp_factor(1e-3) - (1.0 - 1.86e-3)).abs() < 2e-5);
        assert!((clamp_factor(9.9e-3) - (1.0 - 1.77e-2)).abs() < 2e-4);
        assert_eq!(clamp_factor(0.0), 1.0);
    }
}
