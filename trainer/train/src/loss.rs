//! Losses on network-domain batches `[n, 4, h, w]`: L1, Charbonnier and 1 - MS-SSIM, mixed by
//! the weights of [`LossConfig`].

use burn::prelude::*;
use burn::tensor::module::{avg_pool2d, conv2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions};
use burn::tensor::TensorData;

use crate::config::LossConfig;

/// Side of the SSIM Gaussian window.
pub const SSIM_WINDOW: usize = 7;
/// Standard deviation of the SSIM window.
const SSIM_SIGMA: f64 = 1.5;
/// Scale weights of MS-SSIM (Wang et al. 2003), finest first; fewer scales use a prefix,
/// renormalised.
const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// Mean absolute error.
pub fn l1(pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    (pred - target).abs().mean()
}

/// Mean of `sqrt(d^2 + eps^2)`.
pub fn charbonnier(pred: Tensor<4>, target: Tensor<4>, eps: f32) -> Tensor<1> {
    let d = pred - target;
    (d.clone() * d + (eps * eps) as f64).sqrt().mean()
}

fn gaussian_window(channels: usize, device: &Device) -> Tensor<4> {
    let k = SSIM_WINDOW;
    let g: Vec<f64> = (0..k)
        .map(|i| {
            let x = i as f64 - (k / 2) as f64;
            (-x * x / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp()
        })
        .collect();
    let sum: f64 = g.iter().sum();
    let w: Vec<f32> = (0..channels * k * k)
        .map(|i| {
            let (y, x) = ((i / k) % k, i % k);
            (g[y] * g[x] / (sum * sum)) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(w, [channels, 1, k, k]), device)
}

/// Mean SSIM and mean contrast-structure term of `a` and `b` (data range 1).
fn ssim_terms(a: Tensor<4>, b: Tensor<4>, window: &Tensor<4>) -> (Tensor<1>, Tensor<1>) {
    let c = a.dims()[1];
    let opts = || ConvOptions::new([1, 1], [0, 0], [1, 1], c);
    let filt = |x: Tensor<4>| conv2d(x, window.clone(), None, opts());
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let mu_a = filt(a.clone());
    let mu_b = filt(b.clone());
    let mu_aa = mu_a.clone() * mu_a.clone();
    let mu_bb = mu_b.clone() * mu_b.clone();
    let mu_ab = mu_a * mu_b;
    let s_aa = filt(a.clone() * a.clone()) - mu_aa.clone();
    let s_bb = filt(b.clone() * b.clone()) - mu_bb.clone();
    let s_ab = filt(a * b) - mu_ab.clone();
    let cs = (s_ab * 2.0 + c2) / (s_aa + s_bb + c2);
    let lum = (mu_ab * 2.0 + c1) / (mu_aa + mu_bb + c1);
    ((lum * cs.clone()).mean(), cs.mean())
}

/// MS-SSIM over `scales` scales (2x2 average pooling between them); values are divided by
/// `scale` first so the data range is about 1.
pub fn ms_ssim(pred: Tensor<4>, target: Tensor<4>, scales: usize, scale: f32) -> Tensor<1> {
    let device = pred.device();
    let window = gaussian_window(pred.dims()[1], &device);
    let weights = &MS_SSIM_WEIGHTS[..scales.min(5)];
    let total: f64 = weights.iter().sum();
    let (mut a, mut b) = (pred / scale as f64, target / scale as f64);
    let mut out: Option<Tensor<1>> = None;
    for (i, w) in weights.iter().enumerate() {
        let (ssim, cs) = ssim_terms(a.clone(), b.clone(), &window);
        let term = if i + 1 == weights.len() { ssim } else { cs };
        // Clamped positive before the power (a negative mean is rare and means no structure).
        let term = term.clamp_min(1e-6).powf_scalar(w / total);
        out = Some(match out {
            Some(o) => o * term,
            None => term,
        });
        if i + 1 < weights.len() {
            let pool = || AvgPoolOptions::new([2, 2]);
            a = avg_pool2d(a, pool());
            b = avg_pool2d(b, pool());
        }
    }
    out.expect("at least one scale")
}

/// The weighted loss of `cfg` (network-domain values, divided by `scale` so that weights do
/// not depend on the input scale).
pub fn loss(pred: Tensor<4>, target: Tensor<4>, cfg: &LossConfig, scale: f32) -> Tensor<1> {
    let device = pred.device();
    let mut total = Tensor::<1>::zeros([1], &device);
    let s = scale as f64;
    if cfg.l1 > 0.0 {
        total = total + l1(pred.clone(), target.clone()) * (cfg.l1 as f64 / s);
    }
    if cfg.charbonnier > 0.0 {
        let c = charbonnier(pred.clone() / s, target.clone() / s, cfg.charbonnier_eps);
        total = total + c * cfg.charbonnier as f64;
    }
    if cfg.ms_ssim > 0.0 {
        let m = ms_ssim(pred, target, cfg.ms_ssim_scales, scale);
        total = total + (m.neg() + 1.0) * cfg.ms_ssim as f64;
    }
    total
}
