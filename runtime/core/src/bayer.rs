//! Bayer frames: CFA phases, black/white levels, and packing into four half-resolution planes
//! in canonical R, Gr, Gb, B order (and back) for any of the four CFA phases.
//!
//! Packing aligns the 2x2 blocks on the red sample: for a phase whose red sample sits at
//! `(sy, sx)` in the top-left block, block `(py, px)` covers raw rows `2py - sy ..= 2py - sy + 1`
//! and columns `2px - sx ..= 2px - sx + 1`, so every block is an R, Gr / Gb, B quad with the
//! same geometry as a native RGGB sensor (a network trained on RGGB sees what it was trained
//! on). Block samples that fall outside the frame (the leading row/column of a shifted phase,
//! the trailing one of an odd size) are mirrored from inside the frame, which keeps their
//! colour, and are dropped again on unpacking: every pixel goes in and comes back out.

pub use crate::channel::{B, GB, GR, R};
use crate::error::Error;

/// Colour filter array phase: the colours of the 2x2 block at the frame's top-left corner,
/// in raster order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfaPhase {
    /// R G / G B.
    Rggb,
    /// B G / G R.
    Bggr,
    /// G R / B G.
    Grbg,
    /// G B / R G.
    Gbrg,
}

impl CfaPhase {
    /// All four phases.
    pub const ALL: [CfaPhase; 4] = [
        CfaPhase::Rggb,
        CfaPhase::Bggr,
        CfaPhase::Grbg,
        CfaPhase::Gbrg,
    ];

    /// Canonical channels of the block positions (0,0), (0,1), (1,0), (1,1).
    pub const fn channels(self) -> [usize; 4] {
        match self {
            CfaPhase::Rggb => [R, GR, GB, B],
            CfaPhase::Bggr => [B, GB, GR, R],
            CfaPhase::Grbg => [GR, R, B, GB],
            CfaPhase::Gbrg => [GB, B, R, GR],
        }
    }

    /// Position `(sy, sx)` of the red sample in the top-left 2x2 block: the shift that aligns
    /// packing blocks to R, Gr / Gb, B.
    pub const fn red_offset(self) -> (usize, usize) {
        self.offset_of(R)
    }

    /// Block position `(dy, dx)` of canonical channel `c` (0..4) in the top-left 2x2 block.
    pub const fn offset_of(self, c: usize) -> (usize, usize) {
        let ch = self.channels();
        let mut i = 0;
        while i < 4 {
            if ch[i] == c {
                return (i / 2, i % 2);
            }
            i += 1;
        }
        (0, 0)
    }

    /// Parses "rggb", "bggr", "grbg" or "gbrg" (any case).
    pub fn parse(s: &str) -> Option<Self> {
        let lower = |c: u8| c.to_ascii_lowercase();
        let b = s.as_bytes();
        if b.len() != 4 {
            return None;
        }
        let n = [lower(b[0]), lower(b[1]), lower(b[2]), lower(b[3])];
        Some(match &n {
            b"rggb" => CfaPhase::Rggb,
            b"bggr" => CfaPhase::Bggr,
            b"grbg" => CfaPhase::Grbg,
            b"gbrg" => CfaPhase::Gbrg,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            CfaPhase::Rggb => "rggb",
            CfaPhase::Bggr => "bggr",
            CfaPhase::Grbg => "grbg",
            CfaPhase::Gbrg => "gbrg",
        }
    }
}

/// Black and white levels. Black is per canonical channel (R, Gr, Gb, B).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    /// Black level per canonical channel.
    pub black: [f32; 4],
    /// White (saturation) level.
    pub white: f32,
}

impl Levels {
    /// Same black level on all channels.
    pub const fn uniform(black: f32, white: f32) -> Self {
        Levels {
            black: [black; 4],
            white,
        }
    }
    /// Checks finite levels with `white > black` on every channel and `white <= 65535`.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.white.is_finite() && self.white <= 65535.0) {
            return Err(Error::BadFrame("white level must be finite and <= 65535"));
        }
        for b in self.black {
            if !(b.is_finite() && b >= 0.0 && b < self.white) {
                return Err(Error::BadFrame(
                    "black level must be >= 0 and below the white level",
                ));
            }
        }
        Ok(())
    }
}

/// Geometry of a Bayer frame in memory: a `u16` buffer with a row stride in elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Distance between rows, in `u16` elements (>= width).
    pub stride: usize,
    /// CFA phase at (0, 0).
    pub cfa: CfaPhase,
}

impl FrameLayout {
    /// Tightly packed layout (`stride == width`).
    pub const fn new(width: usize, height: usize, cfa: CfaPhase) -> Self {
        FrameLayout {
            width,
            height,
            stride: width,
            cfa,
        }
    }
    /// Largest frame side in pixels (TIFF and DNG store sizes in 16 bits).
    pub const MAX_SIDE: usize = 65535;
    /// Most pixels in a frame: 400 Mpixels, above any sensor; it bounds what a frame's buffers
    /// and plans can ask for.
    pub const MAX_PIXELS: usize = 400_000_000;

    /// Checks the frame size: 2 to [`FrameLayout::MAX_SIDE`] pixels a side, at most
    /// [`FrameLayout::MAX_PIXELS`] in all.
    pub fn check_size(&self) -> Result<(), Error> {
        if self.width < 2 || self.height < 2 {
            return Err(Error::BadFrame("a Bayer frame needs at least 2x2 pixels"));
        }
        if self.width > Self::MAX_SIDE
            || self.height > Self::MAX_SIDE
            || self.width.saturating_mul(self.height) > Self::MAX_PIXELS
        {
            return Err(Error::BadFrame(
                "frame larger than 65535 pixels a side or 400 Mpixels",
            ));
        }
        Ok(())
    }

    /// Checks the size ([`FrameLayout::check_size`]) and the geometry against a buffer of
    /// `len` elements.
    pub fn validate(&self, len: usize) -> Result<(), Error> {
        self.check_size()?;
        if self.stride < self.width {
            return Err(Error::BadFrame("row stride is smaller than the width"));
        }
        let needed = (self.height - 1)
            .checked_mul(self.stride)
            .and_then(|x| x.checked_add(self.width))
            .ok_or(Error::Overflow)?;
        if len < needed {
            return Err(Error::BufferTooSmall { needed, got: len });
        }
        Ok(())
    }
    /// Height of the packed planes, `ceil((height + sy) / 2)` with `sy` the red row offset.
    pub const fn packed_height(&self) -> usize {
        (self.height + self.cfa.red_offset().0).div_ceil(2)
    }
    /// Width of the packed planes, `ceil((width + sx) / 2)` with `sx` the red column offset.
    pub const fn packed_width(&self) -> usize {
        (self.width + self.cfa.red_offset().1).div_ceil(2)
    }
    /// Raw rows `[lo, hi)` that packing the packed rows `[p0, p1)` reads (`p0 < p1`; rows past
    /// the packed frame replicate its last row, samples outside the frame are mirrored): what a
    /// line-buffer caller must hold to pack that band. Needs `height >= 2`.
    pub fn raw_rows_read(&self, p0: usize, p1: usize) -> (usize, usize) {
        if self.height < 2 {
            return (0, self.height);
        }
        let (ph, sy) = (self.packed_height(), self.cfa.red_offset().0);
        let last = p1.max(p0 + 1) - 1;
        let rows = [(p0, 0), (p0, 1), (last, 0), (last, 1)]
            .map(|(p, d)| source_index(p, d, sy, ph, self.height));
        let lo = rows.iter().copied().min().unwrap_or(0);
        let hi = rows.iter().copied().max().unwrap_or(0) + 1;
        (lo, hi)
    }
}

/// Per-channel affine maps from raw values to network input and back:
/// `input = max(raw, floor[c]) * gain[c] + offset[c]` (packing) and
/// `raw = input * gain[c] + offset[c]` (unpacking, which ignores `floor`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelTransform {
    /// Multiplier per canonical channel.
    pub gain: [f32; 4],
    /// Offset per canonical channel.
    pub offset: [f32; 4],
    /// Raw samples are raised to at least this before the map (0: no clipping; the black
    /// levels for a model that clips below black).
    pub floor: [f32; 4],
}

impl PixelTransform {
    /// Builds the forward map raw -> `((raw - black) / (white - black)) * t.gain + t.offset`,
    /// then times `scale`, with `t` a normalised-domain affine map (e.g. k-sigma).
    pub fn forward(levels: &Levels, t: crate::noise::Affine, scale: f32) -> Self {
        Self::forward_channels(levels, &[t; 4], scale)
    }

    /// [`PixelTransform::forward`] with one normalised-domain map per canonical channel.
    pub fn forward_channels(levels: &Levels, ts: &[crate::noise::Affine; 4], scale: f32) -> Self {
        let mut gain = [0.0; 4];
        let mut offset = [0.0; 4];
        for c in 0..4 {
            let t = ts[c];
            let range = (levels.white - levels.black[c]) as f64;
            let g = t.gain / range * scale as f64;
            gain[c] = g as f32;
            offset[c] =
                ((t.offset - levels.black[c] as f64 / range * t.gain) * scale as f64) as f32;
        }
        PixelTransform {
            gain,
            offset,
            floor: [0.0; 4],
        }
    }

    /// The same map with samples below the black levels raised to them first.
    pub fn clipped_below_black(self, levels: &Levels) -> Self {
        PixelTransform {
            floor: levels.black,
            ..self
        }
    }

    /// Builds the inverse of [`PixelTransform::forward`] with the same arguments.
    pub fn inverse(levels: &Levels, t: crate::noise::Affine, scale: f32) -> Self {
        Self::inverse_channels(levels, &[t; 4], scale)
    }

    /// [`PixelTransform::inverse`] with one normalised-domain map per canonical channel.
    pub fn inverse_channels(levels: &Levels, ts: &[crate::noise::Affine; 4], scale: f32) -> Self {
        let mut gain = [0.0; 4];
        let mut offset = [0.0; 4];
        for c in 0..4 {
            let inv = ts[c].inverse();
            let range = (levels.white - levels.black[c]) as f64;
            // raw = (inv(v / scale)) * range + black
            gain[c] = (inv.gain / scale as f64 * range) as f32;
            offset[c] = (inv.offset * range + levels.black[c] as f64) as f32;
        }
        PixelTransform {
            gain,
            offset,
            floor: [0.0; 4],
        }
    }
}

/// Raw index of packed index `p`, block offset `d` and phase shift `shift`, along an axis of
/// `full` raw and `packed` packed samples: edge replication of blocks beyond the packed frame,
/// mirroring (same colour) of samples just outside the raw frame.
#[inline]
fn source_index(p: usize, d: usize, shift: usize, packed: usize, full: usize) -> usize {
    let r = 2 * p.min(packed - 1) + d;
    if r < shift {
        shift - r // r - shift == -1 -> 1
    } else if r - shift >= full {
        2 * (full - 1) - (r - shift) // == full -> full - 2
    } else {
        r - shift
    }
}

/// Raw index of packed index `p` and block offset `d`, or `None` outside the frame.
#[inline]
fn target_index(p: usize, d: usize, shift: usize, full: usize) -> Option<usize> {
    (2 * p + d).checked_sub(shift).filter(|&r| r < full)
}

/// Packs a region of the frame into 4 planes (CHW, `h * w` each) in `out`, applying `tf`.
/// The region `[y0, y0 + h) x [x0, x0 + w)` is in packed coordinates and may extend past the
/// packed frame: such samples replicate the last row/column (the padding up to the model's
/// size multiple). `data` and `layout` must have been validated with [`FrameLayout::validate`].
#[allow(clippy::too_many_arguments)]
pub fn pack_region(
    data: &[u16],
    layout: &FrameLayout,
    tf: &PixelTransform,
    y0: usize,
    x0: usize,
    h: usize,
    w: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    layout.validate(data.len())?;
    pack_region_rows(data, 0, layout, tf, y0, x0, h, w, out)
}

/// [`pack_region`] from a window of the frame's rows: `data` holds the rows from `first_row` on
/// (stride `layout.stride`), as a line buffer does; `layout` describes the whole frame. The
/// rows the region reads ([`FrameLayout::raw_rows_read`]) must lie in the window, else
/// [`Error::BadFrame`] / [`Error::BufferTooSmall`]. Gives exactly the values of `pack_region`.
#[allow(clippy::too_many_arguments)]
pub fn pack_region_rows(
    data: &[u16],
    first_row: usize,
    layout: &FrameLayout,
    tf: &PixelTransform,
    y0: usize,
    x0: usize,
    h: usize,
    w: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    if layout.width < 2 || layout.height < 2 || layout.stride < layout.width {
        return Err(Error::BadFrame("invalid input frame geometry"));
    }
    let plane = h.checked_mul(w).ok_or(Error::Overflow)?;
    let needed = plane.checked_mul(4).ok_or(Error::Overflow)?;
    if out.len() < needed {
        return Err(Error::BufferTooSmall {
            needed,
            got: out.len(),
        });
    }
    let (ph, pw) = (layout.packed_height(), layout.packed_width());
    let (sy, sx) = layout.cfa.red_offset();
    for c in 0..4 {
        let (dy, dx) = (c / 2, c % 2);
        let (g, o, fl) = (tf.gain[c], tf.offset[c], tf.floor[c]);
        let out_c = &mut out[c * plane..(c + 1) * plane];
        for (yy, out_row) in out_c.chunks_exact_mut(w).enumerate() {
            let ry = source_index(y0 + yy, dy, sy, ph, layout.height);
            let base = ry
                .checked_sub(first_row)
                .map(|r| r * layout.stride)
                .ok_or(Error::BadFrame("pack region above the provided rows"))?;
            let row = data
                .get(base..base + layout.width)
                .ok_or(Error::BufferTooSmall {
                    needed: base + layout.width,
                    got: data.len(),
                })?;
            // Columns whose sample is simply `2 x + dx - sx` (inside the packed and the raw
            // frame: a contiguous range) take a loop the compiler vectorises; the few at the
            // edges (replicated or mirrored) the general mapping.
            let plain = |xx: usize| {
                let p = x0 + xx;
                p < pw && 2 * p + dx >= sx && 2 * p + dx - sx < layout.width
            };
            let mut lo = 0;
            while lo < w && !plain(lo) {
                lo += 1;
            }
            let mut hi = w;
            while hi > lo && !plain(hi - 1) {
                hi -= 1;
            }
            for (xx, v) in out_row.iter_mut().enumerate() {
                if xx == lo && lo < hi {
                    break;
                }
                let rx = source_index(x0 + xx, dx, sx, pw, layout.width);
                *v = (row[rx] as f32).max(fl) * g + o;
            }
            if lo < hi {
                let first = 2 * (x0 + lo) + dx - sx;
                let src = &row[first..first + 2 * (hi - lo) - 1];
                for (v, &x) in out_row[lo..hi].iter_mut().zip(src.iter().step_by(2)) {
                    *v = (x as f32).max(fl) * g + o;
                }
                for (xx, v) in out_row.iter_mut().enumerate().skip(hi) {
                    let rx = source_index(x0 + xx, dx, sx, pw, layout.width);
                    *v = (row[rx] as f32).max(fl) * g + o;
                }
            }
        }
    }
    Ok(())
}

/// Writes planes back into a frame: the packed region `[y0, y0 + h) x [x0, x0 + w)` of the
/// frame (clipped to it) takes the plane samples starting at `(src_y, src_x)` of `planes`
/// (4 planes of `plane_h x plane_w`, CHW), mapped through `tf`, rounded and clamped to
/// `[0, white]`. `out` holds the frame's rows from `first_row` on (the whole frame when 0),
/// laid out as `layout` describes; the region's rows must lie in it.
#[allow(clippy::too_many_arguments)]
pub fn unpack_region(
    planes: &[f32],
    plane_h: usize,
    plane_w: usize,
    src_y: usize,
    src_x: usize,
    tf: &PixelTransform,
    white: f32,
    y0: usize,
    x0: usize,
    h: usize,
    w: usize,
    out: &mut [u16],
    layout: &FrameLayout,
    first_row: usize,
) -> Result<(), Error> {
    if layout.width < 2 || layout.height < 2 || layout.stride < layout.width {
        return Err(Error::BadFrame("invalid output frame geometry"));
    }
    let plane = plane_h.checked_mul(plane_w).ok_or(Error::Overflow)?;
    if planes.len() < plane * 4 {
        return Err(Error::BufferTooSmall {
            needed: plane * 4,
            got: planes.len(),
        });
    }
    let h = h.min(layout.packed_height().saturating_sub(y0));
    let w = w.min(layout.packed_width().saturating_sub(x0));
    if src_y + h > plane_h || src_x + w > plane_w {
        return Err(Error::BadFrame("unpack region outside the planes"));
    }
    let (sy, sx) = layout.cfa.red_offset();
    for c in 0..4 {
        let (dy, dx) = (c / 2, c % 2);
        let (g, o) = (tf.gain[c], tf.offset[c]);
        let src = &planes[c * plane..(c + 1) * plane];
        for i in 0..h {
            let Some(ry) = target_index(y0 + i, dy, sy, layout.height) else {
                continue;
            };
            let base = ry
                .checked_sub(first_row)
                .map(|r| r * layout.stride)
                .ok_or(Error::BadFrame("unpack region above the output rows"))?;
            let dst_row = out
                .get_mut(base..base + layout.width)
                .ok_or(Error::BufferTooSmall {
                    needed: base + layout.width,
                    got: 0,
                })?;
            let src_row = &src[(src_y + i) * plane_w + src_x..][..w];
            // Clamp then round half up; NaN becomes 0.
            let code = |s: f32| {
                let v = s * g + o;
                let v = if v > 0.0 { v.min(white) } else { 0.0 };
                (v + 0.5) as u16
            };
            // The columns inside the frame are a contiguous range: a strided loop there (the
            // compiler vectorises it), the mapping at its ends.
            let inside = |j: usize| target_index(x0 + j, dx, sx, layout.width).is_some();
            let mut lo = 0;
            while lo < w && !inside(lo) {
                lo += 1;
            }
            let mut hi = w;
            while hi > lo && !inside(hi - 1) {
                hi -= 1;
            }
            if lo < hi {
                let first = 2 * (x0 + lo) + dx - sx;
                let dst = dst_row[first..].iter_mut().step_by(2);
                for (d, &s) in dst.zip(&src_row[lo..hi]) {
                    *d = code(s);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_invert_channels() {
        for cfa in CfaPhase::ALL {
            for c in 0..4 {
                let (dy, dx) = cfa.offset_of(c);
                assert_eq!(cfa.channels()[dy * 2 + dx], c);
            }
            assert_eq!(CfaPhase::parse(cfa.name()), Some(cfa));
        }
        assert_eq!(CfaPhase::parse("xyzw"), None);
    }

    fn roundtrip(width: usize, height: usize, stride: usize, cfa: CfaPhase) {
        let layout = FrameLayout {
            width,
            height,
            stride,
            cfa,
        };
        let data: [u16; 64] = core::array::from_fn(|i| (i as u16 * 37) % 1000);
        let levels = Levels::uniform(0.0, 1023.0);
        let fwd = PixelTransform::forward(&levels, crate::noise::Affine::IDENTITY, 1.0);
        let inv = PixelTransform::inverse(&levels, crate::noise::Affine::IDENTITY, 1.0);
        let (ph, pw) = (layout.packed_height(), layout.packed_width());
        let mut planes = [0f32; 4 * 25];
        pack_region(&data, &layout, &fwd, 0, 0, ph, pw, &mut planes).unwrap();
        let mut out = [0xFFFFu16; 64];
        unpack_region(
            &planes, ph, pw, 0, 0, &inv, 1023.0, 0, 0, ph, pw, &mut out, &layout, 0,
        )
        .unwrap();
        for y in 0..height {
            for x in 0..width {
                assert_eq!(
                    out[y * stride + x],
                    data[y * stride + x],
                    "{cfa:?} {width}x{height} at {x},{y}"
                );
            }
            for x in width..stride {
                assert_eq!(
                    out[y * stride + x],
                    0xFFFF,
                    "padding between rows must be untouched"
                );
            }
        }
        // Canonical placement: every block is R, Gr / Gb, B in raster order.
        for c in 0..4 {
            let (dy, dx) = cfa.offset_of(c);
            let v = data[dy * stride + dx] as f32 / 1023.0;
            // Packed (0, 0) for a shifted phase mirrors the sample; for (1, 1) it is direct.
            let (sy, sx) = cfa.red_offset();
            let p = (dy + sy) / 2 * pw + (dx + sx) / 2;
            assert!(
                (planes[c * ph * pw + p] - v).abs() < 1e-6,
                "{cfa:?} channel {c}"
            );
        }
    }

    #[test]
    fn pack_unpack_is_lossless_for_every_phase_and_odd_sizes() {
        for cfa in CfaPhase::ALL {
            for (w, h, s) in [
                (2, 2, 2),
                (3, 3, 3),
                (5, 4, 7),
                (4, 5, 4),
                (7, 7, 8),
                (8, 7, 8),
            ] {
                roundtrip(w, h, s, cfa);
            }
        }
    }

    /// Packing and unpacking (whose inner columns take a vectorised loop) equal the per-sample
    /// mappings for every phase, odd frame sizes and regions reaching past the frame on every
    /// side (replicated and mirrored samples, skipped outputs).
    #[test]
    fn pack_and_unpack_equal_the_per_sample_mapping() {
        extern crate std;
        use std::vec;
        for cfa in CfaPhase::ALL {
            for (width, height) in [(2, 2), (5, 3), (9, 6), (16, 4), (37, 5), (40, 7)] {
                let stride = width + 3;
                let layout = FrameLayout {
                    width,
                    height,
                    stride,
                    cfa,
                };
                let data: std::vec::Vec<u16> = (0..stride * height)
                    .map(|i| (i as u16 * 97) % 1009)
                    .collect();
                let levels = Levels::uniform(7.0, 1008.0);
                let fwd = PixelTransform::forward(&levels, crate::noise::Affine::IDENTITY, 1.0);
                // Odd-sized frames also check clipping below black (some samples are below 7).
                let fwd = if (width * height) % 2 == 1 {
                    fwd.clipped_below_black(&levels)
                } else {
                    fwd
                };
                let inv = PixelTransform::inverse(&levels, crate::noise::Affine::IDENTITY, 1.0);
                let (ph, pw) = (layout.packed_height(), layout.packed_width());
                let (sy, sx) = cfa.red_offset();
                for (y0, x0, h, w) in [
                    (0, 0, ph, pw),
                    (0, 0, ph + 2, pw + 9),
                    (1, 1, 2, pw + 3),
                    (0, pw - 1, 1, 5),
                ] {
                    let mut got = vec![0f32; 4 * h * w];
                    pack_region(&data, &layout, &fwd, y0, x0, h, w, &mut got).unwrap();
                    for c in 0..4 {
                        let (dy, dx) = (c / 2, c % 2);
                        for yy in 0..h {
                            let ry = source_index(y0 + yy, dy, sy, ph, height);
                            for xx in 0..w {
                                let rx = source_index(x0 + xx, dx, sx, pw, width);
                                let raw = (data[ry * stride + rx] as f32).max(fwd.floor[c]);
                                let want = raw * fwd.gain[c] + fwd.offset[c];
                                assert_eq!(got[(c * h + yy) * w + xx].to_bits(), want.to_bits(), "{cfa:?} {width}x{height} c{c} at {xx},{yy} of region {x0},{y0}");
                            }
                        }
                    }
                    // Back: samples inside the frame written, the rest untouched.
                    let planes: std::vec::Vec<f32> = (0..4 * h * w)
                        .map(|i| ((i * 31) % 113) as f32 / 100.0 - 0.05)
                        .collect();
                    let mut out = vec![0xABCDu16; stride * height];
                    unpack_region(
                        &planes, h, w, 0, 0, &inv, 1008.0, y0, x0, h, w, &mut out, &layout, 0,
                    )
                    .unwrap();
                    let mut want = vec![0xABCDu16; stride * height];
                    for c in 0..4 {
                        let (dy, dx) = (c / 2, c % 2);
                        for yy in 0..h.min(ph.saturating_sub(y0)) {
                            let Some(ry) = target_index(y0 + yy, dy, sy, height) else {
                                continue;
                            };
                            for xx in 0..w.min(pw.saturating_sub(x0)) {
                                let Some(rx) = target_index(x0 + xx, dx, sx, width) else {
                                    continue;
                                };
                                let v = planes[(c * h + yy) * w + xx] * inv.gain[c] + inv.offset[c];
                                let v = if v > 0.0 { v.min(1008.0) } else { 0.0 };
                                want[ry * stride + rx] = (v + 0.5) as u16;
                            }
                        }
                    }
                    assert_eq!(
                        out, want,
                        "{cfa:?} {width}x{height} region {x0},{y0} {w}x{h}"
                    );
                }
            }
        }
    }

    #[test]
    fn packing_from_a_row_window_matches_the_whole_frame() {
        let data: [u16; 8 * 11] = core::array::from_fn(|i| (i as u16 * 53) % 1021);
        let levels = Levels::uniform(3.0, 1023.0);
        let tf = PixelTransform::forward(&levels, crate::noise::Affine::IDENTITY, 2.0);
        for cfa in CfaPhase::ALL {
            for (width, height, stride) in [(7, 11, 8), (8, 10, 8), (5, 2, 6), (6, 3, 6)] {
                let layout = FrameLayout {
                    width,
                    height,
                    stride,
                    cfa,
                };
                let ph = layout.packed_height();
                let pw = layout.packed_width();
                // Regions may run past the packed frame (padding to a size multiple).
                for p0 in 0..ph + 1 {
                    for p1 in p0 + 1..ph + 3 {
                        let (lo, hi) = layout.raw_rows_read(p0, p1);
                        assert!(lo < hi && hi <= height, "{cfa:?} {p0}..{p1}: {lo}..{hi}");
                        let n = (p1 - p0) * pw * 4;
                        let mut want = [0f32; 4 * 8 * 8];
                        let mut got = [1f32; 4 * 8 * 8];
                        pack_region(&data, &layout, &tf, p0, 0, p1 - p0, pw, &mut want).unwrap();
                        let window = &data[lo * stride..(hi - 1) * stride + width];
                        pack_region_rows(window, lo, &layout, &tf, p0, 0, p1 - p0, pw, &mut got)
                            .unwrap();
                        assert_eq!(want[..n], got[..n], "{cfa:?} {width}x{height} {p0}..{p1}");
                        // One row fewer on either side is refused, not misread.
                        assert!(hi - lo >= 2, "a packed row reads two raw rows");
                        {
                            let short = &data[(lo + 1) * stride..(hi - 1) * stride + width];
                            assert!(pack_region_rows(
                                short,
                                lo + 1,
                                &layout,
                                &tf,
                                p0,
                                0,
                                p1 - p0,
                                pw,
                                &mut got
                            )
                            .is_err());
                        }
                        {
                            let short = &data[lo * stride..(hi - 2) * stride + width];
                            assert!(pack_region_rows(
                                short,
                                lo,
                                &layout,
                                &tf,
                                p0,
                                0,
                                p1 - p0,
                                pw,
                                &mut got
                            )
                            .is_err());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        let l = FrameLayout::new(1, 4, CfaPhase::Rggb);
        assert!(l.validate(100).is_err());
        let l = FrameLayout {
            width: 4,
            height: 4,
            stride: 3,
            cfa: CfaPhase::Rggb,
        };
        assert!(l.validate(100).is_err());
        let l = FrameLayout::new(4, 4, CfaPhase::Rggb);
        assert_eq!(
            l.validate(15),
            Err(Error::BufferTooSmall {
                needed: 16,
                got: 15
            })
        );
        let l = FrameLayout {
            width: 4,
            height: 4,
            stride: usize::MAX / 2,
            cfa: CfaPhase::Rggb,
        };
        assert_eq!(l.validate(10), Err(Error::Overflow));
        for (w, h) in [
            (usize::MAX / 2, 4),
            (65536, 2),
            (2, 65536),
            (20_000, 20_001),
        ] {
            let l = FrameLayout::new(w, h, CfaPhase::Rggb);
            assert!(matches!(l.check_size(), Err(Error::BadFrame(_))), "{w}x{h}");
            assert!(matches!(l.validate(usize::MAX), Err(Error::BadFrame(_))));
        }
        assert!(FrameLayout::new(65535, 6103, CfaPhase::Rggb)
            .check_size()
            .is_ok());
        assert!(Levels::uniform(1000.0, 900.0).validate().is_err());
    }
}
