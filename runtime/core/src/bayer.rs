//! Bayer frames: CFA phases, black/white levels, and packing into four half-resolution planes
//! in canonical R, Gr, Gb, B order (and back) for any of the four CFA phases.
//!
//! Packing takes each 2x2 block at even coordinates and permutes its samples into canonical
//! order, so no pixel is lost or shifted out of the frame whatever the phase. Odd widths or
//! heights leave a half block at the right or bottom edge; its missing samples are filled from
//! the same colour two pixels back, and dropped again on unpacking.

use crate::error::Error;

/// Canonical channel index of red.
pub const R: usize = 0;
/// Canonical channel index of green on red rows.
pub const GR: usize = 1;
/// Canonical channel index of green on blue rows.
pub const GB: usize = 2;
/// Canonical channel index of blue.
pub const B: usize = 3;

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
    pub const ALL: [CfaPhase; 4] = [CfaPhase::Rggb, CfaPhase::Bggr, CfaPhase::Grbg, CfaPhase::Gbrg];

    /// Canonical channels of the block positions (0,0), (0,1), (1,0), (1,1).
    pub const fn channels(self) -> [usize; 4] {
        match self {
            CfaPhase::Rggb => [R, GR, GB, B],
            CfaPhase::Bggr => [B, GB, GR, R],
            CfaPhase::Grbg => [GR, R, B, GB],
            CfaPhase::Gbrg => [GB, B, R, GR],
        }
    }

    /// Block position `(dy, dx)` of canonical channel `c` (0..4).
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
        Levels { black: [black; 4], white }
    }
    /// Checks finite levels with `white > black` on every channel and `white <= 65535`.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.white.is_finite() && self.white <= 65535.0) {
            return Err(Error::BadFrame("white level must be finite and <= 65535"));
        }
        for b in self.black {
            if !(b.is_finite() && b >= 0.0 && b < self.white) {
                return Err(Error::BadFrame("black level must be >= 0 and below the white level"));
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
        FrameLayout { width, height, stride: width, cfa }
    }
    /// Checks the geometry against a buffer of `len` elements.
    pub fn validate(&self, len: usize) -> Result<(), Error> {
        if self.width < 2 || self.height < 2 {
            return Err(Error::BadFrame("a Bayer frame needs at least 2x2 pixels"));
        }
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
    /// Height of the packed planes, `ceil(height / 2)`.
    pub const fn packed_height(&self) -> usize {
        self.height.div_ceil(2)
    }
    /// Width of the packed planes, `ceil(width / 2)`.
    pub const fn packed_width(&self) -> usize {
        self.width.div_ceil(2)
    }
}

/// Per-channel affine maps from raw values to network input and back:
/// `input = raw * gain[c] + offset[c]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelTransform {
    /// Multiplier per canonical channel.
    pub gain: [f32; 4],
    /// Offset per canonical channel.
    pub offset: [f32; 4],
}

impl PixelTransform {
    /// Builds the forward map raw -> `((raw - black) / (white - black)) * t.gain + t.offset`,
    /// then times `scale`, with `t` a normalised-domain affine map (e.g. k-sigma).
    pub fn forward(levels: &Levels, t: crate::noise::Affine, scale: f32) -> Self {
        let mut gain = [0.0; 4];
        let mut offset = [0.0; 4];
        for c in 0..4 {
            let range = (levels.white - levels.black[c]) as f64;
            let g = t.gain / range * scale as f64;
            gain[c] = g as f32;
            offset[c] = ((t.offset - levels.black[c] as f64 / range * t.gain) * scale as f64) as f32;
        }
        PixelTransform { gain, offset }
    }

    /// Builds the inverse of [`PixelTransform::forward`] with the same arguments.
    pub fn inverse(levels: &Levels, t: crate::noise::Affine, scale: f32) -> Self {
        let inv = t.inverse();
        let mut gain = [0.0; 4];
        let mut offset = [0.0; 4];
        for c in 0..4 {
            let range = (levels.white - levels.black[c]) as f64;
            // raw = (inv(v / scale)) * range + black
            gain[c] = (inv.gain / scale as f64 * range) as f32;
            offset[c] = (inv.offset * range + levels.black[c] as f64) as f32;
        }
        PixelTransform { gain, offset }
    }
}

/// Raw row of packed row `py` for block row `dy`, with edge replication beyond the packed frame
/// and the same-colour fallback for a missing last row.
#[inline]
fn source_index(p: usize, d: usize, packed: usize, full: usize) -> usize {
    let p = p.min(packed - 1);
    let r = 2 * p + d;
    if r >= full {
        r - 2
    } else {
        r
    }
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
    let plane = h.checked_mul(w).ok_or(Error::Overflow)?;
    let needed = plane.checked_mul(4).ok_or(Error::Overflow)?;
    if out.len() < needed {
        return Err(Error::BufferTooSmall { needed, got: out.len() });
    }
    let (ph, pw) = (layout.packed_height(), layout.packed_width());
    for c in 0..4 {
        let (dy, dx) = layout.cfa.offset_of(c);
        let (g, o) = (tf.gain[c], tf.offset[c]);
        let out_c = &mut out[c * plane..(c + 1) * plane];
        for (yy, out_row) in out_c.chunks_exact_mut(w).enumerate() {
            let ry = source_index(y0 + yy, dy, ph, layout.height);
            let row = &data[ry * layout.stride..ry * layout.stride + layout.width];
            for (xx, v) in out_row.iter_mut().enumerate() {
                let rx = source_index(x0 + xx, dx, pw, layout.width);
                *v = row[rx] as f32 * g + o;
            }
        }
    }
    Ok(())
}

/// Writes planes back into a frame: the region `[y0, y0 + h) x [x0, x0 + w)` (packed
/// coordinates, clipped to the frame) is read from `planes` (4 planes of `ph x pw`, CHW) at
/// `(y0 - py0, x0 - px0)`, mapped through `tf`, rounded and clamped to `[0, white]`.
#[allow(clippy::too_many_arguments)]
pub fn unpack_region(
    planes: &[f32],
    plane_h: usize,
    plane_w: usize,
    py0: usize,
    px0: usize,
    tf: &PixelTransform,
    white: f32,
    y0: usize,
    x0: usize,
    h: usize,
    w: usize,
    out: &mut [u16],
    layout: &FrameLayout,
) -> Result<(), Error> {
    layout.validate(out.len())?;
    let plane = plane_h.checked_mul(plane_w).ok_or(Error::Overflow)?;
    if planes.len() < plane * 4 {
        return Err(Error::BufferTooSmall { needed: plane * 4, got: planes.len() });
    }
    let y1 = (y0 + h).min(layout.packed_height());
    let x1 = (x0 + w).min(layout.packed_width());
    if y0 < py0 || x0 < px0 || y1 > py0 + plane_h || x1 > px0 + plane_w {
        return Err(Error::BadFrame("unpack region outside the planes"));
    }
    for c in 0..4 {
        let (dy, dx) = layout.cfa.offset_of(c);
        let (g, o) = (tf.gain[c], tf.offset[c]);
        let src = &planes[c * plane..(c + 1) * plane];
        for py in y0..y1 {
            let ry = 2 * py + dy;
            if ry >= layout.height {
                continue;
            }
            let src_row = &src[(py - py0) * plane_w..(py - py0 + 1) * plane_w];
            let dst_row = &mut out[ry * layout.stride..ry * layout.stride + layout.width];
            for px in x0..x1 {
                let rx = 2 * px + dx;
                if rx >= layout.width {
                    continue;
                }
                let v = src_row[px - px0] * g + o;
                // Clamp then round half up; NaN becomes 0.
                let v = if v > 0.0 { v.min(white) } else { 0.0 };
                dst_row[rx] = (v + 0.5) as u16;
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
        let layout = FrameLayout { width, height, stride, cfa };
        let data: [u16; 64] = core::array::from_fn(|i| (i as u16 * 37) % 1000);
        let levels = Levels::uniform(0.0, 1023.0);
        let fwd = PixelTransform::forward(&levels, crate::noise::Affine::IDENTITY, 1.0);
        let inv = PixelTransform::inverse(&levels, crate::noise::Affine::IDENTITY, 1.0);
        let (ph, pw) = (layout.packed_height(), layout.packed_width());
        let mut planes = [0f32; 4 * 16];
        pack_region(&data, &layout, &fwd, 0, 0, ph, pw, &mut planes).unwrap();
        let mut out = [0xFFFFu16; 64];
        unpack_region(&planes, ph, pw, 0, 0, &inv, 1023.0, 0, 0, ph, pw, &mut out, &layout).unwrap();
        for y in 0..height {
            for x in 0..width {
                assert_eq!(out[y * stride + x], data[y * stride + x], "{cfa:?} {width}x{height} at {x},{y}");
            }
            for x in width..stride {
                assert_eq!(out[y * stride + x], 0xFFFF, "padding between rows must be untouched");
            }
        }
        // Canonical placement: the R plane holds the red samples.
        let (dy, dx) = cfa.offset_of(R);
        let r0 = data[dy * stride + dx] as f32 / 1023.0;
        assert!((planes[0] - r0).abs() < 1e-6);
    }

    #[test]
    fn pack_unpack_is_lossless_for_every_phase_and_odd_sizes() {
        for cfa in CfaPhase::ALL {
            for (w, h, s) in [(2, 2, 2), (3, 3, 3), (5, 4, 7), (4, 5, 4), (7, 7, 8), (8, 8, 8)] {
                roundtrip(w, h, s, cfa);
            }
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        let l = FrameLayout::new(1, 4, CfaPhase::Rggb);
        assert!(l.validate(100).is_err());
        let l = FrameLayout { width: 4, height: 4, stride: 3, cfa: CfaPhase::Rggb };
        assert!(l.validate(100).is_err());
        let l = FrameLayout::new(4, 4, CfaPhase::Rggb);
        assert_eq!(l.validate(15), Err(Error::BufferTooSmall { needed: 16, got: 15 }));
        let l = FrameLayout::new(usize::MAX / 2, 4, CfaPhase::Rggb);
        assert_eq!(l.validate(10), Err(Error::Overflow));
        assert!(Levels::uniform(1000.0, 900.0).validate().is_err());
    }
}
