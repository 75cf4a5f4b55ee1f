//! Dense convolution with few channels (PMRID's `conv0` 3x3 4->16 and `out1` 3x3 16->4),
//! stride 1, any kernel up to [`MAX_K`] wide, zero padding, AVX2 + FMA: the generic driver
//! [`crate::driver::conv_f32`] over 8-lane vectors, tiles of 4 output channels by 3 vectors (12
//! accumulators). The same arithmetic as [`super::avx512_conv_f32`], so both give the same
//! bits. Grouped or strided shapes go to the reference.

use core::arch::x86_64::*;

use crate::driver::conv_f32::{drive, entry, ConvArgs};
pub use crate::driver::conv_f32::{handles, MAX_K};
use crate::{Act, ConvShape, PlaneLayout};

#[target_feature(enable = "avx2,fma")]
unsafe fn run(a: &ConvArgs<'_>) {
    drive::<__m256, 3, 4>(a)
}

/// Safe entry for dense stride-1 convolutions (zero padding, any kernel up to [`MAX_K`] wide);
/// other shapes, and CPUs without AVX2 and FMA, go to [`crate::generic::conv2d`].
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
/// refuses or a CPU without AVX2 and FMA.
pub fn conv_strided(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
) -> bool {
    let present = crate::has_avx2_fma();
    entry(present, run, s, input, weight, bias, act, output, l)
}
