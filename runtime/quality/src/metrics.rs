//! PSNR and SSIM.

/// PSNR in dB of `test` against `reference` for signals of peak `peak` (infinite when equal).
pub fn psnr(reference: &[f64], test: &[f64], peak: f64) -> f64 {
    assert_eq!(reference.len(), test.len(), "psnr: lengths differ");
    let mse = reference
        .iter()
        .zip(test)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / reference.len().max(1) as f64;
    10.0 * (peak * peak / mse).log10()
}

/// Gaussian window of SSIM (Wang et al. 2004): 11 taps, sigma 1.5, normalised.
fn window() -> [f64; 11] {
    let mut w = [0.0; 11];
    for (i, v) in w.iter_mut().enumerate() {
        let d = i as f64 - 5.0;
        *v = (-d * d / (2.0 * 1.5 * 1.5)).exp();
    }
    let s: f64 = w.iter().sum();
    w.map(|v| v / s)
}

/// Separable Gaussian filter of an `h x w` plane, "valid" region only
/// (`(h - 10) x (w - 10)`).
fn blur(x: &[f64], h: usize, w: usize, win: &[f64; 11]) -> Vec<f64> {
    let (oh, ow) = (h - 10, w - 10);
    let mut rows = vec![0.0; h * ow];
    for y in 0..h {
        for xo in 0..ow {
            rows[y * ow + xo] = (0..11).map(|t| win[t] * x[y * w + xo + t]).sum();
        }
    }
    let mut out = vec![0.0; oh * ow];
    for yo in 0..oh {
        for xo in 0..ow {
            out[yo * ow + xo] = (0..11).map(|t| win[t] * rows[(yo + t) * ow + xo]).sum();
        }
    }
    out
}

/// Mean SSIM of two planes of `h x w` (dynamic range 1), or `None` when smaller than the
/// 11x11 window.
fn ssim_plane(a: &[f64], b: &[f64], h: usize, w: usize) -> Option<f64> {
    if h < 11 || w < 11 {
        return None;
    }
    let win = window();
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let prod = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(x, y)| x * y).collect::<Vec<_>>();
    let (ma, mb) = (blur(a, h, w, &win), blur(b, h, w, &win));
    let (saa, sbb, sab) = (
        blur(&prod(a, a), h, w, &win),
        blur(&prod(b, b), h, w, &win),
        blur(&prod(a, b), h, w, &win),
    );
    let n = ma.len();
    let sum: f64 = (0..n)
        .map(|i| {
            let (mx, my) = (ma[i], mb[i]);
            let (vx, vy, cxy) = (saa[i] - mx * mx, sbb[i] - my * my, sab[i] - mx * my);
            ((2.0 * mx * my + c1) * (2.0 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        })
        .sum();
    Some(sum / n as f64)
}

/// SSIM of two Bayer frames of `width x height` (row-major, normalised, range 1): the mean of
/// the SSIM of the four CFA sample planes (each 2x2 position is one colour, so neighbouring
/// samples of different colours never mix), Gaussian window 11x11, sigma 1.5. `None` for
/// frames under 22x22.
pub fn ssim_bayer(reference: &[f64], test: &[f64], width: usize, height: usize) -> Option<f64> {
    assert_eq!(reference.len(), width * height, "ssim: reference size");
    assert_eq!(test.len(), width * height, "ssim: test size");
    let (h, w) = (height / 2, width / 2);
    let mut total = 0.0;
    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let plane = |f: &[f64]| -> Vec<f64> {
            (0..h)
                .flat_map(|y| (0..w).map(move |x| (y, x)))
                .map(|(y, x)| f[(2 * y + dy) * width + 2 * x + dx])
                .collect()
        };
        total += ssim_plane(&plane(reference), &plane(test), h, w)?;
    }
    Some(total / 4.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_a_known_error() {
        let a = vec![0.5; 100];
        let b: Vec<f64> = a.iter().map(|v| v + 0.01).collect();
        assert!((psnr(&a, &b, 1.0) - 40.0).abs() < 1e-9);
    }

    #[test]
    fn ssim_is_one_for_equal_frames_and_falls_with_noise() {
        let (w, h) = (40, 30);
        let a: Vec<f64> = (0..w * h)
            .map(|i| 0.3 + 0.2 * ((i % w) as f64 / w as f64) + 0.1 * ((i / w) % 7) as f64 / 7.0)
            .collect();
        assert!((ssim_bayer(&a, &a, w, h).unwrap() - 1.0).abs() < 1e-12);
        let noisy: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, v)| v + if (i * 7919) % 13 < 6 { 0.05 } else { -0.05 })
            .collect();
        let s = ssim_bayer(&a, &noisy, w, h).unwrap();
        assert!(s < 0.9 && s > 0.0, "{s}");
        // A constant offset lowers the luminance term only a little.
        let shifted: Vec<f64> = a.iter().map(|v| v + 0.01).collect();
        assert!(ssim_bayer(&a, &shifted, w, h).unwrap() > 0.99);
        assert!(ssim_bayer(&a[..20 * 20], &a[..20 * 20], 20, 20).is_none());
    }
}
