//! The SIMD int8 kernels against the scalar int8 reference ([`generic_i8`]): equal outputs,
//! element for element and bit for bit, for `u8` (with and without fused ReLU) and `f32`
//! (each activation) destinations, over random shapes (odd widths, tiny planes, planes smaller
//! than the kernel, channel counts that are not multiples of the vector widths), random zero
//! points including 0 and 255, weights including -128, with and without bias, and
//! PMRID-like shapes. Both the dispatched kernels ([`Kernels::best`]) and, where the CPU has
//! the features, each x86 entry directly (so the AVX2 kernels are tested on AVX-512 machines
//! too).

use rand::{Rng, SeedableRng};
use rawnr_kernels::quant::{QAddParams, QConvParams, QOutput, QParams, QResidual};
#[cfg(target_arch = "x86_64")]
use rawnr_kernels::Isa;
use rawnr_kernels::{
    generic, generic_i8, Act, ConvShape, F16ToF32Fn, Kernels, PlaneLayout, QConvFn,
};

type Rng64 = rand::rngs::StdRng;

fn rng(seed: u64) -> Rng64 {
    Rng64::seed_from_u64(seed)
}

/// Random `i8` weights in -128..=127 (-128 forced into a few places).
fn weights(r: &mut Rng64, n: usize) -> Vec<i8> {
    let mut w: Vec<i8> = (0..n).map(|_| r.random_range(-128..=127)).collect();
    for _ in 0..(n / 16).max(1) {
        if n > 0 {
            let i = r.random_range(0..n);
            w[i] = -128;
        }
    }
    w
}

/// Inputs: random codes, or mostly extremes (to push the accumulators).
fn inputs(r: &mut Rng64, n: usize) -> Vec<u8> {
    if r.random_range(0..4) == 0 {
        (0..n)
            .map(|_| {
                if r.random_range(0..8) == 0 {
                    r.random()
                } else {
                    255
                }
            })
            .collect()
    } else {
        (0..n).map(|_| r.random()).collect()
    }
}

fn zero_point(r: &mut Rng64) -> i32 {
    match r.random_range(0..8) {
        0 => 0,
        1 => 255,
        _ => r.random_range(0..=255),
    }
}

/// Asserts equal outputs (and reports the first difference rather than both buffers).
fn same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    if got != want {
        let i = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(0);
        let diffs = got.iter().zip(want).filter(|(g, w)| g != w).count();
        panic!(
            "{what}: {diffs} of {} elements differ; first at {i}: {:?} vs reference {:?}",
            want.len(),
            got[i],
            want[i]
        );
    }
}

/// Every output configuration of one shape: all `u8` and `f32` variants, kernel vs reference.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Conv,
    Transposed,
}

fn out_hw(s: &ConvShape, op: Op) -> Option<(usize, usize)> {
    match op {
        Op::Conv => s.conv_out(),
        Op::Transposed => s.conv_transpose_out(),
    }
}

/// Runs `f` and the reference on `s` with random operands in every output configuration and
/// asserts equal outputs. `seed` picks the operands.
fn check(f: QConvFn, s: &ConvShape, op: Op, seed: u64, what: &str) {
    let reference: QConvFn = match op {
        Op::Conv => generic_i8::qconv2d,
        Op::Transposed => generic_i8::qconv_transpose2d,
    };
    let Some((oh, ow)) = out_hw(s, op) else {
        return;
    };
    let mut r = rng(seed);
    let (cin_g, cout_g) = (s.in_c / s.groups, s.out_c / s.groups);
    let wlen = match op {
        Op::Conv => s.out_c * cin_g * s.k_h * s.k_w,
        Op::Transposed => s.in_c * cout_g * s.k_h * s.k_w,
    };
    let x = inputs(&mut r, s.in_c * s.in_h * s.in_w);
    let w = weights(&mut r, wlen);
    let bias: Vec<i32> = match r.random_range(0..4) {
        0 => vec![],
        1 => (0..s.out_c)
            .map(|_| r.random_range(i32::MAX - 1000..=i32::MAX)) // wraps
            .collect(),
        _ => (0..s.out_c)
            .map(|_| r.random_range(-200_000..200_000))
            .collect(),
    };
    // Mostly ordinary weight scales; a tiny one (requantization shift above 53) now and then,
    // and large ones (multipliers around 1/4..64: shifts 26..=34, across the output stage's
    // 32/33 boundary).
    let ws: Vec<f32> = (0..s.out_c)
        .map(|_| match r.random_range(0..16) {
            0 => 1e-9,
            1 | 2 => r.random_range(0.5..40.0),
            _ => r.random_range(0.0005..0.02),
        })
        .collect();
    let in_zp = match r.random_range(0..16) {
        0 => -7,
        1 => 300,
        _ => zero_point(&mut r),
    };
    let p = QConvParams {
        in_zero_point: in_zp,
        in_scale: r.random_range(0.005..0.1),
        weight: &w,
        weight_scale: &ws,
        bias: &bias,
    };
    let n = s.out_c * oh * ow;
    for relu in [false, true] {
        let q = QParams {
            scale: r.random_range(0.05..2.0),
            zero_point: match r.random_range(0..12) {
                0 => -3,
                1 => 270,
                _ => zero_point(&mut r),
            },
        };
        let mut got = vec![0xAAu8; n + 3];
        let mut want = vec![0xAAu8; n + 3];
        f(
            s,
            &p,
            &x,
            QOutput::U8 {
                q,
                relu,
                dst: &mut got[..n],
            },
        );
        reference(
            s,
            &p,
            &x,
            QOutput::U8 {
                q,
                relu,
                dst: &mut want[..n],
            },
        );
        same(
            &got,
            &want,
            &format!("{what}: u8 relu={relu} {q:?} in_zp={in_zp} {s:?}"),
        );
    }
    for act in [Act::None, Act::Relu, Act::LeakyRelu(0.1875)] {
        let mut got = vec![-1.5f32; n + 3];
        let mut want = vec![-1.5f32; n + 3];
        f(
            s,
            &p,
            &x,
            QOutput::F32 {
                act,
                dst: &mut got[..n],
            },
        );
        reference(
            s,
            &p,
            &x,
            QOutput::F32 {
                act,
                dst: &mut want[..n],
            },
        );
        let gb: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        let wb: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
        same(
            &gb,
            &wb,
            &format!("{what}: f32 {act:?} in_zp={in_zp} {s:?}"),
        );
    }
}

fn pointwise(in_c: usize, out_c: usize, h: usize, w: usize) -> ConvShape {
    ConvShape::pointwise(in_c, out_c, h, w)
}

/// The pointwise kernels under test: the dispatched one and each x86 entry the CPU runs.
fn pointwise_kernels() -> Vec<(&'static str, QConvFn)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, QConvFn)> = vec![("best", Kernels::best().qconv1x1)];
    #[cfg(target_arch = "x86_64")]
    {
        use rawnr_kernels::x86_64 as x;
        if Isa::allows(Isa::Avx512Vnni) {
            v.push(("avx512vnni", x::avx512vnni_conv1x1_i8::conv1x1));
        }
        if Isa::allows(Isa::Avx2) {
            v.push(("avx2", x::avx2_conv1x1_i8::conv1x1));
        }
    }
    v
}

fn pointwise_shapes(r: &mut Rng64) -> Vec<ConvShape> {
    let mut v = vec![
        pointwise(1, 1, 1, 1),
        pointwise(1, 1, 1, 17),
        pointwise(3, 5, 3, 5),
        pointwise(4, 4, 4, 16),
        pointwise(5, 7, 1, 63),
        pointwise(16, 64, 9, 15),
        pointwise(64, 16, 7, 13),
        pointwise(64, 64, 48, 48),
        pointwise(512, 512, 6, 6),
        pointwise(256, 64, 12, 12),
        pointwise(128, 512, 3, 5),
        pointwise(513, 3, 3, 5), // above the packed buffer: reference fallback
        pointwise(7, 0, 3, 3),
    ];
    for _ in 0..60 {
        let in_c = [
            r.random_range(1..12),
            r.random_range(1..80),
            r.random_range(60..200),
        ][r.random_range(0..3)];
        v.push(pointwise(
            in_c,
            r.random_range(1..40),
            r.random_range(1..9),
            r.random_range(1..80),
        ));
    }
    v
}

#[test]
fn pointwise_matches_reference() {
    let mut r = rng(1);
    let shapes = pointwise_shapes(&mut r);
    for (name, f) in pointwise_kernels() {
        for (i, s) in shapes.iter().enumerate() {
            check(f, s, Op::Conv, 100 + i as u64, name);
        }
    }
}

fn depthwise(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: [usize; 4]) -> ConvShape {
    ConvShape {
        in_c: c,
        in_h: h,
        in_w: w,
        out_c: c,
        k_h: k,
        k_w: k,
        stride_h: stride,
        stride_w: stride,
        pad,
        groups: c,
    }
}

/// The depthwise kernels under test.
fn depthwise_kernels() -> Vec<(&'static str, QConvFn)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, QConvFn)> = vec![("best", Kernels::best().qdepthwise)];
    #[cfg(target_arch = "x86_64")]
    if Isa::allows(Isa::Avx2) {
        v.push(("avx2", rawnr_kernels::x86_64::avx2_dw_i8::depthwise));
    }
    #[cfg(target_arch = "x86_64")]
    if Isa::allows(Isa::Avx512Vnni) {
        v.push((
            "avx512vnni",
            rawnr_kernels::x86_64::avx512vnni_dw_i8::depthwise,
        ));
    }
    v
}

fn depthwise_shapes(r: &mut Rng64) -> Vec<ConvShape> {
    let mut v = vec![
        depthwise(1, 1, 1, 3, 1, [1; 4]),
        depthwise(1, 1, 1, 5, 1, [2; 4]),
        depthwise(2, 1, 1, 5, 2, [2; 4]),
        depthwise(3, 2, 3, 5, 2, [2; 4]),
        depthwise(2, 4, 4, 5, 1, [2; 4]),
        depthwise(2, 5, 33, 3, 1, [1; 4]),
        depthwise(3, 7, 17, 5, 2, [2; 4]),
        depthwise(2, 9, 40, 5, 2, [1, 2, 2, 1]),
        depthwise(2, 6, 300, 5, 1, [2; 4]), // several strips
        depthwise(2, 6, 301, 5, 2, [2; 4]),
        depthwise(2, 6, 290, 3, 2, [1; 4]),
        depthwise(2, 8, 30, 3, 1, [0; 4]),
        depthwise(2, 8, 30, 7, 1, [3; 4]),
        depthwise(2, 8, 31, 7, 2, [3; 4]),
        depthwise(2, 8, 30, 2, 2, [0; 4]),
        depthwise(2, 8, 30, 4, 1, [1, 2, 2, 1]),
        depthwise(2, 3, 3, 1, 1, [0; 4]),
        depthwise(2, 3, 3, 5, 1, [4; 4]), // padding wider than the kernel's reach
        depthwise(64, 48, 48, 5, 1, [2; 4]),
        depthwise(64, 48, 48, 5, 2, [2; 4]),
        depthwise(16, 96, 96, 3, 1, [1; 4]),
        depthwise(512, 6, 6, 3, 1, [1; 4]),
        // A row or two of output (streamed calls: vertical quads), with and without the
        // window's top or bottom padding, several strips.
        depthwise(3, 5, 300, 5, 1, [0, 2, 0, 2]),
        depthwise(3, 6, 257, 5, 1, [0, 2, 0, 2]),
        depthwise(2, 4, 129, 5, 1, [2, 2, 0, 2]),
        depthwise(2, 3, 64, 5, 1, [0, 2, 2, 2]),
        depthwise(4, 3, 300, 3, 1, [0, 1, 0, 1]),
        depthwise(4, 4, 61, 3, 1, [1, 1, 0, 1]),
        depthwise(2, 1, 17, 3, 1, [1; 4]),
        depthwise(2, 1, 5, 5, 1, [0, 2, 4, 2]),
        // Not handled by the SIMD kernels (fall back): channel multiplier 2, 9x9, stride 3.
        ConvShape {
            out_c: 4,
            ..depthwise(2, 6, 9, 3, 1, [1; 4])
        },
        depthwise(2, 12, 12, 9, 1, [4; 4]),
        depthwise(2, 12, 12, 3, 3, [1; 4]),
    ];
    for _ in 0..80 {
        let k = [3, 5, 3, 5, 1, 2, 4, 7][r.random_range(0..8)];
        let stride = r.random_range(1..3);
        let p = [0, k / 2, k / 2, k / 2, k][r.random_range(0..5)];
        let pad = if r.random_range(0..4) == 0 {
            [0; 4].map(|_| r.random_range(0..=k))
        } else {
            [p; 4]
        };
        v.push(depthwise(
            r.random_range(1..5),
            r.random_range(1..12),
            r.random_range(1..160),
            k,
            stride,
            pad,
        ));
    }
    v
}

/// [`Kernels::qdepthwise_strided`] as a plain kernel for [`check`]: the input copied into ring
/// planes (extra rows, the window starting part-way round so that its rows wrap, gaps between
/// planes; all picked from the shape), the output written into larger planes and gathered
/// back, after asserting that nothing between the output rows was written.
fn ring_depthwise(s: &ConvShape, p: &QConvParams<'_>, x: &[u8], out: QOutput<'_>) {
    let strided = Kernels::best()
        .qdepthwise_strided
        .expect("a strided kernel");
    let Some((oh, ow)) = s.conv_out() else {
        return;
    };
    let supported = s.groups == s.in_c
        && s.out_c == s.in_c
        && s.k_h == s.k_w
        && s.k_h <= 7
        && s.stride_h == s.stride_w
        && s.stride_h <= 2
        && (0..=255).contains(&p.in_zero_point);
    if !supported {
        return generic_i8::qconv2d(s, p, x, out);
    }
    let (c, h, w) = (s.in_c, s.in_h, s.in_w);
    let rows = h + (c + w) % 4;
    let l = PlaneLayout {
        in_stride: rows * w + (h % 3) * w,
        in_rows: rows,
        in_first_row: (w * 7 + h) % rows,
        out_stride: oh * ow + (w % 2) * ow + 3,
    };
    let mut ring = vec![0x5Au8; (c - 1) * l.in_stride + rows * w];
    for ch in 0..c {
        for y in 0..h {
            let at = ch * l.in_stride + (l.in_first_row + y) % rows * w;
            ring[at..at + w].copy_from_slice(&x[(ch * h + y) * w..][..w]);
        }
    }
    let len = (c - 1) * l.out_stride + oh * ow;
    let gaps = |ch: usize| ch * l.out_stride + oh * ow..(ch + 1) * l.out_stride;
    match out {
        QOutput::U8 { q, relu, dst } => {
            let mut big = vec![0xA5u8; len];
            let u8_out = QOutput::U8 {
                q,
                relu,
                dst: &mut big,
            };
            assert!(
                strided(s, p, &ring, u8_out, &l),
                "a supported shape refused"
            );
            for ch in 0..c {
                dst[ch * oh * ow..][..oh * ow]
                    .copy_from_slice(&big[ch * l.out_stride..][..oh * ow]);
                if ch + 1 < c {
                    assert!(
                        big[gaps(ch)].iter().all(|&b| b == 0xA5),
                        "wrote between planes"
                    );
                }
            }
        }
        QOutput::F32 { act, dst } => {
            let mut big = vec![-9.5f32; len];
            let f32_out = QOutput::F32 { act, dst: &mut big };
            assert!(
                strided(s, p, &ring, f32_out, &l),
                "a supported shape refused"
            );
            for ch in 0..c {
                dst[ch * oh * ow..][..oh * ow]
                    .copy_from_slice(&big[ch * l.out_stride..][..oh * ow]);
                if ch + 1 < c {
                    assert!(
                        big[gaps(ch)].iter().all(|&b| b == -9.5),
                        "wrote between planes"
                    );
                }
            }
        }
    }
}

/// The strided depthwise kernel on ring rows ([`ring_depthwise`]) equals the reference bit for
/// bit on every depthwise test shape.
#[test]
fn depthwise_on_ring_rows_matches_reference() {
    if Kernels::best().qdepthwise_strided.is_none() {
        #[cfg(target_arch = "x86_64")]
        assert!(
            !Isa::allows(Isa::Avx512Vnni),
            "a VNNI CPU must get the strided kernel"
        );
        return;
    }
    let mut r = rng(3);
    for (i, s) in depthwise_shapes(&mut r).iter().enumerate() {
        check(ring_depthwise, s, Op::Conv, 5000 + i as u64, "ring rows");
    }
}

#[test]
fn depthwise_matches_reference() {
    let mut r = rng(2);
    let shapes = depthwise_shapes(&mut r);
    for (name, f) in depthwise_kernels() {
        for (i, s) in shapes.iter().enumerate() {
            check(f, s, Op::Conv, 1000 + i as u64, name);
        }
    }
}

fn transposed(in_c: usize, out_c: usize, h: usize, w: usize) -> ConvShape {
    ConvShape {
        in_c,
        in_h: h,
        in_w: w,
        out_c,
        k_h: 2,
        k_w: 2,
        stride_h: 2,
        stride_w: 2,
        pad: [0; 4],
        groups: 1,
    }
}

/// The transposed-convolution kernels under test.
fn transposed_kernels() -> Vec<(&'static str, QConvFn)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, QConvFn)> = vec![("best", Kernels::best().qconv_transpose)];
    #[cfg(target_arch = "x86_64")]
    if Isa::allows(Isa::Avx2) {
        v.push((
            "avx2",
            rawnr_kernels::x86_64::avx2_convt2x2_i8::conv_transpose2x2,
        ));
    }
    #[cfg(target_arch = "x86_64")]
    if Isa::allows(Isa::Avx512Vnni) {
        v.push((
            "avx512vnni",
            rawnr_kernels::x86_64::avx512vnni_convt2x2_i8::conv_transpose2x2,
        ));
    }
    v
}

#[test]
fn transposed_matches_reference() {
    let mut r = rng(3);
    let mut shapes = vec![
        transposed(1, 1, 1, 1),
        transposed(1, 3, 2, 17),
        transposed(3, 5, 3, 8),
        transposed(7, 9, 2, 33),
        transposed(64, 32, 12, 12),
        transposed(64, 64, 6, 6),
        transposed(512, 256, 3, 3),
        transposed(32, 16, 20, 24),
        // Fall back: padding, 3x3, grouped, too many channels.
        ConvShape {
            pad: [1; 4],
            ..transposed(3, 4, 5, 6)
        },
        ConvShape {
            k_h: 3,
            k_w: 3,
            ..transposed(3, 4, 5, 6)
        },
        ConvShape {
            groups: 2,
            ..transposed(4, 4, 5, 6)
        },
        transposed(600, 2, 2, 3),
    ];
    for _ in 0..60 {
        shapes.push(transposed(
            r.random_range(1..70),
            r.random_range(1..12),
            r.random_range(1..6),
            r.random_range(1..40),
        ));
    }
    for (name, f) in transposed_kernels() {
        for (i, s) in shapes.iter().enumerate() {
            check(f, s, Op::Transposed, 2000 + i as u64, name);
        }
    }
}

/// The dense-convolution kernels under test.
fn dense_kernels() -> Vec<(&'static str, QConvFn)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, QConvFn)> = vec![("best", Kernels::best().qconv)];
    #[cfg(target_arch = "x86_64")]
    if Isa::allows(Isa::Avx512Vnni) {
        v.push((
            "avx512vnni",
            rawnr_kernels::x86_64::avx512vnni_conv_i8::conv,
        ));
    }
    #[cfg(target_arch = "x86_64")]
    if Isa::allows(Isa::Avx2) {
        v.push(("avx2", rawnr_kernels::x86_64::avx2_conv_i8::conv));
    }
    v
}

fn dense(in_c: usize, out_c: usize, h: usize, w: usize, k: usize, pad: [usize; 4]) -> ConvShape {
    ConvShape {
        in_c,
        in_h: h,
        in_w: w,
        out_c,
        k_h: k,
        k_w: k,
        stride_h: 1,
        stride_w: 1,
        pad,
        groups: 1,
    }
}

#[test]
fn dense_matches_reference() {
    let mut r = rng(4);
    let mut shapes = vec![
        dense(4, 16, 1, 1, 3, [1; 4]),
        dense(4, 16, 2, 3, 3, [1; 4]),
        dense(4, 16, 20, 70, 3, [1; 4]),
        dense(16, 4, 20, 131, 3, [1; 4]),
        dense(4, 16, 96, 96, 3, [1; 4]),
        dense(16, 4, 64, 64, 3, [1; 4]),
        dense(3, 5, 9, 9, 5, [2; 4]),
        dense(2, 3, 4, 4, 5, [4; 4]),
        dense(1, 1, 3, 3, 3, [0; 4]),
        dense(5, 7, 8, 66, 3, [0, 1, 2, 0]),
        dense(8, 3, 6, 20, 1, [1; 4]),
        ConvShape {
            k_w: 1,
            pad: [1, 0, 1, 0],
            ..dense(6, 5, 7, 19, 3, [0; 4])
        },
        // Fall back: stride 2, grouped, reduction over 512.
        ConvShape {
            stride_h: 2,
            stride_w: 2,
            ..dense(4, 8, 9, 9, 3, [1; 4])
        },
        ConvShape {
            groups: 2,
            ..dense(4, 8, 9, 9, 3, [1; 4])
        },
        dense(64, 3, 5, 6, 3, [1; 4]),
    ];
    for _ in 0..60 {
        let k = [1, 2, 3, 5][r.random_range(0..4)];
        let p = r.random_range(0..=k);
        shapes.push(dense(
            r.random_range(1..20),
            r.random_range(1..20),
            r.random_range(1..8),
            r.random_range(1..90),
            k,
            [p; 4],
        ));
    }
    for (name, f) in dense_kernels() {
        for (i, s) in shapes.iter().enumerate() {
            check(f, s, Op::Conv, 3000 + i as u64, name);
        }
    }
}

#[test]
fn f16_widening_matches_reference_for_every_half() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let mut want = vec![0f32; all.len()];
    generic::f16_to_f32(&all, &mut want);
    #[allow(unused_mut)]
    let mut fns: Vec<(&str, F16ToF32Fn)> = vec![("best", Kernels::best().f16_to_f32)];
    #[cfg(target_arch = "x86_64")]
    if Isa::allows(Isa::Avx2) {
        fns.push(("f16c", rawnr_kernels::x86_64::f16c_cvt::f16_to_f32));
    }
    for (name, f) in fns {
        // Every length 0..40 (tails), then all halves at odd offsets.
        for n in 0..40 {
            let mut got = vec![7f32; n + 1];
            f(&all[1000..1000 + n], &mut got[..n]);
            assert_eq!(&got[..n], &want[1000..1000 + n], "{name} len {n}");
            assert_eq!(got[n], 7.0, "{name} wrote past {n}");
        }
        let mut got = vec![0f32; all.len()];
        f(&all, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            if w.is_nan() {
                assert!(g.is_nan(), "{name} {i:#06x}");
            } else {
                assert_eq!(g.to_bits(), w.to_bits(), "{name} {i:#06x}");
            }
        }
        let mut got = vec![0f32; all.len() - 3];
        f(&all[3..], &mut got);
        for (i, (g, w)) in got.iter().zip(&want[3..]).enumerate() {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{name} {i}"
            );
        }
    }
}

/// The planes of `dense` (`pixels` elements each) `stride` apart, random elements between them.
fn spread<T: Copy>(
    dense: &[T],
    pixels: usize,
    stride: usize,
    mut random: impl FnMut() -> T,
) -> Vec<T> {
    let planes = dense.len() / pixels;
    let mut v: Vec<T> = (0..(planes - 1) * stride + pixels)
        .map(|_| random())
        .collect();
    for (c, plane) in dense.chunks_exact(pixels).enumerate() {
        v[c * stride..c * stride + pixels].copy_from_slice(plane);
    }
    v
}

/// The strided pointwise kernel ([`Kernels::qconv1x1_strided`], rows of a streamed value's
/// ring): every plane equal to the reference on the dense planes, bit for bit, for `u8` and
/// `f32` outputs, with and without a residual added in the output stage (against the reference
/// add of the reference output), and nothing written between the output planes.
#[test]
fn strided_pointwise_matches_reference() {
    let Some(strided) = Kernels::best().qconv1x1_strided else {
        #[cfg(target_arch = "x86_64")]
        assert!(
            !Isa::allows(Isa::Avx512Vnni),
            "a VNNI CPU must get the strided kernel"
        );
        return;
    };
    let mut r = rng(11);
    for case in 0..80 {
        let in_c = match case {
            0 => 512,
            1 => 1,
            _ => r.random_range(1..140),
        };
        let s = pointwise(
            in_c,
            r.random_range(1..40),
            r.random_range(1..6),
            r.random_range(1..90),
        );
        let pixels = s.in_h * s.in_w;
        let in_stride = pixels
            + if case % 3 == 0 {
                0
            } else {
                r.random_range(1..70)
            };
        let out_stride = pixels
            + if case % 4 == 0 {
                0
            } else {
                r.random_range(1..70)
            };
        // The strided input: the dense planes with random bytes between them.
        let x = inputs(&mut r, in_c * pixels);
        let xs = spread(&x, pixels, in_stride, || r.random());
        let w = weights(&mut r, s.out_c * in_c);
        let bias: Vec<i32> = if case % 5 == 0 {
            vec![]
        } else {
            (0..s.out_c)
                .map(|_| r.random_range(-200_000..200_000))
                .collect()
        };
        let ws: Vec<f32> = (0..s.out_c).map(|_| r.random_range(0.0005..0.02)).collect();
        let p = QConvParams {
            in_zero_point: zero_point(&mut r),
            in_scale: 0.02,
            weight: &w,
            weight_scale: &ws,
            bias: &bias,
        };
        let n = s.out_c * pixels;
        let len = (s.out_c - 1) * out_stride + pixels;
        let planes = |v: &[u8]| -> Vec<u8> {
            (0..s.out_c)
                .flat_map(|o| v[o * out_stride..o * out_stride + pixels].to_vec())
                .collect()
        };
        let gaps_untouched = |v: &[u8]| {
            (0..s.out_c.saturating_sub(1)).all(|o| {
                v[o * out_stride + pixels..(o + 1) * out_stride]
                    .iter()
                    .all(|&b| b == 0xAA)
            })
        };
        for relu in [false, true] {
            let q = QParams {
                scale: r.random_range(0.05..2.0),
                zero_point: zero_point(&mut r),
            };
            let mut want = vec![0u8; n];
            generic_i8::qconv2d(
                &s,
                &p,
                &x,
                QOutput::U8 {
                    q,
                    relu,
                    dst: &mut want,
                },
            );
            // The kernel's output planes (0xAA between them), with `residual` if any.
            let run = |residual: Option<&QResidual<'_>>| {
                let mut got = vec![0xAAu8; len];
                let dst = QOutput::U8 {
                    q,
                    relu,
                    dst: &mut got,
                };
                strided(&s, &p, &xs, dst, in_stride, out_stride, residual);
                got
            };
            let got = run(None);
            let what = format!("strided u8 case {case} {s:?}");
            same(&planes(&got), &want, &what);
            assert!(gaps_untouched(&got), "{what}: wrote between output planes");
            // With a residual added in the output stage.
            let res_stride = pixels + r.random_range(0..40);
            let res_planes: Vec<u8> = (0..n).map(|_| r.random()).collect();
            let res = spread(&res_planes, pixels, res_stride, || r.random());
            let qb = QParams {
                scale: r.random_range(0.05..2.0),
                // Now and then a zero point outside 0..=255 (the kernel's scalar path).
                zero_point: if case % 7 == 3 {
                    -300
                } else {
                    zero_point(&mut r)
                },
            };
            let qy = QParams {
                scale: r.random_range(0.05..3.0),
                zero_point: zero_point(&mut r),
            };
            let add = QAddParams::new(q, qb, qy, r.random()).unwrap();
            let mut want_add = vec![0u8; n];
            generic_i8::qadd(&want, &res_planes, &add, &mut want_add);
            let got = run(Some(&QResidual::U8 {
                rows: &res,
                stride: res_stride,
                add,
            }));
            let what = format!("strided u8 + residual case {case} {s:?} {add:?}");
            same(&planes(&got), &want_add, &what);
            assert!(gaps_untouched(&got), "{what}: wrote between output planes");
        }
        for act in [Act::None, Act::Relu, Act::LeakyRelu(0.1)] {
            let mut want = vec![0f32; n];
            generic_i8::qconv2d(
                &s,
                &p,
                &x,
                QOutput::F32 {
                    act,
                    dst: &mut want,
                },
            );
            // The bits of the kernel's output planes, with `residual` if any.
            let run = |residual: Option<&QResidual<'_>>| -> Vec<u32> {
                let mut got = vec![f32::NAN; len];
                let dst = QOutput::F32 { act, dst: &mut got };
                strided(&s, &p, &xs, dst, in_stride, out_stride, residual);
                (0..s.out_c)
                    .flat_map(|o| got[o * out_stride..o * out_stride + pixels].to_vec())
                    .map(f32::to_bits)
                    .collect()
            };
            let bits = |v: &[f32]| -> Vec<u32> { v.iter().map(|x| x.to_bits()).collect() };
            same(
                &run(None),
                &bits(&want),
                &format!("strided f32 case {case} {s:?}"),
            );
            // With an f32 residual and the add's own activation.
            let res_stride = pixels + r.random_range(0..40);
            let res_planes: Vec<f32> = (0..n).map(|_| r.random_range(-3.0..3.0)).collect();
            let res = spread(&res_planes, pixels, res_stride, || r.random());
            let add_act = [Act::None, Act::Relu, Act::LeakyRelu(0.2)][case % 3];
            let mut want_add = vec![0f32; n];
            rawnr_kernels::generic::add(&want, &res_planes, add_act, &mut want_add);
            let got = run(Some(&QResidual::F32 {
                rows: &res,
                stride: res_stride,
                act: add_act,
            }));
            same(
                &got,
                &bits(&want_add),
                &format!("strided f32 + residual case {case} {s:?}"),
            );
        }
    }
}
