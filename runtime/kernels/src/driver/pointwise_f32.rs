//! The f32 pointwise (1x1) convolution driver: output channels in blocks of the micro-kernel's
//! `MR`, pixels in tiles of its `NR`, and pixels taken in chunks of [`CHUNK`] (every channel
//! block runs over one chunk before the next starts, so each plane is read and written in
//! runs of 4 KiB and the chunk's inputs stay in L2 for the later channel blocks). Every output
//! is computed the same way wherever it lies (bias, one FMA per input channel in order, the
//! activation, then the epilogue's residual add and its activation), so a plane's last pixels,
//! a strided plane and a streamed call give the values of the whole plane.

use crate::{Act, Conv1x1, PwEpilogue};

/// Pixels per chunk.
pub(crate) const CHUNK: usize = 1024;

/// Operands of one call, as the micro-kernel reads them.
pub(crate) struct PwArgs<'a> {
    /// Input channels.
    pub(crate) in_c: usize,
    /// Input planes, `in_stride` apart.
    pub(crate) input: *const f32,
    /// Distance between input planes.
    pub(crate) in_stride: usize,
    /// Weights `[out_c][in_c]`.
    pub(crate) weight: *const f32,
    /// Bias per output channel (or empty).
    pub(crate) bias: &'a [f32],
    /// Activation after the convolution.
    pub(crate) act: Act,
    /// Output planes, `out_stride` apart.
    pub(crate) output: *mut f32,
    /// Distance between output planes.
    pub(crate) out_stride: usize,
    /// Residual planes (`res_stride` apart) added after `act`, with `res_act` after the add.
    pub(crate) residual: Option<*const f32>,
    /// Distance between residual planes.
    pub(crate) res_stride: usize,
    /// Activation after the residual add.
    pub(crate) res_act: Act,
}

impl PwArgs<'_> {
    /// Bias of output channel `oc` (0 without a bias).
    #[inline(always)]
    pub(crate) fn bias_of(&self, oc: usize) -> f32 {
        if self.bias.is_empty() {
            0.0
        } else {
            self.bias[oc]
        }
    }
}

/// The per-ISA part: one register tile of output channels by pixels.
pub(crate) trait PointwiseF32Tile {
    /// Output channels per tile (at most 8).
    const MR: usize;
    /// Pixels per tile.
    const NR: usize;
    /// Output channels `oc0..oc0 + OC` (`OC <= MR`) at the `n` pixels (`1..=NR`) from `p0`:
    /// from the bias, one FMA per input channel in order, `act`, then the residual add and
    /// `res_act` where there is a residual; writes exactly those outputs.
    unsafe fn tile<const OC: usize>(a: &PwArgs<'_>, oc0: usize, p0: usize, n: usize);
}

/// Runs the convolution with micro-kernel `T` (inlined into the caller's target features).
/// Caller: operands checked as in [`entry`].
#[inline(always)]
pub(crate) unsafe fn drive<T: PointwiseF32Tile>(s: &Conv1x1, a: &PwArgs<'_>) {
    let mut c0 = 0;
    while c0 < s.pixels {
        let c1 = (c0 + CHUNK).min(s.pixels);
        let mut oc0 = 0;
        while oc0 < s.out_c {
            let m = (s.out_c - oc0).min(T::MR);
            let mut p0 = c0;
            while p0 < c1 {
                let n = (c1 - p0).min(T::NR);
                match m {
                    1 => T::tile::<1>(a, oc0, p0, n),
                    2 => T::tile::<2>(a, oc0, p0, n),
                    3 => T::tile::<3>(a, oc0, p0, n),
                    4 => T::tile::<4>(a, oc0, p0, n),
                    5 => T::tile::<5>(a, oc0, p0, n),
                    6 => T::tile::<6>(a, oc0, p0, n),
                    7 => T::tile::<7>(a, oc0, p0, n),
                    _ => T::tile::<8>(a, oc0, p0, n),
                }
                p0 += n;
            }
            oc0 += m;
        }
        c0 = c1;
    }
}

/// The safe entry every ISA's `conv1x1_into` is: checks the operands and the epilogue's
/// planes, then runs `run` (the ISA's `#[target_feature]` wrapper of [`drive`]) when the CPU
/// has the ISA (`present`), else the scalar reference.
#[allow(clippy::too_many_arguments)]
pub(crate) fn entry(
    present: bool,
    run: unsafe fn(&Conv1x1, &PwArgs<'_>),
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    e: &PwEpilogue<'_>,
) {
    s.check_operands(weight, bias);
    e.check(s, input, output);
    if !present {
        return crate::generic::conv1x1_into(s, input, weight, bias, act, output, e);
    }
    let a = PwArgs {
        in_c: s.in_c,
        input: input.as_ptr(),
        in_stride: e.in_stride,
        weight: weight.as_ptr(),
        bias,
        act,
        output: output.as_mut_ptr(),
        out_stride: e.stride,
        residual: e.residual.map(|r| r.as_ptr()),
        res_stride: e.res_stride,
        res_act: e.act,
    };
    // SAFETY: sizes checked above: every plane the tiles touch (input channel `ic` at
    // `ic * in_stride`, output and residual channel `oc` at `oc * stride`, pixels below
    // `pixels`) lies in its buffer; the CPU has the ISA (`present`).
    #[allow(unsafe_code)]
    unsafe {
        run(s, &a)
    }
}
