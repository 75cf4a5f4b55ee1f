//! The quality suite's bounds, on real clean raw with synthetic noise from several sensors'
//! profiles (`denoise-raw eval` gives the full tables; `models/pmrid.md` has them): the input
//! convention PMRID declares holds its measured gains; flat patches keep their colour.

use rand::SeedableRng;
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::{InputConvention, Model, NoiseChannels};
use rawnr_core::noise::ChannelNoise;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, TileOptions};
use rawnr_engine::detail::{restore_alloc, DetailRestore};
use rawnr_engine::graph::Engine;
use rawnr_io::profile::NoiseProfile;
use rawnr_quality::{psnr, CleanFrame};
use rawnr_tests::*;

fn pmrid() -> Vec<u32> {
    aligned(&std::fs::read(repo_root().join("models/pmrid.rnm")).expect("models/pmrid.rnm"))
}

fn model(words: &[u32]) -> Model<'_> {
    let bytes = as_bytes(words, words.len() * 4);
    Model::parse(bytes).expect("model parses")
}

/// PSNR of `d` on `clean` with noise `noise` (seeded).
fn denoised_psnr(d: &Denoiser<'_>, clean: &CleanFrame, noise: ChannelNoise, seed: u64) -> f64 {
    let noisy = clean.noisy_raw(&noise, &mut rand::rngs::StdRng::seed_from_u64(seed));
    let mut out = vec![0u16; noisy.len()];
    d.denoise(
        &noisy,
        &clean.layout,
        &mut out,
        &clean.layout,
        &clean.levels,
        noise,
        &DenoiseOptions::tiles(TileOptions::default(), 2),
    )
    .expect("denoises");
    psnr(&clean.data, &clean.normalise(&out), 1.0)
}

fn centre(layout: &FrameLayout, w: usize, h: usize) -> (usize, usize, usize, usize) {
    (
        ((layout.width - w) / 2) & !1,
        ((layout.height - h) / 2) & !1,
        w,
        h,
    )
}

#[test]
fn pooled_noise_beats_per_plane_with_a_per_channel_profile() {
    // darktable's OnePlus A6003 profile: distinct R, G, B parameters.
    let p = oneplus_profile();
    let pgm = rawnr_io::pgm::read(&shared_data().join("Halide/bayer_2592_304.pgm")).unwrap();
    let layout = FrameLayout::new(pgm.width, pgm.height, CfaPhase::Grbg);
    let levels = Levels::uniform(25.0, 1023.0);
    let clean = CleanFrame::from_raw(&pgm.data, &layout, &levels, centre(&layout, 1024, 304));
    let words = pmrid();
    for iso in [1600.0, 6400.0] {
        let noise = p.channel_noise_at(iso).unwrap();
        let run = |nc| {
            let d =
                Denoiser::new(Engine::new(model(&words))).with_input_convention(InputConvention {
                    clip_below_black: true,
                    noise_channels: nc,
                });
            denoised_psnr(&d, &clean, noise, 7)
        };
        let (pooled, per_plane) = (run(NoiseChannels::Pooled), run(NoiseChannels::PerPlane));
        println!("ISO {iso}: pooled {pooled:.2} dB, per-plane {per_plane:.2} dB");
        // Measured on the whole strip: +2.8 dB at ISO 1600, +1.7 dB at 6400.
        assert!(
            pooled - per_plane >= 1.0,
            "ISO {iso}: pooled {pooled:.2} dB vs per-plane {per_plane:.2} dB"
        );
    }
}

#[test]
fn clipping_below_black_helps_on_a_dark_14_bit_chart() {
    let p = imx766_profile();
    let f = rawnr_io::dng::read(&shared_data().join("tinydng/colorchart.dng")).unwrap();
    let (offset, layout) = f.active_region();
    let clean = CleanFrame::from_raw(
        &f.data[offset..],
        &layout,
        &f.levels,
        centre(&layout, 768, 512),
    );
    let words = pmrid();
    for iso in [800.0, 3200.0] {
        let noise = p.channel_noise_at(iso).unwrap();
        let run = |clip| {
            let d =
                Denoiser::new(Engine::new(model(&words))).with_input_convention(InputConvention {
                    clip_below_black: clip,
                    noise_channels: NoiseChannels::Pooled,
                });
            denoised_psnr(&d, &clean, noise, 8)
        };
        let (clipped, raw) = (run(true), run(false));
        println!("ISO {iso}: clipped {clipped:.2} dB, not clipped {raw:.2} dB");
        // Measured on the whole chart: +2.9 dB at ISO 800, +6.7 dB at 3200.
        assert!(
            clipped - raw >= 1.5,
            "ISO {iso}: clipped {clipped:.2} dB vs {raw:.2} dB"
        );
    }
}

/// Flat patches keep their colour: on uniform patches of several levels and tints, the mean
/// of each CFA channel after denoising (network, then detail and mean restoration, as
/// `denoise-raw` runs it) stays within 0.1% of the range of the clean mean, plus three
/// standard deviations of the mean of the noise over the patch (what any unbiased estimate
/// shows), at every ISO of PMRID's own profile and of the IMX766 profile. Without the mean
/// restoration PMRID shifts a mid grey by 0.5-1%.
#[test]
fn flat_patches_keep_their_colour() {
    let imx = imx766_profile();
    let words = pmrid();
    let d = Denoiser::new(Engine::new(model(&words)));
    // Four 384x384 patches side by side: (R, G, B) levels, normalised.
    let patches = [
        [0.10f64, 0.20, 0.15],
        [0.30, 0.30, 0.30],
        [0.55, 0.45, 0.35],
        [0.05, 0.08, 0.12],
    ];
    let (pw, h) = (384usize, 384usize);
    let w = pw * patches.len();
    let layout = FrameLayout::new(w, h, CfaPhase::Rggb);
    let levels = Levels::uniform(64.0, 1023.0);
    let ch = layout.cfa.channels();
    let raw: Vec<u16> = (0..w * h)
        .map(|i| {
            let (y, x) = (i / w, i % w);
            let c = ch[(y % 2) * 2 + x % 2];
            let rgb = patches[x / pw];
            let v = match c {
                0 => rgb[0],
                3 => rgb[2],
                _ => rgb[1],
            };
            (64.0 + v * (1023.0 - 64.0)).round() as u16
        })
        .collect();
    let clean = CleanFrame::from_raw(&raw, &layout, &levels, (0, 0, w, h));
    let restore = DetailRestore::default();
    let mut worst = 0.0f64;
    for (name, curves) in [("PMRID", None), ("IMX766", Some(&imx))] {
        for iso in [800.0f32, 1600.0, 3200.0, 6400.0] {
            let noise: ChannelNoise = match curves {
                None => d.default_noise(iso).unwrap().into(),
                Some(p) => p.channel_noise_at(iso).unwrap(),
            };
            let noisy = clean.noisy_raw(&noise, &mut rand::rngs::StdRng::seed_from_u64(9));
            let mut out = vec![0u16; noisy.len()];
            d.denoise(
                &noisy,
                &layout,
                &mut out,
                &layout,
                &levels,
                noise,
                &DenoiseOptions::tiles(TileOptions::default(), 2),
            )
            .unwrap();
            restore_alloc(&restore, &noisy, &mut out, &layout, &levels, &noise).unwrap();
            let got = clean.normalise(&out);
            for p in 0..patches.len() {
                // The patch interior (16 pixels from its sides).
                let rect = (p * pw + 16, 16, pw - 32, h - 32);
                let samples = ((pw - 32) * (h - 32) / 4) as f64;
                for c in 0..4 {
                    let want = CleanFrame::channel_mean(&clean.data, &layout, c, rect);
                    let mean = CleanFrame::channel_mean(&got, &layout, c, rect);
                    let n = noise.0[c];
                    let sd_mean = ((n.k as f64 * want + n.sigma2 as f64) / samples).sqrt();
                    let shift = mean - want;
                    worst = worst.max(shift.abs());
                    assert!(
                        shift.abs() <= 0.001 + 3.0 * sd_mean,
                        "{name} ISO {iso}: patch {p} channel {c} mean {mean:.5} vs clean {want:.5} \
                         (noise of the mean {sd_mean:.5})"
                    );
                }
            }
        }
    }
    println!("largest shift {worst:.5} of the range");
}

/// Most int8 may lose against f32 in [`int8_holds_across_sensor_profiles_and_isos`] (dB).
/// Measured: -0.044 to +0.174 dB; with one set of ranges int8 lost 2-5 dB with IMX766 noise.
const INT8_MAX_LOSS_DB: f64 = 0.25;

#[test]
fn int8_holds_across_sensor_profiles_and_isos() {
    // The shipped int8 model picks a noise band (activation ranges) from each frame's noise;
    // with one set of ranges it lost 2-5 dB with IMX766 noise on this strip.
    let pgm = rawnr_io::pgm::read(&shared_data().join("Halide/bayer_2592_304.pgm")).unwrap();
    let layout = FrameLayout::new(pgm.width, pgm.height, CfaPhase::Grbg);
    let levels = Levels::uniform(25.0, 1023.0);
    let clean = CleanFrame::from_raw(&pgm.data, &layout, &levels, centre(&layout, 768, 256));
    let words = pmrid();
    let int8 = aligned(
        &std::fs::read(repo_root().join("models/pmrid-int8.rnm")).expect("models/pmrid-int8.rnm"),
    );
    let f32_model = Denoiser::new(Engine::new(model(&words)));
    let int8_model = Denoiser::new(Engine::new(model(&int8)));
    assert!(
        model(&int8).noise_bands() > 1,
        "the int8 model has noise bands"
    );
    let profiles: [(&str, Option<NoiseProfile>); 3] = [
        ("model", None),
        ("IMX766", Some(imx766_profile())),
        ("OnePlus A6003", Some(oneplus_profile())),
    ];
    let mut bands = Vec::new();
    for (name, p) in &profiles {
        for iso in [400.0, 3200.0] {
            let noise: ChannelNoise = match p {
                None => f32_model.default_noise(iso).unwrap().into(),
                Some(p) => p.channel_noise_at(iso).unwrap().pooled().into(),
            };
            let a = denoised_psnr(&f32_model, &clean, noise, 11);
            let b = denoised_psnr(&int8_model, &clean, noise, 11);
            let band = int8_model.noise_band(&noise).unwrap();
            bands.push(band);
            println!(
                "{name} ISO {iso}: f32 {a:.2} dB, int8 {b:.2} dB ({:+.3}), band {band}",
                b - a
            );
            assert!(
                b - a >= -INT8_MAX_LOSS_DB,
                "{name} ISO {iso}: int8 {b:.2} dB vs f32 {a:.2} dB"
            );
        }
    }
    bands.dedup();
    assert!(bands.len() >= 4, "the cases run several bands: {bands:?}");
}

/// The trainer's shipped model (`models/pmrid-imx766.md`): PMRID fine-tuned by `rawnr-train` on
/// dead leaves with IMX766 noise. On dead leaves it never saw (own seed) with IMX766 noise it
/// beats PMRID (+0.49 to +0.74 dB in the card's table; here, without detail restoration,
/// +0.77 and +0.89); its f16 version
/// matches it and its int8 version stays close.
#[test]
fn trained_imx766_model_beats_pmrid_on_unseen_dead_leaves() {
    let read = |name: &str| aligned(&std::fs::read(repo_root().join("models").join(name)).unwrap());
    let (pmrid_w, f32_w, f16_w, int8_w) = (
        pmrid(),
        read("pmrid-imx766.rnm"),
        read("pmrid-imx766-f16.rnm"),
        read("pmrid-imx766-int8.rnm"),
    );
    fn d(w: &[u32]) -> Denoiser<'_> {
        Denoiser::new(Engine::new(model(w)))
    }
    let levels = Levels::uniform(512.0, 16383.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4242);
    let clean = CleanFrame::dead_leaves(512, 512, CfaPhase::Rggb, levels, &mut rng);
    let p = imx766_profile();
    for iso in [400.0, 3200.0] {
        let noise: ChannelNoise = p.channel_noise_at(iso).unwrap();
        let base = denoised_psnr(&d(&pmrid_w), &clean, noise, 5);
        let trained = denoised_psnr(&d(&f32_w), &clean, noise, 5);
        let f16 = denoised_psnr(&d(&f16_w), &clean, noise, 5);
        let int8 = denoised_psnr(&d(&int8_w), &clean, noise, 5);
        println!(
            "ISO {iso}: PMRID {base:.2}, trained {trained:.2}, f16 {f16:.2}, int8 {int8:.2} dB"
        );
        assert!(
            trained > base + 0.3,
            "ISO {iso}: trained {trained:.2} vs PMRID {base:.2} dB"
        );
        assert!(
            (f16 - trained).abs() < 0.01,
            "ISO {iso}: f16 {f16:.3} vs f32 {trained:.3}"
        );
        assert!(
            int8 > trained - 0.15,
            "ISO {iso}: int8 {int8:.2} vs f32 {trained:.2}"
        );
    }
}
