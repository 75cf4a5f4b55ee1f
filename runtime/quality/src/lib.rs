//! rawnr-quality: how well a denoiser does, measured one way everywhere (`denoise-raw eval`,
//! the tests, the trainer's validation): a clean raw frame ([`CleanFrame`]) gets synthetic
//! Poisson-Gaussian noise from per-channel noise parameters ([`CleanFrame::noisy_raw`]), and
//! the result is scored against the clean frame by PSNR ([`psnr`]) and SSIM ([`ssim_bayer`])
//! over the normalised Bayer frame (`(raw - black) / (white - black)`, peak 1). Clean frames come
//! from real raw files or are synthetic dead-leaves scenes ([`CleanFrame::dead_leaves`]).
#![warn(missing_docs)]

mod leaves;
mod metrics;
mod synth;

pub use metrics::{psnr, ssim_bayer};
pub use synth::{add_noise, CleanFrame};
