//! PNG previews of Bayer frames: a quick half-resolution RGB rendering (2x2 binning, white
//! balance by grey world, sRGB-like gamma) so a person can judge a result.

use std::path::Path;

use rawnr_core::bayer::{FrameLayout, Levels};

use crate::atomic::write_atomic;
use crate::IoError;

/// Half-resolution 8-bit RGB rendering of a Bayer frame, `(width, height, rgb)`.
/// `gains` are per-channel multipliers (R, G, B) applied after normalisation.
pub fn render(
    data: &[u16],
    layout: &FrameLayout,
    levels: &Levels,
    gains: [f32; 3],
) -> (usize, usize, Vec<u8>) {
    let (w, h) = (layout.width / 2, layout.height / 2);
    let mut rgb = Vec::with_capacity(w * h * 3);
    let ch = layout.cfa.channels();
    for by in 0..h {
        for bx in 0..w {
            let mut acc = [0f32; 4];
            for (i, &c) in ch.iter().enumerate() {
                let (dy, dx) = (i / 2, i % 2);
                let v = data[(2 * by + dy) * layout.stride + 2 * bx + dx] as f32;
                acc[c] = ((v - levels.black[c]) / (levels.white - levels.black[c])).clamp(0.0, 1.0);
            }
            let px = [
                acc[0] * gains[0],
                0.5 * (acc[1] + acc[2]) * gains[1],
                acc[3] * gains[2],
            ];
            for v in px {
                rgb.push((v.clamp(0.0, 1.0).powf(1.0 / 2.2) * 255.0 + 0.5) as u8);
            }
        }
    }
    (w, h, rgb)
}

/// Grey-world white balance gains for a Bayer frame, normalised so green is 1, with an
/// exposure gain that puts the mean at 18% grey (capped at 16x).
pub fn auto_gains(data: &[u16], layout: &FrameLayout, levels: &Levels) -> [f32; 3] {
    let mut sum = [0f64; 4];
    let mut n = 0f64;
    let ch = layout.cfa.channels();
    for by in 0..layout.height / 2 {
        for bx in 0..layout.width / 2 {
            for (i, &c) in ch.iter().enumerate() {
                let v = data[(2 * by + i / 2) * layout.stride + 2 * bx + i % 2] as f64;
                sum[c] += ((v - levels.black[c] as f64) / (levels.white - levels.black[c]) as f64)
                    .max(0.0);
            }
            n += 1.0;
        }
    }
    let mean = sum.map(|s| (s / n.max(1.0)).max(1e-6));
    let g = 0.5 * (mean[1] + mean[2]);
    let exposure = (0.18 / g).clamp(1.0, 16.0);
    [
        (g / mean[0] * exposure) as f32,
        exposure as f32,
        (g / mean[3] * exposure) as f32,
    ]
}

/// Writes an RGB8 PNG atomically.
pub fn write_png(path: &Path, width: usize, height: usize, rgb: &[u8]) -> Result<(), IoError> {
    write_atomic(path, |w| {
        let mut enc = png::Encoder::new(w, width as u32, height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(rgb)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
}
