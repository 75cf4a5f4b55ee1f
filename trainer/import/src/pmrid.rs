//! PMRID: the network of Wang et al., ECCV 2020 (MegEngine/PMRID, Apache-2.0), rebuilt node by
//! node from its published weights.
//!
//! Architecture (packed 4-channel input, all convolutions zero-padded "same"):
//! `conv0` 3x3 4->16 + ReLU; four encoder stages of residual blocks built from separable
//! convolutions (depthwise 5x5 then pointwise 1x1), the first block of each stage with stride 2
//! and a separable 3x3 projection shortcut (16->64, 64->128, 128->256, 256->512; 2, 2, 4, 4
//! blocks); a separable 3x3 bridge 512->64 + ReLU; four decoder stages, each a residual pair of
//! separable 3x3 convolutions, a 2x2 stride-2 transposed convolution and a separable 3x3
//! projection of the encoder skip (+ ReLU) added to it; a residual pair of separable 3x3 on 16
//! channels; `out1` 3x3 16->4; and a global residual connection to the input.
//!
//! The published model was trained on a BGGR sensor whose frames PMRID's own pipeline flips
//! (`bayer[::-1, ::-1]`) into RGGB before packing the 2x2 blocks in raster order, so the network
//! takes R, Gr, Gb, B planes with red at the top-left of each block: exactly rawnr's packed
//! layout, whose packing aligns blocks on the red sample for every CFA phase. Weights are
//! copied unchanged.

use std::collections::BTreeMap;

use rawnr_core::builder::{ConvSpec, ModelBuilder, ValueId};
use rawnr_core::format::{Activation, InputConvention, NoiseChannels, NoiseConditioning};
use rawnr_core::noise::NoiseCurves;

use crate::npz::Array;
use crate::ImportError;

/// White level minus black level of the sensor PMRID was calibrated on (10-bit, black 64).
pub const PMRID_RANGE: f64 = 959.0;
/// PMRID's k(ISO) in digital numbers: slope and intercept.
pub const PMRID_K_DN: [f64; 2] = [5.995267e-4, 8.68861e-3];
/// PMRID's sigma^2(ISO) in digital numbers squared: ISO^2, ISO, 1 coefficients.
pub const PMRID_SIGMA2_DN: [f64; 3] = [7.11772e-7, 6.514934e-4, 0.11492713];
/// ISO whose noise the network was trained at (k-sigma anchor).
pub const PMRID_ANCHOR_ISO: f32 = 1600.0;
/// Network input = k-sigma-mapped signal in [0, 1] times this.
pub const PMRID_INPUT_SCALE: f32 = 256.0;
/// How PMRID was trained: its synthetic noisy inputs never went below black (clipped at 0),
/// and one k-sigma gain served all four planes. Measured with `denoise-raw eval`
/// (`models/pmrid.md`): clipping gains 2.9-6.7 dB on a 14-bit chart with IMX766 noise, the
/// pooled transform 1.7-2.8 dB with a phone profile whose R, G, B parameters differ; neither
/// changes the Halide strip with PMRID's own (uniform) profile.
pub const PMRID_INPUT_CONVENTION: InputConvention = InputConvention {
    clip_below_black: true,
    noise_channels: NoiseChannels::Pooled,
};
/// Input size multiple used by the reference implementation.
pub const PMRID_SIZE_MULTIPLE: u32 = 32;
/// Default tiling halo (packed pixels). The exact receptive field is several hundred pixels;
/// this halo keeps tiled output within the bound measured by the tests (see the model card).
pub const PMRID_DEFAULT_HALO: u32 = 64;

/// PMRID's default noise profile in normalised units.
pub fn pmrid_noise_curves() -> NoiseCurves {
    let r = PMRID_RANGE;
    NoiseCurves {
        k: [(PMRID_K_DN[0] / r) as f32, (PMRID_K_DN[1] / r) as f32],
        sigma2: [
            (PMRID_SIGMA2_DN[0] / (r * r)) as f32,
            (PMRID_SIGMA2_DN[1] / (r * r)) as f32,
            (PMRID_SIGMA2_DN[2] / (r * r)) as f32,
        ],
    }
}

struct Weights<'a> {
    arrays: &'a BTreeMap<String, Array>,
}

impl<'a> Weights<'a> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<&'a [f32], ImportError> {
        let a = self
            .arrays
            .get(name)
            .ok_or_else(|| ImportError::Missing(name.to_string()))?;
        if a.shape != shape {
            return Err(ImportError::Shape {
                name: name.to_string(),
                got: a.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        Ok(&a.data)
    }
}

struct Net<'a> {
    b: ModelBuilder,
    w: Weights<'a>,
}

impl Net<'_> {
    /// Separable conv: depthwise k x k (stride `s`, no bias) then pointwise 1x1 with bias.
    #[allow(clippy::too_many_arguments)]
    fn sep(
        &mut self,
        prefix: &str,
        x: ValueId,
        cin: usize,
        cout: usize,
        k: usize,
        s: usize,
        act: Activation,
    ) -> Result<ValueId, ImportError> {
        let dw = self
            .w
            .get(&format!("{prefix}.depthwise.weight"), &[cin, 1, k, k])?;
        let pw = self
            .w
            .get(&format!("{prefix}.pointwise.weight"), &[cout, cin, 1, 1])?;
        let pb = self.w.get(&format!("{prefix}.pointwise.bias"), &[cout])?;
        let d = self.b.conv2d(
            &format!("{prefix}.dw"),
            x,
            dw,
            [cin, 1, k, k],
            None,
            ConvSpec::same(k).stride(s).groups(cin),
        );
        Ok(self.b.conv2d(
            &format!("{prefix}.pw"),
            d,
            pw,
            [cout, cin, 1, 1],
            Some(pb),
            ConvSpec::same(1).act(act),
        ))
    }

    /// Encoder residual block; the first of a stage has stride 2 and a projection shortcut.
    fn enc_block(
        &mut self,
        prefix: &str,
        x: ValueId,
        cin: usize,
        cout: usize,
        first: bool,
    ) -> Result<ValueId, ImportError> {
        let mid = cout / 4;
        let s = if first { 2 } else { 1 };
        let shortcut = if first {
            self.sep(
                &format!("{prefix}.proj"),
                x,
                cin,
                cout,
                3,
                2,
                Activation::None,
            )?
        } else {
            x
        };
        let t = self.sep(
            &format!("{prefix}.conv1"),
            x,
            cin,
            mid,
            5,
            s,
            Activation::Relu,
        )?;
        let t = self.sep(
            &format!("{prefix}.conv2"),
            t,
            mid,
            cout,
            5,
            1,
            Activation::None,
        )?;
        Ok(self.b.add(t, shortcut, Activation::Relu))
    }

    /// Residual pair of separable 3x3 convolutions without output activation.
    fn res_pair(&mut self, prefix: &str, x: ValueId, c: usize) -> Result<ValueId, ImportError> {
        let t = self.sep(&format!("{prefix}.conv0"), x, c, c, 3, 1, Activation::Relu)?;
        let t = self.sep(&format!("{prefix}.conv1"), t, c, c, 3, 1, Activation::None)?;
        Ok(self.b.add(t, x, Activation::None))
    }

    fn dec_stage(
        &mut self,
        prefix: &str,
        x: ValueId,
        skip: ValueId,
        cin: usize,
        skip_c: usize,
        cout: usize,
    ) -> Result<ValueId, ImportError> {
        let d = self.res_pair(&format!("{prefix}.decode_conv"), x, cin)?;
        let uw = self
            .w
            .get(&format!("{prefix}.upsample.weight"), &[cin, cout, 2, 2])?;
        let ub = self.w.get(&format!("{prefix}.upsample.bias"), &[cout])?;
        let spec = ConvSpec {
            stride: [2, 2],
            pad: [0; 4],
            groups: 1,
            activation: Activation::None,
        };
        let up = self.b.conv_transpose2d(
            &format!("{prefix}.up"),
            d,
            uw,
            [cin, cout, 2, 2],
            Some(ub),
            spec,
        );
        let p = self.sep(
            &format!("{prefix}.proj_conv"),
            skip,
            skip_c,
            cout,
            3,
            1,
            Activation::Relu,
        )?;
        Ok(self.b.add(up, p, Activation::None))
    }
}

/// Widths and depths of a PMRID-style network (PMRID's own in [`PmridShape::PMRID`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmridShape {
    /// Channels of the first 3x3 convolution (and of the last skip).
    pub stem: usize,
    /// Output channels of the four encoder stages.
    pub enc: [usize; 4],
    /// Residual blocks per encoder stage (the first of each has stride 2).
    pub blocks: [usize; 4],
    /// Output channels of the bridge between encoder and decoder.
    pub bridge: usize,
    /// Output channels of the four decoder stages.
    pub dec: [usize; 4],
}

impl PmridShape {
    /// The published network: 16, encoder 64/128/256/512 with 2/2/4/4 blocks, bridge 64,
    /// decoder 64/32/32/16.
    pub const PMRID: PmridShape = PmridShape {
        stem: 16,
        enc: [64, 128, 256, 512],
        blocks: [2, 2, 4, 4],
        bridge: 64,
        dec: [64, 32, 32, 16],
    };

    /// Number of named tensors the network has.
    pub fn tensor_count(&self) -> usize {
        // conv0 and out1: 2 each; a separable conv: 3; an encoder block: 2 separable (+1
        // projection in the first); a residual pair: 2 separable; a decoder stage: a residual
        // pair, a projection and an upsampling (2).
        let enc: usize = self.blocks.iter().map(|&b| 6 * b + 3).sum();
        4 + enc + 3 + 4 * (6 + 3 + 2) + 6
    }
}

/// What a model file declares besides its weights: how the runtime feeds the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelMeta<'a> {
    /// Model name stored in the file.
    pub name: &'a str,
    /// Network input = mapped normalised signal times this.
    pub input_scale: f32,
    /// Noise conditioning (k-sigma anchor).
    pub noise: NoiseConditioning,
    /// Default noise curves (normalised units).
    pub default_noise: NoiseCurves,
    /// Clipping and noise channels of the input.
    pub input: InputConvention,
    /// Tiling halo in packed pixels.
    pub halo: u32,
}

impl ModelMeta<'_> {
    /// A builder with this metadata and inputs in multiples of `size_multiple`.
    pub fn builder(&self, size_multiple: u32) -> ModelBuilder {
        let mut b = ModelBuilder::new(self.name);
        b.input_scale(self.input_scale)
            .noise(self.noise, self.default_noise)
            .min_size_multiple(size_multiple)
            .input_convention(self.input)
            .halo(self.halo);
        b
    }
}

/// Builds the `.rnm` of a PMRID-style network of `shape` from its tensors, named as in PMRID's
/// checkpoint (`conv0.conv.weight`, `enc1.0.conv1.depthwise.weight`, ...).
pub fn build_shaped(
    arrays: &BTreeMap<String, Array>,
    shape: &PmridShape,
    meta: &ModelMeta<'_>,
) -> Result<Vec<u8>, ImportError> {
    let mut n = Net {
        b: meta.builder(PMRID_SIZE_MULTIPLE),
        w: Weights { arrays },
    };
    let x = n.b.input();
    let s = shape;

    let w0 = n.w.get("conv0.conv.weight", &[s.stem, 4, 3, 3])?;
    let b0 = n.w.get("conv0.conv.bias", &[s.stem])?;
    let c0 = n.b.conv2d(
        "conv0",
        x,
        w0,
        [s.stem, 4, 3, 3],
        Some(b0),
        ConvSpec::same(3).act(Activation::Relu),
    );

    let mut skips = vec![c0];
    let mut y = c0;
    let mut cin = s.stem;
    for (i, (&cout, &blocks)) in s.enc.iter().zip(&s.blocks).enumerate() {
        for j in 0..blocks {
            let (ci, first) = if j == 0 { (cin, true) } else { (cout, false) };
            y = n.enc_block(&format!("enc{}.{j}", i + 1), y, ci, cout, first)?;
        }
        cin = cout;
        skips.push(y);
    }
    let mut y = n.sep("encdec", y, s.enc[3], s.bridge, 3, 1, Activation::Relu)?;
    let skip_c = [s.enc[2], s.enc[1], s.enc[0], s.stem];
    let mut cin = s.bridge;
    for i in 0..4 {
        y = n.dec_stage(
            &format!("dec{}", i + 1),
            y,
            skips[3 - i],
            cin,
            skip_c[i],
            s.dec[i],
        )?;
        cin = s.dec[i];
    }
    let c = s.dec[3];
    let y = n.res_pair("out0", y, c)?;
    let w1 = n.w.get("out1.conv.weight", &[4, c, 3, 3])?;
    let b1 = n.w.get("out1.conv.bias", &[4])?;
    let o =
        n.b.conv2d("out1", y, w1, [4, c, 3, 3], Some(b1), ConvSpec::same(3));
    let out = n.b.add(x, o, Activation::None);

    let used = s.tensor_count();
    if arrays.len() != used {
        return Err(ImportError::Npy {
            name: "archive".into(),
            reason: format!("expected {used} PMRID tensors, found {}", arrays.len()),
        });
    }
    Ok(n.b.finish(out)?)
}

/// Builds the PMRID `.rnm` from its named weights (the `.npz` arrays), with tiling halo `halo`.
pub fn build(arrays: &BTreeMap<String, Array>, halo: u32) -> Result<Vec<u8>, ImportError> {
    let meta = ModelMeta {
        name: "PMRID (ECCV 2020)",
        input_scale: PMRID_INPUT_SCALE,
        noise: NoiseConditioning::KSigma {
            anchor_iso: PMRID_ANCHOR_ISO,
        },
        default_noise: pmrid_noise_curves(),
        input: PMRID_INPUT_CONVENTION,
        halo,
    };
    build_shaped(arrays, &PmridShape::PMRID, &meta)
}
