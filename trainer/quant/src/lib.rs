//! Post-training quantization of `.rnm` models.
//!
//! - [`to_f16`]: the same graph with every convolution weight stored as IEEE binary16 (biases
//!   stay f32); the runtime widens the weights and computes in f32.
//! - [`quantize_int8`]: W8A8 with the scheme of `rawnr_kernels::quant`: weights symmetric per
//!   output channel (`scale = max|w| / 127`), biases `i32` in units of
//!   `in_scale * weight_scale`, every activation `u8` with a per-tensor scale and zero point
//!   from calibration ([`Calibration`], fed by running the f32 model on noisy raw frames with
//!   [`calibrate_frame`]). The model input is quantized by a `Quantize` node; a node that makes
//!   the model output and is not a convolution (PMRID's global residual add) stays f32, and the
//!   convolution feeding it dequantizes in its output stage.
//! - [`quantize_int8_banded`]: the same with one calibration per noise band (ranges of the
//!   noise transform's gain, [`rawnr_engine::denoiser::Denoiser::noise_gain`]): one set of
//!   weights, activation ranges and biases per band, joined into one model (format version 3)
//!   whose runtime picks the band from each frame's noise; [`bands`] calibrates every band
//!   over a sensor's operating range.
#![warn(missing_docs)]

pub mod bands;

use rawnr_core::bayer::{FrameLayout, Levels};
use rawnr_core::builder::{aligned_words, ConvSpec, ConvWeights, ModelBuilder, ValueId};
use rawnr_core::format::{Activation, DType, Model, OpKind, ValueQuant, ValueType, NO_TENSOR};
use rawnr_core::noise::NoiseParams;
use rawnr_engine::denoiser::{Denoiser, TileOptions, ViaError};
use rawnr_engine::graph::Engine;

/// Errors of quantization.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// The model or a frame was rejected by the runtime.
    #[error("{0}")]
    Runtime(#[from] rawnr_core::Error),
    /// No calibration data reached a value that must be quantized.
    #[error("value {0} was never observed during calibration")]
    Unobserved(usize),
    /// The calibration does not belong to this model.
    #[error("calibration has {got} values, the model {want}")]
    CalibrationMismatch {
        /// Values in the model.
        want: usize,
        /// Values in the calibration.
        got: usize,
    },
    /// [`quantize_int8_banded`] got no band.
    #[error("no noise band to calibrate")]
    NoBands,
    /// Noise band edges or calibration cases that cannot be used.
    #[error("noise bands: {0}")]
    BadBands(&'static str),
    /// A noise band that no calibration case reaches.
    #[error("noise band {0} gets no calibration case: add noise levels (ISOs or profiles) in its gain range")]
    EmptyBand(usize),
    /// The model is already quantized or uses precisions this tool does not convert.
    #[error("node {node}: {reason}")]
    Unsupported {
        /// Node index.
        node: usize,
        /// Why.
        reason: &'static str,
    },
}

/// How a value's calibration range is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeMethod {
    /// The extremes over all calibration tiles.
    MinMax,
    /// The mean over tiles of each tile's extremes (ignores rare outliers).
    MeanTileMinMax,
    /// The clipping range that minimises the expected squared quantization error (clipping
    /// plus rounding) over the histogram of a second calibration pass
    /// ([`Calibration::begin_histograms`]).
    Mse,
    /// The union of the [`RangeMethod::Mse`] and [`RangeMethod::MeanTileMinMax`] ranges.
    MseOrMean,
}

/// Histogram bins per value in the second calibration pass.
pub const HISTOGRAM_BINS: usize = 2048;

/// Choices of [`quantize_int8`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantOptions {
    /// Range statistic of the activations.
    pub range: RangeMethod,
    /// Nodes kept in f32 (indices in the f32 model), e.g. a first convolution that sees the
    /// raw noisy input.
    pub keep_f32: Vec<usize>,
}

impl Default for QuantOptions {
    fn default() -> Self {
        QuantOptions {
            range: RangeMethod::MinMax,
            keep_f32: Vec::new(),
        }
    }
}

/// Activation statistics of every value of an f32 model, gathered tile by tile.
#[derive(Debug, Clone)]
pub struct Calibration {
    min: Vec<f32>,
    max: Vec<f32>,
    sum_min: Vec<f64>,
    sum_max: Vec<f64>,
    tiles: Vec<u64>,
    /// Second pass: per value, bounds and counts over [`HISTOGRAM_BINS`] bins.
    hist: Option<Vec<(f32, f32, Vec<u64>)>>,
}

impl Calibration {
    /// Empty statistics for a model with `n_values` values.
    pub fn new(n_values: usize) -> Self {
        Calibration {
            min: vec![f32::INFINITY; n_values],
            max: vec![f32::NEG_INFINITY; n_values],
            sum_min: vec![0.0; n_values],
            sum_max: vec![0.0; n_values],
            tiles: vec![0; n_values],
            hist: None,
        }
    }

    /// Ends the first pass (extremes) and starts the second: later observations fill a
    /// histogram per value over its first-pass range (which includes 0). Feed the same frames
    /// again, then use [`RangeMethod::Mse`].
    pub fn begin_histograms(&mut self) {
        let n = self.min.len();
        self.hist = Some(
            (0..n)
                .map(|v| {
                    let (lo, hi) = self.range(v, RangeMethod::MinMax).unwrap_or((0.0, 0.0));
                    (lo, hi, vec![0u64; HISTOGRAM_BINS])
                })
                .collect(),
        );
    }

    /// Adds one tile's data of value `v` (non-finite samples are ignored).
    pub fn observe(&mut self, v: usize, data: &[f32]) {
        if let Some(h) = self.hist.as_mut() {
            let (lo, hi, counts) = &mut h[v];
            if *hi > *lo {
                let k = HISTOGRAM_BINS as f32 / (*hi - *lo);
                for &x in data.iter().filter(|x| x.is_finite()) {
                    let b = ((x - *lo) * k).clamp(0.0, (HISTOGRAM_BINS - 1) as f32) as usize;
                    counts[b] += 1;
                }
            }
            return;
        }
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &x in data.iter().filter(|x| x.is_finite()) {
            lo = lo.min(x);
            hi = hi.max(x);
        }
        if lo > hi {
            return;
        }
        self.min[v] = self.min[v].min(lo);
        self.max[v] = self.max[v].max(hi);
        self.sum_min[v] += lo as f64;
        self.sum_max[v] += hi as f64;
        self.tiles[v] += 1;
    }

    /// Adds the first-pass statistics of `other` (the same model's values, before
    /// [`Calibration::begin_histograms`]) to these.
    pub fn merge(&mut self, other: &Calibration) -> Result<(), QuantError> {
        if other.min.len() != self.min.len() {
            return Err(QuantError::CalibrationMismatch {
                want: self.min.len(),
                got: other.min.len(),
            });
        }
        if self.hist.is_some() || other.hist.is_some() {
            return Err(QuantError::BadBands(
                "calibrations merge in the first pass only",
            ));
        }
        for v in 0..self.min.len() {
            self.min[v] = self.min[v].min(other.min[v]);
            self.max[v] = self.max[v].max(other.max[v]);
            self.sum_min[v] += other.sum_min[v];
            self.sum_max[v] += other.sum_max[v];
            self.tiles[v] += other.tiles[v];
        }
        Ok(())
    }

    /// Tiles seen (per value, the input's count).
    pub fn tiles(&self) -> u64 {
        self.tiles.first().copied().unwrap_or(0)
    }

    /// The range of value `v`, always containing 0.
    pub fn range(&self, v: usize, method: RangeMethod) -> Option<(f32, f32)> {
        let n = *self.tiles.get(v)?;
        if n == 0 {
            return None;
        }
        let (lo, hi) = match method {
            RangeMethod::MinMax => (self.min[v], self.max[v]),
            RangeMethod::MeanTileMinMax => (
                (self.sum_min[v] / n as f64) as f32,
                (self.sum_max[v] / n as f64) as f32,
            ),
            RangeMethod::Mse => return self.mse_range(v),
            RangeMethod::MseOrMean => {
                let (a, b) = self.mse_range(v)?;
                let (c, d) = self.range(v, RangeMethod::MeanTileMinMax)?;
                (a.min(c), b.max(d))
            }
        };
        Some((lo.min(0.0), hi.max(0.0)))
    }

    /// The range `[a * lo, b * hi]` (fractions of the first-pass range, on a grid) with the
    /// least expected squared error: clipped samples contribute their distance to the range,
    /// the others the rounding error `step^2 / 12`.
    fn mse_range(&self, v: usize) -> Option<(f32, f32)> {
        let (lo, hi, counts) = self.hist.as_ref()?.get(v)?;
        let (lo, hi) = (*lo as f64, *hi as f64);
        if hi <= lo {
            return Some((lo as f32, hi as f32));
        }
        let width = (hi - lo) / HISTOGRAM_BINS as f64;
        let centres: Vec<(f64, f64)> = counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (lo + (i as f64 + 0.5) * width, c as f64))
            .collect();
        let cost = |a: f64, b: f64| {
            let step = ((b - a) / 255.0).max(1e-12);
            centres
                .iter()
                .map(|&(x, c)| {
                    let d = if x < a {
                        a - x
                    } else if x > b {
                        x - b
                    } else {
                        0.0
                    };
                    c * (d * d + step * step / 12.0)
                })
                .sum::<f64>()
        };
        let grid: Vec<f64> = (1..=64).map(|i| i as f64 / 64.0).collect();
        let mut best = (f64::INFINITY, lo, hi);
        // Negative and positive sides shrink independently (the lower side only if it exists).
        let lo_grid: &[f64] = if lo < 0.0 { &grid } else { &[1.0] };
        for &fa in lo_grid {
            for &fb in &grid {
                let (a, b) = (lo * fa, hi * fb);
                let c = cost(a, b);
                if c < best.0 {
                    best = (c, a, b);
                }
            }
        }
        Some((best.1 as f32, best.2 as f32))
    }

    /// The u8 quantization of value `v`: `scale = (hi - lo) / 255`, zero point `-lo / scale`
    /// rounded (so real 0 is exact).
    pub fn quant(&self, v: usize, method: RangeMethod) -> Option<ValueQuant> {
        let (lo, hi) = self.range(v, method)?;
        let scale = ((hi - lo) / 255.0).max(1e-6);
        let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as i32;
        Some(ValueQuant { scale, zero_point })
    }
}

/// Runs the f32 model over one noisy frame, tile by tile as the runtime does, and adds every
/// value's statistics to `cal`.
pub fn calibrate_frame(
    model: Model<'_>,
    frame: &[u16],
    layout: &FrameLayout,
    levels: &Levels,
    noise: NoiseParams,
    opts: &TileOptions,
    cal: &mut Calibration,
) -> Result<(), QuantError> {
    if cal.min.len() != model.n_values() {
        return Err(QuantError::CalibrationMismatch {
            want: model.n_values(),
            got: cal.min.len(),
        });
    }
    let engine = Engine::new(model).with_fusion(false);
    let d = Denoiser::new(engine.clone());
    let fp = d.prepare(layout, levels, noise, opts)?;
    let plan = engine.plan(fp.grid.max_region_h, fp.grid.max_region_w)?;
    let mut scratch = vec![0f32; plan.scratch_len];
    let mut shapes = plan.shapes.clone();
    let out_v = model.info().output_value as usize;
    let mut output = vec![0u16; frame.len()];
    let res = d.denoise_via(
        &fp,
        frame,
        layout,
        &mut output,
        layout,
        |input: &[f32], h: usize, w: usize, out: &mut [f32]| -> Result<(), rawnr_core::Error> {
            engine.infer_shapes(h, w, &mut shapes)?;
            scratch[plan.range(0, &shapes[0])].copy_from_slice(input);
            engine.run_observed(&plan, &shapes, &mut scratch, &mut |v, data| {
                cal.observe(v, data)
            })?;
            out.copy_from_slice(&scratch[plan.range(out_v, &shapes[out_v])]);
            Ok(())
        },
        &|_, _| {},
    );
    match res {
        Ok(()) => Ok(()),
        Err(ViaError::Runtime(e)) | Err(ViaError::Backend(e)) => Err(e.into()),
    }
}

fn copy_info(m: &Model<'_>, suffix: &str) -> ModelBuilder {
    let info = m.info();
    let mut b = ModelBuilder::new(&format!("{}{suffix}", info.name_str()));
    b.input_scale(info.input_scale)
        .noise(info.noise, info.default_noise)
        .input_convention(info.input)
        .halo(info.halo)
        .min_size_multiple(info.size_multiple);
    b
}

fn spec_of(n: &rawnr_core::format::Node) -> ConvSpec {
    ConvSpec {
        stride: [n.stride[0] as usize, n.stride[1] as usize],
        pad: n.pad.map(|p| p as usize),
        groups: n.groups as usize,
        activation: n.activation,
    }
}

fn wdims(m: &Model<'_>, t: u32) -> [usize; 4] {
    m.tensor(t as usize).dims.map(|d| d as usize)
}

fn tensor_name(m: &Model<'_>, t: u32) -> String {
    m.tensor(t as usize).name_str().to_string()
}

fn check_f32(m: &Model<'_>, i: usize) -> Result<(), QuantError> {
    let n = m.node(i);
    let unsupported = |reason| QuantError::Unsupported { node: i, reason };
    if matches!(n.op, OpKind::Quantize | OpKind::Dequantize) {
        return Err(unsupported("the model is already quantized"));
    }
    if matches!(n.op, OpKind::Conv2d | OpKind::ConvTranspose2d)
        && m.tensor(n.weight as usize).dtype != DType::F32
    {
        return Err(unsupported("weights are not f32"));
    }
    Ok(())
}

/// Re-emits a non-convolution node on the builder's values.
fn emit_plain(b: &mut ModelBuilder, n: &rawnr_core::format::Node, ins: &[ValueId]) -> ValueId {
    match n.op {
        OpKind::Relu => b.relu(ins[0]),
        OpKind::LeakyRelu => match n.activation {
            Activation::LeakyRelu(a) => b.leaky_relu(ins[0], a),
            _ => b.relu(ins[0]),
        },
        OpKind::Add => b.add(ins[0], ins[1], n.activation),
        OpKind::Concat => b.concat(ins),
        OpKind::PixelShuffle => b.pixel_shuffle(ins[0], n.factor as usize),
        OpKind::PixelUnshuffle => b.pixel_unshuffle(ins[0], n.factor as usize),
        OpKind::Conv2d | OpKind::ConvTranspose2d | OpKind::Quantize | OpKind::Dequantize => {
            unreachable!("emit_plain is called for element-wise and layout ops only")
        }
    }
}

/// The model with f16 weights (f32 biases, same graph).
pub fn to_f16(m: &Model<'_>) -> Result<Vec<u8>, QuantError> {
    let mut b = copy_info(m, "");
    let mut map = vec![b.input()];
    for i in 0..m.n_nodes() {
        check_f32(m, i)?;
        let n = m.node(i);
        let ins: Vec<ValueId> = n.inputs[..n.n_inputs as usize]
            .iter()
            .map(|&v| map[v as usize])
            .collect();
        let v = match n.op {
            OpKind::Conv2d | OpKind::ConvTranspose2d => {
                let w: Vec<u16> = m
                    .tensor_f32(n.weight as usize)
                    .iter()
                    .map(|&x| half::f16::from_f32(x).to_bits())
                    .collect();
                let bias = (n.bias != NO_TENSOR).then(|| m.tensor_f32(n.bias as usize));
                b.conv_node(
                    n.op,
                    &tensor_name(m, n.weight),
                    ins[0],
                    ConvWeights::F16 { weight: &w, bias },
                    wdims(m, n.weight),
                    spec_of(&n),
                )
            }
            _ => emit_plain(&mut b, &n, &ins),
        };
        map.push(v);
    }
    Ok(b.finish(map[m.info().output_value as usize])?)
}

/// Per output channel symmetric int8 weights: `(weights, scales)`.
fn quantize_weights(m: &Model<'_>, n: &rawnr_core::format::Node) -> (Vec<i8>, Vec<f32>) {
    let w = m.tensor_f32(n.weight as usize);
    let [d0, d1, kh, kw] = wdims(m, n.weight);
    let out_c = n.out_channels as usize;
    let k = kh * kw;
    // Output channel of each weight element.
    let oc_of = |idx: usize| -> usize {
        if n.op == OpKind::Conv2d {
            idx / (d1 * k)
        } else {
            // [in, out / groups, kh, kw]: in channel ic is in group ic / (in / groups).
            let ic = idx / (d1 * k);
            let ocg = (idx / k) % d1;
            let g = ic / (d0 / n.groups.max(1) as usize);
            g * d1 + ocg
        }
    };
    let mut max = vec![0f32; out_c];
    for (idx, &x) in w.iter().enumerate() {
        let oc = oc_of(idx);
        max[oc] = max[oc].max(x.abs());
    }
    let scales: Vec<f32> = max
        .iter()
        .map(|&a| {
            if a > 0.0 && a.is_finite() {
                a / 127.0
            } else {
                1.0
            }
        })
        .collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(idx, &x)| (x / scales[oc_of(idx)]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scales)
}

/// Quantizes an f32 model to W8A8 with one calibration per noise band: `bands` holds each
/// band's least noise-transform gain (the first 0, then increasing) and calibration. The
/// weights are shared; each band has its own activation ranges and int8 biases. One band
/// gives the model of [`quantize_int8`].
pub fn quantize_int8_banded(
    m: &Model<'_>,
    bands: &[(f32, Calibration)],
    opts: &QuantOptions,
) -> Result<Vec<u8>, QuantError> {
    let Some(((_, first), rest)) = bands.split_first() else {
        return Err(QuantError::NoBands);
    };
    let base = quantize_int8(m, first, opts)?;
    if rest.is_empty() {
        return Ok(base);
    }
    // The parser reads 4-byte aligned bytes (the quantizer's output is a whole number of
    // words).
    let others: Vec<(f32, Vec<u32>)> = rest
        .iter()
        .map(|(g, cal)| Ok((*g, aligned_words(&quantize_int8(m, cal, opts)?))))
        .collect::<Result<_, QuantError>>()?;
    let base = aligned_words(&base);
    let base = Model::parse(bytemuck::cast_slice(&base))?;
    let others: Vec<(f32, Model<'_>)> = others
        .iter()
        .map(|(g, w)| Ok((*g, Model::parse(bytemuck::cast_slice(w))?)))
        .collect::<Result<_, QuantError>>()?;
    Ok(rawnr_core::builder::join_noise_bands(&base, &others)?)
}

/// Quantizes an f32 model to W8A8 with the activation ranges of `cal`.
pub fn quantize_int8(
    m: &Model<'_>,
    cal: &Calibration,
    opts: &QuantOptions,
) -> Result<Vec<u8>, QuantError> {
    let method = opts.range;
    let nv = m.n_values();
    if cal.min.len() != nv {
        return Err(QuantError::CalibrationMismatch {
            want: nv,
            got: cal.min.len(),
        });
    }
    let out_v = m.info().output_value as usize;
    // Float nodes: leaky ReLU, plain or fused into an add (u8 outputs take only ReLU), and
    // the non-convolution node making the output. Convolutions always run in int8; one with a
    // fused leaky ReLU dequantizes in its output stage.
    let is_conv = |i: usize| matches!(m.node(i).op, OpKind::Conv2d | OpKind::ConvTranspose2d);
    let leaky = |i: usize| matches!(m.node(i).activation, Activation::LeakyRelu(_));
    let float_node =
        |i: usize| opts.keep_f32.contains(&i) || (!is_conv(i) && (leaky(i) || i + 1 == out_v));
    let mut need_u8 = vec![false; nv];
    let mut need_f32 = vec![false; nv];
    need_f32[out_v] = true;
    for i in 0..m.n_nodes() {
        check_f32(m, i)?;
        let n = m.node(i);
        for &v in &n.inputs[..n.n_inputs as usize] {
            if float_node(i) {
                need_f32[v as usize] = true;
            } else {
                need_u8[v as usize] = true;
            }
        }
    }
    let quant = |v: usize| cal.quant(v, method).ok_or(QuantError::Unobserved(v));
    let mut b = copy_info(m, "-int8");
    // Each original value as f32 and/or u8 in the new graph.
    let mut as_f32: Vec<Option<ValueId>> = vec![None; nv];
    let mut as_u8: Vec<Option<ValueId>> = vec![None; nv];
    as_f32[0] = Some(b.input());
    if need_u8[0] {
        as_u8[0] = Some(b.quantize(b.input(), quant(0)?));
    }
    for i in 0..m.n_nodes() {
        let n = m.node(i);
        let v = i + 1;
        let inputs = &n.inputs[..n.n_inputs as usize];
        if float_node(i) {
            let ins: Vec<ValueId> = inputs
                .iter()
                .map(|&x| as_f32[x as usize].expect("f32 form of every float-node input"))
                .collect();
            let y = if is_conv(i) {
                let bias = (n.bias != NO_TENSOR).then(|| m.tensor_f32(n.bias as usize));
                b.conv_node(
                    n.op,
                    &tensor_name(m, n.weight),
                    ins[0],
                    ConvWeights::F32 {
                        weight: m.tensor_f32(n.weight as usize),
                        bias,
                    },
                    wdims(m, n.weight),
                    spec_of(&n),
                )
            } else {
                emit_plain(&mut b, &n, &ins)
            };
            as_f32[v] = Some(y);
            if need_u8[v] {
                as_u8[v] = Some(b.quantize(y, quant(v)?));
            }
            continue;
        }
        let ins: Vec<ValueId> = inputs
            .iter()
            .map(|&x| as_u8[x as usize].expect("u8 form of every int8-node input"))
            .collect();
        if is_conv(i) {
            // The input's quantization as built (a ReLU or layout node keeps its input's).
            let ValueType::U8(qx) = b.value_type(ins[0]) else {
                unreachable!("int8 convolutions read u8 values")
            };
            let (w, scales) = quantize_weights(m, &n);
            let terms = w.len() / n.out_channels.max(1) as usize;
            let limit = (i32::MAX as i64 - terms as i64 * 128 * 255).max(0) as f64;
            let bias: Option<Vec<i32>> = (n.bias != NO_TENSOR).then(|| {
                m.tensor_f32(n.bias as usize)
                    .iter()
                    .zip(&scales)
                    .map(|(&bv, &s)| {
                        let q = (bv as f64 / (qx.scale as f64 * s as f64)).round();
                        q.clamp(-limit, limit) as i32
                    })
                    .collect()
            });
            let y = b.conv_node(
                n.op,
                &tensor_name(m, n.weight),
                ins[0],
                ConvWeights::I8 {
                    weight: &w,
                    scale: &scales,
                    bias: bias.as_deref(),
                },
                wdims(m, n.weight),
                spec_of(&n),
            );
            if need_u8[v] && !leaky(i) {
                b.set_value_type(y, ValueType::U8(quant(v)?));
                as_u8[v] = Some(y);
                if need_f32[v] {
                    as_f32[v] = Some(b.dequantize(y));
                }
            } else {
                as_f32[v] = Some(y);
                if need_u8[v] {
                    as_u8[v] = Some(b.quantize(y, quant(v)?));
                }
            }
        } else {
            let y = emit_plain(&mut b, &n, &ins);
            // Layout ops and ReLU keep their input's quantization; the rest get their own.
            let q = match n.op {
                OpKind::PixelShuffle | OpKind::PixelUnshuffle | OpKind::Relu => {
                    b.value_type(ins[0])
                }
                _ => ValueType::U8(quant(v)?),
            };
            b.set_value_type(y, q);
            as_u8[v] = Some(y);
            if need_f32[v] {
                as_f32[v] = Some(b.dequantize(y));
            }
        }
    }
    let out = as_f32[out_v].expect("the output is made in f32");
    Ok(b.finish(out)?)
}
