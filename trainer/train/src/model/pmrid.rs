//! PMRID-style network (Wang et al., ECCV 2020): a 3x3 stem, four encoder stages of residual
//! blocks of separable 5x5 convolutions (the first of each with stride 2 and a separable 3x3
//! projection), a separable 3x3 bridge, four decoder stages (residual pair of separable 3x3,
//! 2x2 transposed convolution, separable 3x3 projection of the encoder skip added), a residual
//! pair and a 3x3 head, plus the global residual. Field names follow PMRID's checkpoint, so
//! the published weights load by name and export goes through the importer's graph
//! ([`rawnr_import::pmrid::build_shaped`]: one definition of the PMRID graph).

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::activation::relu;
use rawnr_import::pmrid::{build_shaped, PmridShape};
use serde::{Deserialize, Serialize};

use super::{names, ExportMeta, Macs};
use crate::TrainError;

/// Input sides must be multiples of this (four stride-2 stages, and PMRID's reference pads
/// to 32).
pub const SIZE_MULTIPLE: usize = 32;

/// Widths and depths (PMRID's own by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PmridConfig {
    /// Channels of the stem (and of the last skip).
    pub stem: usize,
    /// Output channels of the four encoder stages.
    pub enc: [usize; 4],
    /// Residual blocks per encoder stage.
    pub blocks: [usize; 4],
    /// Output channels of the bridge.
    pub bridge: usize,
    /// Output channels of the four decoder stages.
    pub dec: [usize; 4],
}

impl Default for PmridConfig {
    fn default() -> Self {
        Self::from_shape(PmridShape::PMRID)
    }
}

impl PmridConfig {
    fn from_shape(s: PmridShape) -> Self {
        PmridConfig {
            stem: s.stem,
            enc: s.enc,
            blocks: s.blocks,
            bridge: s.bridge,
            dec: s.dec,
        }
    }

    /// The importer's shape.
    pub fn shape(&self) -> PmridShape {
        PmridShape {
            stem: self.stem,
            enc: self.enc,
            blocks: self.blocks,
            bridge: self.bridge,
            dec: self.dec,
        }
    }

    /// Checks the widths (encoder blocks have a bottleneck of a quarter of their width).
    pub fn check(&self) -> Result<(), String> {
        let widths = [self.stem, self.bridge]
            .into_iter()
            .chain(self.enc)
            .chain(self.dec);
        if widths.clone().any(|w| w == 0 || w > 4096)
            || self.blocks.iter().any(|&b| b == 0 || b > 64)
        {
            return Err("pmrid: widths 1..=4096, blocks 1..=64".into());
        }
        if self.enc.iter().any(|&w| w % 4 != 0) {
            return Err("pmrid: encoder widths must be multiples of 4".into());
        }
        Ok(())
    }

    /// Builds the network with random weights.
    pub fn init(&self, device: &Device) -> Pmrid {
        let mut enc: [Vec<EncBlock>; 4] = Default::default();
        let mut cin = self.stem;
        for (i, stage) in enc.iter_mut().enumerate() {
            let cout = self.enc[i];
            for j in 0..self.blocks[i] {
                stage.push(EncBlock::new(
                    if j == 0 { cin } else { cout },
                    cout,
                    j == 0,
                    device,
                ));
            }
            cin = cout;
        }
        let [enc1, enc2, enc3, enc4] = enc;
        let skip_c = [self.enc[2], self.enc[1], self.enc[0], self.stem];
        let mut cin = self.bridge;
        let mut dec = Vec::new();
        for (&skip, &cout) in skip_c.iter().zip(&self.dec) {
            dec.push(DecStage::new(cin, skip, cout, device));
            cin = cout;
        }
        let [dec1, dec2, dec3, dec4]: [DecStage; 4] = dec.try_into().expect("four stages");
        Pmrid {
            conv0: Head::new(4, self.stem, device),
            enc1,
            enc2,
            enc3,
            enc4,
            encdec: SepConv::new(self.enc[3], self.bridge, 3, 1, device),
            dec1,
            dec2,
            dec3,
            dec4,
            out0: ResPair::new(self.dec[3], device),
            out1: Head::new(self.dec[3], 4, device),
        }
    }

    /// Receptive-field radius in packed pixels (along the deepest path: every kernel's reach
    /// times its stage's stride).
    pub fn receptive_radius(&self) -> usize {
        let mut r = 1; // stem 3x3
        for (i, &blocks) in self.blocks.iter().enumerate() {
            let (s_in, s_out) = (1 << i, 2 << i);
            r += 2 * s_in + 2 * s_out; // first block: 5x5 stride 2, then 5x5
            r += (blocks - 1) * 4 * s_out;
        }
        r += 16; // bridge 3x3 at 1/16
        for i in 0..4 {
            let s = 16 >> i;
            r += 2 * s + s / 2; // residual pair of 3x3, then the 2x2 up
        }
        r + 2 + 1 // out0 pair, out1 3x3
    }

    /// Multiply-accumulates at a packed input of `h x w`.
    pub fn macs(&self, h: usize, w: usize) -> u64 {
        let px = |s: usize| (h / s) * (w / s);
        let mut m = Macs::default();
        let sep = |m: &mut Macs, px: usize, cin: usize, cout: usize, k: usize| {
            m.conv(px, cin, cin, k, cin);
            m.conv(px, cin, cout, 1, 1);
        };
        m.conv(px(1), 4, self.stem, 3, 1);
        let mut cin = self.stem;
        for i in 0..4 {
            let (cout, o) = (self.enc[i], px(2 << i));
            for j in 0..self.blocks[i] {
                let ci = if j == 0 { cin } else { cout };
                if j == 0 {
                    sep(&mut m, o, ci, cout, 3);
                }
                sep(&mut m, o, ci, cout / 4, 5);
                sep(&mut m, o, cout / 4, cout, 5);
            }
            cin = cout;
        }
        sep(&mut m, px(16), self.enc[3], self.bridge, 3);
        let skip_c = [self.enc[2], self.enc[1], self.enc[0], self.stem];
        let mut cin = self.bridge;
        for (i, (&skip, &cout)) in skip_c.iter().zip(&self.dec).enumerate() {
            let (coarse, fine) = (px(16 >> i), px(8 >> i));
            sep(&mut m, coarse, cin, cin, 3);
            sep(&mut m, coarse, cin, cin, 3);
            m.conv_transpose2x2(coarse, cin, cout);
            sep(&mut m, fine, skip, cout, 3);
            cin = cout;
        }
        sep(&mut m, px(1), cin, cin, 3);
        sep(&mut m, px(1), cin, cin, 3);
        m.conv(px(1), cin, 4, 3, 1);
        m.0
    }
}

fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
    bias: bool,
    device: &Device,
) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_groups(groups)
        .with_bias(bias)
        .init(device)
}

/// Depthwise k x k (no bias) then pointwise 1x1 (bias).
#[derive(Module, Debug)]
pub struct SepConv {
    /// Depthwise.
    pub depthwise: Conv2d,
    /// Pointwise.
    pub pointwise: Conv2d,
}

impl SepConv {
    fn new(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Self {
        SepConv {
            depthwise: conv(cin, cin, k, stride, cin, false, device),
            pointwise: conv(cin, cout, 1, 1, 1, true, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pointwise.forward(self.depthwise.forward(x))
    }
}

/// A plain 3x3 convolution with bias (PMRID's `conv0.conv`, `out1.conv`).
#[derive(Module, Debug)]
pub struct Head {
    /// The convolution.
    pub conv: Conv2d,
}

impl Head {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Head {
            conv: conv(cin, cout, 3, 1, 1, true, device),
        }
    }
}

/// Encoder residual block.
#[derive(Module, Debug)]
pub struct EncBlock {
    /// Stride-2 projection shortcut (first block of a stage).
    pub proj: Option<SepConv>,
    /// Separable 5x5 to a quarter of the width, ReLU.
    pub conv1: SepConv,
    /// Separable 5x5 back to the width.
    pub conv2: SepConv,
}

impl EncBlock {
    fn new(cin: usize, cout: usize, first: bool, device: &Device) -> Self {
        let s = if first { 2 } else { 1 };
        EncBlock {
            proj: first.then(|| SepConv::new(cin, cout, 3, 2, device)),
            conv1: SepConv::new(cin, cout / 4, 5, s, device),
            conv2: SepConv::new(cout / 4, cout, 5, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.proj {
            Some(p) => p.forward(x.clone()),
            None => x.clone(),
        };
        let t = self.conv2.forward(relu(self.conv1.forward(x)));
        relu(t + shortcut)
    }
}

/// Residual pair of separable 3x3 convolutions.
#[derive(Module, Debug)]
pub struct ResPair {
    /// First (ReLU).
    pub conv0: SepConv,
    /// Second.
    pub conv1: SepConv,
}

impl ResPair {
    fn new(c: usize, device: &Device) -> Self {
        ResPair {
            conv0: SepConv::new(c, c, 3, 1, device),
            conv1: SepConv::new(c, c, 3, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv1.forward(relu(self.conv0.forward(x.clone()))) + x
    }
}

/// Decoder stage.
#[derive(Module, Debug)]
pub struct DecStage {
    /// Residual pair at the coarse scale.
    pub decode_conv: ResPair,
    /// 2x2 stride-2 transposed convolution.
    pub upsample: ConvTranspose2d,
    /// Projection of the encoder skip (ReLU).
    pub proj_conv: SepConv,
}

impl DecStage {
    fn new(cin: usize, skip: usize, cout: usize, device: &Device) -> Self {
        DecStage {
            decode_conv: ResPair::new(cin, device),
            upsample: ConvTranspose2dConfig::new([cin, cout], [2, 2])
                .with_stride([2, 2])
                .init(device),
            proj_conv: SepConv::new(skip, cout, 3, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
        let up = self.upsample.forward(self.decode_conv.forward(x));
        up + relu(self.proj_conv.forward(skip))
    }
}

/// The PMRID-style network.
#[derive(Module, Debug)]
pub struct Pmrid {
    /// Stem.
    pub conv0: Head,
    /// Encoder stage 1 (stride 2).
    pub enc1: Vec<EncBlock>,
    /// Encoder stage 2.
    pub enc2: Vec<EncBlock>,
    /// Encoder stage 3.
    pub enc3: Vec<EncBlock>,
    /// Encoder stage 4.
    pub enc4: Vec<EncBlock>,
    /// Bridge.
    pub encdec: SepConv,
    /// Decoder stage 1 (coarsest).
    pub dec1: DecStage,
    /// Decoder stage 2.
    pub dec2: DecStage,
    /// Decoder stage 3.
    pub dec3: DecStage,
    /// Decoder stage 4.
    pub dec4: DecStage,
    /// Residual pair at full resolution.
    pub out0: ResPair,
    /// Head to 4 planes.
    pub out1: Head,
}

impl Pmrid {
    /// `x + net(x)` on `[n, 4, h, w]`, `h` and `w` multiples of [`SIZE_MULTIPLE`].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c0 = relu(self.conv0.conv.forward(x.clone()));
        let mut skips = vec![c0.clone()];
        let mut y = c0;
        for stage in [&self.enc1, &self.enc2, &self.enc3, &self.enc4] {
            for b in stage {
                y = b.forward(y);
            }
            skips.push(y.clone());
        }
        let mut y = relu(self.encdec.forward(y));
        for (i, d) in [&self.dec1, &self.dec2, &self.dec3, &self.dec4]
            .into_iter()
            .enumerate()
        {
            y = d.forward(y, skips[3 - i].clone());
        }
        let y = self.out0.forward(y);
        x + self.out1.conv.forward(y)
    }

    /// The `.rnm` of this network.
    pub fn export(
        &self,
        cfg: &PmridConfig,
        meta: &ExportMeta<'_>,
        halo: u32,
    ) -> Result<Vec<u8>, TrainError> {
        let tensors = names::collect(self);
        build_shaped(&tensors, &cfg.shape(), &meta.model_meta(halo))
            .map_err(|e| TrainError::Input(e.to_string()))
    }
}
