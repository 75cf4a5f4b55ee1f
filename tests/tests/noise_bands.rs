//! Noise bands (format version 3): an int8 model carrying one set of activation ranges and
//! biases per range of the noise transform's gain. Each band of a banded model runs exactly
//! as the int8 model quantized for that band alone, the runtime picks the band from the
//! frame's noise (tiles, stripes and the whole frame agree), and corrupt band tables are
//! refused with an error.

use rand::SeedableRng;
use rawnr_core::builder::join_noise_bands;
use rawnr_core::format::{header, DType, Model, OpKind, NOISE_BAND_RECORD_LEN, NO_TENSOR};
use rawnr_core::noise::NoiseParams;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, StripeOptions, TileOptions};
use rawnr_engine::graph::Engine;
use rawnr_quality::CleanFrame;
use rawnr_quant::{
    calibrate_frame, quantize_int8, quantize_int8_banded, Calibration, QuantOptions,
};
use rawnr_tests::*;

/// Noise of a frame 4.25 times less noisy than the k-sigma anchor (gain 4.25).
const LOW_NOISE: NoiseParams = NoiseParams {
    k: 4e-4,
    sigma2: 1e-6,
};

fn parse(words: &[u32], len: usize) -> Result<Model<'_>, rawnr_core::Error> {
    Model::parse(as_bytes(words, len))
}

fn calibration(m: &Model<'_>, f: &CleanFrame, noise: NoiseParams, seed: u64) -> Calibration {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let noisy = f.noisy_raw(&noise.into(), &mut rng);
    let mut cal = Calibration::new(m.n_values());
    calibrate_frame(
        *m,
        &noisy,
        &f.layout,
        &f.levels,
        noise,
        &TileOptions::default(),
        &mut cal,
    )
    .expect("calibration");
    cal
}

fn denoise(
    m: Model<'_>,
    f: &CleanFrame,
    noisy: &[u16],
    noise: NoiseParams,
    tile: usize,
) -> Vec<u16> {
    let d = Denoiser::new(Engine::new(m));
    let mut out = vec![0u16; noisy.len()];
    let opts = TileOptions { tile, halo: None };
    d.denoise(
        noisy,
        &f.layout,
        &mut out,
        &f.layout,
        &f.levels,
        noise,
        &DenoiseOptions::tiles(opts, 2),
    )
    .expect("denoise");
    out
}

fn streamed(m: Model<'_>, f: &CleanFrame, noisy: &[u16], noise: NoiseParams) -> Vec<u16> {
    let d = Denoiser::new(Engine::new(m));
    let mut out = vec![0u16; noisy.len()];
    let opts = StripeOptions {
        width: 24,
        halo: None,
        step: 3,
        min_rows: 2,
    };
    d.denoise(
        noisy,
        &f.layout,
        &mut out,
        &f.layout,
        &f.levels,
        noise,
        &DenoiseOptions::stripes(opts, 2),
    )
    .expect("streamed denoise");
    out
}

/// A random k-sigma model, its int8 models calibrated at the synthetic noise (gain 0.85) and
/// at [`LOW_NOISE`] (gain 4.25), and both joined as bands from gain 0 and from gain 2.
struct Banded {
    frame: CleanFrame,
    single: [Vec<u8>; 2],
    banded: Vec<u8>,
}

fn banded(seed: u64) -> Banded {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let bytes = random_ksigma_model(&mut rng);
    let words = aligned(&bytes);
    let m = parse(&words, bytes.len()).expect("valid f32 model");
    let frame = synthetic_frame(84, 66);
    let cal = [SYNTHETIC_NOISE, LOW_NOISE].map(|n| calibration(&m, &frame, n, seed));
    let opts = QuantOptions::default();
    let single = [0, 1].map(|i| quantize_int8(&m, &cal[i], &opts).expect("quantize"));
    let [a, b] = cal;
    let banded = quantize_int8_banded(&m, &[(0.0, a), (2.0, b)], &opts).expect("banded");
    Banded {
        frame,
        single,
        banded,
    }
}

#[test]
fn each_band_runs_as_the_int8_model_of_its_noise_level() {
    let t = banded(61);
    let bw = aligned(&t.banded);
    let bm = parse(&bw, t.banded.len()).expect("banded model parses");
    assert_eq!(bm.version(), 3);
    assert_eq!(bm.noise_bands(), 2);
    assert_eq!(bm.noise_band_min_gain(1), 2.0);
    for (gain, band) in [(0.0, 0), (1.99, 0), (2.0, 1), (1e9, 1), (f32::NAN, 0)] {
        assert_eq!(bm.noise_band_for_gain(gain), band, "gain {gain}");
    }
    let d = Denoiser::new(Engine::new(bm));
    let mut rng = rand::rngs::StdRng::seed_from_u64(62);
    let mut outputs = Vec::new();
    for (band, noise) in [SYNTHETIC_NOISE, LOW_NOISE].into_iter().enumerate() {
        assert_eq!(d.noise_band(&noise.into()).unwrap(), band);
        let sw = aligned(&t.single[band]);
        let single = parse(&sw, t.single[band].len()).unwrap();
        let f = &t.frame;
        let noisy = f.noisy_raw(&noise.into(), &mut rng);
        let whole = denoise(bm, f, &noisy, noise, usize::MAX / 4);
        assert_eq!(
            whole,
            denoise(single, f, &noisy, noise, usize::MAX / 4),
            "band {band} differs from its own int8 model"
        );
        assert_eq!(
            whole,
            denoise(bm, f, &noisy, noise, 16),
            "band {band}: tiles"
        );
        assert_eq!(
            whole,
            streamed(bm, f, &noisy, noise),
            "band {band}: stripes"
        );
        // The other band's ranges give another result: the band choice is not vacuous.
        let ow = aligned(&t.single[1 - band]);
        let other = parse(&ow, t.single[1 - band].len()).unwrap();
        assert_ne!(whole, denoise(other, f, &noisy, noise, usize::MAX / 4));
        outputs.push(whole);
    }
}

#[test]
fn join_noise_bands_refuses_models_that_differ() {
    let t = banded(63);
    let [aw, bw] = [&t.single[0], &t.single[1]].map(|b| aligned(b));
    let a = parse(&aw, t.single[0].len()).unwrap();
    let b = parse(&bw, t.single[1].len()).unwrap();
    assert!(join_noise_bands(&a, &[(1.0, b)]).is_ok());
    assert!(join_noise_bands(&a, &[]).is_err(), "no band");
    assert!(
        join_noise_bands(&a, &[(0.0, b)]).is_err(),
        "gain 0 above band 0"
    );
    assert!(join_noise_bands(&a, &[(f32::NAN, b)]).is_err(), "NaN gain");
    assert!(
        join_noise_bands(&a, &[(2.0, b), (1.0, b)]).is_err(),
        "decreasing gains"
    );
    let many: Vec<_> = (1..=32).map(|g| (g as f32, b)).collect();
    assert!(join_noise_bands(&a, &many).is_err(), "33 bands");
    // Already banded.
    let kw = aligned(&t.banded);
    let k = parse(&kw, t.banded.len()).unwrap();
    assert!(join_noise_bands(&k, &[(5.0, b)]).is_err());
    assert!(join_noise_bands(&a, &[(5.0, k)]).is_err());
    // Another model's weights.
    let other = banded(64);
    let ow = aligned(&other.single[1]);
    let o = parse(&ow, other.single[1].len()).unwrap();
    assert!(join_noise_bands(&a, &[(1.0, o)]).is_err());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// `bytes` with `edit` applied and the CRC fixed up, parsed.
fn parses_after(bytes: &[u8], edit: impl Fn(&mut Vec<u8>)) -> Result<(), rawnr_core::Error> {
    let mut b = bytes.to_vec();
    edit(&mut b);
    let crc = rawnr_core::crc32::crc32(&b[64..]);
    b[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    let w = aligned(&b);
    parse(&w, b.len()).map(|_| ())
}

#[test]
fn corrupt_noise_band_tables_are_refused() {
    let t = banded(65);
    let bytes = &t.banded;
    assert!(parses_after(bytes, |_| {}).is_ok());
    let table = u32_at(bytes, header::BANDS_OFF) as usize;
    let record = |b: usize| table + 8 + b * NOISE_BAND_RECORD_LEN;
    let len = bytes.len() as u32;
    let put =
        |at: usize, v: u32| move |b: &mut Vec<u8>| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let quant = u32_at(bytes, record(1) + 4) as usize;
    let bias_index = u32_at(bytes, record(1) + 8) as usize;
    // The nodes with and without a band bias.
    let w = aligned(bytes);
    let m = parse(&w, bytes.len()).unwrap();
    let int8_bias = (0..m.n_nodes()).find(|&i| {
        let n = m.node(i);
        matches!(n.op, OpKind::Conv2d | OpKind::ConvTranspose2d)
            && n.bias != NO_TENSOR
            && m.tensor(n.weight as usize).dtype == DType::I8
    });
    let int8_bias = int8_bias.expect("an int8 convolution with a bias");
    let no_bias = (0..m.n_nodes())
        .find(|&i| u32_at(bytes, bias_index + 4 * i) == NO_TENSOR)
        .expect("a node without an int8 bias");
    let u8_value = (0..m.n_values())
        .find(|&v| matches!(m.value_type(v), rawnr_core::format::ValueType::U8(_)))
        .expect("a u8 value");
    // (what, byte offset, u32 written there)
    let cases: [(&str, usize, u32); 19] = [
        ("table past the file", header::BANDS_OFF, len),
        ("table in the header", header::BANDS_OFF, 16),
        ("table unaligned", header::BANDS_OFF, table as u32 + 2),
        ("one band", table, 1),
        ("33 bands", table, 33),
        ("huge count", table, u32::MAX),
        ("band 0 gain", record(0), 0.5f32.to_bits()),
        ("band 1 gain 0", record(1), 0),
        ("band 1 gain NaN", record(1), f32::NAN.to_bits()),
        ("band 0 tables", record(0) + 4, quant as u32),
        ("quant table past the file", record(1) + 4, len - 8),
        ("bias table past the file", record(1) + 8, len - 4),
        ("bias table unaligned", record(1) + 8, bias_index as u32 + 1),
        ("zero scale", quant + 8 * u8_value, 0),
        ("NaN scale", quant + 8 * u8_value, f32::NAN.to_bits()),
        ("zero point 300", quant + 8 * u8_value + 4, 300),
        ("missing bias", bias_index + 4 * int8_bias, NO_TENSOR),
        ("bias past the file", bias_index + 4 * int8_bias, len - 4),
        ("bias for a node without one", bias_index + 4 * no_bias, 64),
    ];
    for (what, at, v) in cases {
        assert!(
            parses_after(bytes, put(at, v)).is_err(),
            "{what} was accepted"
        );
    }
    // A cut file loses its band table.
    let cut = &bytes[..bytes.len() - 4];
    assert!(parses_after(cut, |b| {
        let l = b.len() as u64;
        b[header::FILE_LEN..header::FILE_LEN + 8].copy_from_slice(&l.to_le_bytes());
    })
    .is_err());
}
