//! Dense convolution with few channels (PMRID's `conv0` 3x3 4->16 and `out1` 3x3 16->4),
//! stride 1, any kernel up to [`MAX_K`] wide, zero padding, AVX-512F: the generic driver
//! [`crate::driver::conv_f32`] over 16-lane vectors, tiles of 8 output channels by 2 vectors,
//! or 4 by 4 for few output channels (16 accumulators; 6 vectors or 3 with more accumulators
//! measured no faster). Grouped or strided shapes go to the reference.

use core::arch::x86_64::*;

use crate::driver::conv_f32::{drive, entry, ConvArgs};
pub use crate::driver::conv_f32::{handles, MAX_K};
use crate::{Act, ConvShape, PlaneLayout};

#[target_feature(enable = "avx512f")]
unsafe fn run(a: &ConvArgs<'_>) {
    if a.out_c() > 4 {
        drive::<__m512, 2, 8>(a)
    } else {
        drive::<__m512, 4, 4>(a)
    }
}

/// Safe entry for dense stride-1 convolutions (zero padding, any kernel up to [`MAX_K`] wide);
/// other shapes, and CPUs without AVX-512F, go to [`crate::generic::conv2d`].
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
/// refuses or a CPU without AVX-512F.
pub fn conv_strided(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
) -> bool {
    let present = crate::has_avx512f();
    entry(present, run, s, input, weight, bias, act, output, l)
}
