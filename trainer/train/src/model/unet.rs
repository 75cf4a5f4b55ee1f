//! A UNet for packed raw (in the spirit of AI_NR-style raw denoisers): per level two 3x3
//! convolutions with leaky ReLU, 2x2 stride-2 convolutions down, 2x2 stride-2 transposed
//! convolutions up, skips concatenated, a 3x3 head and the global residual. Dense 3x3 layers
//! and a shallow depth keep the receptive field small, so exact tiling (halo = receptive
//! field) stays cheap.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;
use rawnr_core::builder::{ConvSpec, ModelBuilder, ValueId};
use rawnr_core::format::Activation;
use serde::{Deserialize, Serialize};

use super::{names, ExportMeta, Macs};
use crate::TrainError;

/// Widths and depth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetConfig {
    /// Channels at full resolution (doubled per level).
    pub width: usize,
    /// Down-sampling steps (levels below full resolution).
    pub depth: usize,
    /// Negative slope of the leaky ReLU.
    #[serde(default = "default_slope")]
    pub slope: f32,
}

fn default_slope() -> f32 {
    0.2
}

impl UnetConfig {
    /// Input sides must be multiples of this.
    pub fn size_multiple(&self) -> usize {
        1 << self.depth
    }

    /// Checks width and depth.
    pub fn check(&self) -> Result<(), String> {
        if self.width == 0 || self.width << self.depth > 4096 || self.depth > 6 {
            return Err("unet: width >= 1, depth <= 6, width * 2^depth <= 4096".into());
        }
        if !(self.slope.is_finite() && (0.0..1.0).contains(&self.slope)) {
            return Err("unet: slope in [0, 1)".into());
        }
        Ok(())
    }

    fn ch(&self, level: usize) -> usize {
        self.width << level
    }

    /// Builds the network with random weights.
    pub fn init(&self, device: &Device) -> Unet {
        let enc = (0..self.depth)
            .map(|l| Level::new(if l == 0 { 4 } else { self.ch(l) }, self.ch(l), device))
            .collect();
        let down = (0..self.depth)
            .map(|l| conv(self.ch(l), self.ch(l + 1), 2, 2, 0, device))
            .collect();
        let bottom = Level::new(self.ch(self.depth), self.ch(self.depth), device);
        let up = (0..self.depth)
            .rev()
            .map(|l| {
                ConvTranspose2dConfig::new([self.ch(l + 1), self.ch(l)], [2, 2])
                    .with_stride([2, 2])
                    .init(device)
            })
            .collect();
        let dec = (0..self.depth)
            .rev()
            .map(|l| Level::new(2 * self.ch(l), self.ch(l), device))
            .collect();
        Unet {
            enc,
            down,
            bottom,
            up,
            dec,
            head: conv(self.width, 4, 3, 1, 1, device),
            slope: self.slope as f64,
        }
    }

    /// Receptive-field radius in packed pixels.
    pub fn receptive_radius(&self) -> usize {
        let mut r = 0;
        for l in 0..self.depth {
            r += 2 << l; // two 3x3 at scale 2^l
            r += 1 << l; // 2x2 stride-2 down reaches one pixel further
        }
        r += 2 << self.depth; // bottom
        for l in (0..self.depth).rev() {
            r += 1 << l; // 2x2 up: within one fine pixel of the coarse one
            r += 2 << l; // two 3x3
        }
        r + 1 // head
    }

    /// Multiply-accumulates at a packed input of `h x w`.
    pub fn macs(&self, h: usize, w: usize) -> u64 {
        let px = |l: usize| (h >> l) * (w >> l);
        let mut m = Macs::default();
        for l in 0..self.depth {
            let cin = if l == 0 { 4 } else { self.ch(l) };
            m.conv(px(l), cin, self.ch(l), 3, 1);
            m.conv(px(l), self.ch(l), self.ch(l), 3, 1);
            m.conv(px(l + 1), self.ch(l), self.ch(l + 1), 2, 1);
        }
        let d = self.depth;
        m.conv(px(d), self.ch(d), self.ch(d), 3, 1);
        m.conv(px(d), self.ch(d), self.ch(d), 3, 1);
        for l in (0..self.depth).rev() {
            m.conv_transpose2x2(px(l + 1), self.ch(l + 1), self.ch(l));
            m.conv(px(l), 2 * self.ch(l), self.ch(l), 3, 1);
            m.conv(px(l), self.ch(l), self.ch(l), 3, 1);
        }
        m.conv(px(0), self.width, 4, 3, 1);
        m.0
    }
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(device)
}

/// Two 3x3 convolutions with leaky ReLU.
#[derive(Module, Debug)]
pub struct Level {
    /// First.
    pub conv0: Conv2d,
    /// Second.
    pub conv1: Conv2d,
}

impl Level {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Level {
            conv0: conv(cin, cout, 3, 1, 1, device),
            conv1: conv(cout, cout, 3, 1, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>, slope: f64) -> Tensor<4> {
        let y = leaky_relu(self.conv0.forward(x), slope);
        leaky_relu(self.conv1.forward(y), slope)
    }
}

/// The UNet.
#[derive(Module, Debug)]
pub struct Unet {
    /// Encoder levels, full resolution first.
    pub enc: Vec<Level>,
    /// 2x2 stride-2 convolutions after each encoder level.
    pub down: Vec<Conv2d>,
    /// Coarsest level.
    pub bottom: Level,
    /// Transposed convolutions, coarsest first.
    pub up: Vec<ConvTranspose2d>,
    /// Decoder levels (on the concatenation of the up-sampled path and the skip), coarsest first.
    pub dec: Vec<Level>,
    /// 3x3 head to 4 planes.
    pub head: Conv2d,
    /// Leaky ReLU slope.
    #[module(skip)]
    pub slope: f64,
}

impl Unet {
    /// `x + net(x)` on `[n, 4, h, w]`, sides multiples of `2^depth`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = self.slope;
        let mut skips = Vec::new();
        let mut y = x.clone();
        for (level, down) in self.enc.iter().zip(&self.down) {
            let f = level.forward(y, s);
            skips.push(f.clone());
            y = leaky_relu(down.forward(f), s);
        }
        let mut y = self.bottom.forward(y, s);
        for ((up, level), skip) in self.up.iter().zip(&self.dec).zip(skips.into_iter().rev()) {
            let u = leaky_relu(up.forward(y), s);
            y = level.forward(Tensor::cat(vec![u, skip], 1), s);
        }
        x + self.head.forward(y)
    }

    /// The `.rnm` of this network.
    pub fn export(
        &self,
        cfg: &UnetConfig,
        meta: &ExportMeta<'_>,
        halo: u32,
    ) -> Result<Vec<u8>, TrainError> {
        let t = names::collect(self);
        let get = |name: &str| -> Result<&names::Array, TrainError> {
            t.get(name)
                .ok_or_else(|| TrainError::Input(format!("missing tensor {name}")))
        };
        let act = Activation::LeakyRelu(cfg.slope);
        let mut b = meta.model_meta(halo).builder(cfg.size_multiple() as u32);
        let conv = |b: &mut ModelBuilder,
                    name: &str,
                    x: ValueId,
                    spec: ConvSpec|
         -> Result<ValueId, TrainError> {
            let w = get(&format!("{name}.weight"))?;
            let bias = get(&format!("{name}.bias"))?;
            let s: [usize; 4] = w.shape.clone().try_into().expect("4-d weight");
            Ok(b.conv2d(name, x, &w.data, s, Some(&bias.data), spec))
        };
        let level = |b: &mut ModelBuilder, name: &str, x: ValueId| -> Result<ValueId, TrainError> {
            let y = conv(b, &format!("{name}.conv0"), x, ConvSpec::same(3).act(act))?;
            conv(b, &format!("{name}.conv1"), y, ConvSpec::same(3).act(act))
        };
        let x = b.input();
        let mut skips = Vec::new();
        let mut y = x;
        for l in 0..cfg.depth {
            let f = level(&mut b, &format!("enc.{l}"), y)?;
            skips.push(f);
            let spec = ConvSpec {
                stride: [2, 2],
                pad: [0; 4],
                groups: 1,
                activation: act,
            };
            y = conv(&mut b, &format!("down.{l}"), f, spec)?;
        }
        let mut y = level(&mut b, "bottom", y)?;
        for (i, skip) in skips.into_iter().rev().enumerate() {
            let w = get(&format!("up.{i}.weight"))?;
            let bias = get(&format!("up.{i}.bias"))?;
            let s: [usize; 4] = w.shape.clone().try_into().expect("4-d weight");
            let spec = ConvSpec {
                stride: [2, 2],
                pad: [0; 4],
                groups: 1,
                activation: act,
            };
            let u = b.conv_transpose2d(&format!("up.{i}"), y, &w.data, s, Some(&bias.data), spec);
            let c = b.concat(&[u, skip]);
            y = level(&mut b, &format!("dec.{i}"), c)?;
        }
        let o = conv(&mut b, "head", y, ConvSpec::same(3))?;
        let out = b.add(x, o, Activation::None);
        Ok(b.finish(out)?)
    }
}
