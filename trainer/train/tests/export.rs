//! Every model family's burn forward equals the runtime's output on the exported `.rnm`; the
//! declared MACs and receptive field hold; tiled output equals whole-frame output with the
//! exported halo; PMRID's published weights load into the burn PMRID model and reproduce the
//! imported model.

mod common;

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng};
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::Model;
use rawnr_core::noise::NoiseParams;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser as Tiler, TileOptions};
use rawnr_engine::graph::Engine;
use rawnr_train::model::{Denoiser, ExportMeta, ModelConfig, PmridConfig, UnetConfig};

fn configs() -> Vec<ModelConfig> {
    vec![
        ModelConfig::Unet(UnetConfig {
            width: 8,
            depth: 2,
            slope: 0.2,
        }),
        ModelConfig::Unet(UnetConfig {
            width: 6,
            depth: 3,
            slope: 0.1,
        }),
        ModelConfig::Pmrid(PmridConfig {
            stem: 8,
            enc: [8, 12, 16, 16],
            blocks: [1, 2, 1, 2],
            bridge: 8,
            dec: [8, 8, 4, 4],
        }),
    ]
}

fn meta() -> ExportMeta<'static> {
    ExportMeta {
        name: "test",
        input_scale: 1.0,
        anchor_iso: 800.0,
        default_noise: rawnr_tests::imx766_profile().pooled().to_core(),
        halo: None,
        input: rawnr_core::format::InputConvention::LEGACY,
    }
}

fn burn_forward(model: &Denoiser, input: &[f32], h: usize, w: usize) -> Vec<f32> {
    let device = Device::flex();
    let x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), [1, 4, h, w]), &device);
    model
        .forward(x)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

#[test]
fn burn_and_runtime_agree_on_every_family() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let device = Device::flex();
    for cfg in configs() {
        let model = cfg.init(&device);
        let bytes = model.export(&cfg, &meta()).unwrap();
        let m = cfg.size_multiple();
        for (h, w) in [(2 * m, 3 * m), (64usize.next_multiple_of(m), m)] {
            let input: Vec<f32> = (0..4 * h * w)
                .map(|_| rng.random_range(-0.1..1.5))
                .collect();
            let want = burn_forward(&model, &input, h, w);
            let got = common::runtime_forward(&bytes, &input, h, w);
            let (worst, scale) = common::worst_difference(&got, &want);
            assert!(
                worst <= 1e-4 * scale,
                "{} {h}x{w}: max |runtime - burn| {worst} (scale {scale})",
                cfg.family()
            );
        }
        // The declared MACs are the runtime's count.
        let words = rawnr_core::builder::aligned_words(&bytes);
        let model_file = Model::parse(rawnr_tests::as_bytes(&words, bytes.len())).unwrap();
        let e = Engine::new(model_file);
        let (h, w) = (4 * m, 6 * m);
        let plan = e.plan(h, w).unwrap();
        assert_eq!(
            cfg.macs(h, w),
            e.macs(&plan.shapes),
            "{} MACs",
            cfg.family()
        );
        assert_eq!(model_file.info().halo as usize, cfg.default_halo());
    }
}

#[test]
fn receptive_radius_bounds_the_reach_of_one_input_pixel() {
    let device = Device::flex();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for cfg in configs() {
        let model = cfg.init(&device);
        let r = cfg.receptive_radius();
        let m = cfg.size_multiple();
        let side = (2 * r + 3 * m).next_multiple_of(m);
        let base: Vec<f32> = (0..4 * side * side)
            .map(|_| rng.random_range(0.0..1.0))
            .collect();
        let c = side / 2;
        let mut poked = base.clone();
        for ch in 0..4 {
            poked[ch * side * side + c * side + c] += 10.0;
        }
        let a = burn_forward(&model, &base, side, side);
        let b = burn_forward(&model, &poked, side, side);
        let mut reach = 0usize;
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            if x != y {
                let (py, px) = ((i / side) % side, i % side);
                reach = reach.max(py.abs_diff(c)).max(px.abs_diff(c));
            }
        }
        assert!(
            reach <= r,
            "{}: an input reaches {reach} > declared {r}",
            cfg.family()
        );
        // Leaky ReLU passes every path, so the UNet's bound is tight to within a stride of the
        // coarsest level (ReLU networks such as PMRID's reach less than the bound).
        assert!(
            cfg.family() != "unet" || reach + 2 * m >= r,
            "{}: reach {reach} far below declared {r}",
            cfg.family()
        );
    }
}

#[test]
fn tiled_output_equals_whole_frame_with_the_exported_halo() {
    let device = Device::flex();
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let cfg = &configs()[0];
    let model = cfg.init(&device);
    let bytes = model.export(cfg, &meta()).unwrap();
    let words = rawnr_core::builder::aligned_words(&bytes);
    let m = Model::parse(rawnr_tests::as_bytes(&words, bytes.len())).unwrap();
    let tiler = Tiler::new(Engine::new(m));
    let (w, h) = (250, 198);
    let layout = FrameLayout::new(w, h, CfaPhase::Rggb);
    let levels = Levels::uniform(64.0, 1023.0);
    let input: Vec<u16> = (0..w * h).map(|_| rng.random_range(40..1023)).collect();
    let noise = NoiseParams {
        k: 0.004,
        sigma2: 2e-5,
    };
    let run = |opts: &TileOptions| {
        let mut out = vec![0u16; w * h];
        tiler
            .denoise(
                &input,
                &layout,
                &mut out,
                &layout,
                &levels,
                noise,
                &DenoiseOptions::tiles(*opts, 1),
            )
            .unwrap();
        out
    };
    let whole = run(&TileOptions::WHOLE_FRAME);
    for tile in [16, 24, 40] {
        let tiled = run(&TileOptions { tile, halo: None });
        assert!(
            tiled == whole,
            "tile {tile}: tiled output differs from the whole frame"
        );
    }
}

#[test]
fn pmrid_weights_load_by_name_and_match_the_imported_model() {
    let npz = rawnr_tests::shared_data().join("PMRID/torch_pretrained.npz");
    let arrays = rawnr_import::npz::read_npz(&npz).unwrap();
    let device = Device::flex();
    let cfg = ModelConfig::Pmrid(PmridConfig::default());
    let model = cfg.init(&device).load_tensors(&arrays).unwrap();
    // Every tensor went in unchanged, and comes back out by the same names.
    assert_eq!(model.named_tensors(), arrays);
    let imported = std::fs::read(rawnr_tests::repo_root().join("models/pmrid.rnm")).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let (h, w) = (64, 96);
    let input: Vec<f32> = (0..4 * h * w)
        .map(|_| rng.random_range(0.0..256.0))
        .collect();
    let want = common::runtime_forward(&imported, &input, h, w);
    let got = burn_forward(&model, &input, h, w);
    let (worst, scale) = common::worst_difference(&got, &want);
    assert!(
        worst <= 1e-4 * scale,
        "burn PMRID vs imported: {worst} (scale {scale})"
    );
    // A missing or misshapen tensor is an error, not a silent partial load.
    let mut fewer = arrays.clone();
    fewer.remove("out1.conv.bias");
    assert!(cfg.init(&device).load_tensors(&fewer).is_err());
}
