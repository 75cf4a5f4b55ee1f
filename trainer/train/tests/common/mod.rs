//! Helpers shared by the trainer's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rawnr_core::format::Model;
use rawnr_engine::graph::Engine;
use rawnr_train::config::TrainConfig;

/// Runs an exported model's network (no k-sigma, no packing) on `[4, h, w]` with the runtime's
/// engine.
pub fn runtime_forward(bytes: &[u8], input: &[f32], h: usize, w: usize) -> Vec<f32> {
    let words = rawnr_core::builder::aligned_words(bytes);
    let m =
        Model::parse(rawnr_tests::as_bytes(&words, bytes.len())).expect("exported model parses");
    let e = Engine::new(m);
    let plan = e.plan(h, w).expect("plan");
    let mut scratch = vec![f32::NAN; plan.scratch_len];
    scratch[plan.range(0, &plan.shapes[0])].copy_from_slice(input);
    e.run(&plan, &plan.shapes, &mut scratch).expect("run");
    let out = m.info().output_value as usize;
    scratch[plan.range(out, &plan.shapes[out])].to_vec()
}

/// The largest `|got - want|` and the output scale it is judged against (`max |want|`, at
/// least 1).
pub fn worst_difference(got: &[f32], want: &[f32]) -> (f32, f32) {
    let scale = want.iter().fold(1f32, |a, v| a.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    (worst, scale)
}

/// The IMX766 profile written as a `rawnr-calib` JSON file in `dir`.
pub fn imx766_profile_file(dir: &Path) -> PathBuf {
    let path = dir.join("imx766.json");
    let text = serde_json::to_string_pretty(&rawnr_tests::imx766_profile()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// A fresh scratch directory under the target directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A seconds-long training config: a small UNet on dead leaves with the IMX766 profile.
pub fn tiny_config(dir: &Path, steps: usize) -> TrainConfig {
    let profile = imx766_profile_file(dir);
    let text = format!(
        r#"{{
  "model": {{"family": "unet", "width": 8, "depth": 2}},
  "data": {{"profile": {profile:?}, "iso_min": 400, "iso_max": 6400, "patch": 32, "batch": 4,
           "dead_leaves": 4, "dead_leaves_size": 256, "workers": 2, "seed": 7}},
  "loss": {{"l1": 0.5, "charbonnier": 0.5, "ms_ssim": 0.2, "ms_ssim_scales": 2}},
  "optim": {{"lr": 3e-3, "warmup_steps": 3, "clip_norm": 1.0}},
  "run": {{"steps": {steps}, "checkpoint_every": 1000, "validate_every": 1000,
          "validation": {{"isos": [800, 6400], "dead_leaves": 2, "size": 32}}}}
}}"#
    );
    let cfg: TrainConfig = serde_json::from_str(&text).unwrap();
    cfg.check().unwrap();
    cfg
}
