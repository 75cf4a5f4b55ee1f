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

/// Glyph height of [`draw_text`]'s font, in pixels at scale 1 (glyphs are 5 wide, 1 apart).
pub const GLYPH_HEIGHT: usize = 7;

/// Rows of a 5x7 glyph, bit 4 the leftmost column. Letters are drawn upper-case; a character
/// without a glyph is drawn as `?`.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        'A' => [14, 17, 17, 31, 17, 17, 17],
        'B' => [30, 17, 17, 30, 17, 17, 30],
        'C' => [14, 17, 16, 16, 16, 17, 14],
        'D' => [28, 18, 17, 17, 17, 18, 28],
        'E' => [31, 16, 16, 30, 16, 16, 31],
        'F' => [31, 16, 16, 30, 16, 16, 16],
        'G' => [14, 17, 16, 23, 17, 17, 15],
        'H' => [17, 17, 17, 31, 17, 17, 17],
        'I' => [14, 4, 4, 4, 4, 4, 14],
        'J' => [7, 2, 2, 2, 2, 18, 12],
        'K' => [17, 18, 20, 24, 20, 18, 17],
        'L' => [16, 16, 16, 16, 16, 16, 31],
        'M' => [17, 27, 21, 21, 17, 17, 17],
        'N' => [17, 17, 25, 21, 19, 17, 17],
        'O' => [14, 17, 17, 17, 17, 17, 14],
        'P' => [30, 17, 17, 30, 16, 16, 16],
        'Q' => [14, 17, 17, 17, 21, 18, 13],
        'R' => [30, 17, 17, 30, 20, 18, 17],
        'S' => [15, 16, 16, 14, 1, 1, 30],
        'T' => [31, 4, 4, 4, 4, 4, 4],
        'U' => [17, 17, 17, 17, 17, 17, 14],
        'V' => [17, 17, 17, 17, 17, 10, 4],
        'W' => [17, 17, 17, 21, 21, 21, 10],
        'X' => [17, 17, 10, 4, 10, 17, 17],
        'Y' => [17, 17, 17, 10, 4, 4, 4],
        'Z' => [31, 1, 2, 4, 8, 16, 31],
        '0' => [14, 17, 19, 21, 25, 17, 14],
        '1' => [4, 12, 4, 4, 4, 4, 14],
        '2' => [14, 17, 1, 2, 4, 8, 31],
        '3' => [31, 2, 4, 2, 1, 17, 14],
        '4' => [2, 6, 10, 18, 31, 2, 2],
        '5' => [31, 16, 30, 1, 1, 17, 14],
        '6' => [6, 8, 16, 30, 17, 17, 14],
        '7' => [31, 1, 2, 4, 8, 8, 8],
        '8' => [14, 17, 17, 14, 17, 17, 14],
        '9' => [14, 17, 17, 15, 1, 2, 12],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 12, 12],
        ',' => [0, 0, 0, 0, 12, 4, 8],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        ':' => [0, 12, 12, 0, 12, 12, 0],
        '/' => [0, 1, 2, 4, 8, 16, 0],
        '(' => [2, 4, 8, 8, 8, 4, 2],
        ')' => [8, 4, 2, 2, 2, 4, 8],
        '%' => [24, 25, 2, 4, 8, 19, 3],
        '=' => [0, 0, 31, 0, 31, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 31],
        '+' => [0, 4, 4, 31, 4, 4, 0],
        _ => [14, 17, 1, 2, 4, 0, 4],
    }
}

/// Width in pixels of `text` drawn by [`draw_text`] at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    (text.chars().count() * 6).saturating_sub(1) * scale
}

/// Draws `text` (5x7 glyphs, `scale` pixels per glyph pixel) into an RGB8 image of `width`
/// pixels per row, top-left corner at `(x, y)`; pixels outside the image are skipped.
pub fn draw_text(
    rgb: &mut [u8],
    width: usize,
    (x, y): (usize, usize),
    text: &str,
    scale: usize,
    color: [u8; 3],
) {
    let height = rgb.len() / 3 / width.max(1);
    for (i, c) in text.chars().enumerate() {
        let gx = x + i * 6 * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..5 {
                if bits & (16 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (gx + col * scale + dx, y + row * scale + dy);
                        if px < width && py < height {
                            let at = (py * width + px) * 3;
                            rgb[at..at + 3].copy_from_slice(&color);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_drawn_inside_its_box_only() {
        let (w, h) = (80, 20);
        let mut img = vec![0u8; w * h * 3];
        draw_text(&mut img, w, (3, 2), "ISO 1600", 2, [255, 255, 255]);
        let tw = text_width("ISO 1600", 2);
        assert_eq!(tw, (8 * 6 - 1) * 2);
        let mut lit = 0;
        for y in 0..h {
            for x in 0..w {
                if img[(y * w + x) * 3] == 255 {
                    lit += 1;
                    assert!((3..3 + tw).contains(&x) && (2..2 + GLYPH_HEIGHT * 2).contains(&y));
                }
            }
        }
        assert!(lit > 100, "{lit} pixels lit");
        // Clipped at the image's edge without a panic.
        draw_text(&mut img, w, (75, 15), "DENOISED", 3, [1, 2, 3]);
    }
}
