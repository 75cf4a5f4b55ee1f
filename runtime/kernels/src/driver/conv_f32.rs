//! The f32 dense convolution driver (stride 1, one group, any kernel up to [`MAX_K`] wide,
//! zero padding: PMRID's `conv0` 3x3 4->16 and `out1` 3x3 16->4), on planes laid out as a
//! [`PlaneLayout`] says (input rows may wrap like a ring's: streamed calls read their rings in
//! place). The tile is written once here over the [`F32Lanes`] vector operations of an ISA: a
//! register tile of `OC` output channels by `V` vectors of one output row takes one FMA per
//! term in the reference order (input channel, kernel row, kernel column); input columns
//! outside the row are read as zeros by masked loads (an FMA with a zero input leaves the sum
//! unchanged) and input rows outside the plane are skipped, as in the reference, so borders
//! and the last pixels of a row are lanes like any other (masked stores). Every ISA therefore
//! gives the same bits.

#![allow(clippy::needless_range_loop)]

use crate::{Act, ConvShape, PlaneLayout};

/// Widest kernel handled (the column masks of a block live on the stack).
pub const MAX_K: usize = 16;

/// The vector operations of one ISA that the tile needs (`N` f32 lanes).
pub(crate) trait F32Lanes: Copy {
    /// Lanes per vector.
    const N: usize;
    /// A lane mask for loads.
    type Mask: Copy;
    /// All lanes `x`.
    unsafe fn splat(x: f32) -> Self;
    /// `a * b + c`, fused.
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
    /// The lanes `l` whose input column `start + l` lies in `0..width`, and whether that is
    /// all of them.
    unsafe fn row_mask(start: isize, width: usize) -> (Self::Mask, bool);
    /// The lanes of `m` from `p` (others zero; masked-off lanes are not read, so `p` may lie
    /// outside the row); `full`: all lanes, a plain load.
    unsafe fn load(p: *const f32, m: Self::Mask, full: bool) -> Self;
    /// Stores the first `n` lanes (`1..=N`, or more: all) at `p`.
    unsafe fn store(p: *mut f32, v: Self, n: usize);
    /// The activation, lane for lane equal to [`Act::apply`].
    unsafe fn act(v: Self, act: Act) -> Self;
}

/// Operands of one call.
pub(crate) struct ConvArgs<'a> {
    s: &'a ConvShape,
    ow: usize,
    input: *const f32,
    weight: *const f32,
    bias: &'a [f32],
    act: Act,
    output: *mut f32,
    l: &'a PlaneLayout,
}

impl ConvArgs<'_> {
    /// Output channels.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn out_c(&self) -> usize {
        self.s.out_c
    }
}

/// Output pixels `x0..x0 + N V` (clipped to the row) of row `oy`, channels `oc0..oc0 + OC`.
#[inline(always)]
unsafe fn tile<L: F32Lanes, const OC: usize, const V: usize>(
    a: &ConvArgs<'_>,
    oy: usize,
    x0: usize,
    oc0: usize,
) {
    let (s, l) = (a.s, a.l);
    let kk = s.k_h * s.k_w;
    let mut acc = [[L::splat(0.0); V]; OC];
    for j in 0..OC {
        let b = if a.bias.is_empty() {
            0.0
        } else {
            a.bias[oc0 + j]
        };
        acc[j] = [L::splat(b); V];
    }
    // Input column of lane 0 of vector v for kernel column kx: x0 + N v + kx - pad_left.
    let start = |kx: usize, v: usize| (x0 + L::N * v + kx) as isize - s.pad[1] as isize;
    let mut masks = [[L::row_mask(0, 0); V]; MAX_K];
    for kx in 0..s.k_w {
        for v in 0..V {
            masks[kx][v] = L::row_mask(start(kx, v), s.in_w);
        }
    }
    for ic in 0..s.in_c {
        for ky in 0..s.k_h {
            let iy = (oy + ky) as isize - s.pad[0] as isize;
            if iy < 0 || iy >= s.in_h as isize {
                continue;
            }
            let row = a
                .input
                .add(ic * l.in_stride + l.in_plane_row(iy as usize) * s.in_w);
            for kx in 0..s.k_w {
                let mut x = [L::splat(0.0); V];
                for v in 0..V {
                    let (m, full) = masks[kx][v];
                    x[v] = L::load(row.wrapping_offset(start(kx, v)), m, full);
                }
                let t = ic * kk + ky * s.k_w + kx;
                for j in 0..OC {
                    let w = L::splat(*a.weight.add((oc0 + j) * s.in_c * kk + t));
                    for v in 0..V {
                        acc[j][v] = L::fmadd(w, x[v], acc[j][v]);
                    }
                }
            }
        }
    }
    for j in 0..OC {
        let dst = a.output.add((oc0 + j) * l.out_stride + oy * a.ow + x0);
        for v in 0..V {
            let left = a.ow as isize - (x0 + L::N * v) as isize;
            if left > 0 {
                L::store(dst.add(L::N * v), L::act(acc[j][v], a.act), left as usize);
            }
        }
    }
}

/// Runs the convolution with tiles of `V` vectors by up to `OCB` (at most 8) channels
/// (inlined into the caller's target features). Caller: operands checked as in [`entry`].
#[inline(always)]
pub(crate) unsafe fn drive<L: F32Lanes, const V: usize, const OCB: usize>(a: &ConvArgs<'_>) {
    let Some((oh, ow)) = a.s.conv_out() else {
        return;
    };
    for oy in 0..oh {
        let mut x0 = 0;
        while x0 < ow {
            let mut oc0 = 0;
            while oc0 < a.s.out_c {
                match (a.s.out_c - oc0).min(OCB) {
                    1 => tile::<L, 1, V>(a, oy, x0, oc0),
                    2 => tile::<L, 2, V>(a, oy, x0, oc0),
                    3 => tile::<L, 3, V>(a, oy, x0, oc0),
                    4 => tile::<L, 4, V>(a, oy, x0, oc0),
                    5 => tile::<L, 5, V>(a, oy, x0, oc0),
                    6 => tile::<L, 6, V>(a, oy, x0, oc0),
                    7 => tile::<L, 7, V>(a, oy, x0, oc0),
                    _ => tile::<L, 8, V>(a, oy, x0, oc0),
                }
                oc0 += OCB;
            }
            x0 += L::N * V;
        }
    }
}

/// True when the driver takes the shape: dense (one group), stride 1, kernel at most
/// [`MAX_K`] wide and fitting the padded input; anything else goes to the reference (which
/// panics for a kernel larger than the padded input).
pub fn handles(s: &ConvShape) -> bool {
    s.groups == 1
        && s.stride_h == 1
        && s.stride_w == 1
        && s.k_w <= MAX_K
        && s.k_w > 0
        && s.conv_out().is_some()
}

/// The safe entry every ISA's `conv_strided` is: `false`, writing nothing, for a shape
/// [`handles`] refuses or a CPU without the ISA (`present`); else checks the operands and the
/// layout and runs `run` (the ISA's `#[target_feature]` wrapper of [`drive`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn entry(
    present: bool,
    run: unsafe fn(&ConvArgs<'_>),
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
) -> bool {
    if !handles(s) || !present {
        return false;
    }
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    l.check(s, oh * ow, input.len(), output.len());
    assert!(
        weight.len() >= s.out_c * s.in_c * s.k_h * s.k_w,
        "conv: weight too short"
    );
    assert!(
        bias.is_empty() || bias.len() >= s.out_c,
        "conv: bias too short"
    );
    let a = ConvArgs {
        s,
        ow,
        input: input.as_ptr(),
        weight: weight.as_ptr(),
        bias,
        act,
        output: output.as_mut_ptr(),
        l,
    };
    // SAFETY: sizes checked above (every channel's rows lie in their buffers; window rows map
    // into the planes); loads are masked to the input row, stores to the output row; the CPU
    // has the ISA (`present`).
    #[allow(unsafe_code)]
    unsafe {
        run(&a)
    }
    true
}
