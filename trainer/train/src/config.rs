//! The training configuration: one JSON file that says what to train, on what, and how. A run
//! saves it beside its weights (`config.json`), so every checkpoint says how it was made.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::ModelConfig;
use crate::TrainError;

/// Everything a training run needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The network.
    pub model: ModelConfig,
    /// Training pairs.
    pub data: DataConfig,
    /// Loss mix.
    #[serde(default)]
    pub loss: LossConfig,
    /// Optimizer and schedule.
    pub optim: OptimConfig,
    /// Steps, checkpoints and validation.
    pub run: RunConfig,
}

/// Where clean signal and noise come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Noise profile (the `rawnr-calib` JSON format) whose noise is synthesised.
    pub profile: PathBuf,
    /// Lowest ISO drawn (ISOs are drawn log-uniformly between `iso_min` and `iso_max`).
    pub iso_min: f32,
    /// Highest ISO drawn.
    pub iso_max: f32,
    /// ISO whose noise the k-sigma transform maps every input to (default: the geometric mean
    /// of `iso_min` and `iso_max`).
    #[serde(default)]
    pub anchor_iso: Option<f32>,
    /// Further sensors whose noise is synthesised too (each patch draws its sensor uniformly
    /// from `profile` and these, then an ISO log-uniformly in that sensor's range): one model
    /// for several sensors, or a wider range of noise levels. Validation uses `profile`.
    #[serde(default)]
    pub more_profiles: Vec<ProfileRange>,
    /// Profile whose pooled noise at `anchor_iso` is the anchor (default: `profile`). Fine-tuning
    /// a published model keeps its anchor (e.g. PMRID's own sensor at ISO 1600) so that the
    /// network sees the noise level it was trained on.
    #[serde(default)]
    pub anchor_profile: Option<PathBuf>,
    /// Raise noisy samples below black to black before the network (as PMRID was trained);
    /// declared in the exported model, which the runtime then follows.
    #[serde(default)]
    pub clip_below_black: bool,
    /// One k-sigma map per plane from its channel's noise (`per-plane`, default) or one from
    /// the noise averaged over the channels (`pooled`, as PMRID was trained); declared in the
    /// exported model.
    #[serde(default)]
    pub noise_channels: NoiseChannelsConfig,
    /// Network input = k-sigma-mapped normalised signal times this.
    #[serde(default = "default_input_scale")]
    pub input_scale: f32,
    /// Patch side in packed pixels (the Bayer crop is twice as large).
    pub patch: usize,
    /// Patches per batch.
    pub batch: usize,
    /// Folders (or files) of clean raw frames: `.dng` and `.pgm`.
    #[serde(default)]
    pub clean: Vec<PathBuf>,
    /// CFA and levels of PGM frames (PGM carries neither).
    #[serde(default)]
    pub pgm: PgmLevels,
    /// Synthetic dead-leaves frames generated at start (seeded) and cropped like real frames.
    #[serde(default)]
    pub dead_leaves: usize,
    /// Side of each dead-leaves frame in Bayer pixels.
    #[serde(default = "default_dead_leaves_size")]
    pub dead_leaves_size: usize,
    /// Real noisy/clean pairs (SIDD / RawNIND style), used for `pairs_fraction` of patches.
    #[serde(default)]
    pub pairs: Option<PairFolders>,
    /// Fraction of patches taken from `pairs` (0..=1).
    #[serde(default)]
    pub pairs_fraction: f32,
    /// Background threads making batches.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Batches made ahead (bounded queue).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Seed of the data stream: a run with the same config sees the same batches.
    #[serde(default)]
    pub seed: u64,
}

/// How per-channel noise selects the k-sigma map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseChannelsConfig {
    /// One map per plane.
    #[default]
    PerPlane,
    /// One map from the channel average.
    Pooled,
}

impl DataConfig {
    /// The input convention the training data follows (and the export declares).
    pub fn input_convention(&self) -> rawnr_core::format::InputConvention {
        rawnr_core::format::InputConvention {
            clip_below_black: self.clip_below_black,
            noise_channels: match self.noise_channels {
                NoiseChannelsConfig::PerPlane => rawnr_core::format::NoiseChannels::PerPlane,
                NoiseChannelsConfig::Pooled => rawnr_core::format::NoiseChannels::Pooled,
            },
        }
    }
}

/// A noise profile and the ISOs drawn from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRange {
    /// Noise profile (`rawnr-calib` JSON).
    pub profile: PathBuf,
    /// Lowest ISO.
    pub iso_min: f32,
    /// Highest ISO.
    pub iso_max: f32,
}

/// Levels and CFA of PGM frames.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgmLevels {
    /// CFA phase at (0, 0): rggb, bggr, grbg or gbrg.
    pub cfa: String,
    /// Black level.
    pub black: f32,
    /// White level.
    pub white: f32,
}

impl Default for PgmLevels {
    /// The Halide strips of `../shared/data` (GRBG, black 25, white 1023).
    fn default() -> Self {
        PgmLevels {
            cfa: "grbg".into(),
            black: 25.0,
            white: 1023.0,
        }
    }
}

/// Two folders of DNGs with the same file names: noisy captures and their clean references.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairFolders {
    /// Noisy frames (their ISO tag selects the k-sigma transform).
    pub noisy: PathBuf,
    /// Clean frames of the same scenes.
    pub clean: PathBuf,
}

/// Weights of the loss terms (summed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Mean absolute error.
    #[serde(default)]
    pub l1: f32,
    /// Charbonnier `sqrt(d^2 + eps^2)`.
    #[serde(default)]
    pub charbonnier: f32,
    /// Charbonnier epsilon (network-input units divided by the input scale).
    #[serde(default = "default_charbonnier_eps")]
    pub charbonnier_eps: f32,
    /// 1 - MS-SSIM.
    #[serde(default)]
    pub ms_ssim: f32,
    /// MS-SSIM scales (each halves the patch; the patch must hold the 7-pixel window at the
    /// coarsest).
    #[serde(default = "default_ms_ssim_scales")]
    pub ms_ssim_scales: usize,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            l1: 0.0,
            charbonnier: 1.0,
            charbonnier_eps: default_charbonnier_eps(),
            ms_ssim: 0.0,
            ms_ssim_scales: default_ms_ssim_scales(),
        }
    }
}

/// Optimizer and learning-rate schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// `adamw` or `adam`.
    #[serde(default = "default_optimizer")]
    pub optimizer: String,
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled weight decay (AdamW) or L2 penalty (Adam).
    #[serde(default)]
    pub weight_decay: f32,
    /// Linear warm-up steps from 0 to `lr`.
    #[serde(default)]
    pub warmup_steps: usize,
    /// Final learning rate of the cosine decay, as a fraction of `lr`.
    #[serde(default = "default_min_lr_ratio")]
    pub min_lr_ratio: f64,
    /// Gradient clipping by L2 norm, per parameter tensor (burn's `GradientClipping::Norm`;
    /// none when absent).
    #[serde(default)]
    pub clip_norm: Option<f32>,
}

/// Length of the run, checkpoints and validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Total optimizer steps (the schedule spans them; `--resume` continues towards them).
    pub steps: usize,
    /// Save weights and optimizer state every this many steps (and at the end).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Validate every this many steps (and at the end).
    #[serde(default = "default_validate_every")]
    pub validate_every: usize,
    /// Held-out validation set.
    pub validation: ValidationConfig,
    /// Start from these weights: a PMRID `.npz` (model family `pmrid` with PMRID's widths) or
    /// a burnpack of this model.
    #[serde(default)]
    pub init: Option<PathBuf>,
}

/// The fixed held-out set: clean crops x ISOs with seeded noise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    /// ISOs validated (PSNR/SSIM reported per ISO).
    pub isos: Vec<f32>,
    /// Clean frames (centre crops); never listed in `data.clean`.
    #[serde(default)]
    pub frames: Vec<PathBuf>,
    /// Dead-leaves frames with seeds of their own (disjoint from training).
    #[serde(default)]
    pub dead_leaves: usize,
    /// Crop side in packed pixels.
    pub size: usize,
    /// Seed of the validation noise.
    #[serde(default = "default_validation_seed")]
    pub seed: u64,
}

fn default_input_scale() -> f32 {
    1.0
}
fn default_dead_leaves_size() -> usize {
    1024
}
fn default_workers() -> usize {
    1
}
fn default_queue() -> usize {
    4
}
fn default_charbonnier_eps() -> f32 {
    1e-3
}
fn default_ms_ssim_scales() -> usize {
    3
}
fn default_optimizer() -> String {
    "adamw".into()
}
fn default_min_lr_ratio() -> f64 {
    0.01
}
fn default_checkpoint_every() -> usize {
    500
}
fn default_validate_every() -> usize {
    250
}
fn default_validation_seed() -> u64 {
    0x005e_ed0f_7a11
}

impl TrainConfig {
    /// Reads and checks a config file.
    pub fn read(path: &Path) -> Result<TrainConfig, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let cfg: TrainConfig = serde_json::from_str(&text)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// The config as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }

    /// The k-sigma anchor ISO.
    pub fn anchor_iso(&self) -> f32 {
        self.data
            .anchor_iso
            .unwrap_or_else(|| (self.data.iso_min * self.data.iso_max).sqrt())
    }

    /// Checks ranges and consistency.
    pub fn check(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::Config(m.to_string()));
        let d = &self.data;
        let ranges = std::iter::once((d.iso_min, d.iso_max))
            .chain(d.more_profiles.iter().map(|p| (p.iso_min, p.iso_max)));
        for (lo, hi) in ranges {
            if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
                return bad("iso_min must be > 0 and <= iso_max");
            }
        }
        if !(self.anchor_iso() > 0.0 && self.anchor_iso().is_finite()) {
            return bad("data.anchor_iso must be positive");
        }
        if !(d.input_scale > 0.0 && d.input_scale.is_finite()) {
            return bad("data.input_scale must be positive");
        }
        let m = self.model.size_multiple();
        if d.patch == 0 || !d.patch.is_multiple_of(m) {
            return bad(&format!(
                "data.patch must be a positive multiple of {m} (the model's size multiple)"
            ));
        }
        if d.batch == 0 || d.workers == 0 || d.queue == 0 {
            return bad("data.batch, data.workers and data.queue must be positive");
        }
        if d.clean.is_empty() && d.dead_leaves == 0 && d.pairs.is_none() {
            return bad("no training data: give data.clean, data.dead_leaves or data.pairs");
        }
        if d.dead_leaves > 0 && d.dead_leaves_size < 2 * d.patch + 2 {
            return bad("data.dead_leaves_size must be at least 2 * patch + 2");
        }
        if !(0.0..=1.0).contains(&d.pairs_fraction)
            || (d.pairs.is_some() != (d.pairs_fraction > 0.0))
        {
            return bad("data.pairs_fraction must be in (0, 1] with data.pairs, 0 without");
        }
        if d.pairs_fraction == 1.0 && (!d.clean.is_empty() || d.dead_leaves > 0) {
            return bad("data.pairs_fraction 1 leaves data.clean and data.dead_leaves unused");
        }
        let l = &self.loss;
        let ws = [l.l1, l.charbonnier, l.ms_ssim];
        if ws.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || ws.iter().sum::<f32>() <= 0.0 {
            return bad("loss weights must be >= 0 with a positive sum");
        }
        if l.ms_ssim > 0.0 {
            let coarsest = d.patch >> (l.ms_ssim_scales.max(1) - 1);
            if l.ms_ssim_scales == 0 || coarsest < crate::loss::SSIM_WINDOW {
                return bad("loss.ms_ssim_scales too many for data.patch");
            }
        }
        let o = &self.optim;
        if !(o.lr > 0.0 && o.lr.is_finite() && (0.0..=1.0).contains(&o.min_lr_ratio)) {
            return bad("optim.lr must be positive and optim.min_lr_ratio in [0, 1]");
        }
        if o.optimizer != "adamw" && o.optimizer != "adam" {
            return bad("optim.optimizer: adamw or adam");
        }
        if o.clip_norm.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
            return bad("optim.clip_norm must be positive");
        }
        let r = &self.run;
        if r.steps == 0 || r.checkpoint_every == 0 || r.validate_every == 0 {
            return bad("run.steps, run.checkpoint_every and run.validate_every must be positive");
        }
        let v = &r.validation;
        if v.isos.is_empty() || v.isos.iter().any(|i| !(*i > 0.0 && i.is_finite())) {
            return bad("run.validation.isos: at least one positive ISO");
        }
        if v.frames.is_empty() && v.dead_leaves == 0 {
            return bad("run.validation needs frames or dead_leaves");
        }
        if v.size == 0 || !v.size.is_multiple_of(m) {
            return bad(&format!(
                "run.validation.size must be a positive multiple of {m}"
            ));
        }
        self.model.check().map_err(TrainError::Config)
    }
}
