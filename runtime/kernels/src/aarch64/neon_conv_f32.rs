//! Dense convolution with few channels (PMRID's `conv0` 3x3 4->16 and `out1` 3x3 16->4),
//! stride 1, any kernel up to [`MAX_K`] wide, zero padding, NEON: the generic driver
//! [`crate::driver::conv_f32`] over 4-lane vectors ([`super::lanes`]), tiles of 4 output
//! channels by 4 vectors (16 accumulators of the 32 registers). The same arithmetic as the
//! x86 kernels. Grouped or strided shapes go to the reference.

use core::arch::aarch64::*;

use crate::driver::conv_f32::{drive, entry, ConvArgs};
pub use crate::driver::conv_f32::{handles, MAX_K};
use crate::{Act, ConvShape, PlaneLayout};

#[target_feature(enable = "neon")]
unsafe fn run(a: &ConvArgs<'_>) {
    drive::<float32x4_t, 4, 4>(a)
}

/// Safe entry for dense stride-1 convolutions (zero padding, any kernel up to [`MAX_K`] wide);
/// other shapes, and CPUs without NEON, go to [`crate::generic::conv2d`].
pub fn conv(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    if !conv_strided(s, input, weight, bias, act, output, &PlaneLayout::dense(s)) {
        crate::generic::conv2d(s, input, weight, bias, act, output)
    }
}

/// [`conv`] on planes laid out as `l` says (rows of larger planes, input rows wrapping like a
/// ring's: a streamed value's ring, [`crate::Kernels::conv_strided`]), the same results as
/// [`conv`] on the planes alone. Returns `false`, writing nothing, for a shape [`handles`]
/// refuses or a CPU without NEON.
pub fn conv_strided(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
) -> bool {
    entry(
        super::has_neon(),
        run,
        s,
        input,
        weight,
        bias,
        act,
        output,
        l,
    )
}
