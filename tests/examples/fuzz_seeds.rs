//! Writes seed inputs for the fuzz targets (`fuzz/`, `.ci/fuzz`) that the repository has no
//! files for: small random models exercising every op (`model_run`), int8 models with noise
//! bands (format version 3), the same models behind C ABI parameter blocks (`capi_run`, layout
//! in `fuzz/fuzz_targets/capi_run.rs`), and noise profiles (`profile_read`).
//!
//! `cargo run -p rawnr-tests --example fuzz_seeds -- fuzz/corpus`

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::SeedableRng;

/// Models written (each also behind one parameter block).
const MODELS: u32 = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: fuzz_seeds <corpus folder>")?;
    for target in ["model_run", "capi_run", "profile_read"] {
        std::fs::create_dir_all(root.join(target))?;
    }
    for i in 0..MODELS {
        let model = rawnr_tests::random_model(&mut StdRng::seed_from_u64(u64::from(i)));
        write(&root, "model_run", &format!("seed-random-{i}.rnm"), &model)?;
        let mut capi = capi_params(i).to_vec();
        capi.extend_from_slice(&model);
        write(&root, "capi_run", &format!("seed-random-{i}"), &capi)?;
    }
    // Int8 models with two noise bands (calibrated at two noise levels of a k-sigma model).
    for i in 0..2u32 {
        let model = banded_int8(u64::from(100 + i))?;
        write(&root, "model_run", &format!("seed-banded-{i}.rnm"), &model)?;
        let mut capi = capi_params(i).to_vec();
        capi.extend_from_slice(&model);
        write(&root, "capi_run", &format!("seed-banded-{i}"), &capi)?;
    }
    let pooled = r#""format": "rawnr-noise-profile", "version": 1, "sensor": "seed", "k": [1.0e-6, 2.0e-3], "sigma2": [1.0e-12, 1.0e-8, 1.0e-5]"#;
    let channels = r#""channels": {"r": {"k": [2.0e-6, 3.0e-3], "sigma2": [0.0, 2.0e-8, 2.0e-5]}, "g": {"k": [1.0e-6, 2.0e-3], "sigma2": [0.0, 1.0e-8, 1.0e-5]}, "b": {"k": [3.0e-6, 4.0e-3], "sigma2": [0.0, 3.0e-8, 3.0e-5]}}"#;
    write(
        &root,
        "profile_read",
        "seed-pooled.json",
        format!("{{{pooled}}}").as_bytes(),
    )?;
    write(
        &root,
        "profile_read",
        "seed-channels.json",
        format!("{{{pooled}, {channels}, \"black\": [64, 64, 64, 64], \"white\": 1023, \"cfa\": \"RGGB\"}}").as_bytes(),
    )?;
    Ok(())
}

/// A random k-sigma model quantized to int8 with two noise bands (gain from 0 and from 2).
fn banded_int8(seed: u64) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    use rawnr_core::noise::NoiseParams;
    use rawnr_engine::denoiser::TileOptions;
    use rawnr_quant::{calibrate_frame, quantize_int8_banded, Calibration, QuantOptions};
    let mut rng = StdRng::seed_from_u64(seed);
    let bytes = rawnr_tests::random_ksigma_model(&mut rng);
    let words = rawnr_tests::aligned(&bytes);
    let m = rawnr_core::format::Model::parse(rawnr_tests::as_bytes(&words, bytes.len()))?;
    let frame = rawnr_tests::synthetic_frame(48, 40);
    let mut bands = Vec::new();
    for (gain, k) in [(0.0, 2e-3), (2.0, 4e-4)] {
        let noise = NoiseParams { k, sigma2: 1e-6 };
        let noisy = frame.noisy_raw(&noise.into(), &mut rng);
        let mut cal = Calibration::new(m.n_values());
        let tiles = TileOptions::default();
        calibrate_frame(
            m,
            &noisy,
            &frame.layout,
            &frame.levels,
            noise,
            &tiles,
            &mut cal,
        )?;
        bands.push((gain, cal));
    }
    Ok(quantize_int8_banded(&m, &bands, &QuantOptions::default())?)
}

/// A `capi_run` parameter block: frames of 20x14 to 41x21 pixels, every CFA phase, each
/// combination of the flags (caller storage, scratch one byte short, stripe), noise from the
/// model's profile or given, whole-frame and 16-pixel tiles, detail restoration on in some.
fn capi_params(i: u32) -> [u8; 48] {
    let mut b = [0u8; 48];
    let mut put = |o: usize, v: [u8; 4]| b[o..o + 4].copy_from_slice(&v);
    put(0, (20 + 3 * i).to_le_bytes());
    put(4, (14 + i).to_le_bytes());
    put(12, 64f32.to_le_bytes());
    put(16, 1023f32.to_le_bytes());
    put(
        20,
        if i.is_multiple_of(2) { 1e-3f32 } else { 0.0 }.to_le_bytes(),
    );
    put(24, 1e-6f32.to_le_bytes());
    put(28, 1600f32.to_le_bytes());
    put(
        32,
        if i.is_multiple_of(3) { 0u32 } else { 16 }.to_le_bytes(),
    );
    put(36, (-1i32).to_le_bytes());
    put(44, (0x9e37_79b9u32 ^ i).to_le_bytes());
    b[8] = (i % 4) as u8;
    b[9] = (i % 8) as u8;
    b[10] = (1 + i * 5 % 17) as u8;
    b[11] = (i % 3) as u8;
    b[40] = (i % 2) as u8;
    b[41] = u8::from(i % 4 == 3);
    b
}

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(root.join(target).join(name), bytes)
}
