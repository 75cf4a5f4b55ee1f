//! The x86-64 element-wise kernels of the int8 path equal their scalar references bit for bit,
//! special values (NaN, infinities, -0, huge) and every tail length included.
#![cfg(target_arch = "x86_64")]

use rand::{Rng, SeedableRng};
use rawnr_kernels::quant::{QAddParams, QParams};
use rawnr_kernels::x86_64::avx2_eltwise as k2;
use rawnr_kernels::x86_64::avx512_eltwise as k;
use rawnr_kernels::{generic, generic_i8, Act};

fn floats(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    let special = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        0.0,
        1e30,
        -1e30,
        0.5,
        -0.5,
        2.5,
    ];
    (0..n)
        .map(|i| {
            if i % 7 == 3 {
                special[rng.random_range(0..special.len())]
            } else {
                rng.random_range(-300.0..300.0)
            }
        })
        .collect()
}

fn same_bits(a: &[f32], b: &[f32], what: &str) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            "{what} {i}: {x} vs {y}"
        );
    }
}

#[test]
fn eltwise_kernels_equal_the_reference() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(81);
    for case in 0..300 {
        let n = if case < 70 {
            case
        } else {
            rng.random_range(0..3000)
        };
        let q = QParams {
            scale: [0.5, 1.0, 0.013, 3.7][case % 4],
            zero_point: [0, 255, 128, rng.random_range(0..=255)][case % 4],
        };
        let x = floats(&mut rng, n);
        let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
        generic_i8::quantize(&x, q, &mut a);
        k::quantize(&x, q, &mut b);
        assert_eq!(a, b, "quantize case {case}");
        k2::quantize(&x, q, &mut b);
        assert_eq!(a, b, "AVX2 quantize case {case}");
        let codes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        let (mut fa, mut fb) = (vec![0f32; n], vec![0f32; n]);
        generic_i8::dequantize(&codes, q, &mut fa);
        k::dequantize(&codes, q, &mut fb);
        same_bits(&fa, &fb, "dequantize");
        k2::dequantize(&codes, q, &mut fb);
        same_bits(&fa, &fb, "AVX2 dequantize");
        let qb = QParams {
            scale: rng.random_range(0.01..2.0),
            zero_point: rng.random_range(0..=255),
        };
        let qy = QParams {
            scale: rng.random_range(0.05..2.0),
            zero_point: rng.random_range(0..=255),
        };
        let p = QAddParams::new(q, qb, qy, case % 2 == 0).unwrap();
        let other: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        generic_i8::qadd(&codes, &other, &p, &mut a);
        k::qadd(&codes, &other, &p, &mut b);
        assert_eq!(a, b, "qadd case {case}");
        k2::qadd(&codes, &other, &p, &mut b);
        assert_eq!(a, b, "AVX2 qadd case {case}");
        // Extreme parameters: multipliers up to 2^31 - 1 (the exact 32-bit path takes them
        // below 2^30), odd zero points (the path's limits, and the 64-bit fallback outside
        // them).
        let zps = [0, 255, 128, -5, 300, 1 << 28, -(1 << 30)];
        let ms = [
            0,
            1,
            1023,
            1 << 20,
            (1 << 20) + 1023,
            i32::MAX,
            i32::MAX - 1024,
            1 << 30,
            (1 << 30) - 1,
            (1 << 15) - 1,
        ];
        let p = QAddParams {
            a_zero_point: zps[rng.random_range(0..3)],
            b_zero_point: if case % 5 == 0 {
                zps[rng.random_range(0..zps.len())]
            } else {
                rng.random_range(0..=255)
            },
            a_multiplier: ms[rng.random_range(0..ms.len())],
            b_multiplier: if case % 3 == 0 {
                ms[rng.random_range(0..ms.len())]
            } else {
                rng.random_range(0..i32::MAX)
            },
            out_zero_point: zps[rng.random_range(0..zps.len())],
            relu: case % 4 < 2,
        };
        generic_i8::qadd(&codes, &other, &p, &mut a);
        k::qadd(&codes, &other, &p, &mut b);
        assert_eq!(a, b, "qadd case {case} (extreme {p:?})");
        k2::qadd(&codes, &other, &p, &mut b);
        assert_eq!(a, b, "AVX2 qadd case {case} (extreme {p:?})");
        let y = floats(&mut rng, n);
        let act = [Act::None, Act::Relu, Act::LeakyRelu(0.1)][case % 3];
        generic::add(&x, &y, act, &mut fa);
        k::add(&x, &y, act, &mut fb);
        same_bits(&fa, &fb, "add");
        k2::add(&x, &y, act, &mut fb);
        same_bits(&fa, &fb, "AVX2 add");
    }
}
