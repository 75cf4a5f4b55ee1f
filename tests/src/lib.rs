//! Helpers shared by rawnr's cross-crate tests: locating `../shared/data`, loading models into
//! aligned memory, synthetic noise, image metrics and random test models.

use std::path::PathBuf;

use rand::Rng;
use rawnr_core::builder::{ConvSpec, ModelBuilder, ValueId};
use rawnr_core::format::{Activation, NoiseConditioning};
use rawnr_core::noise::NoiseCurves;

/// Repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared real-data folder (`../shared/data` beside the repository, or `RAWNR_SHARED_DATA`).
pub fn shared_data() -> PathBuf {
    std::env::var_os("RAWNR_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"))
}

/// Copies bytes into a 4-byte aligned buffer (as an mmap or a C caller would provide).
pub fn aligned(bytes: &[u8]) -> Vec<u32> {
    rawnr_core::builder::aligned_words(bytes)
}

/// Views aligned words as the first `len` bytes.
pub fn as_bytes(words: &[u32], len: usize) -> &[u8] {
    let bytes: &[u8] = bytemuck::cast_slice(words);
    &bytes[..len]
}

/// The Sony IMX766 noise profile (HuiiJi/AISP YAML in the shared data, imported as
/// `rawnr-calib import --yaml` does).
pub fn imx766_profile() -> rawnr_io::profile::NoiseProfile {
    rawnr_calib::import::from_sensor_yaml(
        &shared_data().join("HuiiJi_AISP/sensor_profile_IMX766.yaml"),
        "Sony IMX766",
    )
    .expect("IMX766 profile")
    .noise
}

/// darktable's OnePlus A6003 noise profile (distinct R, G, B parameters), imported as
/// `rawnr-calib import --darktable --maker oneplus --model "ONEPLUS A6003"` does.
pub fn oneplus_profile() -> rawnr_io::profile::NoiseProfile {
    rawnr_calib::import::from_darktable(
        &shared_data().join("darktable/noiseprofiles.json"),
        "oneplus",
        "ONEPLUS A6003",
    )
    .expect("darktable profile")
    .noise
}

/// Synthetic noise and PSNR, defined once in `rawnr-quality`.
pub use rawnr_quality::{add_noise, psnr};

/// A smooth synthetic raw frame (gradients and edges), 12-bit, RGGB: the quantization and
/// ONNX tests' calibration and test frame.
pub fn synthetic_frame(w: usize, h: usize) -> rawnr_quality::CleanFrame {
    let data: Vec<u16> = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f64, (i / w) as f64);
            let v =
                0.3 + 0.25 * (x / 17.0).sin() * (y / 23.0).cos() + if x > y { 0.2 } else { 0.0 };
            (64.0 + v * 4000.0).clamp(0.0, 4095.0) as u16
        })
        .collect();
    rawnr_quality::CleanFrame::from_raw(
        &data,
        &rawnr_core::bayer::FrameLayout::new(w, h, rawnr_core::bayer::CfaPhase::Rggb),
        &rawnr_core::bayer::Levels::uniform(64.0, 4095.0),
        (0, 0, w, h),
    )
}

/// The noise of [`synthetic_frame`]'s tests (normalised units).
pub const SYNTHETIC_NOISE: rawnr_core::noise::NoiseParams = rawnr_core::noise::NoiseParams {
    k: 2e-3,
    sigma2: 1e-5,
};

/// A random small denoiser-shaped model exercising every op: strided and depthwise convs,
/// transposed conv, add, concat, pixel (un)shuffle, ReLU and LeakyReLU, global residual.
/// Its halo is its receptive field, so tiling must be exact.
pub fn random_model(rng: &mut impl Rng) -> Vec<u8> {
    random_model_in(ModelBuilder::new("random test model"), rng)
}

/// The noise profile of [`random_ksigma_model`]: k-sigma anchor ISO 1600, where
/// `k = 1.7e-3` (a frame with [`SYNTHETIC_NOISE`] has transform gain 0.85).
pub const KSIGMA_TEST_CURVES: NoiseCurves = NoiseCurves {
    k: [1e-6, 1e-4],
    sigma2: [0.0, 1e-9, 1e-6],
};

/// [`random_model`] with k-sigma noise conditioning ([`KSIGMA_TEST_CURVES`]), so its input
/// gain follows the frame's noise (the key of noise bands).
pub fn random_ksigma_model(rng: &mut impl Rng) -> Vec<u8> {
    let mut b = ModelBuilder::new("random k-sigma test model");
    b.noise(
        NoiseConditioning::KSigma { anchor_iso: 1600.0 },
        KSIGMA_TEST_CURVES,
    );
    random_model_in(b, rng)
}

fn random_model_in(mut b: ModelBuilder, rng: &mut impl Rng) -> Vec<u8> {
    let mut w = |n: usize, fan_in: usize| -> Vec<f32> {
        let s = (2.0 / fan_in as f32).sqrt();
        (0..n).map(|_| rng.random_range(-s..s)).collect()
    };
    let c1 = 4 + 2 * (w(1, 1)[0].abs() * 3.0) as usize; // 4..10
    let x = b.input();
    let a = b.conv2d(
        "a",
        x,
        &w(c1 * 4 * 9, 36),
        [c1, 4, 3, 3],
        Some(&w(c1, 4)),
        ConvSpec::same(3).act(Activation::Relu),
    );
    // Strided depthwise 5x5 then pointwise with LeakyReLU.
    let d = b.conv2d(
        "dw",
        a,
        &w(c1 * 25, 25),
        [c1, 1, 5, 5],
        None,
        ConvSpec::same(5).stride(2).groups(c1),
    );
    let c2 = 2 * c1;
    let p = b.conv2d(
        "pw",
        d,
        &w(c2 * c1, c1),
        [c2, c1, 1, 1],
        Some(&w(c2, 1)),
        ConvSpec::same(1).act(Activation::LeakyRelu(0.2)),
    );
    // Grouped 3x3 at the low resolution.
    let g = b.conv2d(
        "grp",
        p,
        &w(c2 * 2 * 9, 18),
        [c2, 2, 3, 3],
        Some(&w(c2, 1)),
        ConvSpec::same(3).groups(c1),
    );
    let g = b.leaky_relu(g, 0.1);
    let spec = ConvSpec {
        stride: [2, 2],
        pad: [0; 4],
        groups: 1,
        activation: Activation::None,
    };
    let up = b.conv_transpose2d(
        "up",
        g,
        &w(c2 * c1 * 4, c2),
        [c2, c1, 2, 2],
        Some(&w(c1, 1)),
        spec,
    );
    let s = b.add(up, a, Activation::Relu);
    let cat = b.concat(&[s, a]);
    // Space-to-depth, 3x3 conv, depth-to-space.
    let un = b.pixel_unshuffle(cat, 2);
    let c3 = 2 * c1 * 4;
    let m = b.conv2d(
        "mid",
        un,
        &w(c3 * c3 * 9 / 4, c3 * 9 / 4),
        [c3, c3 / 4, 3, 3],
        None,
        ConvSpec::same(3).groups(4),
    );
    let m = b.relu(m);
    let sh = b.pixel_shuffle(m, 2);
    let o = b.conv2d(
        "out",
        sh,
        &w(4 * 2 * c1 * 9, 2 * c1 * 9),
        [4, 2 * c1, 3, 3],
        Some(&w(4, 1)),
        ConvSpec::same(3),
    );
    let out: ValueId = b.add(x, o, Activation::None);
    b.input_scale(1.0);
    b.finish(out).expect("random model is valid")
}
