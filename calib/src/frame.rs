//! Raw frames for calibration: a DNG (through rawnr-io) or a binary PGM with the CFA and
//! levels given on the command line, seen as four colour planes inside the active area.

use std::io::Read;
use std::path::{Path, PathBuf};

use rawnr_core::bayer::{CfaPhase, Levels};

use crate::error::CalibError;

/// A rectangle `(x, y, w, h)` in active-area coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
}

impl Rect {
    /// Parses `x,y,w,h` (non-negative integers, `w` and `h` at least 8).
    pub fn parse(s: &str) -> Result<Rect, CalibError> {
        let bad = || CalibError::Usage(format!("--roi {s}: expected x,y,w,h (w, h >= 8)"));
        let v: Vec<usize> = s
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match v[..] {
            [x, y, w, h] if w >= 8 && h >= 8 => Ok(Rect { x, y, w, h }),
            _ => Err(bad()),
        }
    }
}

/// Levels and CFA for PGM inputs, which carry neither.
#[derive(Debug, Clone, Default)]
pub struct PgmOptions {
    /// CFA phase at (0, 0).
    pub cfa: Option<CfaPhase>,
    /// Black level: one value or R, Gr, Gb, B.
    pub black: Option<[f32; 4]>,
    /// White level.
    pub white: Option<f32>,
}

/// A raw Bayer frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Where it came from.
    pub path: PathBuf,
    /// All stored samples, row-major.
    pub data: Vec<u16>,
    /// Stored width.
    pub width: usize,
    /// Stored height.
    pub height: usize,
    /// Active area: the part analysed.
    pub active: Rect,
    /// CFA phase at the active area's top-left corner.
    pub cfa: CfaPhase,
    /// Black levels (R, Gr, Gb, B) and white level from the file (or the options).
    pub levels: Levels,
    /// ISO (EXIF, or the fallback given).
    pub iso: Option<u32>,
    /// Exposure time in seconds.
    pub exposure_s: Option<f64>,
    /// Camera make and model.
    pub sensor: String,
    /// The DNG NoiseProfile tag's `(S, O)` pairs, if any.
    pub noise_profile: Option<Vec<(f64, f64)>>,
}

/// Canonical channel names, R, Gr, Gb, B.
pub const CHANNEL_NAMES: [&str; 4] = ["R", "Gr", "Gb", "B"];

fn is_pgm(path: &Path) -> Result<bool, CalibError> {
    let mut magic = [0u8; 2];
    let mut f = std::fs::File::open(path).map_err(|e| CalibError::input(path, e.to_string()))?;
    let n = f
        .read(&mut magic)
        .map_err(|e| CalibError::input(path, e.to_string()))?;
    Ok(n == 2 && &magic == b"P5")
}

impl Frame {
    /// Reads a DNG, or a P5 PGM (which needs `pgm`'s CFA and levels). `iso_fallback` is the
    /// ISO of a file that carries none.
    pub fn load(
        path: &Path,
        pgm: &PgmOptions,
        iso_fallback: Option<u32>,
    ) -> Result<Frame, CalibError> {
        if is_pgm(path)? {
            let (Some(cfa), Some(black), Some(white)) = (pgm.cfa, pgm.black, pgm.white) else {
                return Err(CalibError::input(
                    path,
                    "a PGM frame carries no CFA or levels: pass --cfa, --black and --white",
                ));
            };
            let levels = Levels { black, white };
            levels
                .validate()
                .map_err(|e| CalibError::input(path, e.to_string()))?;
            let p = rawnr_io::pgm::read(path)?;
            if p.width < 2 || p.height < 2 {
                return Err(CalibError::input(path, "frame smaller than 2x2"));
            }
            return Ok(Frame {
                path: path.to_path_buf(),
                active: Rect {
                    x: 0,
                    y: 0,
                    w: p.width,
                    h: p.height,
                },
                data: p.data,
                width: p.width,
                height: p.height,
                cfa,
                levels,
                iso: iso_fallback,
                exposure_s: None,
                sensor: String::new(),
                noise_profile: None,
            });
        }
        let d = rawnr_io::dng::read(path)?;
        let (x, y, w, h) = d.active;
        let sensor = format!("{} {}", d.make.trim(), d.model.trim())
            .trim()
            .to_string();
        Ok(Frame {
            path: path.to_path_buf(),
            width: d.width,
            height: d.height,
            active: Rect { x, y, w, h },
            cfa: d.cfa,
            levels: d.levels,
            iso: d.iso.or(iso_fallback),
            exposure_s: d.exposure_s,
            sensor,
            noise_profile: d.noise_profile.clone(),
            data: d.data,
        })
    }

    /// The file name, for messages.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// `white - black` of canonical channel `c`: the DN span of normalised [0, 1].
    pub fn range(&self, c: usize) -> f64 {
        (self.levels.white - self.levels.black[c]) as f64
    }

    /// Size `(w, h)` of the plane of canonical channel `c` inside the active area.
    pub fn plane_dims(&self, c: usize) -> (usize, usize) {
        let (dy, dx) = self.cfa.offset_of(c);
        (
            self.active.w.saturating_sub(dx).div_ceil(2),
            self.active.h.saturating_sub(dy).div_ceil(2),
        )
    }

    /// Sample `(i, j)` (row, column) of the plane of channel `c`.
    #[inline]
    pub fn plane_sample(&self, c: usize, i: usize, j: usize) -> u16 {
        let (dy, dx) = self.cfa.offset_of(c);
        self.data[(self.active.y + dy + 2 * i) * self.width + self.active.x + dx + 2 * j]
    }

    /// Active-area position `(x, y)` of plane sample `(i, j)` of channel `c`.
    pub fn plane_to_active(&self, c: usize, i: usize, j: usize) -> (usize, usize) {
        let (dy, dx) = self.cfa.offset_of(c);
        (dx + 2 * j, dy + 2 * i)
    }

    /// Channel and plane position `(c, i, j)` of active-area position `(x, y)`.
    pub fn active_to_plane(&self, x: usize, y: usize) -> (usize, usize, usize) {
        let ch = self.cfa.channels();
        (ch[(y % 2) * 2 + x % 2], y / 2, x / 2)
    }

    /// Plane rows `i0..i1` and columns `j0..j1` of channel `c` inside `roi`.
    pub fn plane_range(&self, c: usize, roi: Rect) -> (usize, usize, usize, usize) {
        let (dy, dx) = self.cfa.offset_of(c);
        let (pw, ph) = self.plane_dims(c);
        let lo = |start: usize, off: usize| start.saturating_sub(off).div_ceil(2);
        let hi = |end: usize, off: usize, n: usize| end.saturating_sub(off).div_ceil(2).min(n);
        (
            lo(roi.y, dy),
            hi(roi.y + roi.h, dy, ph),
            lo(roi.x, dx),
            hi(roi.x + roi.w, dx, pw),
        )
    }

    /// Checks that `roi` lies inside the active area.
    pub fn check_roi(&self, roi: Rect) -> Result<(), CalibError> {
        if roi.x + roi.w > self.active.w || roi.y + roi.h > self.active.h {
            return Err(CalibError::input(
                &self.path,
                format!(
                    "--roi {},{},{},{} is outside the {}x{} active area",
                    roi.x, roi.y, roi.w, roi.h, self.active.w, self.active.h
                ),
            ));
        }
        Ok(())
    }

    /// Checks that `other` has this frame's size, CFA phase and white level (`what` names
    /// the set, e.g. "dark set").
    pub fn check_same_sensor(&self, other: &Frame, what: &str) -> Result<(), CalibError> {
        let reason = if (self.width, self.height, self.active)
            != (other.width, other.height, other.active)
        {
            Some(format!(
                "size {}x{} differs from {} ({}x{}) in the {what}",
                other.width,
                other.height,
                self.name(),
                self.width,
                self.height
            ))
        } else if self.cfa != other.cfa {
            Some(format!(
                "CFA {} differs from {} ({}) in the {what}",
                other.cfa.name(),
                self.name(),
                self.cfa.name()
            ))
        } else if self.levels.white != other.levels.white {
            Some(format!(
                "white level {} differs from {} ({}) in the {what}",
                other.levels.white,
                self.name(),
                self.levels.white
            ))
        } else {
            None
        };
        match reason {
            Some(r) => Err(CalibError::input(&other.path, r)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(cfa: CfaPhase, w: usize, h: usize) -> Frame {
        Frame {
            path: "t".into(),
            data: (0..w * h).map(|i| i as u16).collect(),
            width: w,
            height: h,
            active: Rect { x: 0, y: 0, w, h },
            cfa,
            levels: Levels::uniform(0.0, 65535.0),
            iso: None,
            exposure_s: None,
            sensor: String::new(),
            noise_profile: None,
        }
    }

    #[test]
    fn planes_cover_every_sample_once() {
        for cfa in CfaPhase::ALL {
            let f = frame(cfa, 7, 5);
            let mut seen = [0; 35];
            for c in 0..4 {
                let (pw, ph) = f.plane_dims(c);
                for i in 0..ph {
                    for j in 0..pw {
                        let v = f.plane_sample(c, i, j) as usize;
                        seen[v] += 1;
                        let (x, y) = f.plane_to_active(c, i, j);
                        assert_eq!(v, y * 7 + x);
                        assert_eq!(f.active_to_plane(x, y), (c, i, j));
                    }
                }
            }
            assert!(seen.iter().all(|&n| n == 1));
        }
    }

    #[test]
    fn roi_ranges_hold_exactly_the_roi_samples() {
        let f = frame(CfaPhase::Grbg, 20, 16);
        let roi = Rect {
            x: 3,
            y: 5,
            w: 9,
            h: 8,
        };
        let mut n = 0;
        for c in 0..4 {
            let (i0, i1, j0, j1) = f.plane_range(c, roi);
            for i in i0..i1 {
                for j in j0..j1 {
                    let (x, y) = f.plane_to_active(c, i, j);
                    assert!((3..12).contains(&x) && (5..13).contains(&y), "{c} {x} {y}");
                    n += 1;
                }
            }
        }
        assert_eq!(n, 72);
        assert!(Rect::parse("1,2,30,40").is_ok());
        assert!(Rect::parse("1,2,3").is_err());
        assert!(Rect::parse("1,2,3,40").is_err());
        assert!(Rect::parse("a,2,30,40").is_err());
    }
}
