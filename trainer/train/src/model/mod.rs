//! The model families: each a burn `Module` built from a serialisable config, with its size
//! multiple, receptive field, MAC count and export to `.rnm`.
//!
//! - [`pmrid`]: PMRID-style (separable 5x5 encoder, transposed-convolution decoder, additive
//!   skips); PMRID's own widths load the published weights.
//! - [`unet`]: a UNet (dense 3x3 convolutions, strided 2x2 down, transposed 2x2 up,
//!   concatenated skips) whose small receptive field keeps exact tiling cheap.
//!
//! Every family maps 4 packed planes to 4 with a global residual; noise conditioning is the
//! k-sigma transform the runtime applies around the network (declared in the exported file).

pub mod names;
pub mod pmrid;
pub mod unet;

use burn::prelude::*;
use rawnr_core::format::{InputConvention, NoiseConditioning};
use rawnr_core::noise::NoiseCurves;
use serde::{Deserialize, Serialize};

pub use pmrid::{Pmrid, PmridConfig};
pub use unet::{Unet, UnetConfig};

use crate::TrainError;

/// Packed size of the benchmark frame (a 3472x4624 Bayer frame) for MAC reports.
pub const BENCH_PACKED: (usize, usize) = (3472 / 2, 4624 / 2);

/// Which network to train, and its shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum ModelConfig {
    /// PMRID-style.
    Pmrid(PmridConfig),
    /// UNet.
    Unet(UnetConfig),
}

/// A network of one of the families.
// One long-lived value per run: its size does not matter, and burn's derive takes modules by
// value (no Box).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Denoiser {
    /// PMRID-style.
    Pmrid(Pmrid),
    /// UNet.
    Unet(Unet),
}

/// What an exported file declares besides the weights (how the runtime feeds the network).
#[derive(Debug, Clone, Copy)]
pub struct ExportMeta<'a> {
    /// Model name stored in the file.
    pub name: &'a str,
    /// Input scale the network was trained with.
    pub input_scale: f32,
    /// k-sigma anchor ISO.
    pub anchor_iso: f32,
    /// The training profile's curves pooled over channels (the model's default noise).
    pub default_noise: NoiseCurves,
    /// Tiling halo (packed pixels); `None`: [`ModelConfig::default_halo`].
    pub halo: Option<u32>,
    /// Clipping below black and noise channels, as the training data followed them.
    pub input: InputConvention,
}

impl ExportMeta<'_> {
    /// The file's metadata with tiling halo `halo`.
    pub fn model_meta(&self, halo: u32) -> rawnr_import::pmrid::ModelMeta<'_> {
        rawnr_import::pmrid::ModelMeta {
            name: self.name,
            input_scale: self.input_scale,
            noise: NoiseConditioning::KSigma {
                anchor_iso: self.anchor_iso,
            },
            default_noise: self.default_noise,
            input: self.input,
            halo,
        }
    }
}

impl ModelConfig {
    /// Builds a freshly initialised network on `device`.
    pub fn init(&self, device: &Device) -> Denoiser {
        match self {
            ModelConfig::Pmrid(c) => Denoiser::Pmrid(c.init(device)),
            ModelConfig::Unet(c) => Denoiser::Unet(c.init(device)),
        }
    }

    /// Input sides must be multiples of this (packed pixels).
    pub fn size_multiple(&self) -> usize {
        match self {
            ModelConfig::Pmrid(_) => pmrid::SIZE_MULTIPLE,
            ModelConfig::Unet(c) => c.size_multiple(),
        }
    }

    /// Receptive-field radius in packed pixels: an output pixel depends on inputs at most
    /// this far away (on each axis).
    pub fn receptive_radius(&self) -> usize {
        match self {
            ModelConfig::Pmrid(c) => c.receptive_radius(),
            ModelConfig::Unet(c) => c.receptive_radius(),
        }
    }

    /// Multiply-accumulates for a packed input of `h x w`.
    pub fn macs(&self, h: usize, w: usize) -> u64 {
        match self {
            ModelConfig::Pmrid(c) => c.macs(h, w),
            ModelConfig::Unet(c) => c.macs(h, w),
        }
    }

    /// The exact-tiling halo: the receptive radius rounded up to the size multiple.
    pub fn exact_halo(&self) -> usize {
        self.receptive_radius()
            .next_multiple_of(self.size_multiple())
    }

    /// The halo an export declares unless told otherwise: the exact one, except for the
    /// PMRID family, whose receptive field (about 500 packed pixels) would make 512-px tiles
    /// 25x as costly; it declares PMRID's measured halo (64: within 1 DN of one whole-frame
    /// pass, `models/pmrid.md`; streamed stripes, the default layout, need no vertical halo).
    pub fn default_halo(&self) -> usize {
        match self {
            ModelConfig::Pmrid(_) => {
                (rawnr_import::pmrid::PMRID_DEFAULT_HALO as usize).min(self.exact_halo())
            }
            ModelConfig::Unet(_) => self.exact_halo(),
        }
    }

    /// Checks widths and depths.
    pub fn check(&self) -> Result<(), String> {
        match self {
            ModelConfig::Pmrid(c) => c.check(),
            ModelConfig::Unet(c) => c.check(),
        }
    }

    /// Short family name.
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Pmrid(_) => "pmrid",
            ModelConfig::Unet(_) => "unet",
        }
    }
}

impl Denoiser {
    /// Denoises a batch `[n, 4, h, w]` in the network domain.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Denoiser::Pmrid(m) => m.forward(x),
            Denoiser::Unet(m) => m.forward(x),
        }
    }

    /// The network as a `.rnm` model file.
    pub fn export(&self, cfg: &ModelConfig, meta: &ExportMeta<'_>) -> Result<Vec<u8>, TrainError> {
        let halo = meta.halo.unwrap_or(cfg.default_halo() as u32);
        match (self, cfg) {
            (Denoiser::Pmrid(m), ModelConfig::Pmrid(c)) => m.export(c, meta, halo),
            (Denoiser::Unet(m), ModelConfig::Unet(c)) => m.export(c, meta, halo),
            _ => Err(TrainError::Config(
                "model and config families differ".into(),
            )),
        }
    }

    /// The network's tensors by name (`conv0.conv.weight`, ...).
    pub fn named_tensors(&self) -> names::Tensors {
        match self {
            Denoiser::Pmrid(m) => names::collect(m),
            Denoiser::Unet(m) => names::collect(m),
        }
    }

    /// Replaces every tensor by the one of the same name in `tensors` (all must be present
    /// with the same shapes, and no other).
    pub fn load_tensors(self, tensors: &names::Tensors) -> Result<Self, TrainError> {
        Ok(match self {
            Denoiser::Pmrid(m) => Denoiser::Pmrid(names::load(m, tensors)?),
            Denoiser::Unet(m) => Denoiser::Unet(names::load(m, tensors)?),
        })
    }
}

/// MAC counter over the layers of a network.
#[derive(Debug, Default, Clone, Copy)]
pub struct Macs(pub u64);

impl Macs {
    /// A convolution producing `out_px` pixels of `cout` channels from `cin` with `groups`
    /// and a `k x k` kernel.
    pub fn conv(&mut self, out_px: usize, cin: usize, cout: usize, k: usize, groups: usize) {
        self.0 += (out_px * cout * (cin / groups) * k * k) as u64;
    }

    /// A 2x2 stride-2 transposed convolution from `in_px` pixels.
    pub fn conv_transpose2x2(&mut self, in_px: usize, cin: usize, cout: usize) {
        self.0 += (in_px * cin * cout * 4) as u64;
    }
}
