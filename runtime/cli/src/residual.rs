//! Estimate of the noise left after denoising, for the output's NoiseProfile tag.
//!
//! A same-colour Laplacian (`4p - p(y-2,x) - p(y+2,x) - p(y,x-2) - p(y,x+2)`) removes smooth
//! signal; the mean of its smaller half of absolute values is a robust noise scale (edges and
//! texture fall in the larger half; a mean, unlike a median, still resolves noise below one
//! digital number after denoising). The ratio of
//! that scale squared after/before denoising scales the input's noise parameters. Texture that
//! survives the filter is counted as noise in both, so the estimate errs towards more remaining
//! noise (a downstream denoiser then does a little more, never less, than needed).

use rawnr_core::bayer::FrameLayout;

fn laplacian_scale(data: &[u16], layout: &FrameLayout) -> f64 {
    let (w, h, s) = (layout.width, layout.height, layout.stride);
    if w < 5 || h < 5 {
        return 0.0;
    }
    // Subsample rows for speed on large frames: about 2 M samples at most.
    let step = ((w * h) / 2_000_000).max(1);
    let mut v: Vec<u32> = Vec::with_capacity((w - 4) * (h - 4) / step + 1);
    for y in (2..h - 2).step_by(step) {
        for x in 2..w - 2 {
            let p = |yy: usize, xx: usize| data[yy * s + xx] as i64;
            let l = 4 * p(y, x) - p(y - 2, x) - p(y + 2, x) - p(y, x - 2) - p(y, x + 2);
            v.push(l.unsigned_abs() as u32);
        }
    }
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    v.select_nth_unstable(mid);
    v[..=mid].iter().map(|&x| x as f64).sum::<f64>() / (mid + 1) as f64
}

/// Remaining-noise variance ratio after/before (in `[0, 1]`; 1 when it cannot be measured).
pub fn variance_ratio(before: &[u16], after: &[u16], layout: &FrameLayout) -> f64 {
    let b = laplacian_scale(before, layout);
    let a = laplacian_scale(after, layout);
    if b <= 0.0 {
        return 1.0;
    }
    ((a / b) * (a / b)).clamp(0.0, 1.0)
}
