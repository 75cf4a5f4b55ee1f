//! Mean-variance plots of a profile: one panel per ISO with the binned cells of R, G and B,
//! the per-ISO fitted lines, and the ISO curves' line at that ISO, drawn by simple
//! rasterisation into an RGB PNG.

use std::path::Path;

use crate::error::CalibError;
use crate::font;
use crate::profile::{ChannelPoint, Profile};

type Rgb = [u8; 3];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const COLORS: [Rgb; 3] = [[215, 35, 35], [20, 145, 30], [35, 70, 225]];

/// An RGB raster.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
        }
    }
    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }
    fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }
    /// A line of `thick` pixels; `dash` > 0 draws `dash` pixels on, `dash` off.
    fn line(
        &mut self,
        (x0, y0): (f64, f64),
        (x1, y1): (f64, f64),
        c: Rgb,
        thick: i64,
        dash: usize,
    ) {
        let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for s in 0..=n {
            if dash > 0 && (s / dash) % 2 == 1 {
                continue;
            }
            let t = s as f64 / n as f64;
            let (x, y) = (
                (x0 + t * (x1 - x0)).round() as i64,
                (y0 + t * (y1 - y0)).round() as i64,
            );
            self.rect(x - thick / 2, y - thick / 2, thick, thick, c);
        }
    }
    fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let g = font::glyph(ch);
            let ox = x + k as i64 * (font::W as i64 + 1) * scale;
            for (r, bits) in g.iter().enumerate() {
                for col in 0..font::W {
                    if bits >> (font::W - 1 - col) & 1 == 1 {
                        self.rect(
                            ox + col as i64 * scale,
                            y + r as i64 * scale,
                            scale,
                            scale,
                            c,
                        );
                    }
                }
            }
        }
    }
    fn text_width(s: &str, scale: i64) -> i64 {
        s.chars().count() as i64 * (font::W as i64 + 1) * scale
    }
}

/// Compact number for labels: `0`, `0.25`, `1.2E-3`.
pub fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if (100.0..1e6).contains(&v.abs()) {
        format!("{v:.0}")
    } else if (0.01..100.0).contains(&v.abs()) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        let s = format!("{v:.2e}");
        s.to_uppercase()
    }
}

const PANEL_W: usize = 440;
const PANEL_H: usize = 320;
const HEADER: usize = 64;

/// Renders the profile's plot as RGB pixels: `(width, height, pixels)`.
pub fn render(p: &Profile) -> Result<(usize, usize, Vec<u8>), CalibError> {
    let n = p.points.len();
    if n == 0 {
        return Err(CalibError::Fit(
            "the profile has no per-ISO points to plot".into(),
        ));
    }
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    let mut cv = Canvas::new(cols * PANEL_W, HEADER + rows * PANEL_H);
    let title = format!(
        "{} NOISE PROFILE ({}): VAR = K X + S2, NORMALISED",
        p.noise.sensor, p.noise.source
    );
    cv.text(10, 8, &title, 2, BLACK);
    let mut lx = 10;
    for (name, c) in ["R", "G", "B"].iter().zip(COLORS) {
        cv.rect(lx, 38, 8, 8, c);
        cv.text(lx + 12, 38, name, 1, c);
        lx += 34;
    }
    cv.text(
        lx,
        38,
        "SQUARES: BINNED CELLS   LINES: PER-ISO FIT",
        1,
        BLACK,
    );
    let lx2 = lx + Canvas::text_width("SQUARES: BINNED CELLS   LINES: PER-ISO FIT", 1) + 16;
    cv.line((lx2 as f64, 42.0), (lx2 as f64 + 30.0, 42.0), BLACK, 2, 4);
    cv.text(lx2 + 36, 38, "K(ISO), S2(ISO) CURVES AT THE ISO", 1, BLACK);
    for (idx, pt) in p.points.iter().enumerate() {
        let ox = (idx % cols * PANEL_W) as i64;
        let oy = (HEADER + idx / cols * PANEL_H) as i64;
        panel(&mut cv, p, pt, ox, oy);
    }
    Ok((cv.w, cv.h, cv.px))
}

/// What one set of axes shows: R, G, B samples and lines, and the curves' line.
struct Series<'a> {
    chans: [&'a ChannelPoint; 3],
    curve: (f64, f64),
}

/// Draws `ser` into the box `(l, t, r, b)` with x in [0, xmax] and y in [0, ymax]; `ticks`
/// labels both axes at 0, half and full.
fn axes(
    cv: &mut Canvas,
    ser: &Series,
    (l, t, r, b): (i64, i64, i64, i64),
    xmax: f64,
    ymax: f64,
    ticks: bool,
) {
    let px = |x: f64| l as f64 + x / xmax * (r - l) as f64;
    let py = |y: f64| b as f64 - y / ymax * (b - t) as f64;
    cv.rect(l, t, r - l, b - t, [255, 255, 255]);
    for k in 1..4 {
        let gx = (l + (r - l) * k / 4) as f64;
        let gy = (t + (b - t) * k / 4) as f64;
        cv.line((gx, t as f64), (gx, b as f64), GRID, 1, 0);
        cv.line((l as f64, gy), (r as f64, gy), GRID, 1, 0);
    }
    for (a, z) in [
        ((l, b), (r, b)),
        ((l, t), (l, b)),
        ((l, t), (r, t)),
        ((r, t), (r, b)),
    ] {
        cv.line(
            (a.0 as f64, a.1 as f64),
            (z.0 as f64, z.1 as f64),
            BLACK,
            1,
            0,
        );
    }
    if ticks {
        for k in 0..=2 {
            let xv = xmax * k as f64 / 2.0;
            let s = label(xv);
            let w = Canvas::text_width(&s, 1);
            cv.text((px(xv) as i64 - w / 2).clamp(l, r - w), b + 6, &s, 1, BLACK);
            let yv = ymax * k as f64 / 2.0;
            let s = label(yv);
            cv.text(
                l - 6 - Canvas::text_width(&s, 1),
                py(yv) as i64 - 3,
                &s,
                1,
                BLACK,
            );
        }
    }
    // A line y = k x + s from x = 0 to where it leaves the box.
    let seg = |k: f64, s: f64| {
        let x1 = if k > 0.0 {
            ((ymax - s) / k).clamp(0.0, xmax)
        } else {
            xmax
        };
        let x0 = if k > 0.0 && s < 0.0 {
            (-s / k).min(x1)
        } else {
            0.0
        };
        ((px(x0), py(k * x0 + s)), (px(x1), py(k * x1 + s)))
    };
    for (c, col) in ser.chans.iter().zip(COLORS) {
        let (a, z) = seg(c.k, c.sigma2);
        cv.line(a, z, col, 1, 0);
    }
    let (a, z) = seg(ser.curve.0, ser.curve.1);
    cv.line(a, z, BLACK, 2, 6);
    for (c, col) in ser.chans.iter().zip(COLORS) {
        for s in &c.samples {
            let (x, y) = (px(s[0]) as i64, py(s[1]) as i64);
            if x >= l && x <= r && y >= t && y <= b {
                cv.rect(x - 2, y - 2, 5, 5, col);
            }
        }
    }
}

/// Largest y of the samples below `xmax` and of the lines at `xmax`, with 10% headroom.
fn y_range(ser: &Series, xmax: f64) -> f64 {
    let y = ser
        .chans
        .iter()
        .flat_map(|c| c.samples.iter().filter(|s| s[0] <= xmax).map(|s| s[1]))
        .chain(ser.chans.iter().map(|c| c.k * xmax + c.sigma2))
        .chain([ser.curve.0 * xmax + ser.curve.1])
        .fold(0.0f64, f64::max);
    if y > 0.0 && y.is_finite() {
        1.1 * y
    } else {
        1.0
    }
}

fn panel(cv: &mut Canvas, p: &Profile, pt: &crate::profile::IsoPoint, ox: i64, oy: i64) {
    let ser = Series {
        chans: [&pt.r, &pt.g, &pt.b],
        curve: p.noise.pooled().at(pt.iso),
    };
    let (l, r, t, b) = (
        ox + 78,
        ox + PANEL_W as i64 - 16,
        oy + 34,
        oy + PANEL_H as i64 - 34,
    );
    let xs = ser
        .chans
        .iter()
        .flat_map(|c| c.samples.iter().map(|s| s[0]));
    let xmax = match xs.fold(0.0f64, f64::max) {
        x if x > 0.0 => 1.05 * x,
        _ => 1.0,
    };
    axes(cv, &ser, (l, t, r, b), xmax, y_range(&ser, xmax), true);
    cv.text(
        l + (r - l) / 2 - 60,
        b + 18,
        "MEAN X (NORMALISED)",
        1,
        BLACK,
    );
    cv.text(ox + 6, t - 12, "VAR", 1, BLACK);
    let head = format!("ISO {}", label(pt.iso));
    cv.text(l, oy + 8, &head, 2, BLACK);
    let fit = format!("K={}  S2={}", label(pt.all.k), label(pt.all.sigma2));
    cv.text(
        l + Canvas::text_width(&head, 2) + 14,
        oy + 13,
        &fit,
        1,
        BLACK,
    );
    if ser.chans.iter().all(|c| c.samples.is_empty()) {
        cv.text(l + 8, t + 6, "NO CELLS: IMPORTED VALUES", 1, BLACK);
        return;
    }
    // Inset: the lowest tenth of the levels, where the read noise shows.
    let xz = xmax / 10.0;
    let inset = (l + 8, t + 8, l + 8 + 150, t + 8 + 96);
    axes(cv, &ser, inset, xz, y_range(&ser, xz), false);
    let lab = format!("ZOOM X<{} VAR<{}", label(xz), label(y_range(&ser, xz)));
    cv.text(inset.0, inset.3 + 4, &lab, 1, BLACK);
}

/// Writes the plot of `p` to `path` (PNG, atomically); an existing file needs `overwrite`.
pub fn write(p: &Profile, path: &Path, overwrite: bool) -> Result<(), CalibError> {
    crate::profile::check_output(path, overwrite)?;
    let (w, h, px) = render(p)?;
    rawnr_io::atomic::write_atomic(path, |out| {
        let mut enc = png::Encoder::new(out, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(std::io::Error::other)?;
        wr.write_image_data(&px).map_err(std::io::Error::other)?;
        wr.finish().map_err(std::io::Error::other)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label(0.0), "0");
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(800.0), "800");
        assert_eq!(label(2.5e7), "2.50E7");
        assert_eq!(label(0.00123), "1.23E-3");
    }
}
