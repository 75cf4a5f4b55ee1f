//! Scalar int8 reference kernels (W8A8, see [`crate::quant`]): the oracle that every SIMD
//! int8 kernel must match exactly. Integer accumulation is exact, so any summation order gives
//! the same result; the output stage is the one of [`OutStage`].

use crate::generic::check_len;
use crate::quant::{dequantize_one, quantize_one, OutStage, QAddParams, QConvParams, QOutput};
use crate::quant::{QParams, QRescale};
use crate::ConvShape;

/// Writes one output row of channel `oc` from its accumulators.
fn finish_row(out: &mut QOutput<'_>, stage: &OutStage, at: usize, acc: &[i32]) {
    match out {
        QOutput::U8 { dst, .. } => {
            for (o, &a) in dst[at..at + acc.len()].iter_mut().zip(acc) {
                *o = stage.u8(a);
            }
        }
        QOutput::F32 { dst, act } => {
            for (o, &a) in dst[at..at + acc.len()].iter_mut().zip(acc) {
                *o = act.apply(stage.f32(a));
            }
        }
    }
}

/// Largest output row the reference kernels accumulate at once (stack buffer).
const ROW: usize = 256;

/// Quantized 2-D convolution (dense, grouped or depthwise; any kernel, stride, zero padding):
/// `acc = bias + sum w * (x - in_zero_point)` over the terms inside the input (padding is real
/// zero, i.e. code `in_zero_point`), then the output stage. Shapes as [`crate::generic::conv2d`].
pub fn qconv2d(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], mut out: QOutput<'_>) {
    let (oh, ow) = s
        .conv_out()
        .expect("qconv2d: kernel larger than padded input");
    let cin_g = s.in_c / s.groups;
    let cout_g = s.out_c / s.groups;
    check_len("qconv2d input", input.len(), s.in_c * s.in_h * s.in_w);
    check_len(
        "qconv2d weight",
        p.weight.len(),
        s.out_c * cin_g * s.k_h * s.k_w,
    );
    check_len("qconv2d weight scales", p.weight_scale.len(), s.out_c);
    check_len("qconv2d output", out.len(), s.out_c * oh * ow);
    let zp = p.in_zero_point;
    let in_plane = s.in_h * s.in_w;
    let mut acc = [0i32; ROW];
    for oc in 0..s.out_c {
        let stage = OutStage::new(p, &out, oc);
        let g = oc / cout_g;
        for oy in 0..oh {
            let mut x0 = 0;
            while x0 < ow {
                let n = (ow - x0).min(ROW);
                let acc = &mut acc[..n];
                acc.fill(p.bias_of(oc));
                for icg in 0..cin_g {
                    let plane = &input[(g * cin_g + icg) * in_plane..][..in_plane];
                    for ky in 0..s.k_h {
                        let iy = (oy * s.stride_h + ky) as isize - s.pad[0] as isize;
                        if iy < 0 || iy >= s.in_h as isize {
                            continue;
                        }
                        let row = &plane[iy as usize * s.in_w..][..s.in_w];
                        for kx in 0..s.k_w {
                            let w = p.weight[((oc * cin_g + icg) * s.k_h + ky) * s.k_w + kx] as i32;
                            for (j, a) in acc.iter_mut().enumerate() {
                                let ix = ((x0 + j) * s.stride_w + kx) as isize - s.pad[1] as isize;
                                if ix >= 0 && ix < s.in_w as isize {
                                    *a = a.wrapping_add(w * (row[ix as usize] as i32 - zp));
                                }
                            }
                        }
                    }
                }
                finish_row(&mut out, &stage, (oc * oh + oy) * ow + x0, acc);
                x0 += n;
            }
        }
    }
}

/// Quantized transposed convolution (semantics of [`crate::generic::conv_transpose2d`]);
/// `weight` is `[in_c, out_c / groups, k_h, k_w]`.
pub fn qconv_transpose2d(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], mut out: QOutput<'_>) {
    let (oh, ow) = s
        .conv_transpose_out()
        .expect("qconv_transpose2d: empty output");
    let cin_g = s.in_c / s.groups;
    let cout_g = s.out_c / s.groups;
    check_len(
        "qconv_transpose2d input",
        input.len(),
        s.in_c * s.in_h * s.in_w,
    );
    check_len(
        "qconv_transpose2d weight",
        p.weight.len(),
        s.in_c * cout_g * s.k_h * s.k_w,
    );
    check_len(
        "qconv_transpose2d weight scales",
        p.weight_scale.len(),
        s.out_c,
    );
    check_len("qconv_transpose2d output", out.len(), s.out_c * oh * ow);
    let zp = p.in_zero_point;
    let in_plane = s.in_h * s.in_w;
    let (pt, pl) = (s.pad[0], s.pad[1]);
    let mut acc = [0i32; ROW];
    for oc in 0..s.out_c {
        let stage = OutStage::new(p, &out, oc);
        let g = oc / cout_g;
        let ocg = oc - g * cout_g;
        for oy in 0..oh {
            let mut x0 = 0;
            while x0 < ow {
                let n = (ow - x0).min(ROW);
                let acc = &mut acc[..n];
                acc.fill(p.bias_of(oc));
                for icg in 0..cin_g {
                    let ic = g * cin_g + icg;
                    let plane = &input[ic * in_plane..][..in_plane];
                    for ky in 0..s.k_h {
                        let t = oy + pt;
                        if t < ky || (t - ky) % s.stride_h != 0 {
                            continue;
                        }
                        let iy = (t - ky) / s.stride_h;
                        if iy >= s.in_h {
                            continue;
                        }
                        let row = &plane[iy * s.in_w..][..s.in_w];
                        for kx in 0..s.k_w {
                            let w =
                                p.weight[((ic * cout_g + ocg) * s.k_h + ky) * s.k_w + kx] as i32;
                            for (j, a) in acc.iter_mut().enumerate() {
                                // ox + pl = ix * stride + kx
                                let t = x0 + j + pl;
                                if t < kx || (t - kx) % s.stride_w != 0 {
                                    continue;
                                }
                                let ix = (t - kx) / s.stride_w;
                                if ix < s.in_w {
                                    *a = a.wrapping_add(w * (row[ix] as i32 - zp));
                                }
                            }
                        }
                    }
                }
                finish_row(&mut out, &stage, (oc * oh + oy) * ow + x0, acc);
                x0 += n;
            }
        }
    }
}

/// ONNX `QuantizeLinear` (u8, per tensor): see [`crate::quant::quantize_one`].
pub fn quantize(input: &[f32], q: QParams, output: &mut [u8]) {
    check_len("quantize output", output.len(), input.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = quantize_one(x, q);
    }
}

/// ONNX `DequantizeLinear` (u8, per tensor).
pub fn dequantize(input: &[u8], q: QParams, output: &mut [f32]) {
    check_len("dequantize output", output.len(), input.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = dequantize_one(x, q);
    }
}

/// Quantized element-wise add (both inputs and the output `u8`).
pub fn qadd(a: &[u8], b: &[u8], p: &QAddParams, output: &mut [u8]) {
    check_len("qadd b", b.len(), a.len());
    check_len("qadd output", output.len(), a.len());
    for ((o, &x), &y) in output.iter_mut().zip(a).zip(b) {
        *o = p.apply(x, y);
    }
}

/// Re-expresses a `u8` tensor in another quantization (a concat input, a ReLU with a new
/// scale).
pub fn qrescale(input: &[u8], p: &QRescale, output: &mut [u8]) {
    check_len("qrescale output", output.len(), input.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = p.apply(x);
    }
}

/// ReLU of a `u8` tensor in its own quantization: `max(x, zero_point)`.
pub fn qrelu(input: &[u8], zero_point: i32, output: &mut [u8]) {
    check_len("qrelu output", output.len(), input.len());
    let z = zero_point.clamp(0, 255) as u8;
    for (o, &x) in output.iter_mut().zip(input) {
        *o = x.max(z);
    }
}
