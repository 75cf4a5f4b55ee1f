//! Tiled output equals whole-frame output bit for bit when the halo covers the receptive
//! field: random models exercising every op, random frame sizes (odd, smaller than one tile),
//! all four CFA phases, one or several threads, and row strides wider than the frame.

use rand::{Rng, SeedableRng};
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::Model;
use rawnr_core::noise::NoiseParams;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, StripeOptions, TileOptions};
use rawnr_engine::graph::Engine;
use rawnr_tests::*;

#[test]
fn tiled_equals_whole_frame_on_random_models() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let noise = NoiseParams {
        k: 1e-3,
        sigma2: 1e-6,
    };
    for case in 0..24 {
        let bytes = random_model(&mut rng);
        let words = aligned(&bytes);
        let model = Model::parse(as_bytes(&words, bytes.len())).unwrap();
        let info = *model.info();
        assert_eq!(
            info.halo, info.receptive_field,
            "builder default halo is the receptive field"
        );
        let d = Denoiser::new(Engine::new(model));
        let m = info.size_multiple as usize;
        let cfa = CfaPhase::ALL[case % 4];
        // Sizes from smaller than one tile to several tiles, odd and even.
        let width = rng.random_range(2..(12 * m).max(40));
        let height = rng.random_range(2..(10 * m).max(30));
        let stride = width + rng.random_range(0..3);
        let layout = FrameLayout {
            width,
            height,
            stride,
            cfa,
        };
        let white = 65535.0;
        let levels = Levels {
            black: [rng.random_range(0.0..2000.0), 1000.0, 1500.0, 500.0],
            white,
        };
        let input: Vec<u16> = (0..height * stride)
            .map(|_| rng.random_range(0..=65535u16))
            .collect();
        let mut whole = vec![0u16; input.len()];
        d.denoise(
            &input,
            &layout,
            &mut whole,
            &layout,
            &levels,
            noise,
            &DenoiseOptions::tiles(TileOptions::WHOLE_FRAME, 1),
        )
        .unwrap();
        for (tile, threads) in [(m, 1), (2 * m, 3), (3 * m, 2)] {
            let mut tiled = vec![0u16; input.len()];
            let opts = TileOptions { tile, halo: None };
            d.denoise(
                &input,
                &layout,
                &mut tiled,
                &layout,
                &levels,
                noise,
                &DenoiseOptions::tiles(opts, threads),
            )
            .unwrap();
            let diff = whole.iter().zip(&tiled).filter(|(a, b)| a != b).count();
            assert_eq!(diff, 0, "case {case}: {cfa:?} {width}x{height} stride {stride}, tile {tile}, rf {}: {diff} pixels differ", info.receptive_field);
        }
        // Row-streamed stripes (the halo covers the receptive field): the same frame.
        for (width_px, threads, step) in [(m, 1, 1), (2 * m, 2, 5), (usize::MAX / 4, 2, 16)] {
            let mut streamed = vec![0u16; input.len()];
            let opts = StripeOptions {
                width: width_px,
                halo: None,
                step,
                min_rows: 1 + case % 3,
            };
            d.denoise(
                &input,
                &layout,
                &mut streamed,
                &layout,
                &levels,
                noise,
                &DenoiseOptions::stripes(opts, threads),
            )
            .unwrap();
            let diff = whole.iter().zip(&streamed).filter(|(a, b)| a != b).count();
            assert_eq!(diff, 0, "case {case}: {cfa:?} {width}x{height} stride {stride}, stripe {width_px}: {diff} pixels differ");
        }
        // The network changes the frame (the test would be vacuous on an identity).
        assert!(whole.iter().zip(&input).filter(|(a, b)| a != b).count() > input.len() / 2);
        // Padding between rows is never written.
        for y in 0..height {
            assert!(whole[y * stride + width..(y + 1) * stride]
                .iter()
                .all(|&v| v == 0));
        }
    }
}

#[test]
fn too_small_halo_changes_the_output() {
    // The exactness above is not an accident of the models: a halo below the receptive field
    // does change the result.
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let bytes = random_model(&mut rng);
    let words = aligned(&bytes);
    let model = Model::parse(as_bytes(&words, bytes.len())).unwrap();
    let m = model.info().size_multiple as usize;
    let d = Denoiser::new(Engine::new(model));
    let layout = FrameLayout::new(16 * m, 16 * m, CfaPhase::Rggb);
    let levels = Levels::uniform(0.0, 65535.0);
    let input: Vec<u16> = (0..layout.width * layout.height)
        .map(|_| rng.random_range(0..=65535u16))
        .collect();
    let noise = NoiseParams {
        k: 1e-3,
        sigma2: 1e-6,
    };
    let mut whole = vec![0u16; input.len()];
    d.denoise(
        &input,
        &layout,
        &mut whole,
        &layout,
        &levels,
        noise,
        &DenoiseOptions::tiles(TileOptions::WHOLE_FRAME, 1),
    )
    .unwrap();
    let mut tiled = vec![0u16; input.len()];
    d.denoise(
        &input,
        &layout,
        &mut tiled,
        &layout,
        &levels,
        noise,
        &DenoiseOptions::tiles(
            TileOptions {
                tile: m,
                halo: Some(0),
            },
            1,
        ),
    )
    .unwrap();
    assert!(whole != tiled);
}
