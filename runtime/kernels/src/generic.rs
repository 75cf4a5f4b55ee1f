//! Scalar f32 reference kernels.
//!
//! Every output element is accumulated in one fixed order (bias, then input channel, kernel
//! row, kernel column, ascending) whatever its position, so a tile of an image gives bitwise
//! the same values as the whole image wherever the tile has the same input.

use crate::{Act, ConvShape};

/// Panics unless a buffer of `got` elements holds `needed` (a caller bug); the length check of
/// every kernel that takes slices.
pub(crate) fn check_len(name: &str, got: usize, needed: usize) {
    assert!(
        got >= needed,
        "{name}: buffer of {got} elements, needs {needed}"
    );
}

/// 2-D convolution (dense, grouped or depthwise; any kernel, stride and padding; zero padding).
/// `weight` is `[out_c, in_c / groups, k_h, k_w]`; `bias` is `[out_c]` or empty.
/// `output` is `[out_c, out_h, out_w]` with the size from [`ConvShape::conv_out`].
pub fn conv2d(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    let (oh, ow) = s
        .conv_out()
        .expect("conv2d: kernel larger than padded input");
    let cin_g = s.in_c / s.groups;
    let cout_g = s.out_c / s.groups;
    check_len("conv2d input", input.len(), s.in_c * s.in_h * s.in_w);
    check_len(
        "conv2d weight",
        weight.len(),
        s.out_c * cin_g * s.k_h * s.k_w,
    );
    check_len("conv2d output", output.len(), s.out_c * oh * ow);
    let in_plane = s.in_h * s.in_w;
    let (pt, pl) = (s.pad[0] as isize, s.pad[1] as isize);
    for oy in 0..oh {
        for oc in 0..s.out_c {
            let g = oc / cout_g;
            let row = &mut output[(oc * oh + oy) * ow..(oc * oh + oy + 1) * ow];
            row.fill(if bias.is_empty() { 0.0 } else { bias[oc] });
            for icg in 0..cin_g {
                let ic = g * cin_g + icg;
                let plane = &input[ic * in_plane..(ic + 1) * in_plane];
                for ky in 0..s.k_h {
                    let iy = (oy * s.stride_h) as isize + ky as isize - pt;
                    if iy < 0 || iy >= s.in_h as isize {
                        continue;
                    }
                    let in_row = &plane[iy as usize * s.in_w..(iy as usize + 1) * s.in_w];
                    for kx in 0..s.k_w {
                        let wv = weight[((oc * cin_g + icg) * s.k_h + ky) * s.k_w + kx];
                        // ox range with 0 <= ox*stride + kx - pl < in_w
                        let off = kx as isize - pl;
                        let lo = if off >= 0 {
                            0
                        } else {
                            ((-off) as usize).div_ceil(s.stride_w)
                        };
                        let lim = s.in_w as isize - off; // ox*stride < lim
                        if lim <= 0 {
                            continue;
                        }
                        let hi = ((lim as usize).div_ceil(s.stride_w)).min(ow);
                        if lo >= hi {
                            continue;
                        }
                        if s.stride_w == 1 {
                            let start = (lo as isize + off) as usize;
                            let src = &in_row[start..start + (hi - lo)];
                            for (o, &x) in row[lo..hi].iter_mut().zip(src) {
                                *o += wv * x;
                            }
                        } else {
                            for (ox, o) in row.iter_mut().enumerate().take(hi).skip(lo) {
                                let ix = (ox * s.stride_w) as isize + off;
                                *o += wv * in_row[ix as usize];
                            }
                        }
                    }
                }
            }
            if act != Act::None {
                for o in row.iter_mut() {
                    *o = act.apply(*o);
                }
            }
        }
    }
}

/// Pointwise (1x1, stride 1, dense) convolution: `out[oc][p] = bias[oc] + sum_ic w[oc][ic] in[ic][p]`.
pub fn conv1x1(
    s: &crate::Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    conv1x1_into(
        s,
        input,
        weight,
        bias,
        act,
        output,
        &crate::PwEpilogue::dense(s.pixels),
    )
}

/// [`conv1x1`] through a [`crate::PwEpilogue`]: planes at `e.stride`, then `e.act(y +
/// residual)` when there is a residual (as [`add`] computes it).
pub fn conv1x1_into(
    s: &crate::Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    e: &crate::PwEpilogue<'_>,
) {
    s.check_operands(weight, bias);
    e.check(s, input, output);
    let n = s.pixels;
    for oc in 0..s.out_c {
        let at = oc * e.stride;
        let row = &mut output[at..at + n];
        row.fill(if bias.is_empty() { 0.0 } else { bias[oc] });
        for ic in 0..s.in_c {
            let wv = weight[oc * s.in_c + ic];
            let src = &input[ic * e.in_stride..ic * e.in_stride + n];
            for (o, &x) in row.iter_mut().zip(src) {
                *o += wv * x;
            }
        }
        if act != Act::None {
            for o in row.iter_mut() {
                *o = act.apply(*o);
            }
        }
    }
    e.add_residual(s, output);
}

/// 2-D transposed convolution (zero insertion + convolution semantics of PyTorch's
/// `ConvTranspose2d`, padding crops the output). `weight` is `[in_c, out_c / groups, k_h, k_w]`.
pub fn conv_transpose2d(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    let (oh, ow) = s
        .conv_transpose_out()
        .expect("conv_transpose2d: empty output");
    let cin_g = s.in_c / s.groups;
    let cout_g = s.out_c / s.groups;
    check_len(
        "conv_transpose2d input",
        input.len(),
        s.in_c * s.in_h * s.in_w,
    );
    check_len(
        "conv_transpose2d weight",
        weight.len(),
        s.in_c * cout_g * s.k_h * s.k_w,
    );
    check_len("conv_transpose2d output", output.len(), s.out_c * oh * ow);
    let in_plane = s.in_h * s.in_w;
    let (pt, pl) = (s.pad[0], s.pad[1]);
    for oy in 0..oh {
        for oc in 0..s.out_c {
            let g = oc / cout_g;
            let ocg = oc - g * cout_g;
            let row = &mut output[(oc * oh + oy) * ow..(oc * oh + oy + 1) * ow];
            row.fill(if bias.is_empty() { 0.0 } else { bias[oc] });
            for icg in 0..cin_g {
                let ic = g * cin_g + icg;
                let plane = &input[ic * in_plane..(ic + 1) * in_plane];
                for ky in 0..s.k_h {
                    // oy + pt = iy * stride + ky
                    let t = oy + pt;
                    if t < ky || (t - ky) % s.stride_h != 0 {
                        continue;
                    }
                    let iy = (t - ky) / s.stride_h;
                    if iy >= s.in_h {
                        continue;
                    }
                    let in_row = &plane[iy * s.in_w..(iy + 1) * s.in_w];
                    for kx in 0..s.k_w {
                        let wv = weight[((ic * cout_g + ocg) * s.k_h + ky) * s.k_w + kx];
                        for (ix, &x) in in_row.iter().enumerate() {
                            // ox = ix * stride + kx - pl
                            let ox = ix * s.stride_w + kx;
                            if ox < pl || ox - pl >= ow {
                                continue;
                            }
                            row[ox - pl] += wv * x;
                        }
                    }
                }
            }
            if act != Act::None {
                for o in row.iter_mut() {
                    *o = act.apply(*o);
                }
            }
        }
    }
}

/// `output = act(input)` element-wise.
pub fn activation(input: &[f32], act: Act, output: &mut [f32]) {
    check_len("activation output", output.len(), input.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = act.apply(x);
    }
}

/// `output = act(a + b)` element-wise.
pub fn add(a: &[f32], b: &[f32], act: Act, output: &mut [f32]) {
    check_len("add b", b.len(), a.len());
    check_len("add output", output.len(), a.len());
    for ((o, &x), &y) in output.iter_mut().zip(a).zip(b) {
        *o = act.apply(x + y);
    }
}

/// Channel concatenation: copies each input (CHW, same H and W) after the previous one.
pub fn concat<T: Copy>(inputs: &[&[T]], output: &mut [T]) {
    let total: usize = inputs.iter().map(|x| x.len()).sum();
    check_len("concat output", output.len(), total);
    let mut at = 0;
    for x in inputs {
        output[at..at + x.len()].copy_from_slice(x);
        at += x.len();
    }
}

/// Depth-to-space (PyTorch `PixelShuffle(r)`): input `[c*r*r, h, w]` -> output `[c, h*r, w*r]`,
/// `out[c][y*r + i][x*r + j] = in[c*r*r + i*r + j][y][x]`.
pub fn pixel_shuffle<T: Copy>(
    input: &[T],
    c: usize,
    h: usize,
    w: usize,
    r: usize,
    output: &mut [T],
) {
    check_len("pixel_shuffle input", input.len(), c * r * r * h * w);
    check_len("pixel_shuffle output", output.len(), c * r * r * h * w);
    let (oh, ow) = (h * r, w * r);
    for ch in 0..c {
        for i in 0..r {
            for j in 0..r {
                let src = &input[((ch * r + i) * r + j) * h * w..][..h * w];
                for y in 0..h {
                    let dst = &mut output[(ch * oh + y * r + i) * ow..][..ow];
                    for x in 0..w {
                        dst[x * r + j] = src[y * w + x];
                    }
                }
            }
        }
    }
}

/// Space-to-depth (PyTorch `PixelUnshuffle(r)`): input `[c, h, w]` (h, w multiples of r) ->
/// output `[c*r*r, h/r, w/r]`, the inverse of [`pixel_shuffle`].
pub fn pixel_unshuffle<T: Copy>(
    input: &[T],
    c: usize,
    h: usize,
    w: usize,
    r: usize,
    output: &mut [T],
) {
    check_len("pixel_unshuffle input", input.len(), c * h * w);
    check_len("pixel_unshuffle output", output.len(), c * h * w);
    let (oh, ow) = (h / r, w / r);
    for ch in 0..c {
        for i in 0..r {
            for j in 0..r {
                let dst = &mut output[((ch * r + i) * r + j) * oh * ow..][..oh * ow];
                for y in 0..oh {
                    let src = &input[(ch * h + y * r + i) * w..][..w];
                    for x in 0..ow {
                        dst[y * ow + x] = src[x * r + j];
                    }
                }
            }
        }
    }
}

/// An IEEE binary16 value (its bits) as `f32` (exact: every half is a float).
#[inline]
pub fn f16_to_f32_one(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal half: normalise into an f32 exponent.
            let shift = man.leading_zeros() - 21; // puts the leading 1 at bit 10
            let m = (man << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Widens IEEE binary16 values (as bits) to `f32`.
pub fn f16_to_f32(input: &[u16], output: &mut [f32]) {
    check_len("f16_to_f32 output", output.len(), input.len());
    for (o, &h) in output.iter_mut().zip(input) {
        *o = f16_to_f32_one(h);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::vec;
    use std::vec::Vec;

    /// Direct definition of a convolution, one output element at a time.
    fn naive_conv(s: &ConvShape, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let (oh, ow) = s.conv_out().unwrap();
        let (cin_g, cout_g) = (s.in_c / s.groups, s.out_c / s.groups);
        let mut out = vec![0f32; s.out_c * oh * ow];
        for oc in 0..s.out_c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = if b.is_empty() { 0.0 } else { b[oc] } as f64;
                    for icg in 0..cin_g {
                        let ic = oc / cout_g * cin_g + icg;
                        for ky in 0..s.k_h {
                            for kx in 0..s.k_w {
                                let iy = (oy * s.stride_h + ky) as isize - s.pad[0] as isize;
                                let ix = (ox * s.stride_w + kx) as isize - s.pad[1] as isize;
                                if iy >= 0
                                    && ix >= 0
                                    && (iy as usize) < s.in_h
                                    && (ix as usize) < s.in_w
                                {
                                    acc += (x[(ic * s.in_h + iy as usize) * s.in_w + ix as usize]
                                        * w[((oc * cin_g + icg) * s.k_h + ky) * s.k_w + kx])
                                        as f64;
                                }
                            }
                        }
                    }
                    out[(oc * oh + oy) * ow + ox] = acc as f32;
                }
            }
        }
        out
    }

    /// Direct definition of a transposed convolution: scatter every input element.
    fn naive_conv_t(s: &ConvShape, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let (oh, ow) = s.conv_transpose_out().unwrap();
        let (cin_g, cout_g) = (s.in_c / s.groups, s.out_c / s.groups);
        let mut out = vec![0f64; s.out_c * oh * ow];
        for oc in 0..s.out_c {
            for v in &mut out[oc * oh * ow..(oc + 1) * oh * ow] {
                *v = if b.is_empty() { 0.0 } else { b[oc] as f64 };
            }
        }
        for ic in 0..s.in_c {
            let g = ic / cin_g;
            for ocg in 0..cout_g {
                let oc = g * cout_g + ocg;
                for iy in 0..s.in_h {
                    for ix in 0..s.in_w {
                        for ky in 0..s.k_h {
                            for kx in 0..s.k_w {
                                let oy = (iy * s.stride_h + ky) as isize - s.pad[0] as isize;
                                let ox = (ix * s.stride_w + kx) as isize - s.pad[1] as isize;
                                if oy >= 0 && ox >= 0 && (oy as usize) < oh && (ox as usize) < ow {
                                    out[(oc * oh + oy as usize) * ow + ox as usize] += (x
                                        [(ic * s.in_h + iy) * s.in_w + ix]
                                        * w[((ic * cout_g + ocg) * s.k_h + ky) * s.k_w + kx])
                                        as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "element {i}: {x} vs {y}"
            );
        }
    }

    fn random_shape(rng: &mut impl Rng, transpose: bool) -> ConvShape {
        let groups = [1, 1, 2, 3][rng.random_range(0..4)];
        let depthwise = rng.random_bool(0.3);
        let (in_c, out_c, groups) = if depthwise {
            let c = rng.random_range(1..6);
            (c, c, c)
        } else {
            (
                groups * rng.random_range(1..4),
                groups * rng.random_range(1..4),
                groups,
            )
        };
        let k_h = rng.random_range(1..6);
        let k_w = rng.random_range(1..6);
        let (sh, sw) = (rng.random_range(1..4), rng.random_range(1..4));
        let pad = if transpose {
            [
                rng.random_range(0..k_h),
                rng.random_range(0..k_w),
                rng.random_range(0..k_h),
                rng.random_range(0..k_w),
            ]
        } else {
            [
                rng.random_range(0..3),
                rng.random_range(0..3),
                rng.random_range(0..3),
                rng.random_range(0..3),
            ]
        };
        ConvShape {
            in_c,
            in_h: rng.random_range(1..12),
            in_w: rng.random_range(1..12),
            out_c,
            k_h,
            k_w,
            stride_h: sh,
            stride_w: sw,
            pad,
            groups,
        }
    }

    fn rand_vec(rng: &mut impl Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn conv2d_matches_definition_on_random_shapes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut tested = 0;
        while tested < 400 {
            let s = random_shape(&mut rng, false);
            let Some((oh, ow)) = s.conv_out() else {
                continue;
            };
            let x = rand_vec(&mut rng, s.in_c * s.in_h * s.in_w);
            let w = rand_vec(&mut rng, s.out_c * s.in_c / s.groups * s.k_h * s.k_w);
            let b = if rng.random_bool(0.5) {
                rand_vec(&mut rng, s.out_c)
            } else {
                vec![]
            };
            let mut out = vec![f32::NAN; s.out_c * oh * ow];
            conv2d(&s, &x, &w, &b, Act::None, &mut out);
            close(&out, &naive_conv(&s, &x, &w, &b));
            tested += 1;
        }
    }

    #[test]
    fn conv_transpose2d_matches_definition_on_random_shapes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut tested = 0;
        while tested < 400 {
            let s = random_shape(&mut rng, true);
            let Some((oh, ow)) = s.conv_transpose_out() else {
                continue;
            };
            let x = rand_vec(&mut rng, s.in_c * s.in_h * s.in_w);
            let w = rand_vec(&mut rng, s.in_c * s.out_c / s.groups * s.k_h * s.k_w);
            let b = if rng.random_bool(0.5) {
                rand_vec(&mut rng, s.out_c)
            } else {
                vec![]
            };
            let mut out = vec![f32::NAN; s.out_c * oh * ow];
            conv_transpose2d(&s, &x, &w, &b, Act::None, &mut out);
            close(&out, &naive_conv_t(&s, &x, &w, &b));
            tested += 1;
        }
    }

    #[test]
    fn activations_add_concat() {
        let x = [-2.0, -0.5, 0.0, 3.0];
        let mut o = [0.0; 4];
        activation(&x, Act::Relu, &mut o);
        assert_eq!(o, [0.0, 0.0, 0.0, 3.0]);
        activation(&x, Act::LeakyRelu(0.125), &mut o);
        assert_eq!(o, [-0.25, -0.0625, 0.0, 3.0]);
        add(&x, &[1.0, 1.0, 1.0, 1.0], Act::Relu, &mut o);
        assert_eq!(o, [0.0, 0.5, 1.0, 4.0]);
        let mut c = [0.0; 6];
        concat(&[&[1.0, 2.0], &[3.0, 4.0, 5.0, 6.0]], &mut c);
        assert_eq!(c, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn pixel_shuffle_matches_definition_and_inverts() {
        let (c, h, w, r) = (2, 3, 5, 2);
        let x: Vec<f32> = (0..c * r * r * h * w).map(|i| i as f32).collect();
        let mut y = vec![0.0; x.len()];
        pixel_shuffle(&x, c, h, w, r, &mut y);
        for ch in 0..c {
            for oy in 0..h * r {
                for ox in 0..w * r {
                    let src = ((ch * r * r + (oy % r) * r + ox % r) * h + oy / r) * w + ox / r;
                    assert_eq!(y[(ch * h * r + oy) * w * r + ox], x[src]);
                }
            }
        }
        let mut z = vec![0.0; x.len()];
        pixel_unshuffle(&y, c, h * r, w * r, r, &mut z);
        assert_eq!(z, x);
    }
}
