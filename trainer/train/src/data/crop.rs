//! Crops and flips that keep the Bayer phase: every packed patch has red at the top-left of each
//! 2x2 block, so packing never mixes colour channels.

use rand::Rng;
use rawnr_quality::CleanFrame;

/// A flip / transpose of the Bayer window (the dihedral group's 8 elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Augment {
    /// Swap rows and columns (applied first).
    pub transpose: bool,
    /// Mirror left-right.
    pub hflip: bool,
    /// Mirror top-bottom.
    pub vflip: bool,
}

impl Augment {
    /// One of the 8 uniformly.
    pub fn random(rng: &mut impl Rng) -> Augment {
        Augment {
            transpose: rng.random(),
            hflip: rng.random(),
            vflip: rng.random(),
        }
    }
}

/// A `2p + 2` square of Bayer samples at `(x0, y0)` of a frame, seen through an [`Augment`],
/// from which a `p x p` packed patch with red at each block's top-left is taken.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Window origin in the frame (Bayer samples).
    pub x0: usize,
    /// Window origin in the frame.
    pub y0: usize,
    /// Packed patch side.
    pub p: usize,
    /// The view.
    pub aug: Augment,
}

impl Window {
    /// Window side in Bayer samples.
    pub fn side(p: usize) -> usize {
        2 * p + 2
    }

    /// A uniformly placed window on `frame` (which must be at least `2p + 2` on each side).
    pub fn random(frame: &CleanFrame, p: usize, aug: Augment, rng: &mut impl Rng) -> Window {
        let s = Self::side(p);
        let (w, h) = (frame.layout.width, frame.layout.height);
        assert!(w >= s && h >= s, "frame smaller than the crop window");
        Window {
            x0: rng.random_range(0..=w - s),
            y0: rng.random_range(0..=h - s),
            p,
            aug,
        }
    }

    /// The centred window of a frame, not augmented (validation crops).
    pub fn centre(frame: &CleanFrame, p: usize) -> Window {
        let s = Self::side(p);
        Window {
            x0: (frame.layout.width - s) / 2,
            y0: (frame.layout.height - s) / 2,
            p,
            aug: Augment::default(),
        }
    }

    /// Frame coordinates `(y, x)` of window-view position `(ty, tx)`.
    fn source(&self, ty: usize, tx: usize) -> (usize, usize) {
        let s = Self::side(self.p);
        let (mut wy, mut wx) = if self.aug.transpose {
            (tx, ty)
        } else {
            (ty, tx)
        };
        if self.aug.hflip {
            wx = s - 1 - wx;
        }
        if self.aug.vflip {
            wy = s - 1 - wy;
        }
        (self.y0 + wy, self.x0 + wx)
    }

    /// The packed patch (4 planes R, Gr, Gb, B of `p x p`, planar): the view is shifted by
    /// one sample where needed so that red sits at every block's top-left. (A transpose
    /// exchanges the two greens' positions; both are green with the same noise.)
    pub fn pack(&self, frame: &CleanFrame) -> Vec<f32> {
        let ch = frame.layout.cfa.channels();
        let w = frame.layout.width;
        let channel = |(y, x): (usize, usize)| ch[(y % 2) * 2 + x % 2];
        let (dy, dx) = (0..4)
            .map(|i| (i / 2, i % 2))
            .find(|&(y, x)| channel(self.source(y, x)) == rawnr_core::channel::R)
            .expect("a 2x2 block holds a red sample");
        let p = self.p;
        let mut out = vec![0f32; 4 * p * p];
        for (c, plane) in out.chunks_exact_mut(p * p).enumerate() {
            let (a, b) = (c / 2, c % 2);
            for i in 0..p {
                for j in 0..p {
                    let (y, x) = self.source(2 * i + a + dy, 2 * j + b + dx);
                    plane[i * p + j] = frame.data[y * w + x] as f32;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};

    /// A frame whose sample value encodes its colour channel (0.1 R, 0.2 G, 0.3 B).
    fn colour_coded(cfa: CfaPhase, w: usize, h: usize) -> CleanFrame {
        let ch = cfa.channels();
        let data = (0..h * w)
            .map(|i| {
                let c = ch[((i / w) % 2) * 2 + (i % w) % 2];
                [0.1, 0.2, 0.2, 0.3][c]
            })
            .collect();
        CleanFrame {
            data,
            layout: FrameLayout::new(w, h, cfa),
            levels: Levels::uniform(0.0, 1023.0),
        }
    }

    #[test]
    fn every_view_of_every_phase_packs_red_green_green_blue() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for cfa in ["rggb", "bggr", "grbg", "gbrg"] {
            let f = colour_coded(CfaPhase::parse(cfa).unwrap(), 23, 19);
            for k in 0..8 {
                let aug = Augment {
                    transpose: k & 1 != 0,
                    hflip: k & 2 != 0,
                    vflip: k & 4 != 0,
                };
                for _ in 0..5 {
                    let w = Window::random(&f, 7, aug, &mut rng);
                    let planes = w.pack(&f);
                    for (c, want) in [0.1f32, 0.2, 0.2, 0.3].iter().enumerate() {
                        assert!(
                            planes[c * 49..(c + 1) * 49].iter().all(|v| v == want),
                            "{cfa} {aug:?} plane {c}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn identity_view_is_a_plain_crop() {
        let mut f = colour_coded(CfaPhase::Rggb, 10, 10);
        for (i, v) in f.data.iter_mut().enumerate() {
            *v = i as f64;
        }
        let w = Window {
            x0: 2,
            y0: 4,
            p: 2,
            aug: Augment::default(),
        };
        let planes = w.pack(&f);
        // R plane: samples (4,2), (4,4), (6,2), (6,4); B plane starts at (5,3).
        assert_eq!(&planes[0..4], &[42.0, 44.0, 62.0, 64.0]);
        assert_eq!(planes[12], 53.0);
    }
}
