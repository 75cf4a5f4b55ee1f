//! x86-64 kernels (AVX2 + FMA, AVX-512F), installed by [`crate::Kernels::best`] only after the
//! CPU reports the features, which is what makes the safe wrappers sound.
//!
//! Every kernel computes each output element as `bias`, then one fused multiply-add per term in
//! the reference order (input channel, kernel row, kernel column, ascending), whichever lanes or
//! tail path it takes. An element's value therefore never depends on its position in the image,
//! which keeps tiled output bit-identical to whole-frame output. Results differ from the scalar
//! reference (separate multiply and add) by rounding only.

pub mod avx2_conv1x1_f32;
pub mod avx2_convt2x2_f32;
pub mod avx2_dw_f32;
pub mod avx512_conv1x1_f32;
