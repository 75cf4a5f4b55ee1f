//! rawnr compute kernels.
//!
//! [`generic`] holds the scalar f32 reference of every op ([`generic_i8`] the int8 one): the
//! oracle that every optimised kernel (per-ISA files in `x86_64/` and `aarch64/`) is tested
//! against. [`Kernels::best`] installs the fastest kernels of the CPU's level, which [`Isa`]
//! can cap lower (`RAWNR_ISA`) to run a smaller CPU's kernels. Built with
//! `--cfg rawnr_no_simd`, the crate has the generic kernels only (fuzz builds). Tensors are CHW `f32` slices;
//! kernels never allocate, and shapes are described by plain structs.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(all(target_arch = "aarch64", not(rawnr_no_simd)))]
#[allow(unsafe_code)]
pub mod aarch64;
pub mod cpu;
#[cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(rawnr_no_simd)
))]
#[allow(unsafe_code)]
mod driver;
pub mod generic;
pub mod generic_i8;
mod isa;
pub mod quant;
#[cfg(all(target_arch = "x86_64", not(rawnr_no_simd)))]
#[allow(unsafe_code)]
pub mod x86_64;

pub use isa::{Isa, IsaError};

/// Most input channels [`Kernels::qconv1x1_strided`] takes.
pub const QCONV1X1_STRIDED_MAX_IN_C: usize = 512;

/// Activation applied to a kernel's output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// Identity.
    None,
    /// max(x, 0).
    Relu,
    /// x if x >= 0 else alpha * x.
    LeakyRelu(f32),
}

impl Act {
    /// Applies the activation to one value.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            Act::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
        }
    }
}

/// Shape of a pointwise (1x1, stride 1, dense) convolution over CHW planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv1x1 {
    /// Input channels.
    pub in_c: usize,
    /// Output channels.
    pub out_c: usize,
    /// Pixels per plane (height times width).
    pub pixels: usize,
}

impl Conv1x1 {
    /// Panics unless the buffers fit the shape (a caller bug, not bad input).
    pub fn check(&self, input: &[f32], weight: &[f32], bias: &[f32], output: &[f32]) {
        self.check_operands(weight, bias);
        assert!(
            input.len() >= self.in_c * self.pixels,
            "conv1x1: input too short"
        );
        assert!(
            output.len() >= self.out_c * self.pixels,
            "conv1x1: output too short"
        );
    }

    /// [`Conv1x1::check`] for the weights and bias (the input and output planes of a strided
    /// call: [`PwEpilogue::check`]).
    pub fn check_operands(&self, weight: &[f32], bias: &[f32]) {
        assert!(
            weight.len() >= self.in_c * self.out_c,
            "conv1x1: weight too short"
        );
        assert!(
            bias.is_empty() || bias.len() >= self.out_c,
            "conv1x1: bias too short"
        );
    }
}

/// Where a pointwise convolution reads and writes, for fused layers and streamed rows: input
/// channel `ic`, pixel `p` is `input[ic * in_stride + p]`; output channel `oc`, pixel `p` goes
/// to `output[oc * stride + p]` (a band of rows of larger planes), and with a residual it is
/// `act(y + residual[oc * res_stride + p])` with `y` the convolution's value (after its own
/// activation), the same arithmetic as a separate [`AddFn`] on `y` and the residual.
#[derive(Debug, Clone, Copy)]
pub struct PwEpilogue<'a> {
    /// Distance between output (and residual) planes, at least `pixels`.
    pub stride: usize,
    /// Distance between input planes, at least `pixels` (rows of larger planes, e.g. a
    /// streamed value's ring).
    pub in_stride: usize,
    /// Added to the output, with `act` after the addition.
    pub residual: Option<&'a [f32]>,
    /// Distance between residual planes, at least `pixels`.
    pub res_stride: usize,
    /// Activation after the residual add (ignored without a residual).
    pub act: Act,
}

impl PwEpilogue<'_> {
    /// The plain form: planes of `pixels` one after the other, no residual.
    pub fn dense(pixels: usize) -> Self {
        PwEpilogue {
            stride: pixels,
            in_stride: pixels,
            residual: None,
            res_stride: pixels,
            act: Act::None,
        }
    }

    /// The residual add alone, on planes already written: `output = act(output + residual)`
    /// element by element, exactly [`generic::add`] (for kernels whose CPU runs that add).
    pub fn add_residual(&self, s: &Conv1x1, output: &mut [f32]) {
        if let Some(r) = self.residual {
            for oc in 0..s.out_c {
                let (at, ra) = (oc * self.stride, oc * self.res_stride);
                let plane = &mut output[at..at + s.pixels];
                for (o, &x) in plane.iter_mut().zip(&r[ra..ra + s.pixels]) {
                    *o = self.act.apply(*o + x);
                }
            }
        }
    }

    /// Panics unless the input holds `s`'s planes at `in_stride`, the output at `stride` and
    /// the residual at `res_stride`.
    pub fn check(&self, s: &Conv1x1, input: &[f32], output: &[f32]) {
        assert!(
            self.stride >= s.pixels && self.in_stride >= s.pixels,
            "conv1x1: stride below the plane size"
        );
        let span = |planes: usize, stride: usize| match planes {
            0 => 0,
            c => (c - 1) * stride + s.pixels,
        };
        assert!(
            input.len() >= span(s.in_c, self.in_stride),
            "conv1x1: input too short"
        );
        let need = span(s.out_c, self.stride);
        assert!(output.len() >= need, "conv1x1: output too short");
        if let Some(r) = self.residual {
            assert!(
                self.res_stride >= s.pixels && r.len() >= span(s.out_c, self.res_stride),
                "conv1x1: residual too short"
            );
        }
    }
}

/// Where a convolution over rows of larger planes reads and writes (streamed rings): input
/// channel `c`'s plane starts at element `c * in_stride`, and row `y` of the convolution's
/// input (`in_h` rows) is row `(in_first_row + y) mod in_rows` of that plane; output channel
/// `c`'s rows start at `c * out_stride`, one after the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Distance between input planes, at least `in_rows * in_w`.
    pub in_stride: usize,
    /// Rows of an input plane (a ring's rows), at least `in_h`.
    pub in_rows: usize,
    /// Plane row of the convolution's input row 0, below `in_rows`.
    pub in_first_row: usize,
    /// Distance between output planes, at least the output plane's size.
    pub out_stride: usize,
}

impl PlaneLayout {
    /// Planes one after the other, nothing wrapping.
    pub fn dense(s: &ConvShape) -> Self {
        PlaneLayout {
            in_stride: s.in_h * s.in_w,
            in_rows: s.in_h,
            in_first_row: 0,
            out_stride: s.conv_out().map_or(0, |(oh, ow)| oh * ow),
        }
    }

    /// Plane row of the window's input row `y` (`y < in_h`): `(in_first_row + y) mod in_rows`,
    /// without a division (`in_first_row < in_rows` and `in_h <= in_rows`, as [`Self::check`]
    /// requires). The one place the ring-row mapping is written; every ring-aware kernel maps
    /// its rows through it.
    #[inline(always)]
    pub fn in_plane_row(&self, y: usize) -> usize {
        let r = self.in_first_row + y;
        if r >= self.in_rows {
            r - self.in_rows
        } else {
            r
        }
    }

    /// Panics unless the layout is consistent with shape `s` (output planes of `out_plane`
    /// elements) and buffers of `input` and `output` elements hold every channel.
    pub fn check(&self, s: &ConvShape, out_plane: usize, input: usize, output: usize) {
        assert!(
            self.in_rows >= s.in_h
                && (self.in_first_row < self.in_rows || self.in_rows == 0)
                && self.in_stride >= self.in_rows * s.in_w
                && self.out_stride >= out_plane,
            "plane layout inconsistent with the shape"
        );
        let span = |c: usize, stride: usize, plane: usize| match c {
            0 => 0,
            c => (c - 1) * stride + plane,
        };
        assert!(
            input >= span(s.in_c, self.in_stride, self.in_rows * s.in_w),
            "input too short for its layout"
        );
        assert!(
            output >= span(s.out_c, self.out_stride, out_plane),
            "output too short for its layout"
        );
    }
}

/// A convolution kernel: shape, input, weight, bias (or empty), activation, output.
pub type ConvFn = fn(&ConvShape, &[f32], &[f32], &[f32], Act, &mut [f32]);
/// A depthwise convolution kernel on planes laid out as a [`PlaneLayout`] says.
pub type DwStridedFn = fn(&ConvShape, &[f32], &[f32], &[f32], Act, &mut [f32], &PlaneLayout);
/// A convolution kernel on planes laid out as a [`PlaneLayout`] says that takes only some
/// shapes: `false` (nothing written) for the others.
pub type ConvStridedFn =
    fn(&ConvShape, &[f32], &[f32], &[f32], Act, &mut [f32], &PlaneLayout) -> bool;
/// A quantized depthwise convolution kernel on planes laid out as a [`PlaneLayout`] says that
/// takes only some shapes: `false` (nothing written) for the others.
pub type QDwStridedFn =
    fn(&ConvShape, &quant::QConvParams<'_>, &[u8], quant::QOutput<'_>, &PlaneLayout) -> bool;
/// A pointwise convolution kernel.
pub type Conv1x1Fn = fn(&Conv1x1, &[f32], &[f32], &[f32], Act, &mut [f32]);
/// A pointwise convolution kernel writing through a [`PwEpilogue`] (strided planes, fused
/// residual add).
pub type Conv1x1IntoFn = fn(&Conv1x1, &[f32], &[f32], &[f32], Act, &mut [f32], &PwEpilogue<'_>);
/// A quantized (W8A8) convolution kernel: shape, int8 operands, `u8` input, output stage.
pub type QConvFn = fn(&ConvShape, &quant::QConvParams<'_>, &[u8], quant::QOutput<'_>);
/// A conversion of IEEE binary16 values (as bits) to `f32`.
pub type F16ToF32Fn = fn(&[u16], &mut [f32]);
/// `QuantizeLinear` (f32 -> u8).
pub type QuantizeFn = fn(&[f32], quant::QParams, &mut [u8]);
/// `DequantizeLinear` (u8 -> f32).
pub type DequantizeFn = fn(&[u8], quant::QParams, &mut [f32]);
/// Quantized element-wise add.
pub type QAddFn = fn(&[u8], &[u8], &quant::QAddParams, &mut [u8]);
/// A quantized pointwise convolution on strided planes: shape, int8 operands, `u8` input whose
/// channel planes are `in_stride` bytes apart, output stage whose planes are `out_stride`
/// elements apart, and optionally a residual added in the output stage (see
/// [`x86_64::avx512vnni_conv1x1_i8::conv1x1_strided`]).
pub type QConv1x1StridedFn = fn(
    &ConvShape,
    &quant::QConvParams<'_>,
    &[u8],
    quant::QOutput<'_>,
    usize,
    usize,
    Option<&quant::QResidual<'_>>,
);
/// f32 element-wise add with an activation.
pub type AddFn = fn(&[f32], &[f32], Act, &mut [f32]);

/// The kernels the engine calls, one per op class: filled from [`generic`], then overridden by
/// what the CPU supports (tract's `linalg` pattern).
#[derive(Clone, Copy)]
pub struct Kernels {
    /// Short description of the selection, f32 then int8 (e.g. "avx512f, int8 avx512vnni").
    pub name: &'static str,
    /// Pointwise convolution.
    pub conv1x1: Conv1x1Fn,
    /// Pointwise convolution with a [`PwEpilogue`], where this CPU has one as fast as
    /// `conv1x1` (else the engine runs `conv1x1` into a buffer and copies).
    pub conv1x1_into: Option<Conv1x1IntoFn>,
    /// Depthwise convolution, stride 1 or 2.
    pub depthwise: ConvFn,
    /// Depthwise convolution on rows of larger planes, input rows wrapping like a ring's (all
    /// channels of a streamed call at once, in place), where this CPU has one (else the
    /// engine calls `depthwise` per channel).
    pub depthwise_strided: Option<DwStridedFn>,
    /// Any other convolution.
    pub conv: ConvFn,
    /// Dense convolution on rows of larger planes, input rows wrapping like a ring's, for the
    /// shapes this CPU's kernel takes (streamed calls; else the engine copies rows for
    /// `conv`).
    pub conv_strided: Option<ConvStridedFn>,
    /// Transposed convolution.
    pub conv_transpose: ConvFn,
    /// Quantized pointwise convolution (1x1, stride 1, no padding, one group).
    pub qconv1x1: QConvFn,
    /// Quantized pointwise convolution on strided planes (1 to
    /// [`QCONV1X1_STRIDED_MAX_IN_C`] input channels), where this CPU has one.
    pub qconv1x1_strided: Option<QConv1x1StridedFn>,
    /// Quantized depthwise convolution, stride 1 or 2.
    pub qdepthwise: QConvFn,
    /// Quantized depthwise convolution on rows of larger planes, input rows wrapping like a
    /// ring's, where this CPU has one (else the engine calls `qdepthwise` per channel).
    pub qdepthwise_strided: Option<QDwStridedFn>,
    /// Any other quantized convolution.
    pub qconv: QConvFn,
    /// Quantized transposed convolution.
    pub qconv_transpose: QConvFn,
    /// f16 -> f32 widening (f16 weights).
    pub f16_to_f32: F16ToF32Fn,
    /// f32 -> u8 quantization.
    pub quantize: QuantizeFn,
    /// u8 -> f32 dequantization.
    pub dequantize: DequantizeFn,
    /// Quantized add.
    pub qadd: QAddFn,
    /// f32 add.
    pub add: AddFn,
}

impl core::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name)
    }
}

impl Kernels {
    /// The scalar reference for everything.
    pub fn reference() -> Self {
        Kernels {
            name: "generic",
            conv1x1: generic::conv1x1,
            conv1x1_into: Some(generic::conv1x1_into),
            depthwise: generic::conv2d,
            depthwise_strided: None,
            conv: generic::conv2d,
            conv_strided: None,
            conv_transpose: generic::conv_transpose2d,
            qconv1x1: generic_i8::qconv2d,
            qconv1x1_strided: None,
            qdepthwise: generic_i8::qconv2d,
            qdepthwise_strided: None,
            qconv: generic_i8::qconv2d,
            qconv_transpose: generic_i8::qconv_transpose2d,
            f16_to_f32: generic::f16_to_f32,
            quantize: generic_i8::quantize,
            dequantize: generic_i8::dequantize,
            qadd: generic_i8::qadd,
            add: generic::add,
        }
    }

    /// The fastest kernels this CPU runs, up to [`Isa::active`] (a level forced with
    /// [`Isa::force`] or `RAWNR_ISA` caps them): detected at run time with `std`, from the
    /// compile-time target features without it.
    pub fn best() -> Self {
        #[allow(unused_mut)]
        let mut k = Self::reference();
        #[cfg(all(target_arch = "x86_64", not(rawnr_no_simd)))]
        {
            if has_avx2_fma() {
                k.name = "avx2/fma";
                k.conv1x1 = x86_64::avx2_conv1x1_f32::conv1x1;
                k.conv1x1_into = Some(x86_64::avx2_conv1x1_f32::conv1x1_into);
                k.depthwise = x86_64::avx2_dw_f32::depthwise;
                k.depthwise_strided = Some(x86_64::avx2_dw_f32::depthwise_strided);
                k.conv_transpose = x86_64::avx2_convt2x2_f32::conv_transpose2x2;
                k.conv = x86_64::avx2_conv_f32::conv;
                // Not `conv_strided`: reading the rings in place measured 5-15% slower than
                // copying the rows to a window here (docs/benchmark.md).
            }
            if has_avx512f() {
                k.name = "avx512f";
                k.conv1x1 = x86_64::avx512_conv1x1_f32::conv1x1;
                k.conv1x1_into = Some(x86_64::avx512_conv1x1_f32::conv1x1_into);
                k.depthwise = x86_64::avx512_dw_f32::depthwise;
                k.depthwise_strided = Some(x86_64::avx512_dw_f32::depthwise_strided);
                k.conv_transpose = x86_64::avx512_convt2x2_f32::conv_transpose2x2;
                k.conv = x86_64::avx512_conv_f32::conv;
                k.conv_strided = Some(x86_64::avx512_conv_f32::conv_strided);
            }
        }
        // int8 kernels (x86): exact (equal to generic_i8), installed per feature.
        #[cfg(all(target_arch = "x86_64", not(rawnr_no_simd)))]
        {
            if has_avx2() {
                k.quantize = x86_64::avx2_eltwise::quantize;
                k.dequantize = x86_64::avx2_eltwise::dequantize;
                k.qadd = x86_64::avx2_eltwise::qadd;
                k.add = x86_64::avx2_eltwise::add;
                k.qconv1x1 = x86_64::avx2_conv1x1_i8::conv1x1;
                k.qdepthwise = x86_64::avx2_dw_i8::depthwise;
                k.qdepthwise_strided = Some(x86_64::avx2_dw_i8::depthwise_strided);
                k.qconv_transpose = x86_64::avx2_convt2x2_i8::conv_transpose2x2;
                k.qconv = x86_64::avx2_conv_i8::conv;
            }
            if has_avx512vnni() {
                k.qconv1x1 = x86_64::avx512vnni_conv1x1_i8::conv1x1;
                k.qconv1x1_strided = Some(x86_64::avx512vnni_conv1x1_i8::conv1x1_strided);
                k.qconv = x86_64::avx512vnni_conv_i8::conv;
                k.qdepthwise = x86_64::avx512vnni_dw_i8::depthwise;
                k.qdepthwise_strided = Some(x86_64::avx512vnni_dw_i8::depthwise_strided);
                k.qconv_transpose = x86_64::avx512vnni_convt2x2_i8::conv_transpose2x2;
            }
            if has_f16c() {
                k.f16_to_f32 = x86_64::f16c_cvt::f16_to_f32;
            }
            if has_avx512f() {
                k.quantize = x86_64::avx512_eltwise::quantize;
                k.dequantize = x86_64::avx512_eltwise::dequantize;
                k.qadd = x86_64::avx512_eltwise::qadd;
                k.add = x86_64::avx512_eltwise::add;
            }
        }
        // The name says both selections (f32, then int8).
        #[cfg(all(target_arch = "x86_64", not(rawnr_no_simd)))]
        {
            k.name = match (has_avx512f(), has_avx2_fma(), has_avx512vnni(), has_avx2()) {
                (true, _, true, _) => "avx512f, int8 avx512vnni",
                (true, _, false, true) => "avx512f, int8 avx2",
                (false, true, true, _) => "avx2/fma, int8 avx512vnni",
                (false, true, false, true) => "avx2/fma, int8 avx2",
                (false, false, _, true) => "generic f32, int8 avx2",
                _ => k.name,
            };
        }
        // end int8 kernels
        #[cfg(all(target_arch = "aarch64", not(rawnr_no_simd)))]
        if aarch64::has_neon() {
            k.name = "neon";
            k.conv1x1 = aarch64::neon_conv1x1_f32::conv1x1;
            k.conv1x1_into = Some(aarch64::neon_conv1x1_f32::conv1x1_into);
            k.depthwise = aarch64::neon_dw_f32::depthwise;
            k.conv = aarch64::neon_conv_f32::conv;
            k.conv_strided = Some(aarch64::neon_conv_f32::conv_strided);
            k.conv_transpose = aarch64::neon_convt2x2_f32::conv_transpose2x2;
            k.qconv1x1 = aarch64::neon_conv1x1_i8::conv1x1;
            k.qdepthwise = aarch64::neon_dw_i8::depthwise;
            k.qdepthwise_strided = Some(aarch64::neon_dw_i8::depthwise_strided);
            // Takes the dot-product path itself when the CPU has it.
            k.qconv_transpose = aarch64::neon_convt2x2_i8::conv_transpose2x2;
            k.f16_to_f32 = aarch64::neon_cvt_f16::f16_to_f32;
            if aarch64::neon_dot_conv1x1_i8::has_dotprod() {
                k.name = "neon, dotprod (int8 pointwise, transposed)";
                k.qconv1x1 = aarch64::neon_dot_conv1x1_i8::conv1x1;
            }
        }
        k
    }
}

/// AVX2 and FMA present and allowed ([`Isa::Avx2`]).
#[cfg(all(target_arch = "x86_64", not(rawnr_no_simd)))]
pub(crate) fn has_avx2_fma() -> bool {
    cpu::x86::avx2_fma() && Isa::allows(Isa::Avx2)
}

/// AVX-512F present and allowed ([`Isa::Avx512`]).
#[cfg(all(target_arch = "x86_64", not(rawnr_no_simd)))]
pub(crate) fn has_avx512f() -> bool {
    cpu::x86::avx512f() && Isa::allows(Isa::Avx512)
}

/// AVX2 present and allowed ([`Isa::Avx2`]).
#[cfg(all(target_arch = "x86_64", not(rawnr_no_simd)))]
pub(crate) fn has_avx2() -> bool {
    cpu::x86::avx2() && Isa::allows(Isa::Avx2)
}

/// AVX-512F, AVX-512BW and AVX-512 VNNI present and allowed ([`Isa::Avx512Vnni`]).
#[cfg(all(target_arch = "x86_64", not(rawnr_no_simd)))]
pub(crate) fn has_avx512vnni() -> bool {
    cpu::x86::avx512vnni() && Isa::allows(Isa::Avx512Vnni)
}

/// AVX and F16C present and allowed (with [`Isa::Avx2`]).
#[cfg(all(target_arch = "x86_64", not(rawnr_no_simd)))]
pub(crate) fn has_f16c() -> bool {
    cpu::x86::f16c() && Isa::allows(Isa::Avx2)
}

/// Shape and parameters of a (transposed) 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvShape {
    /// Input channels.
    pub in_c: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Padding: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Groups.
    pub groups: usize,
}

impl ConvShape {
    /// The pointwise convolution (1x1, stride 1, unpadded, one group) of `in_c` planes of
    /// `in_h x in_w` to `out_c` planes.
    pub fn pointwise(in_c: usize, out_c: usize, in_h: usize, in_w: usize) -> Self {
        ConvShape {
            in_c,
            in_h,
            in_w,
            out_c,
            k_h: 1,
            k_w: 1,
            stride_h: 1,
            stride_w: 1,
            pad: [0; 4],
            groups: 1,
        }
    }

    /// A pointwise convolution: 1x1 kernel, stride 1, no padding, one group (the `conv1x1`
    /// kernels' shapes).
    pub fn is_pointwise(&self) -> bool {
        self.k_h == 1
            && self.k_w == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.pad == [0; 4]
            && self.groups == 1
    }

    /// A depthwise convolution the `depthwise` kernels take: one group per channel, as many
    /// outputs as inputs, the same stride of 1 or 2 both ways (any kernel and padding).
    pub fn is_depthwise(&self) -> bool {
        self.groups == self.in_c
            && self.out_c == self.in_c
            && self.stride_h == self.stride_w
            && (self.stride_h == 1 || self.stride_h == 2)
    }

    /// Output (height, width) of a convolution, or `None` if the kernel does not fit.
    pub fn conv_out(&self) -> Option<(usize, usize)> {
        let h = self.in_h + self.pad[0] + self.pad[2];
        let w = self.in_w + self.pad[1] + self.pad[3];
        if h < self.k_h || w < self.k_w || self.stride_h == 0 || self.stride_w == 0 {
            return None;
        }
        Some((
            (h - self.k_h) / self.stride_h + 1,
            (w - self.k_w) / self.stride_w + 1,
        ))
    }

    /// Output (height, width) of a transposed convolution, or `None` if padding crops
    /// everything.
    pub fn conv_transpose_out(&self) -> Option<(usize, usize)> {
        if self.in_h == 0 || self.in_w == 0 {
            return None;
        }
        let h = (self.in_h - 1) * self.stride_h + self.k_h;
        let w = (self.in_w - 1) * self.stride_w + self.k_w;
        let (pv, ph) = (self.pad[0] + self.pad[2], self.pad[1] + self.pad[3]);
        if h <= pv || w <= ph {
            return None;
        }
        Some((h - pv, w - ph))
    }
}
