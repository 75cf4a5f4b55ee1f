//! The training loop: AdamW (or Adam) with linear warm-up and cosine decay, gradient clipping,
//! checkpoints (weights, optimizer state, step) every N steps and `--resume`, validation PSNR and
//! SSIM per ISO on the fixed held-out set, metrics to CSV files, and the trained model exported
//! to `.rnm` at the end.
//!
//! A run directory holds `config.json` (the config it was started with), `train.csv` (step,
//! learning rate, loss, patches/s), `validation.csv` (step, ISO, PSNR, SSIM, noisy PSNR),
//! `checkpoint/` (`model.bpk`, `optimizer.bpk`, `state.json`) and `model.rnm`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::data::{Conditioning, DataSources, Loader, ValidationSet};
use crate::loss;
use crate::model::{Denoiser, ExportMeta};
use crate::TrainError;

/// Validation scores at one ISO (means over the held-out crops).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IsoScore {
    /// ISO.
    pub iso: f32,
    /// PSNR of the denoised crops (dB, peak = white).
    pub psnr: f64,
    /// SSIM of the denoised crops (Bayer, per colour channel).
    pub ssim: f64,
    /// PSNR of the noisy inputs.
    pub noisy_psnr: f64,
}

/// What a run (or a resumed part of it) did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// Steps done in total (across resumed parts).
    pub step: usize,
    /// Steps done by this call.
    pub steps_this_run: usize,
    /// Wall time of this call's steps (s).
    pub seconds: f64,
    /// Training throughput of this call (patches/s).
    pub patches_per_s: f64,
    /// Mean loss over the first 10% of this call's steps.
    pub loss_first: f64,
    /// Mean loss over the last 10% of this call's steps.
    pub loss_last: f64,
    /// Validation before this call's first step (absent when resumed).
    pub validation_start: Option<Vec<IsoScore>>,
    /// Validation after the last step.
    pub validation_end: Vec<IsoScore>,
}

/// Checkpointed progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    step: usize,
}

/// Options of one call of [`train`].
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue the run in the directory from its last checkpoint.
    pub resume: bool,
    /// Stop after this many steps of this call (a long run split into parts), checkpointing.
    pub max_steps: Option<usize>,
    /// Show a progress bar.
    pub progress: bool,
}

/// The device training runs on: burn's `flex` CPU backend with autodiff (GPU backends with the
/// `wgpu` / `cuda` features, chosen by `BURN_DEVICE` through burn's default device).
pub fn training_device() -> Device {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    let base = Device::default();
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    let base = Device::flex();
    base.autodiff()
}

/// Learning rate at `step`: linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio`
/// at the last step.
pub fn learning_rate(cfg: &TrainConfig, step: usize) -> f64 {
    let o = &cfg.optim;
    if step < o.warmup_steps {
        return o.lr * (step + 1) as f64 / o.warmup_steps as f64;
    }
    let span = (cfg.run.steps - o.warmup_steps).max(1) as f64;
    let t = ((step - o.warmup_steps) as f64 / span).min(1.0);
    let min = o.lr * o.min_lr_ratio;
    min + (o.lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    let o = &cfg.optim;
    let clip = o.clip_norm.map(GradientClippingConfig::Norm);
    if o.optimizer == "adam" {
        AdamConfig::new()
            .with_weight_decay(
                (o.weight_decay > 0.0).then(|| WeightDecayConfig::new(o.weight_decay)),
            )
            .with_grad_clipping(clip)
            .init()
    } else {
        AdamWConfig::new()
            .with_weight_decay(o.weight_decay)
            .with_grad_clipping(clip)
            .init()
    }
}

fn ckpt_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Saves the model's weights as a burnpack (written to a temporary file, then renamed).
pub fn save_weights(model: &Denoiser, path: &Path) -> Result<(), TrainError> {
    let tmp = path.with_extension("bpk.tmp");
    let mut store = BurnpackStore::from_file(&tmp)
        .auto_extension(false)
        .overwrite(true);
    model.save_into(&mut store).map_err(|e| ckpt_err(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

/// Loads weights saved by [`save_weights`] (or any burnpack of the same model) into `model`.
pub fn load_weights(mut model: Denoiser, path: &Path) -> Result<Denoiser, TrainError> {
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    model.load_from(&mut store).map_err(|e| ckpt_err(path, e))?;
    Ok(model)
}

/// Initial weights from `run.init`: a PMRID `.npz` (by tensor name) or a burnpack.
fn init_weights(model: Denoiser, path: &Path) -> Result<Denoiser, TrainError> {
    if path.extension().is_some_and(|e| e == "npz") {
        let arrays = rawnr_import::npz::read_npz(path)
            .map_err(|e| TrainError::Input(format!("{}: {e}", path.display())))?;
        model.load_tensors(&arrays)
    } else {
        load_weights(model, path)
    }
}

/// The conditioning of a config (reads its noise profile).
pub fn conditioning(cfg: &TrainConfig) -> Result<Conditioning, TrainError> {
    let read = |p: &Path| {
        rawnr_io::profile::NoiseProfile::read(p).map_err(|e| TrainError::Input(e.to_string()))
    };
    let d = &cfg.data;
    let mut sources = vec![(read(&d.profile)?, d.iso_min, d.iso_max)];
    for p in &d.more_profiles {
        sources.push((read(&p.profile)?, p.iso_min, p.iso_max));
    }
    let anchor = match &d.anchor_profile {
        Some(p) => read(p)?.pooled().to_core(),
        None => sources[0].0.pooled().to_core(),
    };
    Conditioning::new(
        sources,
        anchor,
        cfg.anchor_iso(),
        d.input_scale,
        d.input_convention(),
    )
    .map_err(|e| TrainError::Config(format!("noise profiles or anchor: {e}")))
}

/// Packed planes (4 x `p*p`, R Gr Gb B) as an RGGB Bayer image of `2p x 2p`.
fn unpack(planes: &[f32], p: usize) -> Vec<f64> {
    let mut out = vec![0f64; 4 * p * p];
    for (c, plane) in planes.chunks_exact(p * p).enumerate() {
        let (a, b) = (c / 2, c % 2);
        for i in 0..p {
            for j in 0..p {
                out[(2 * i + a) * 2 * p + 2 * j + b] = plane[i * p + j] as f64;
            }
        }
    }
    out
}

/// Denoises network-domain planes `[n, 4, p, p]` with `model` (no gradients).
pub fn infer(model: &Denoiser, input: Vec<f32>, n: usize, p: usize) -> Vec<f32> {
    forward_planes(&model.valid(), input, n, p)
}

/// [`infer`] with a model already out of autodiff ([`burn::module::Module::valid`]).
fn forward_planes(valid: &Denoiser, input: Vec<f32>, n: usize, p: usize) -> Vec<f32> {
    let device = training_device().inner();
    let x = Tensor::<4>::from_data(TensorData::new(input, [n, 4, p, p]), &device);
    valid
        .forward(x)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 output")
}

/// PSNR and SSIM per ISO of `model` on `set`.
pub fn validate(model: &Denoiser, set: &ValidationSet, cond: &Conditioning) -> Vec<IsoScore> {
    let p = set.size;
    let valid = model.valid();
    let mut isos: Vec<f32> = set.cases.iter().map(|c| c.iso).collect();
    isos.sort_by(f32::total_cmp);
    isos.dedup();
    isos.iter()
        .map(|&iso| {
            let cases: Vec<_> = set.cases.iter().filter(|c| c.iso == iso).collect();
            let (mut psnr, mut ssim, mut noisy) = (0.0, 0.0, 0.0);
            for c in &cases {
                let out = forward_planes(&valid, c.input.clone(), 1, p);
                let den: Vec<f32> = cond
                    .unmap(&out, p, &c.noise)
                    .into_iter()
                    .map(|v| v.clamp(0.0, 1.0))
                    .collect();
                let inp = cond.unmap(&c.input, p, &c.noise);
                let clean = unpack(&c.clean, p);
                let den = unpack(&den, p);
                psnr += rawnr_quality::psnr(&clean, &den, 1.0);
                ssim += rawnr_quality::ssim_bayer(&clean, &den, 2 * p, 2 * p).unwrap_or(f64::NAN);
                noisy += rawnr_quality::psnr(&clean, &unpack(&inp, p), 1.0);
            }
            let n = cases.len() as f64;
            IsoScore {
                iso,
                psnr: psnr / n,
                ssim: ssim / n,
                noisy_psnr: noisy / n,
            }
        })
        .collect()
}

fn append(path: &Path, header: &str, line: &str) -> Result<(), TrainError> {
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    if new && !header.is_empty() {
        writeln!(f, "{header}").map_err(|e| TrainError::io(path, e))?;
    }
    writeln!(f, "{line}").map_err(|e| TrainError::io(path, e))
}

fn log_validation(dir: &Path, step: usize, scores: &[IsoScore]) -> Result<(), TrainError> {
    for s in scores {
        append(
            &dir.join("validation.csv"),
            "step,iso,psnr_db,ssim,noisy_psnr_db",
            &format!(
                "{step},{},{:.4},{:.5},{:.4}",
                s.iso, s.psnr, s.ssim, s.noisy_psnr
            ),
        )?;
    }
    Ok(())
}

/// The export settings of a run.
pub fn export_meta<'a>(cfg: &TrainConfig, cond: &Conditioning, name: &'a str) -> ExportMeta<'a> {
    ExportMeta {
        name,
        input_scale: cfg.data.input_scale,
        anchor_iso: cfg.anchor_iso(),
        default_noise: cond.anchor_curves,
        halo: None,
        input: cfg.data.input_convention(),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    rawnr_io::atomic::write_atomic(path, |w| w.write_all(bytes))
        .map_err(|e| TrainError::Input(e.to_string()))
}

/// Saves weights, optimizer state and step into `dir/checkpoint`.
fn checkpoint(
    dir: &Path,
    model: &Denoiser,
    optim: &ModuleOptimizer,
    step: usize,
) -> Result<(), TrainError> {
    let ck = dir.join("checkpoint");
    std::fs::create_dir_all(&ck).map_err(|e| TrainError::io(&ck, e))?;
    save_weights(model, &ck.join("model.bpk"))?;
    let opt = ck.join("optimizer.bpk");
    let tmp = ck.join("optimizer.bpk.tmp");
    optim.save(&tmp).map_err(|e| ckpt_err(&opt, e))?;
    std::fs::rename(&tmp, &opt).map_err(|e| TrainError::io(&opt, e))?;
    // The step last: a checkpoint is complete when state.json names it.
    let state = serde_json::to_string(&State { step }).expect("state serialises");
    write_atomic(&ck.join("state.json"), state.as_bytes())
}

/// Seeded initial weights: a run with the same config starts from the same model. burn's
/// generator may be process-wide, so seeding and drawing happen under one lock.
fn seeded_init(cfg: &TrainConfig, device: &Device) -> Denoiser {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(cfg.data.seed);
    cfg.model.init(device)
}

/// Trains (or resumes) the run in `dir` with `cfg`.
pub fn train(cfg: &TrainConfig, dir: &Path, opts: &RunOptions) -> Result<RunSummary, TrainError> {
    cfg.check()?;
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let cfg_path = dir.join("config.json");
    if opts.resume {
        let saved = TrainConfig::read(&cfg_path)?;
        if saved.to_json() != cfg.to_json() {
            return Err(TrainError::Config(format!(
                "{} differs from the config given: resume with the run's own config",
                cfg_path.display()
            )));
        }
    } else {
        if dir.join("checkpoint").exists() {
            return Err(TrainError::Config(format!(
                "{} already holds a run: --resume it or pick a new directory",
                dir.display()
            )));
        }
        write_atomic(&cfg_path, cfg.to_json().as_bytes())?;
    }

    let cond = Arc::new(conditioning(cfg)?);
    let sources = Arc::new(DataSources::load(&cfg.data, &cond)?);
    let val = ValidationSet::build(&cfg.run.validation, &cfg.data, &cond)?;
    let device = training_device();
    let mut model = seeded_init(cfg, &device);
    let mut optim = optimizer(cfg);
    let mut step = 0;
    let ck = dir.join("checkpoint");
    if opts.resume {
        let state: State = serde_json::from_str(
            &std::fs::read_to_string(ck.join("state.json")).map_err(|e| TrainError::io(&ck, e))?,
        )
        .map_err(|e| ckpt_err(&ck, e))?;
        step = state.step;
        model = load_weights(model, &ck.join("model.bpk"))?;
        optim = optim
            .load(ck.join("optimizer.bpk"))
            .map_err(|e| ckpt_err(&ck, e))?;
    } else if let Some(init) = &cfg.run.init {
        model = init_weights(model, init)?;
    }

    let validation_start = if opts.resume {
        None
    } else {
        let v = validate(&model, &val, &cond);
        log_validation(dir, 0, &v)?;
        Some(v)
    };
    let end = opts
        .max_steps
        .map_or(cfg.run.steps, |m| (step + m).min(cfg.run.steps));
    let first = step;
    let mut loader = Loader::start(sources, cond.clone(), &cfg.data, step as u64);
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new((end - first) as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} steps {elapsed_precise} (eta {eta}) {msg}",
            )
            .expect("template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (n, p) = (cfg.data.batch, cfg.data.patch);
    let scale = cfg.data.input_scale;
    let mut losses = Vec::new();
    let start = Instant::now();
    let mut last_validation = validation_start.clone();
    while step < end {
        let b = loader.next_batch();
        let t0 = Instant::now();
        let x = Tensor::<4>::from_data(TensorData::new(b.noisy, [n, 4, p, p]), &device);
        let y = Tensor::<4>::from_data(TensorData::new(b.clean, [n, 4, p, p]), &device);
        let l = loss::loss(model.forward(x), y, &cfg.loss, scale);
        let value = l.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(TrainError::Config(format!(
                "loss is {value} at step {step}: lower optim.lr or set optim.clip_norm"
            )));
        }
        let grads = GradientsParams::from_grads(l.backward(), &model);
        let lr = learning_rate(cfg, step);
        model = optim.step(lr, model, grads);
        step += 1;
        losses.push(value);
        let rate = n as f64 / t0.elapsed().as_secs_f64();
        append(
            &dir.join("train.csv"),
            "step,lr,loss,patches_per_s",
            &format!("{step},{lr:.3e},{value:.6},{rate:.2}"),
        )?;
        bar.set_message(format!("loss {value:.5}"));
        bar.inc(1);
        if step % cfg.run.validate_every == 0 || step == end {
            let v = validate(&model, &val, &cond);
            log_validation(dir, step, &v)?;
            last_validation = Some(v);
        }
        if step % cfg.run.checkpoint_every == 0 || step == end {
            checkpoint(dir, &model, &optim, step)?;
        }
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let done = step - first;
    if step == cfg.run.steps {
        let name = format!("rawnr {} ({} steps)", cfg.model.family(), step);
        let bytes = model.export(&cfg.model, &export_meta(cfg, &cond, &name))?;
        write_atomic(&dir.join("model.rnm"), &bytes)?;
    }
    let tenth = (losses.len() / 10).max(1);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let summary = RunSummary {
        step,
        steps_this_run: done,
        seconds,
        patches_per_s: (done * n) as f64 / seconds.max(1e-9),
        loss_first: mean(&losses[..tenth.min(losses.len())]),
        loss_last: mean(&losses[losses.len().saturating_sub(tenth)..]),
        validation_start,
        validation_end: last_validation.unwrap_or_else(|| validate(&model, &val, &cond)),
    };
    // Every call (a whole run or one resumed part) is recorded.
    append(
        &dir.join("parts.jsonl"),
        "",
        &serde_json::to_string(&summary).expect("summary serialises"),
    )?;
    Ok(summary)
}

/// Path of the exported model of a finished run.
pub fn model_path(dir: &Path) -> PathBuf {
    dir.join("model.rnm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let mut cfg: TrainConfig = serde_json::from_str(
            r#"{"model": {"family": "unet", "width": 4, "depth": 1},
                "data": {"profile": "p.json", "iso_min": 100, "iso_max": 100, "patch": 8,
                         "batch": 1, "dead_leaves": 1},
                "optim": {"lr": 0.01, "warmup_steps": 10, "min_lr_ratio": 0.1},
                "run": {"steps": 110, "validation": {"isos": [100], "dead_leaves": 1, "size": 8}}}"#,
        )
        .unwrap();
        let lr = |c: &TrainConfig, s| learning_rate(c, s);
        assert!((lr(&cfg, 0) - 0.001).abs() < 1e-12);
        assert!((lr(&cfg, 9) - 0.01).abs() < 1e-12);
        assert!((lr(&cfg, 10) - 0.01).abs() < 1e-12);
        assert!(
            (lr(&cfg, 60) - 0.0055).abs() < 1e-9,
            "half way: mean of peak and floor"
        );
        assert!((lr(&cfg, 110) - 0.001).abs() < 1e-12);
        assert!((1..110).all(|s| lr(&cfg, s) <= lr(&cfg, s - 1) || s <= 10));
        cfg.optim.warmup_steps = 0;
        assert!((lr(&cfg, 0) - 0.01).abs() < 1e-12);
    }
}
