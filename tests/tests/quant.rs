//! Post-training quantization end to end: f16 and int8 models made by `rawnr-quant` run in the
//! engine, tile exactly, agree with the scalar reference kernels bit for bit, stay close to the
//! f32 model, and PMRID in int8 still denoises real raw data.

use rand::SeedableRng;
use rawnr_core::format::{DType, Model, ValueType};
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, TileOptions};
use rawnr_engine::graph::Engine;
use rawnr_kernels::Kernels;
use rawnr_quality::CleanFrame;
use rawnr_quant::{calibrate_frame, quantize_int8, to_f16, Calibration, QuantOptions};
use rawnr_tests::*;

fn parse(words: &[u32], len: usize) -> Model<'_> {
    Model::parse(as_bytes(words, len)).expect("valid model")
}

fn denoise(
    m: Model<'_>,
    kernels: Kernels,
    f: &CleanFrame,
    noisy: &[u16],
    opts: &TileOptions,
) -> Vec<u16> {
    let d = Denoiser::new(Engine::with_kernels(m, kernels));
    let mut out = vec![0u16; noisy.len()];
    d.denoise(
        noisy,
        &f.layout,
        &mut out,
        &f.layout,
        &f.levels,
        SYNTHETIC_NOISE,
        &DenoiseOptions::tiles(*opts, 2),
    )
    .expect("denoise");
    out
}

fn int8_of(f32_bytes: &[u8], frames: &[(&CleanFrame, Vec<u16>)]) -> Vec<u8> {
    let words = aligned(f32_bytes);
    let m = parse(&words, f32_bytes.len());
    let mut cal = Calibration::new(m.n_values());
    for (f, noisy) in frames {
        calibrate_frame(
            m,
            noisy,
            &f.layout,
            &f.levels,
            SYNTHETIC_NOISE,
            &TileOptions::default(),
            &mut cal,
        )
        .expect("calibration");
    }
    quantize_int8(&m, &cal, &QuantOptions::default()).expect("quantize")
}

#[test]
fn f16_model_equals_f32_model_with_rounded_weights() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(41);
    let bytes = random_model(&mut rng);
    let words = aligned(&bytes);
    let m = parse(&words, bytes.len());
    let h = to_f16(&m).unwrap();
    let hw = aligned(&h);
    let hm = parse(&hw, h.len());
    assert_eq!(hm.version(), 2);
    assert!((0..hm.n_tensors()).any(|t| hm.tensor(t).dtype == DType::F16));
    // The same graph with f32 weights rounded through f16: widening is exact, so bit-equal.
    let mut rounded = bytes.clone();
    for t in 0..m.n_tensors() {
        let d = m.tensor(t);
        if d.rank == 1 {
            continue; // biases stay f32
        }
        for j in 0..d.elements() as usize {
            let at = d.offset as usize + 4 * j;
            let x = f32::from_le_bytes(rounded[at..at + 4].try_into().unwrap());
            let r = half::f16::from_f32(x).to_f32();
            rounded[at..at + 4].copy_from_slice(&r.to_le_bytes());
        }
    }
    let crc = rawnr_core::crc32::crc32(&rounded[64..]);
    rounded[rawnr_core::format::header::CRC..][..4].copy_from_slice(&crc.to_le_bytes());
    let rw = aligned(&rounded);
    let rm = parse(&rw, rounded.len());
    let f = synthetic_frame(90, 70);
    let noisy = f.noisy_raw(&SYNTHETIC_NOISE.into(), &mut rng);
    let opts = TileOptions {
        tile: 32,
        halo: None,
    };
    let a = denoise(hm, Kernels::best(), &f, &noisy, &opts);
    let b = denoise(rm, Kernels::best(), &f, &noisy, &opts);
    assert_eq!(a, b, "f16 model differs from f32 with f16-rounded weights");
    let c = denoise(m, Kernels::best(), &f, &noisy, &opts);
    assert_ne!(
        a, c,
        "rounding weights to f16 changed nothing: test is vacuous"
    );
}

#[test]
fn int8_model_tiles_exactly_and_matches_the_reference_kernels() {
    for seed in 0..3u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(50 + seed);
        let bytes = random_model(&mut rng);
        let f = synthetic_frame(96 + seed as usize * 14, 80 + seed as usize * 6);
        let calib = f.noisy_raw(&SYNTHETIC_NOISE.into(), &mut rng);
        let q = int8_of(&bytes, &[(&f, calib)]);
        let qw = aligned(&q);
        let qm = parse(&qw, q.len());
        assert_eq!(qm.version(), 2);
        let u8_values = (0..qm.n_values())
            .filter(|&v| matches!(qm.value_type(v), ValueType::U8(_)))
            .count();
        assert!(u8_values > 5, "only {u8_values} u8 values");
        let noisy = f.noisy_raw(&SYNTHETIC_NOISE.into(), &mut rng);
        let whole = denoise(qm, Kernels::best(), &f, &noisy, &TileOptions::WHOLE_FRAME);
        let tiled = denoise(
            qm,
            Kernels::best(),
            &f,
            &noisy,
            &TileOptions {
                tile: 32,
                halo: None,
            },
        );
        assert_eq!(
            whole, tiled,
            "seed {seed}: tiled int8 output differs from whole frame"
        );
        let reference = denoise(
            qm,
            Kernels::reference(),
            &f,
            &noisy,
            &TileOptions {
                tile: 32,
                halo: None,
            },
        );
        assert_eq!(
            tiled, reference,
            "seed {seed}: SIMD int8 kernels differ from the reference"
        );
        // Close to the f32 model (quantization error only).
        let fw = aligned(&bytes);
        let fm = parse(&fw, bytes.len());
        let f32_out = denoise(fm, Kernels::best(), &f, &noisy, &TileOptions::WHOLE_FRAME);
        let norm =
            |v: &[u16]| -> Vec<f64> { v.iter().map(|&x| (x as f64 - 64.0) / 4031.0).collect() };
        let p = psnr(&norm(&f32_out), &norm(&whole), 1.0);
        println!("seed {seed}: int8 vs f32 output PSNR {p:.1} dB");
        assert!(
            p > 30.0,
            "seed {seed}: int8 output too far from f32 ({p:.1} dB)"
        );
    }
}

#[test]
fn hostile_edits_of_an_int8_model_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(60);
    let bytes = random_model(&mut rng);
    let f = synthetic_frame(64, 64);
    let calib = f.noisy_raw(&SYNTHETIC_NOISE.into(), &mut rng);
    let q = int8_of(&bytes, &[(&f, calib)]);
    let tables_end = {
        let w = aligned(&q);
        let m = parse(&w, q.len());
        (64 + 256 + m.n_values() * 16 + 64 * (m.n_tensors() + m.n_nodes())).min(q.len())
    };
    let small = synthetic_frame(20, 14);
    let input = small.noisy_raw(&SYNTHETIC_NOISE.into(), &mut rng);
    let mut rejected = 0;
    for i in 0..2000 {
        let mut b = q.clone();
        for _ in 0..1 + i % 3 {
            let at = rand::Rng::random_range(&mut rng, 8..tables_end);
            b[at] = if i % 4 == 0 {
                0xFF
            } else {
                rand::Rng::random(&mut rng)
            };
        }
        let crc = rawnr_core::crc32::crc32(&b[64..]);
        b[rawnr_core::format::header::CRC..][..4].copy_from_slice(&crc.to_le_bytes());
        let w = aligned(&b);
        match Model::parse(as_bytes(&w, b.len())) {
            Err(_) => rejected += 1,
            Ok(m) => {
                let d = Denoiser::new(Engine::new(m));
                let mut out = vec![0u16; input.len()];
                let _ = d.denoise(
                    &input,
                    &small.layout,
                    &mut out,
                    &small.layout,
                    &small.levels,
                    SYNTHETIC_NOISE,
                    &DenoiseOptions::tiles(TileOptions::default(), 1),
                );
            }
        }
    }
    assert!(
        rejected > 500,
        "only {rejected} of 2000 hostile edits rejected"
    );
}

/// One small model per op kind around the int8 machinery (input -> conv -> op under test ->
/// conv -> global residual), so a wrong int8 path shows up as a large int8/f32 difference.
fn op_model(kind: usize, rng: &mut impl rand::Rng) -> Vec<u8> {
    use rawnr_core::builder::{ConvSpec, ModelBuilder};
    use rawnr_core::format::Activation;
    let mut b = ModelBuilder::new("op model");
    let mut w = |n: usize, fan_in: usize| -> Vec<f32> {
        let s = (1.0 / fan_in as f32).sqrt();
        (0..n).map(|_| rng.random_range(-s..s)).collect()
    };
    let x = b.input();
    let a = b.conv2d(
        "a",
        x,
        &w(8 * 4 * 9, 36),
        [8, 4, 3, 3],
        Some(&w(8, 4)),
        ConvSpec::same(3).act(Activation::Relu),
    );
    let (y, c) = match kind {
        0 => (b.concat(&[a, a]), 16),
        1 => {
            let t = b.conv2d("t", a, &w(8 * 8, 8), [8, 8, 1, 1], None, ConvSpec::same(1));
            (b.concat(&[a, t]), 16)
        }
        2 => {
            let u = b.pixel_unshuffle(a, 2);
            (b.pixel_shuffle(u, 2), 8)
        }
        3 => {
            let t = b.conv2d("t", a, &w(8 * 8, 8), [8, 8, 1, 1], None, ConvSpec::same(1));
            (b.relu(t), 8)
        }
        4 => {
            let t = b.conv2d("t", a, &w(8 * 8, 8), [8, 8, 1, 1], None, ConvSpec::same(1));
            (b.leaky_relu(t, 0.1), 8)
        }
        5 => (
            b.conv2d(
                "g",
                a,
                &w(8 * 2 * 9, 18),
                [8, 2, 3, 3],
                Some(&w(8, 1)),
                ConvSpec::same(3).groups(4),
            ),
            8,
        ),
        6 => {
            let d = b.conv2d(
                "d",
                a,
                &w(8 * 25, 25),
                [8, 1, 5, 5],
                None,
                ConvSpec::same(5).stride(2).groups(8),
            );
            let spec = ConvSpec {
                stride: [2, 2],
                pad: [0; 4],
                groups: 1,
                activation: Activation::None,
            };
            (
                b.conv_transpose2d("u", d, &w(8 * 8 * 4, 8), [8, 8, 2, 2], Some(&w(8, 1)), spec),
                8,
            )
        }
        9 => (
            b.conv2d("t", a, &w(8 * 8, 8), [8, 8, 1, 1], None, ConvSpec::same(1)),
            8,
        ),
        10 => (
            b.conv2d(
                "t",
                a,
                &w(8 * 8, 8),
                [8, 8, 1, 1],
                None,
                ConvSpec::same(1).act(Activation::Relu),
            ),
            8,
        ),
        7 => {
            let t = b.conv2d(
                "t",
                a,
                &w(8 * 8, 8),
                [8, 8, 1, 1],
                None,
                ConvSpec::same(1).act(Activation::LeakyRelu(0.2)),
            );
            (b.add(t, a, Activation::Relu), 8)
        }
        _ => {
            let t = b.conv2d("t", a, &w(8 * 8, 8), [8, 8, 1, 1], None, ConvSpec::same(1));
            (b.add(t, a, Activation::LeakyRelu(0.3)), 8)
        }
    };
    let o = b.conv2d(
        "o",
        y,
        &w(4 * c * 9, c * 9),
        [4, c, 3, 3],
        Some(&w(4, 1)),
        ConvSpec::same(3),
    );
    let out = b.add(o, x, Activation::None);
    b.finish(out).expect("valid op model")
}

#[test]
fn every_int8_op_path_stays_close_to_f32() {
    for kind in [9, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(70 + kind as u64);
        let bytes = op_model(kind, &mut rng);
        let f = synthetic_frame(80, 64);
        let calib = f.noisy_raw(&SYNTHETIC_NOISE.into(), &mut rng);
        let q = int8_of(&bytes, &[(&f, calib)]);
        let (qw, fw) = (aligned(&q), aligned(&bytes));
        let (qm, fm) = (parse(&qw, q.len()), parse(&fw, bytes.len()));
        let noisy = f.noisy_raw(&SYNTHETIC_NOISE.into(), &mut rng);
        let a = denoise(qm, Kernels::best(), &f, &noisy, &TileOptions::WHOLE_FRAME);
        let b = denoise(fm, Kernels::best(), &f, &noisy, &TileOptions::WHOLE_FRAME);
        let norm =
            |v: &[u16]| -> Vec<f64> { v.iter().map(|&x| (x as f64 - 64.0) / 4031.0).collect() };
        let p = psnr(&norm(&b), &norm(&a), 1.0);
        println!("op model {kind}: int8 vs f32 PSNR {p:.1} dB");
        if std::env::var("DBG").is_ok() {
            let r = denoise(
                qm,
                Kernels::reference(),
                &f,
                &noisy,
                &TileOptions::WHOLE_FRAME,
            );
            println!(
                "  reference kernels: PSNR {:.1} dB, equal to SIMD: {}",
                psnr(&norm(&b), &norm(&r), 1.0),
                r == a
            );
            for v in 0..qm.n_values() {
                let n = if v > 0 { Some(qm.node(v - 1)) } else { None };
                println!(
                    "  v{v} {:?} {:?}",
                    qm.value_type(v),
                    n.map(|n| (n.op, n.inputs, n.activation))
                );
            }
        }
        assert!(
            p > 40.0,
            "op model {kind}: int8 too far from f32 ({p:.1} dB)"
        );
    }
}
