//! Integer quantization: the parameter types of the int8 kernels and the fixed-point arithmetic
//! they share.
//!
//! Scheme (W8A8, the one ONNX QDQ and TFLite use):
//! - activations: `u8`, per tensor, affine: `real = scale * (q - zero_point)`;
//! - weights: `i8`, per output channel, symmetric (`zero_point = 0`, values in -127..=127);
//! - bias: `i32` per output channel in units of `in_scale * weight_scale[oc]`;
//! - accumulation: `i32`, `acc = bias + sum(w * (x - in_zero_point))` (exact, order-free);
//! - requantization to `u8`: a fixed-point [`Requant`] per output channel (a 31-bit multiplier
//!   and a right shift, rounding half up), derived from the three scales by
//!   [`Requant::for_conv`], so every kernel and every platform computes the same integers.
//!
//! Element-wise ops rescale each input with [`rescale_multiplier`] (20 fractional bits).

use crate::{Act, ConvShape};

/// Affine parameters of a `u8` activation tensor: `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Real value of one quantization step (finite, > 0).
    pub scale: f32,
    /// The code of real zero, 0..=255.
    pub zero_point: i32,
}

/// Fixed-point multiplier: `apply(acc) = round_half_up(acc * multiplier / 2^shift)`, i.e. a
/// real multiplier `multiplier * 2^-shift` with `multiplier` in `[2^30, 2^31)` and `shift` in
/// `1..=62`, computed in 64-bit integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// Normalised multiplier, `2^30 <= multiplier < 2^31`.
    pub multiplier: i32,
    /// Right shift, `1..=62`.
    pub shift: u32,
}

impl Requant {
    /// The fixed-point form of a real multiplier `m` (positive, finite, in about
    /// `[2^-32, 2^30)`), or `None` when `m` is outside that range.
    pub fn from_real(m: f64) -> Option<Self> {
        if !(m > 0.0 && m.is_finite()) {
            return None;
        }
        let bits = m.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        if biased == 0 {
            return None; // subnormal: far below any usable multiplier
        }
        // m = f * 2^e with f in [0.5, 1).
        let e = biased - 1022;
        let f = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
        // Round f * 2^31 half away from zero (f > 0) without std's `round`.
        let mut q = (f * 2147483648.0 + 0.5) as i64;
        let mut shift = 31 - e;
        if q == 1 << 31 {
            q >>= 1;
            shift -= 1;
        }
        if !(1..=62).contains(&shift) {
            return None;
        }
        Some(Requant {
            multiplier: q as i32,
            shift: shift as u32,
        })
    }

    /// The requantization of a convolution's output channel:
    /// `in_scale * weight_scale / out_scale`, computed in `f64`.
    pub fn for_conv(in_scale: f32, weight_scale: f32, out_scale: f32) -> Option<Self> {
        Self::from_real(in_scale as f64 * weight_scale as f64 / out_scale as f64)
    }

    /// `round_half_up(acc * multiplier / 2^shift)` (exact; never overflows).
    #[inline(always)]
    pub fn apply(self, acc: i32) -> i64 {
        let p = acc as i64 * self.multiplier as i64;
        (p + (1i64 << (self.shift - 1))) >> self.shift
    }
}

/// Fractional bits of the element-wise rescale multipliers ([`rescale_multiplier`]).
pub const RESCALE_SHIFT: u32 = 20;

/// Fixed-point form of a scale ratio for element-wise ops (add, concat):
/// `round(ratio * 2^20)`, for ratios in `[0, 2048)`; `None` outside.
pub fn rescale_multiplier(ratio: f64) -> Option<i32> {
    if !(0.0..2048.0).contains(&ratio) {
        return None;
    }
    Some((ratio * (1u64 << RESCALE_SHIFT) as f64 + 0.5) as i32)
}

/// `zero_point + round_half_up(sum / 2^20)`, saturated to `lo..=255`.
#[inline(always)]
pub fn rescale_sum(sum: i64, zero_point: i32, lo: i32) -> u8 {
    let r = (sum + (1i64 << (RESCALE_SHIFT - 1))) >> RESCALE_SHIFT;
    (r + zero_point as i64).clamp(lo as i64, 255) as u8
}

/// Saturates a requantized value: `zero_point + v` clamped to `lo..=255`.
#[inline(always)]
pub fn saturate_u8(v: i64, zero_point: i32, lo: i32) -> u8 {
    (v + zero_point as i64).clamp(lo as i64, 255) as u8
}

/// Lower clamp of a `u8` output: the zero point with a fused ReLU, 0 without.
#[inline(always)]
pub fn lower_bound(zero_point: i32, relu: bool) -> i32 {
    if relu {
        zero_point.clamp(0, 255)
    } else {
        0
    }
}

/// Round half to even for `|v| < 2^22` (the IEEE default rounding of an add), without std.
#[inline(always)]
pub fn round_ties_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    (v + MAGIC) - MAGIC
}

/// ONNX `QuantizeLinear` of one value to `u8`: `saturate(round_half_even(x / scale) +
/// zero_point)`; NaN maps to the zero point.
#[inline(always)]
pub fn quantize_one(x: f32, q: QParams) -> u8 {
    let v = x / q.scale;
    let r = if v.is_nan() {
        0
    } else if v.abs() < 1.0e6 {
        round_ties_even(v) as i32
    } else if v > 0.0 {
        1_000_000
    } else {
        -1_000_000
    };
    (r + q.zero_point).clamp(0, 255) as u8
}

/// ONNX `DequantizeLinear` of one `u8`: `(q - zero_point) * scale`.
#[inline(always)]
pub fn dequantize_one(x: u8, q: QParams) -> f32 {
    (x as i32 - q.zero_point) as f32 * q.scale
}

/// The int8 operands of a quantized convolution, besides its input.
#[derive(Debug, Clone, Copy)]
pub struct QConvParams<'a> {
    /// Zero point of the `u8` input.
    pub in_zero_point: i32,
    /// Scale of the input.
    pub in_scale: f32,
    /// `i8` weights in the f32 layout (`[out, in / groups, kh, kw]`; transposed convolution
    /// `[in, out / groups, kh, kw]`).
    pub weight: &'a [i8],
    /// Per output channel weight scale.
    pub weight_scale: &'a [f32],
    /// `i32` bias per output channel (units `in_scale * weight_scale[oc]`), or empty.
    pub bias: &'a [i32],
}

impl QConvParams<'_> {
    /// Bias of output channel `oc` (0 without bias).
    #[inline(always)]
    pub fn bias_of(&self, oc: usize) -> i32 {
        if self.bias.is_empty() {
            0
        } else {
            self.bias[oc]
        }
    }

    /// Panics, naming `op`, unless the weights fit a convolution of shape `s`: its `out_c *
    /// in_c / groups * k_h * k_w` bytes (a transposed convolution's `[in, out / groups, kh,
    /// kw]` with one group has as many), and a `weight_scale` and (unless empty) a `bias` per
    /// output channel. The one operand check of every int8 kernel's entry.
    pub fn check_weights(&self, op: &str, s: &ConvShape) {
        let per_out = (s.in_c / s.groups.max(1)) * s.k_h * s.k_w;
        assert!(
            self.weight.len() >= s.out_c * per_out,
            "{op}: weight too short"
        );
        assert!(
            self.weight_scale.len() >= s.out_c,
            "{op}: weight scales too short"
        );
        assert!(
            self.bias.is_empty() || self.bias.len() >= s.out_c,
            "{op}: bias too short"
        );
    }

    /// [`Self::check_weights`], and `input` bytes for the dense input planes of `s` and
    /// `output` elements for `out_c` output planes of `out_plane` elements.
    pub fn check_operands(
        &self,
        op: &str,
        s: &ConvShape,
        out_plane: usize,
        input: usize,
        output: usize,
    ) {
        assert!(input >= s.in_c * s.in_h * s.in_w, "{op}: input too short");
        self.check_weights(op, s);
        assert!(output >= s.out_c * out_plane, "{op}: output too short");
    }
}

/// Output stage of a quantized convolution, with its destination.
#[derive(Debug)]
pub enum QOutput<'a> {
    /// `u8` output: per channel `saturate(zero_point + Requant::for_conv(in_scale,
    /// weight_scale[oc], scale).apply(acc))`, clamped below at the zero point with `relu`.
    U8 {
        /// Output quantization.
        q: QParams,
        /// Fused ReLU.
        relu: bool,
        /// Destination, `[out_c, out_h, out_w]`.
        dst: &'a mut [u8],
    },
    /// `f32` output: `act(acc as f32 * (in_scale * weight_scale[oc]))`.
    F32 {
        /// Fused activation.
        act: Act,
        /// Destination, `[out_c, out_h, out_w]`.
        dst: &'a mut [f32],
    },
}

impl QOutput<'_> {
    /// Elements the destination holds.
    pub fn len(&self) -> usize {
        match self {
            QOutput::U8 { dst, .. } => dst.len(),
            QOutput::F32 { dst, .. } => dst.len(),
        }
    }
    /// True when the destination is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Per output channel finishing stage: turns the `i32` accumulators of one channel into the
/// destination's values. Kernels build one per channel ([`OutStage::new`]) and call
/// [`OutStage::u8`] or [`OutStage::f32`].
#[derive(Debug, Clone, Copy)]
pub struct OutStage {
    /// Requantization (u8 output).
    pub requant: Requant,
    /// Output zero point (u8 output).
    pub zero_point: i32,
    /// Lower clamp (u8 output).
    pub lo: i32,
    /// Dequantization scale `in_scale * weight_scale[oc]` (f32 output).
    pub scale: f32,
}

/// A requantization that maps everything to 0 (used when the scales are out of range, which
/// model validation rejects before any kernel runs).
const ZERO_REQUANT: Requant = Requant {
    multiplier: 1 << 30,
    shift: 62,
};

impl OutStage {
    /// The stage of output channel `oc`.
    #[inline]
    pub fn new(p: &QConvParams<'_>, out: &QOutput<'_>, oc: usize) -> Self {
        let ws = p.weight_scale[oc];
        match out {
            QOutput::U8 { q, relu, .. } => OutStage {
                requant: Requant::for_conv(p.in_scale, ws, q.scale).unwrap_or(ZERO_REQUANT),
                zero_point: q.zero_point,
                lo: lower_bound(q.zero_point, *relu),
                scale: 0.0,
            },
            QOutput::F32 { .. } => OutStage {
                requant: ZERO_REQUANT,
                zero_point: 0,
                lo: 0,
                scale: p.in_scale * ws,
            },
        }
    }

    /// The `u8` value of an accumulator.
    #[inline(always)]
    pub fn u8(&self, acc: i32) -> u8 {
        saturate_u8(self.requant.apply(acc), self.zero_point, self.lo)
    }

    /// The `f32` value of an accumulator (before the activation).
    #[inline(always)]
    pub fn f32(&self, acc: i32) -> f32 {
        acc as f32 * self.scale
    }
}

/// Parameters of a quantized element-wise add `y = a + b` (u8 inputs and output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QAddParams {
    /// Zero point of `a`.
    pub a_zero_point: i32,
    /// Zero point of `b`.
    pub b_zero_point: i32,
    /// `rescale_multiplier(a_scale / out_scale)`.
    pub a_multiplier: i32,
    /// `rescale_multiplier(b_scale / out_scale)`.
    pub b_multiplier: i32,
    /// Output zero point.
    pub out_zero_point: i32,
    /// Fused ReLU.
    pub relu: bool,
}

impl QAddParams {
    /// Derives the multipliers from the three tensors' parameters; `None` when a scale ratio
    /// is outside `[0, 2048)`.
    pub fn new(a: QParams, b: QParams, out: QParams, relu: bool) -> Option<Self> {
        Some(QAddParams {
            a_zero_point: a.zero_point,
            b_zero_point: b.zero_point,
            a_multiplier: rescale_multiplier(a.scale as f64 / out.scale as f64)?,
            b_multiplier: rescale_multiplier(b.scale as f64 / out.scale as f64)?,
            out_zero_point: out.zero_point,
            relu,
        })
    }

    /// `y` for one pair of inputs.
    #[inline(always)]
    pub fn apply(&self, a: u8, b: u8) -> u8 {
        let s = (a as i32 - self.a_zero_point) as i64 * self.a_multiplier as i64
            + (b as i32 - self.b_zero_point) as i64 * self.b_multiplier as i64;
        rescale_sum(
            s,
            self.out_zero_point,
            lower_bound(self.out_zero_point, self.relu),
        )
    }
}

/// A residual operand added in a quantized pointwise convolution's output stage: the add
/// that alone reads the convolution's output, fused with it
/// ([`crate::Kernels::qconv1x1_strided`]). Channel `o`, pixel `i` of the residual is element
/// `o * stride + i` of `rows`.
#[derive(Debug, Clone, Copy)]
pub enum QResidual<'a> {
    /// With `f32` output: each output is `act(y + r)`, `y` the convolution's output (its own
    /// activation applied) and `r` the residual's element, as [`crate::generic::add`].
    F32 {
        /// Residual planes.
        rows: &'a [f32],
        /// Distance between the residual's channel planes, at least the pixels.
        stride: usize,
        /// Activation after the add.
        act: crate::Act,
    },
    /// With `u8` output: each output is `add.apply(y, r)`, `y` the convolution's `u8` code
    /// (the add's first operand) and `r` the residual's, as [`crate::generic_i8::qadd`].
    U8 {
        /// Residual planes.
        rows: &'a [u8],
        /// Distance between the residual's channel planes, at least the pixels.
        stride: usize,
        /// The add, the convolution's output as its first operand.
        add: QAddParams,
    },
}

/// Parameters that re-express one `u8` tensor in another's quantization (concat inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QRescale {
    /// Input zero point.
    pub in_zero_point: i32,
    /// `rescale_multiplier(in_scale / out_scale)`.
    pub multiplier: i32,
    /// Output zero point.
    pub out_zero_point: i32,
}

impl QRescale {
    /// Derives the multiplier; `None` when the scale ratio is outside `[0, 2048)`.
    pub fn new(input: QParams, out: QParams) -> Option<Self> {
        Some(QRescale {
            in_zero_point: input.zero_point,
            multiplier: rescale_multiplier(input.scale as f64 / out.scale as f64)?,
            out_zero_point: out.zero_point,
        })
    }

    /// One value.
    #[inline(always)]
    pub fn apply(&self, x: u8) -> u8 {
        let s = (x as i32 - self.in_zero_point) as i64 * self.multiplier as i64;
        rescale_sum(s, self.out_zero_point, 0)
    }
}
