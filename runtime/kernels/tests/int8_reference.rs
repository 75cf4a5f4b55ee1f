//! The int8 reference kernels and the fixed-point arithmetic against independent
//! computations: exact integer accumulations through the f32 reference (all values are
//! integers below 2^24, so f32 sums are exact), f64 requantization, named rounding cases.

use rand::{Rng, SeedableRng};
use rawnr_kernels::quant::{
    dequantize_one, quantize_one, OutStage, QAddParams, QConvParams, QOutput, QParams, QRescale,
    Requant,
};
use rawnr_kernels::{generic, generic_i8, Act, ConvShape};

#[test]
fn requant_from_real_is_accurate_and_normalised() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for _ in 0..10_000 {
        let m = 2f64.powf(rng.random_range(-31.0..29.0));
        let r = Requant::from_real(m).unwrap();
        assert!(r.multiplier >= 1 << 30, "{m}: {r:?}");
        assert!((1..=62).contains(&r.shift));
        let back = r.multiplier as f64 / 2f64.powi(r.shift as i32);
        assert!((back - m).abs() <= m * 2f64.powi(-30), "{m} -> {back}");
    }
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-30, 2f64.powi(31)] {
        assert_eq!(Requant::from_real(bad), None, "{bad}");
    }
}

#[test]
fn requant_rounds_half_up() {
    let half = Requant::from_real(0.5).unwrap();
    let cases = [
        (3, 2),
        (-3, -1),
        (1, 1),
        (-1, 0),
        (2, 1),
        (-2, -1),
        (5, 3),
        (-5, -2),
    ];
    for (acc, want) in cases {
        assert_eq!(half.apply(acc), want, "0.5 * {acc}");
    }
    // Extreme accumulators do not overflow.
    let big = Requant::from_real(1.0e9).unwrap();
    assert_eq!(
        big.apply(i32::MAX),
        (i32::MAX as f64 * 1.0e9).round() as i64
    );
    let r = Requant::from_real(0.37).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    for _ in 0..10_000 {
        let acc: i32 = rng.random_range(-1_000_000..1_000_000);
        let exact = acc as f64 * r.multiplier as f64 / 2f64.powi(r.shift as i32);
        assert_eq!(r.apply(acc), (exact + 0.5).floor() as i64, "{acc}");
    }
}

#[test]
fn quantize_rounds_ties_to_even_and_saturates() {
    let q = QParams {
        scale: 0.5,
        zero_point: 10,
    };
    let cases = [
        (1.25, 12), // 2.5 -> 2
        (1.75, 14), // 3.5 -> 4
        (-1.25, 8), // -2.5 -> -2
        (-1.75, 6), // -3.5 -> -4
        (0.0, 10),
        (-0.0, 10),
        (1000.0, 255),
        (-1000.0, 0),
        (f32::INFINITY, 255),
        (f32::NEG_INFINITY, 0),
        (f32::NAN, 10),
    ];
    for (x, want) in cases {
        assert_eq!(quantize_one(x, q), want, "quantize({x})");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..10_000 {
        let x: f32 = rng.random_range(-5.0..120.0);
        let code = quantize_one(x, q);
        if code > 0 && code < 255 {
            assert!(
                (dequantize_one(code, q) - x).abs() <= 0.25 + 1e-6,
                "{x} -> {code}"
            );
        }
    }
}

fn rand_u8(rng: &mut impl Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.random()).collect()
}

fn rand_i8(rng: &mut impl Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.random_range(-127..=127)).collect()
}

/// Exact i32 accumulators through the f32 reference on `x - zp` (integers below 2^24).
fn exact_acc(
    s: &ConvShape,
    transposed: bool,
    x: &[u8],
    zp: i32,
    w: &[i8],
    bias: &[i32],
) -> Vec<i32> {
    let xf: Vec<f32> = x.iter().map(|&v| (v as i32 - zp) as f32).collect();
    let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let bf: Vec<f32> = bias.iter().map(|&v| v as f32).collect();
    let (oh, ow) = if transposed {
        s.conv_transpose_out().unwrap()
    } else {
        s.conv_out().unwrap()
    };
    let mut out = vec![0f32; s.out_c * oh * ow];
    if transposed {
        generic::conv_transpose2d(s, &xf, &wf, &bf, Act::None, &mut out);
    } else {
        generic::conv2d(s, &xf, &wf, &bf, Act::None, &mut out);
    }
    out.iter().map(|&v| v as i32).collect()
}

fn random_shape(rng: &mut impl Rng, transposed: bool) -> ConvShape {
    let groups_kind = rng.random_range(0..3);
    let k = [1, 2, 3, 5][rng.random_range(0..4)];
    let in_c = rng.random_range(1..9);
    let (groups, out_c) = match groups_kind {
        0 => (1, rng.random_range(1..9)),
        1 => (in_c, in_c),
        _ => (in_c, in_c * 2),
    };
    let stride = rng.random_range(1..3);
    let p = if transposed {
        rng.random_range(0..k)
    } else {
        rng.random_range(0..=k / 2 + 1)
    };
    ConvShape {
        in_c,
        in_h: rng.random_range(1..12),
        in_w: rng.random_range(1..300),
        out_c,
        k_h: k,
        k_w: k,
        stride_h: stride,
        stride_w: stride,
        pad: [p, p, p, p],
        groups,
    }
}

#[test]
fn qconv_matches_exact_integer_reference() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut checked = 0;
    for case in 0..400 {
        let transposed = case % 3 == 2;
        let s = random_shape(&mut rng, transposed);
        let out_hw = if transposed {
            s.conv_transpose_out()
        } else {
            s.conv_out()
        };
        let Some((oh, ow)) = out_hw else { continue };
        let cin_g = s.in_c / s.groups;
        let wlen = if transposed {
            s.in_c * (s.out_c / s.groups) * s.k_h * s.k_w
        } else {
            s.out_c * cin_g * s.k_h * s.k_w
        };
        let x = rand_u8(&mut rng, s.in_c * s.in_h * s.in_w);
        let w = rand_i8(&mut rng, wlen);
        let bias: Vec<i32> = if case % 4 == 0 {
            vec![]
        } else {
            (0..s.out_c)
                .map(|_| rng.random_range(-50_000..50_000))
                .collect()
        };
        let ws: Vec<f32> = (0..s.out_c)
            .map(|_| rng.random_range(0.001..0.02))
            .collect();
        let p = QConvParams {
            in_zero_point: rng.random_range(0..=255),
            in_scale: rng.random_range(0.01..0.1),
            weight: &w,
            weight_scale: &ws,
            bias: &bias,
        };
        let acc = exact_acc(&s, transposed, &x, p.in_zero_point, &w, &bias);
        let run = |out: QOutput<'_>| {
            if transposed {
                generic_i8::qconv_transpose2d(&s, &p, &x, out)
            } else {
                generic_i8::qconv2d(&s, &p, &x, out)
            }
        };
        // f32 output: exactly acc * (in_scale * weight_scale), then the activation.
        let act = [Act::None, Act::Relu, Act::LeakyRelu(0.25)][case % 3];
        let mut got = vec![0f32; s.out_c * oh * ow];
        run(QOutput::F32 { act, dst: &mut got });
        for (i, (&g, &a)) in got.iter().zip(&acc).enumerate() {
            let oc = i / (oh * ow);
            let want = act.apply(a as f32 * (p.in_scale * ws[oc]));
            assert_eq!(g.to_bits(), want.to_bits(), "case {case} {s:?} element {i}");
        }
        // u8 output: the requantized accumulator, and within half a step of the real value.
        let q = QParams {
            scale: rng.random_range(0.5..4.0),
            zero_point: rng.random_range(0..=255),
        };
        let relu = case % 2 == 0;
        let mut got = vec![0u8; s.out_c * oh * ow];
        run(QOutput::U8 {
            q,
            relu,
            dst: &mut got,
        });
        let probe = QOutput::U8 {
            q,
            relu,
            dst: &mut [],
        };
        for (i, (&g, &a)) in got.iter().zip(&acc).enumerate() {
            let oc = i / (oh * ow);
            let stage = OutStage::new(&p, &probe, oc);
            assert_eq!(g, stage.u8(a), "case {case} {s:?} element {i}");
            let real = a as f64 * p.in_scale as f64 * ws[oc] as f64;
            let real = if relu { real.max(0.0) } else { real };
            let back = (g as i32 - q.zero_point) as f64 * q.scale as f64;
            if g > 0 && g < 255 {
                assert!(
                    (back - real).abs() <= q.scale as f64 * 0.5001,
                    "{real} -> {g}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 300);
}

#[test]
fn qadd_and_rescale_stay_within_half_a_step() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for case in 0..200 {
        let qa = QParams {
            scale: rng.random_range(0.01..1.0),
            zero_point: rng.random_range(0..=255),
        };
        let qb = QParams {
            scale: rng.random_range(0.01..1.0),
            zero_point: rng.random_range(0..=255),
        };
        let qy = QParams {
            scale: rng.random_range(0.02..2.0),
            zero_point: rng.random_range(0..=255),
        };
        let relu = case % 2 == 1;
        let p = QAddParams::new(qa, qb, qy, relu).unwrap();
        let a = rand_u8(&mut rng, 257);
        let b = rand_u8(&mut rng, 257);
        let mut y = vec![0u8; 257];
        generic_i8::qadd(&a, &b, &p, &mut y);
        for i in 0..257 {
            let mut real = dequantize_one(a[i], qa) as f64 + dequantize_one(b[i], qb) as f64;
            if relu {
                real = real.max(0.0);
            }
            let want = (real / qy.scale as f64 + qy.zero_point as f64)
                .round()
                .clamp(0.0, 255.0);
            assert!(
                (y[i] as f64 - want).abs() <= 1.0,
                "add {i}: {} vs {want}",
                y[i]
            );
            if y[i] > 0 && y[i] < 255 {
                let back = dequantize_one(y[i], qy) as f64;
                assert!((back - real).abs() <= qy.scale as f64 * 0.5 + 1e-3 * qy.scale as f64);
            }
        }
        let r = QRescale::new(qa, qy).unwrap();
        let mut z = vec![0u8; 257];
        generic_i8::qrescale(&a, &r, &mut z);
        for i in 0..257 {
            let real = dequantize_one(a[i], qa) as f64;
            if z[i] > 0 && z[i] < 255 {
                let back = dequantize_one(z[i], qy) as f64;
                assert!((back - real).abs() <= qy.scale as f64 * 0.5 + 1e-3 * qy.scale as f64);
            }
        }
    }
    // Scale ratios outside the fixed-point range are refused.
    let tiny = QParams {
        scale: 1e-6,
        zero_point: 0,
    };
    let one = QParams {
        scale: 1.0,
        zero_point: 0,
    };
    assert!(QAddParams::new(one, one, tiny, false).is_none());
}

#[test]
fn f16_widening_is_exact_for_every_half() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let mut got = vec![0f32; all.len()];
    generic::f16_to_f32(&all, &mut got);
    let mut dispatched = vec![0f32; all.len()];
    (rawnr_kernels::Kernels::best().f16_to_f32)(&all, &mut dispatched);
    for (i, &h) in all.iter().enumerate() {
        let want = half::f16::from_bits(h).to_f32();
        if want.is_nan() {
            assert!(got[i].is_nan() && dispatched[i].is_nan(), "{h:#06x}");
        } else {
            assert_eq!(got[i].to_bits(), want.to_bits(), "{h:#06x}");
            assert_eq!(dispatched[i].to_bits(), want.to_bits(), "{h:#06x}");
        }
    }
}
