//! The AArch64 int8 kernels (NEON, dot product) and the NEON f16 widening against the scalar
//! references ([`generic_i8`], [`generic::f16_to_f32`]): equal outputs, element for element,
//! for `u8` (with and without fused ReLU, output zero points inside and outside `0..=255`) and
//! `f32` (each activation) destinations, over random shapes (odd widths, tiny planes, planes
//! smaller than the kernel, channel counts that are not multiples of 4, 8 or 16), input zero
//! points 0, 255 and random, weights including -128, with and without bias, and PMRID-like
//! shapes. Each entry is called directly (the plain NEON pointwise kernel too, on a CPU with
//! `dotprod`) and through [`Kernels::best`]. Destinations are longer than the output, and the
//! extra elements must stay untouched.
#![cfg(target_arch = "aarch64")]

use rand::{Rng, SeedableRng};
use rawnr_kernels::aarch64::{
    neon_conv1x1_i8, neon_convt2x2_i8, neon_cvt_f16, neon_dot_conv1x1_i8, neon_dw_i8,
};
use rawnr_kernels::quant::{QConvParams, QOutput, QParams};
use rawnr_kernels::{generic, generic_i8, Act, ConvShape, Kernels, QConvFn};

type Rng64 = rand::rngs::StdRng;

/// Random weights in -128..=127, -128 forced into a few places.
fn weights(r: &mut Rng64, n: usize) -> Vec<i8> {
    let mut w: Vec<i8> = (0..n).map(|_| r.random_range(-128..=127)).collect();
    for _ in 0..n.div_ceil(16) {
        let i = r.random_range(0..n);
        w[i] = -128;
    }
    w
}

/// Random codes, or mostly 0 and 255 (to push the accumulators to their extremes).
fn inputs(r: &mut Rng64, n: usize) -> Vec<u8> {
    match r.random_range(0..4) {
        0 => (0..n)
            .map(|_| if r.random_range(0..2) == 0 { 0 } else { 255 })
            .collect(),
        _ => (0..n).map(|_| r.random()).collect(),
    }
}

/// 0, 255 or random.
fn zero_point(r: &mut Rng64) -> i32 {
    match r.random_range(0..4) {
        0 => 0,
        1 => 255,
        _ => r.random_range(0..=255),
    }
}

/// The outputs checked: `u8` without and with ReLU, `f32` with each activation.
#[derive(Clone, Copy, Debug)]
enum Out {
    U8(bool),
    F32(Act),
}

const ALL_OUTS: [Out; 5] = [
    Out::U8(false),
    Out::U8(true),
    Out::F32(Act::None),
    Out::F32(Act::Relu),
    Out::F32(Act::LeakyRelu(0.125)),
];

/// Runs `f` and the reference (a convolution, or a transposed one with `transposed`) on the same
/// random operands for each of `outs`, and asserts equal destinations (the elements past the
/// output included). Returns the number of runs compared.
fn check_op(
    f: QConvFn,
    s: &ConvShape,
    transposed: bool,
    outs: &[Out],
    seed: u64,
    what: &str,
) -> usize {
    let mut r = Rng64::seed_from_u64(seed);
    let (oh, ow) = if transposed {
        s.conv_transpose_out()
    } else {
        s.conv_out()
    }
    .expect("test shape");
    let reference = if transposed {
        generic_i8::qconv_transpose2d
    } else {
        generic_i8::qconv2d
    };
    let cin_g = s.in_c / s.groups;
    let len = s.out_c * oh * ow;
    let x = inputs(&mut r, s.in_c * s.in_h * s.in_w);
    let w = weights(&mut r, s.out_c * cin_g * s.k_h * s.k_w);
    let bias: Vec<i32> = if r.random_range(0..3) == 0 {
        vec![]
    } else {
        (0..s.out_c)
            .map(|_| r.random_range(-300_000..300_000))
            .collect()
    };
    let ws: Vec<f32> = (0..s.out_c).map(|_| r.random_range(0.002..0.02)).collect();
    let p = QConvParams {
        in_zero_point: zero_point(&mut r),
        in_scale: r.random_range(0.01..0.1),
        weight: &w,
        weight_scale: &ws,
        bias: &bias,
    };
    // An output scale that spreads the accumulators over the u8 range (and beyond, some).
    let terms = if transposed {
        cin_g as f32
    } else {
        (cin_g * s.k_h * s.k_w) as f32
    };
    let typical = 128.0 * 128.0 * terms.sqrt() * p.in_scale * 0.01;
    for (k, &o) in outs.iter().enumerate() {
        let tag = format!("{what} {s:?} zp {} {o:?}", p.in_zero_point);
        match o {
            Out::U8(relu) => {
                let zp = match (seed as usize + k) % 6 {
                    0 => 0,
                    1 => 255,
                    2 => [-3, 300][(seed % 2) as usize], // the scalar stage
                    _ => r.random_range(0..=255),
                };
                let q = QParams {
                    scale: typical / 64.0 * r.random_range(0.3..3.0),
                    zero_point: zp,
                };
                let mut want = vec![0xa5u8; len + 19];
                let mut got = want.clone();
                reference(
                    s,
                    &p,
                    &x,
                    QOutput::U8 {
                        q,
                        relu,
                        dst: &mut want[..len],
                    },
                );
                f(
                    s,
                    &p,
                    &x,
                    QOutput::U8 {
                        q,
                        relu,
                        dst: &mut got,
                    },
                );
                if got != want {
                    let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
                    panic!(
                        "{tag} {q:?}: element {i} of {len}: {} vs {}",
                        got[i], want[i]
                    );
                }
            }
            Out::F32(act) => {
                let mut want = vec![-7.5f32; len + 19];
                let mut got = want.clone();
                reference(
                    s,
                    &p,
                    &x,
                    QOutput::F32 {
                        act,
                        dst: &mut want[..len],
                    },
                );
                f(s, &p, &x, QOutput::F32 { act, dst: &mut got });
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g.to_bits(), w.to_bits(), "{tag}: element {i} of {len}");
                }
            }
        }
    }
    outs.len()
}

/// [`check_op`] for a convolution.
fn check(f: QConvFn, s: &ConvShape, outs: &[Out], seed: u64, what: &str) -> usize {
    check_op(f, s, false, outs, seed, what)
}

fn pointwise(in_c: usize, out_c: usize, h: usize, w: usize) -> ConvShape {
    ConvShape::pointwise(in_c, out_c, h, w)
}

fn depthwise(
    c: usize,
    h: usize,
    w: usize,
    k: (usize, usize),
    st: usize,
    pad: [usize; 4],
) -> ConvShape {
    ConvShape {
        in_c: c,
        in_h: h,
        in_w: w,
        out_c: c,
        k_h: k.0,
        k_w: k.1,
        stride_h: st,
        stride_w: st,
        pad,
        groups: c,
    }
}

/// The pointwise entries: dispatched, dot product (falls back without it), plain NEON.
fn pointwise_kernels() -> [(&'static str, QConvFn); 3] {
    [
        ("best", Kernels::best().qconv1x1),
        ("dotprod", neon_dot_conv1x1_i8::conv1x1),
        ("neon", neon_conv1x1_i8::conv1x1),
    ]
}

#[test]
fn dispatch_installs_the_neon_int8_kernels() {
    let k = Kernels::best();
    // What the kernels may use: the CPU's features below any forced level (RAWNR_ISA).
    let dot = rawnr_kernels::Isa::allows(rawnr_kernels::Isa::NeonDotprod);
    println!("kernels: {} (dotprod {dot})", k.name);
    if !rawnr_kernels::Isa::allows(rawnr_kernels::Isa::Neon) {
        let generic: QConvFn = rawnr_kernels::generic_i8::qconv2d;
        assert!(std::ptr::fn_addr_eq(k.qconv1x1, generic));
        return;
    }
    let want: QConvFn = if dot {
        neon_dot_conv1x1_i8::conv1x1
    } else {
        neon_conv1x1_i8::conv1x1
    };
    assert!(std::ptr::fn_addr_eq(k.qconv1x1, want));
    assert!(std::ptr::fn_addr_eq(
        k.qdepthwise,
        neon_dw_i8::depthwise as QConvFn
    ));
    assert!(std::ptr::fn_addr_eq(
        k.qconv_transpose,
        neon_convt2x2_i8::conv_transpose2x2 as QConvFn
    ));
    assert_eq!(neon_dot_conv1x1_i8::has_dotprod(), dot);
}

#[test]
fn pointwise_matches_reference_on_random_shapes() {
    let mut r = Rng64::seed_from_u64(1);
    let mut shapes = vec![
        pointwise(1, 1, 1, 1),
        pointwise(1, 1, 1, 3),
        pointwise(3, 5, 1, 7),
        pointwise(4, 4, 4, 4),
        pointwise(4, 8, 2, 6),
        pointwise(5, 9, 3, 5),
        pointwise(16, 16, 4, 4),
        pointwise(17, 13, 3, 11),
        pointwise(8, 12, 1, 13),
        pointwise(7, 7, 1, 16),
        pointwise(33, 20, 5, 9),
    ];
    for _ in 0..150 {
        shapes.push(pointwise(
            r.random_range(1..40),
            r.random_range(1..40),
            r.random_range(1..9),
            r.random_range(1..40),
        ));
    }
    let mut runs = 0;
    for (n, s) in shapes.iter().enumerate() {
        for (name, f) in pointwise_kernels() {
            let outs = [ALL_OUTS[n % 5], ALL_OUTS[(n + 2) % 5]];
            runs += check(f, s, &outs, 1000 + n as u64, name);
        }
    }
    println!("pointwise: {} shapes, {runs} runs", shapes.len());
}

#[test]
fn pointwise_chunks_and_channel_limits() {
    // Several pixel chunks (the dot kernel's buffer holds 32 KiB of input: 108 pixels of 300
    // channels, 16 of 2048; the plain kernel's chunks hold 16 KiB), the largest in_c the NEON
    // kernels take, and one more (to the generic kernel).
    let shapes = [
        pointwise(300, 10, 7, 31),
        pointwise(2048, 9, 3, 13),
        pointwise(2047, 5, 1, 37),
        pointwise(2049, 6, 2, 9),
        pointwise(130, 70, 25, 27),
        pointwise(1, 3, 70, 70),
    ];
    for (n, s) in shapes.iter().enumerate() {
        for (name, f) in pointwise_kernels() {
            check(f, s, &ALL_OUTS[n % 5..n % 5 + 1], 2000 + n as u64, name);
        }
    }
}

#[test]
fn pointwise_entries_pass_other_shapes_and_zero_points_on() {
    let mut others = vec![];
    let mut s = pointwise(5, 6, 4, 9);
    s.k_h = 3;
    s.k_w = 3;
    s.pad = [1; 4];
    others.push(s);
    let mut s = pointwise(6, 6, 4, 9);
    s.groups = 2;
    others.push(s);
    let mut s = pointwise(5, 6, 4, 9);
    s.stride_h = 2;
    s.stride_w = 2;
    others.push(s);
    let mut s = pointwise(5, 6, 4, 9);
    s.pad = [0, 1, 0, 0];
    others.push(s);
    for (n, s) in others.iter().enumerate() {
        for (name, f) in pointwise_kernels() {
            check(f, s, &ALL_OUTS, 3000 + n as u64, name);
        }
    }
    // An input zero point outside 0..=255 (the generic kernel's arithmetic).
    let s = pointwise(7, 5, 3, 9);
    let x: Vec<u8> = (0..7 * 27).map(|i| (i * 37 % 256) as u8).collect();
    let w: Vec<i8> = (0..35).map(|i| (i * 53 % 256) as u8 as i8).collect();
    let ws = [0.01f32; 5];
    for zp in [-20, 300] {
        let p = QConvParams {
            in_zero_point: zp,
            in_scale: 0.05,
            weight: &w,
            weight_scale: &ws,
            bias: &[],
        };
        for (name, f) in pointwise_kernels() {
            let mut want = vec![0f32; 5 * 27];
            let mut got = vec![1f32; 5 * 27];
            let act = Act::None;
            generic_i8::qconv2d(
                &s,
                &p,
                &x,
                QOutput::F32 {
                    act,
                    dst: &mut want,
                },
            );
            f(&s, &p, &x, QOutput::F32 { act, dst: &mut got });
            assert_eq!(got, want, "{name} zp {zp}");
        }
    }
}

#[test]
fn pointwise_pmrid_shapes() {
    let shapes = [
        pointwise(64, 64, 48, 48),
        pointwise(512, 512, 6, 6),
        pointwise(4, 16, 24, 40),
        pointwise(16, 4, 24, 40),
        pointwise(128, 64, 12, 12),
    ];
    for (n, s) in shapes.iter().enumerate() {
        for (name, f) in pointwise_kernels() {
            let outs = [ALL_OUTS[n % 2], ALL_OUTS[2 + n % 3]];
            check(f, s, &outs, 4000 + n as u64, name);
        }
    }
}

fn dw_kernels() -> [(&'static str, QConvFn); 2] {
    [
        ("best", Kernels::best().qdepthwise),
        ("neon_dw", neon_dw_i8::depthwise),
    ]
}

#[test]
fn depthwise_matches_reference_on_random_shapes() {
    let mut r = Rng64::seed_from_u64(5);
    let mut shapes = vec![
        depthwise(1, 1, 1, (3, 3), 1, [1; 4]),
        depthwise(1, 1, 1, (5, 5), 2, [2; 4]),
        depthwise(2, 2, 3, (5, 5), 1, [2; 4]),
        depthwise(3, 2, 2, (5, 5), 2, [2; 4]),
        depthwise(3, 9, 33, (3, 3), 1, [1; 4]),
        depthwise(3, 9, 33, (3, 3), 2, [1; 4]),
        depthwise(2, 11, 65, (5, 5), 2, [2; 4]),
        depthwise(2, 4, 600, (5, 5), 1, [2; 4]), // segments of 256 outputs
        depthwise(2, 4, 1100, (3, 3), 2, [1; 4]),
        depthwise(1, 6, 37, (3, 5), 1, [0, 1, 2, 2]),
        depthwise(1, 6, 37, (7, 7), 2, [3; 4]),
        depthwise(1, 7, 9, (1, 1), 1, [0; 4]),
        depthwise(2, 5, 8, (3, 3), 1, [0; 4]),
        depthwise(2, 1, 20, (5, 5), 1, [2, 2, 2, 2]),
        depthwise(2, 3, 40, (5, 5), 2, [0, 4, 3, 0]),
    ];
    for _ in 0..200 {
        let k = if r.random_range(0..5) == 0 {
            (r.random_range(1..8), r.random_range(1..8))
        } else {
            let k = [3, 5][r.random_range(0..2)];
            (k, k)
        };
        let mut pad = [0; 4];
        for (i, p) in pad.iter_mut().enumerate() {
            *p = r.random_range(0..=[k.0, k.1][i % 2] / 2 + 1);
        }
        let s = depthwise(
            r.random_range(1..7),
            r.random_range(1..14),
            r.random_range(1..90),
            k,
            r.random_range(1..3),
            pad,
        );
        if s.conv_out().is_some() {
            shapes.push(s);
        }
    }
    let mut runs = 0;
    for (n, s) in shapes.iter().enumerate() {
        for (name, f) in dw_kernels() {
            let outs = [ALL_OUTS[n % 5], ALL_OUTS[(n + 3) % 5]];
            runs += check(f, s, &outs, 5000 + n as u64, name);
        }
    }
    println!("depthwise: {} shapes, {runs} runs", shapes.len());
}

#[test]
fn depthwise_entry_passes_other_shapes_on() {
    let shapes = [
        depthwise(2, 12, 12, (9, 9), 1, [4; 4]), // larger than 7
        depthwise(2, 12, 12, (3, 3), 3, [1; 4]), // stride 3
        {
            let mut s = depthwise(2, 12, 12, (3, 3), 1, [1; 4]);
            s.stride_w = 2;
            s
        },
        {
            let mut s = depthwise(2, 12, 12, (3, 3), 1, [1; 4]);
            s.out_c = 4; // channel multiplier 2
            s
        },
    ];
    for (n, s) in shapes.iter().enumerate() {
        for (name, f) in dw_kernels() {
            check(f, s, &ALL_OUTS, 6000 + n as u64, name);
        }
    }
}

#[test]
fn depthwise_pmrid_shapes() {
    let shapes = [
        depthwise(16, 96, 96, (5, 5), 2, [2; 4]),
        depthwise(64, 24, 24, (5, 5), 1, [2; 4]),
        depthwise(128, 12, 12, (5, 5), 2, [2; 4]),
        depthwise(32, 48, 48, (3, 3), 1, [1; 4]),
    ];
    for (n, s) in shapes.iter().enumerate() {
        for (name, f) in dw_kernels() {
            let outs = [ALL_OUTS[n % 2], ALL_OUTS[2 + n % 3]];
            check(f, s, &outs, 7000 + n as u64, name);
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

/// The transposed entries: dispatched, the dot-product path (plain without it), plain NEON.
fn convt_kernels() -> [(&'static str, QConvFn); 3] {
    [
        ("best", Kernels::best().qconv_transpose),
        ("convt", neon_convt2x2_i8::conv_transpose2x2),
        ("convt plain", neon_convt2x2_i8::conv_transpose2x2_plain),
    ]
}

#[test]
fn conv_transpose_matches_reference_on_random_shapes() {
    let mut r = Rng64::seed_from_u64(8);
    let mut shapes = vec![
        transposed(1, 1, 1, 1),
        transposed(1, 3, 1, 5),
        transposed(3, 1, 2, 3),
        transposed(4, 4, 3, 4),
        transposed(5, 3, 2, 13),
        transposed(8, 6, 3, 17),
        transposed(17, 9, 5, 12),
        transposed(300, 7, 5, 31), // several chunks, rows split across them
        transposed(2048, 3, 2, 9),
        transposed(2049, 3, 2, 9), // past the dot kernel's channel limit
    ];
    for _ in 0..120 {
        shapes.push(transposed(
            r.random_range(1..40),
            r.random_range(1..20),
            r.random_range(1..8),
            r.random_range(1..40),
        ));
    }
    let mut runs = 0;
    for (n, s) in shapes.iter().enumerate() {
        for (name, f) in convt_kernels() {
            let outs = [ALL_OUTS[n % 5], ALL_OUTS[(n + 1) % 5]];
            runs += check_op(f, s, true, &outs, 8000 + n as u64, name);
        }
    }
    println!("conv_transpose: {} shapes, {runs} runs", shapes.len());
    // Other shapes go to the reference.
    let mut others = vec![];
    for (k, st, pad, groups) in [
        (3, 2, [0; 4], 1),
        (2, 2, [1; 4], 1),
        (2, 1, [0; 4], 1),
        (2, 2, [0; 4], 2),
    ] {
        let mut s = transposed(4, 4, 3, 9);
        (s.k_h, s.k_w, s.stride_h, s.stride_w, s.pad, s.groups) = (k, k, st, st, pad, groups);
        others.push(s);
    }
    for (n, s) in others.iter().enumerate() {
        for (name, f) in convt_kernels() {
            check_op(f, s, true, &ALL_OUTS, 8500 + n as u64, name);
        }
    }
}

#[test]
fn conv_transpose_pmrid_shapes() {
    let shapes = [
        transposed(128, 64, 6, 6),
        transposed(64, 32, 12, 12),
        transposed(32, 16, 24, 24),
        transposed(16, 16, 48, 48),
    ];
    for (n, s) in shapes.iter().enumerate() {
        for (name, f) in convt_kernels() {
            let outs = [ALL_OUTS[n % 2], ALL_OUTS[2 + n % 3]];
            check_op(f, s, true, &outs, 9000 + n as u64, name);
        }
    }
}

#[test]
fn f16_widening_equals_reference_for_every_half() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let mut want = vec![0f32; all.len()];
    generic::f16_to_f32(&all, &mut want);
    for (name, f) in [
        ("best", Kernels::best().f16_to_f32),
        ("neon", neon_cvt_f16::f16_to_f32 as fn(&[u16], &mut [f32])),
    ] {
        let mut got = vec![1f32; all.len()];
        f(&all, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{name}: {i:#06x}: {g} vs {w}"
            );
        }
        // Every length up to 2 vectors, at every offset: the tail, and nothing written past it.
        for n in 0..20 {
            let src = &all[0x3c00 - 7..0x3c00 - 7 + n];
            let mut got = vec![-1f32; n + 3];
            f(src, &mut got);
            for i in 0..n {
                assert_eq!(
                    got[i].to_bits(),
                    want[0x3c00 - 7 + i].to_bits(),
                    "{name} {n}"
                );
            }
            assert_eq!(&got[n..], &[-1.0; 3], "{name} {n}");
        }
    }
}
