//! Writing `.rnm` files: [`ModelBuilder`] assembles a graph, computes its size multiple and
//! receptive field, and serialises it; the result is re-parsed, so a built model is valid.

use alloc::vec::Vec;

use crate::error::Error;
use crate::format::*;
use crate::noise::NoiseCurves;

/// Handle of a value (activation) in a graph under construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueId(pub u32);

/// Parameters of a convolution node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvSpec {
    /// Stride (vertical, horizontal).
    pub stride: [usize; 2],
    /// Padding: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Groups (1 = dense, channels = depthwise).
    pub groups: usize,
    /// Fused activation.
    pub activation: Activation,
}

impl ConvSpec {
    /// Stride 1, "same" padding for an odd kernel `k`, dense, no activation.
    pub const fn same(k: usize) -> Self {
        let p = k / 2;
        ConvSpec {
            stride: [1, 1],
            pad: [p, p, p, p],
            groups: 1,
            activation: Activation::None,
        }
    }
    /// Sets the stride.
    pub const fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    /// Sets the groups.
    pub const fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// Sets the fused activation.
    pub const fn act(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
}

struct TensorEntry {
    dims: [u32; 4],
    rank: u8,
    name: [u8; TENSOR_NAME_LEN],
    dtype: DType,
    /// Little-endian element bytes.
    data: Vec<u8>,
}

/// Weights of a convolution node, in one of the stored precisions.
#[derive(Debug, Clone, Copy)]
pub enum ConvWeights<'a> {
    /// f32 weights and bias.
    F32 {
        /// Weights.
        weight: &'a [f32],
        /// Bias per output channel.
        bias: Option<&'a [f32]>,
    },
    /// f16 weights (IEEE binary16 bits), f32 bias.
    F16 {
        /// Weights.
        weight: &'a [u16],
        /// Bias per output channel.
        bias: Option<&'a [f32]>,
    },
    /// int8 weights with per output channel scales and an i32 bias (units
    /// `in_scale * weight_scale`); the input value must be u8.
    I8 {
        /// Weights.
        weight: &'a [i8],
        /// Per output channel scales.
        scale: &'a [f32],
        /// Bias per output channel.
        bias: Option<&'a [i32]>,
    },
}

fn le_bytes<T: Copy, const N: usize>(xs: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    xs.iter().flat_map(|&x| f(x)).collect()
}

/// Builds a model graph in execution order and serialises it.
pub struct ModelBuilder {
    name: [u8; NAME_LEN],
    values: Vec<u32>,
    value_types: Vec<ValueType>,
    tensors: Vec<TensorEntry>,
    nodes: Vec<Node>,
    input_scale: f32,
    noise: NoiseConditioning,
    default_noise: NoiseCurves,
    input: InputConvention,
    halo: Option<u32>,
    min_size_multiple: u32,
}

fn fixed_name<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let mut n = s.len().min(N);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

fn to_u16(x: usize) -> u16 {
    x.min(u16::MAX as usize) as u16
}

impl ModelBuilder {
    /// A new graph named `name` whose input (value 0) is 4 packed planes.
    pub fn new(name: &str) -> Self {
        ModelBuilder {
            name: fixed_name(name),
            values: alloc::vec![4],
            value_types: alloc::vec![ValueType::F32],
            tensors: Vec::new(),
            nodes: Vec::new(),
            input_scale: 1.0,
            noise: NoiseConditioning::None,
            input: InputConvention::LEGACY,
            default_noise: NoiseCurves {
                k: [0.0, 0.0],
                sigma2: [0.0; 3],
            },
            halo: None,
            min_size_multiple: 1,
        }
    }
    /// The input value.
    pub fn input(&self) -> ValueId {
        ValueId(0)
    }
    /// Network input = normalised signal times `scale`.
    pub fn input_scale(&mut self, scale: f32) -> &mut Self {
        self.input_scale = scale;
        self
    }
    /// Sets the input convention (default [`InputConvention::LEGACY`]).
    pub fn input_convention(&mut self, input: InputConvention) -> &mut Self {
        self.input = input;
        self
    }
    /// How noise enters the model, and the default profile for ISO-only callers.
    pub fn noise(&mut self, noise: NoiseConditioning, default_noise: NoiseCurves) -> &mut Self {
        self.noise = noise;
        self.default_noise = default_noise;
        self
    }
    /// Declares the tiling halo (default: the receptive field, i.e. exact tiling).
    pub fn halo(&mut self, halo: u32) -> &mut Self {
        self.halo = Some(halo);
        self
    }
    /// Raises the input size multiple above what the strides require.
    pub fn min_size_multiple(&mut self, m: u32) -> &mut Self {
        self.min_size_multiple = m.max(1);
        self
    }

    fn channels(&self, v: ValueId) -> u32 {
        self.values.get(v.0 as usize).copied().unwrap_or(0)
    }

    fn add_tensor(&mut self, name: &str, dims: &[usize], dtype: DType, data: Vec<u8>) -> u32 {
        let mut d = [1u32; 4];
        for (o, &x) in d.iter_mut().zip(dims) {
            *o = x.min(u32::MAX as usize) as u32;
        }
        self.tensors.push(TensorEntry {
            dims: d,
            rank: dims.len().min(4) as u8,
            name: fixed_name(name),
            dtype,
            data,
        });
        (self.tensors.len() - 1) as u32
    }

    fn push(&mut self, node: Node) -> ValueId {
        self.values.push(node.out_channels);
        self.value_types.push(ValueType::F32);
        self.nodes.push(node);
        ValueId(self.values.len() as u32 - 1)
    }

    /// Sets the element type of a value (values are f32 unless set otherwise). The model
    /// input and output must stay f32.
    pub fn set_value_type(&mut self, v: ValueId, ty: ValueType) -> &mut Self {
        if let Some(t) = self.value_types.get_mut(v.0 as usize) {
            *t = ty;
        }
        self
    }

    /// The element type of a value.
    pub fn value_type(&self, v: ValueId) -> ValueType {
        self.value_types
            .get(v.0 as usize)
            .copied()
            .unwrap_or(ValueType::F32)
    }

    /// Quantizes an f32 value to u8 with `q`.
    pub fn quantize(&mut self, x: ValueId, q: ValueQuant) -> ValueId {
        let c = self.channels(x);
        let v = self.push(Self::base(OpKind::Quantize, &[x], c));
        self.set_value_type(v, ValueType::U8(q));
        v
    }

    /// Dequantizes a u8 value to f32.
    pub fn dequantize(&mut self, x: ValueId) -> ValueId {
        let c = self.channels(x);
        self.push(Self::base(OpKind::Dequantize, &[x], c))
    }

    /// A convolution node (`op` Conv2d or ConvTranspose2d) with weights in any precision;
    /// its output is f32 until [`ModelBuilder::set_value_type`] says otherwise.
    pub fn conv_node(
        &mut self,
        op: OpKind,
        name: &str,
        x: ValueId,
        weights: ConvWeights<'_>,
        wdims: [usize; 4],
        spec: ConvSpec,
    ) -> ValueId {
        let out = if op == OpKind::Conv2d {
            wdims[0]
        } else {
            wdims[1] * spec.groups
        };
        let (w, b, ws) = match weights {
            ConvWeights::F32 { weight, bias } => (
                self.add_tensor(name, &wdims, DType::F32, le_bytes(weight, f32::to_le_bytes)),
                bias.map(|b| {
                    self.add_tensor(name, &[b.len()], DType::F32, le_bytes(b, f32::to_le_bytes))
                }),
                None,
            ),
            ConvWeights::F16 { weight, bias } => (
                self.add_tensor(name, &wdims, DType::F16, le_bytes(weight, u16::to_le_bytes)),
                bias.map(|b| {
                    self.add_tensor(name, &[b.len()], DType::F32, le_bytes(b, f32::to_le_bytes))
                }),
                None,
            ),
            ConvWeights::I8 {
                weight,
                scale,
                bias,
            } => (
                self.add_tensor(name, &wdims, DType::I8, le_bytes(weight, i8::to_le_bytes)),
                bias.map(|b| {
                    self.add_tensor(name, &[b.len()], DType::I32, le_bytes(b, i32::to_le_bytes))
                }),
                Some(self.add_tensor(
                    name,
                    &[scale.len()],
                    DType::F32,
                    le_bytes(scale, f32::to_le_bytes),
                )),
            ),
        };
        let mut n = Self::base(op, &[x], out as u32);
        n.weight = w;
        n.bias = b.unwrap_or(NO_TENSOR);
        n.weight_scale = ws.unwrap_or(NO_TENSOR);
        n.kernel = [to_u16(wdims[2]), to_u16(wdims[3])];
        n.stride = [to_u16(spec.stride[0]), to_u16(spec.stride[1])];
        n.pad = spec.pad.map(to_u16);
        n.groups = spec.groups as u32;
        n.activation = spec.activation;
        self.push(n)
    }

    fn base(op: OpKind, inputs: &[ValueId], out_channels: u32) -> Node {
        let mut ins = [0u32; 3];
        for (o, v) in ins.iter_mut().zip(inputs) {
            *o = v.0;
        }
        Node {
            op,
            inputs: ins,
            n_inputs: inputs.len() as u8,
            weight: NO_TENSOR,
            bias: NO_TENSOR,
            weight_scale: NO_TENSOR,
            kernel: [1, 1],
            stride: [1, 1],
            pad: [0; 4],
            groups: 1,
            activation: Activation::None,
            factor: 1,
            out_channels,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn conv_like(
        &mut self,
        op: OpKind,
        name: &str,
        x: ValueId,
        weight: &[f32],
        wdims: [usize; 4],
        bias: Option<&[f32]>,
        spec: ConvSpec,
    ) -> ValueId {
        self.conv_node(op, name, x, ConvWeights::F32 { weight, bias }, wdims, spec)
    }

    /// Convolution with weight `[out, in / groups, kh, kw]`.
    pub fn conv2d(
        &mut self,
        name: &str,
        x: ValueId,
        weight: &[f32],
        wdims: [usize; 4],
        bias: Option<&[f32]>,
        spec: ConvSpec,
    ) -> ValueId {
        self.conv_like(OpKind::Conv2d, name, x, weight, wdims, bias, spec)
    }

    /// Transposed convolution with weight `[in, out / groups, kh, kw]`.
    pub fn conv_transpose2d(
        &mut self,
        name: &str,
        x: ValueId,
        weight: &[f32],
        wdims: [usize; 4],
        bias: Option<&[f32]>,
        spec: ConvSpec,
    ) -> ValueId {
        self.conv_like(OpKind::ConvTranspose2d, name, x, weight, wdims, bias, spec)
    }

    /// max(x, 0).
    pub fn relu(&mut self, x: ValueId) -> ValueId {
        let c = self.channels(x);
        let mut n = Self::base(OpKind::Relu, &[x], c);
        n.activation = Activation::Relu;
        self.push(n)
    }

    /// Leaky ReLU.
    pub fn leaky_relu(&mut self, x: ValueId, alpha: f32) -> ValueId {
        let c = self.channels(x);
        let mut n = Self::base(OpKind::LeakyRelu, &[x], c);
        n.activation = Activation::LeakyRelu(alpha);
        self.push(n)
    }

    /// a + b, with a fused activation.
    pub fn add(&mut self, a: ValueId, b: ValueId, activation: Activation) -> ValueId {
        let c = self.channels(a);
        let mut n = Self::base(OpKind::Add, &[a, b], c);
        n.activation = activation;
        self.push(n)
    }

    /// Channel concatenation of two or three values.
    pub fn concat(&mut self, xs: &[ValueId]) -> ValueId {
        let c = xs.iter().map(|&x| self.channels(x)).sum();
        self.push(Self::base(OpKind::Concat, &xs[..xs.len().min(3)], c))
    }

    /// Depth-to-space by `r`.
    pub fn pixel_shuffle(&mut self, x: ValueId, r: usize) -> ValueId {
        let c = self.channels(x) / (r * r).max(1) as u32;
        let mut n = Self::base(OpKind::PixelShuffle, &[x], c);
        n.factor = r as u32;
        self.push(n)
    }

    /// Space-to-depth by `r`.
    pub fn pixel_unshuffle(&mut self, x: ValueId, r: usize) -> ValueId {
        let c = self.channels(x) * (r * r) as u32;
        let mut n = Self::base(OpKind::PixelUnshuffle, &[x], c);
        n.factor = r as u32;
        self.push(n)
    }

    /// Size multiple and one-sided receptive field (packed pixels) of the graph up to `output`.
    ///
    /// Each value pixel `i` at scale `s` (input pixels per value pixel) depends on input pixels
    /// in `[i*s - r, (i+1)*s + r)`; `r` is propagated through every op conservatively.
    pub fn geometry(&self, output: ValueId) -> (u32, u32) {
        let n = self.values.len();
        let mut scale = alloc::vec![(1u64, 1u64); n]; // (num, den)
        let mut reach = alloc::vec![0f64; n];
        let mut multiple = 1u64;
        for (i, node) in self.nodes.iter().enumerate() {
            let v = i + 1;
            let ins = &node.inputs[..node.n_inputs as usize];
            let (num, den) = scale[ins[0] as usize];
            let s_in = num as f64 / den as f64;
            let r_in = ins.iter().map(|&x| reach[x as usize]).fold(0.0, f64::max);
            let (k, st, p) = (
                node.kernel[0].max(node.kernel[1]) as f64,
                node.stride[0].max(node.stride[1]) as u64,
                node.pad[0].max(node.pad[1]) as f64,
            );
            let (s_out, r_out) = match node.op {
                OpKind::Conv2d => {
                    let s_out = (num * st, den);
                    let stf = st as f64;
                    let left = p * s_in + r_in;
                    let right = (k - p - stf) * s_in + r_in;
                    (s_out, left.max(right).max(r_in))
                }
                OpKind::ConvTranspose2d => {
                    let s_out = (num, den * st);
                    let so = s_in / st as f64;
                    let left = (k - 1.0 + st as f64 - p) * so + r_in;
                    let right = (p + st as f64 - 1.0) * so + r_in;
                    (s_out, left.max(right))
                }
                OpKind::PixelShuffle => {
                    let r = node.factor as u64;
                    let so = s_in / r as f64;
                    ((num, den * r), (r as f64 - 1.0) * so + r_in)
                }
                OpKind::PixelUnshuffle => ((num * node.factor as u64, den), r_in),
                _ => ((num, den), r_in),
            };
            let g = gcd(s_out.0, s_out.1);
            scale[v] = (s_out.0 / g, s_out.1 / g);
            reach[v] = r_out;
            multiple = lcm(multiple, scale[v].0).min(1 << 20);
        }
        let rf = reach.get(output.0 as usize).copied().unwrap_or(0.0);
        (multiple as u32, libm_ceil(rf) as u32)
    }

    /// Serialises the graph with `output` as the network output.
    pub fn finish(&self, output: ValueId) -> Result<Vec<u8>, Error> {
        let (needed_multiple, rf) = self.geometry(output);
        let size_multiple = lcm(needed_multiple as u64, self.min_size_multiple as u64) as u32;
        let halo = self.halo.unwrap_or(rf);
        let n_values = self.values.len();
        let n_tensors = self.tensors.len();
        let n_nodes = self.nodes.len();
        let values_off = HEADER_LEN + INFO_LEN;
        let tensors_off = values_off + n_values * VALUE_RECORD_LEN;
        let nodes_off = tensors_off + n_tensors * TENSOR_RECORD_LEN;
        let data_off = (nodes_off + n_nodes * NODE_RECORD_LEN).next_multiple_of(BLOB_ALIGN);
        let mut blob_offsets = Vec::with_capacity(n_tensors);
        let mut end = data_off;
        for t in &self.tensors {
            blob_offsets.push(end);
            end = (end + t.data.len()).next_multiple_of(BLOB_ALIGN);
        }
        // The oldest version that holds the model, so older runtimes read f32 models.
        let version = if self.tensors.iter().all(|t| t.dtype == DType::F32)
            && self.value_types.iter().all(|t| *t == ValueType::F32)
            && self.nodes.iter().all(|n| n.weight_scale == NO_TENSOR)
        {
            1
        } else {
            QUANT_FORMAT_VERSION
        };
        let mut out = alloc::vec![0u8; end];
        let put32 =
            |o: &mut [u8], at: usize, v: u32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put16 =
            |o: &mut [u8], at: usize, v: u16| o[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let putf =
            |o: &mut [u8], at: usize, v: f32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());

        out[..8].copy_from_slice(&MAGIC);
        put32(&mut out, header::VERSION, version);
        put32(&mut out, header::HEADER_LEN, HEADER_LEN as u32);
        out[header::FILE_LEN..header::FILE_LEN + 8].copy_from_slice(&(end as u64).to_le_bytes());
        put32(&mut out, header::N_VALUES, n_values as u32);
        put32(&mut out, header::N_TENSORS, n_tensors as u32);
        put32(&mut out, header::N_NODES, n_nodes as u32);
        put32(&mut out, header::VALUES_OFF, values_off as u32);
        put32(&mut out, header::TENSORS_OFF, tensors_off as u32);
        put32(&mut out, header::NODES_OFF, nodes_off as u32);
        put32(&mut out, header::DATA_OFF, data_off as u32);

        let i0 = HEADER_LEN;
        out[i0 + info::NAME..i0 + info::NAME + NAME_LEN].copy_from_slice(&self.name);
        put32(&mut out, i0 + info::IN_CHANNELS, self.values[0]);
        put32(&mut out, i0 + info::OUT_CHANNELS, self.channels(output));
        put32(&mut out, i0 + info::OUTPUT_VALUE, output.0);
        put32(&mut out, i0 + info::LAYOUT, LAYOUT_PACKED_RGGB);
        put32(&mut out, i0 + info::SIZE_MULTIPLE, size_multiple);
        put32(&mut out, i0 + info::RECEPTIVE_FIELD, rf);
        put32(&mut out, i0 + info::HALO, halo);
        putf(&mut out, i0 + info::INPUT_SCALE, self.input_scale);
        put32(
            &mut out,
            i0 + info::CLIP_BELOW_BLACK,
            u32::from(self.input.clip_below_black),
        );
        let noise_channels = match self.input.noise_channels {
            NoiseChannels::PerPlane => 0,
            NoiseChannels::Pooled => 1,
        };
        put32(&mut out, i0 + info::NOISE_CHANNELS, noise_channels);
        match self.noise {
            NoiseConditioning::None => put32(&mut out, i0 + info::NOISE_KIND, 0),
            NoiseConditioning::KSigma { anchor_iso } => {
                put32(&mut out, i0 + info::NOISE_KIND, 1);
                putf(&mut out, i0 + info::ANCHOR_ISO, anchor_iso);
            }
        }
        for (j, &k) in self.default_noise.k.iter().enumerate() {
            putf(&mut out, i0 + info::K_COEFFS + 4 * j, k);
        }
        for (j, &s) in self.default_noise.sigma2.iter().enumerate() {
            putf(&mut out, i0 + info::SIGMA2_COEFFS + 4 * j, s);
        }

        for (v, &c) in self.values.iter().enumerate() {
            let o = values_off + v * VALUE_RECORD_LEN;
            put32(&mut out, o, c);
            if let ValueType::U8(q) = self.value_types[v] {
                out[o + 4] = 1;
                putf(&mut out, o + 8, q.scale);
                put32(&mut out, o + 12, q.zero_point as u32);
            }
        }
        for (t, e) in self.tensors.iter().enumerate() {
            let o = tensors_off + t * TENSOR_RECORD_LEN;
            out[o] = e.dtype.code();
            out[o + 1] = e.rank;
            for (j, &d) in e.dims.iter().enumerate() {
                put32(&mut out, o + 4 + 4 * j, d);
            }
            out[o + 24..o + 32].copy_from_slice(&(blob_offsets[t] as u64).to_le_bytes());
            out[o + 32..o + 40].copy_from_slice(&(e.data.len() as u64).to_le_bytes());
            out[o + 40..o + 40 + TENSOR_NAME_LEN].copy_from_slice(&e.name);
            let b = blob_offsets[t];
            out[b..b + e.data.len()].copy_from_slice(&e.data);
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let o = nodes_off + i * NODE_RECORD_LEN;
            put16(&mut out, o, n.op.code());
            out[o + 2] = n.n_inputs;
            let (act, alpha) = match n.activation {
                Activation::None => (0, 0.0),
                Activation::Relu => (1, 0.0),
                Activation::LeakyRelu(a) => (2, a),
            };
            // Activation ops store code 0 (their op is the function) and the slope in alpha.
            let act = if matches!(n.op, OpKind::Relu | OpKind::LeakyRelu) {
                0
            } else {
                act
            };
            out[o + 3] = act;
            for j in 0..3 {
                put32(&mut out, o + 4 + 4 * j, n.inputs[j]);
            }
            put32(&mut out, o + 16, i as u32 + 1);
            put32(&mut out, o + 20, n.weight);
            put32(&mut out, o + 24, n.bias);
            put16(&mut out, o + 28, n.kernel[0]);
            put16(&mut out, o + 30, n.kernel[1]);
            put16(&mut out, o + 32, n.stride[0]);
            put16(&mut out, o + 34, n.stride[1]);
            for j in 0..4 {
                put16(&mut out, o + 36 + 2 * j, n.pad[j]);
            }
            put32(&mut out, o + 44, n.groups);
            putf(&mut out, o + 48, alpha);
            put32(&mut out, o + 52, n.factor);
            put32(&mut out, o + 56, n.out_channels);
            if version >= 2 {
                put32(&mut out, o + 60, n.weight_scale);
            }
        }
        let crc = crate::crc32::crc32(&out[HEADER_LEN..]);
        put32(&mut out, header::CRC, crc);
        validate_bytes(&out)?;
        Ok(out)
    }
}

/// Model bytes copied into 4-byte aligned words (a `Vec<u8>` may be 1-aligned; the parser
/// needs 4), the last word zero-padded: parse `bytemuck::cast_slice(&words)[..bytes.len()]`.
pub fn aligned_words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

/// Validates model bytes through the parser (on an aligned copy).
fn validate_bytes(bytes: &[u8]) -> Result<(), Error> {
    let words = aligned_words(bytes);
    let aligned: &[u8] = bytemuck::cast_slice(&words);
    Model::parse(&aligned[..bytes.len()]).map(|_| ())
}

/// Joins int8 models that differ only in their activation quantization and int8 biases (the
/// quantizer's output for several calibrations of one f32 model) into one model with noise
/// bands (format version 3): `base` is band 0, each `(least_gain, model)` of `bands` (least
/// gains above 0, increasing) one more band. Errors if the graphs, weights or value types
/// differ, or on more than [`MAX_NOISE_BANDS`] bands.
pub fn join_noise_bands(base: &Model<'_>, bands: &[(f32, Model<'_>)]) -> Result<Vec<u8>, Error> {
    let bad = |what| Err(Error::BadHeader(what));
    if base.noise_bands() != 1 || bands.iter().any(|(_, m)| m.noise_bands() != 1) {
        return bad("noise bands can be joined from models without bands only");
    }
    if bands.is_empty() || bands.len() + 1 > MAX_NOISE_BANDS as usize {
        return bad("noise band count must be 2..=32");
    }
    let (nv, nn) = (base.n_values(), base.n_nodes());
    let b0 = base.bytes();
    let tables_end = u32_at(b0, header::DATA_OFF) as usize;
    let int8_bias = |m: &Model<'_>, i: usize| {
        let n = m.node(i);
        matches!(n.op, OpKind::Conv2d | OpKind::ConvTranspose2d)
            && n.bias != NO_TENSOR
            && m.tensor(n.weight as usize).dtype == DType::I8
    };
    let bias_tensors: Vec<u32> = (0..nn)
        .filter(|&i| int8_bias(base, i))
        .map(|i| base.node(i).bias)
        .collect();
    let mut last = 0.0f32;
    for (gain, m) in bands {
        if !(gain.is_finite() && *gain > last) {
            return bad("noise band gains must be above 0 and increase");
        }
        last = *gain;
        let b = m.bytes();
        // Same header counts and tables (info, value records up to their scale and zero
        // point, tensor and node records) and blobs, except the int8 biases.
        let tables = |b: &[u8]| {
            let mut t = b[header::N_VALUES..tables_end].to_vec();
            let values = u32_at(b, header::VALUES_OFF) as usize - header::N_VALUES;
            for v in 0..nv {
                let o = values + v * VALUE_RECORD_LEN + 8;
                t[o..o + 8].fill(0);
            }
            t
        };
        if m.n_values() != nv || m.n_nodes() != nn || b.len() != b0.len() || tables(b) != tables(b0)
        {
            return bad("noise bands must share the graph and tables");
        }
        for t in 0..base.n_tensors() {
            let d = base.tensor(t);
            if bias_tensors.contains(&(t as u32)) {
                continue;
            }
            let r = d.offset as usize..(d.offset + d.byte_len) as usize;
            if b[r.clone()] != b0[r] {
                return bad("noise bands must share the weights");
            }
        }
        for v in 0..nv {
            let same_kind = matches!(
                (base.value_type(v), m.value_type(v)),
                (ValueType::F32, ValueType::F32) | (ValueType::U8(_), ValueType::U8(_))
            );
            if !same_kind {
                return bad("noise bands must share the value types");
            }
        }
    }
    // Band table, then per band its quantization table, bias table and biases.
    let mut out = b0.to_vec();
    out.resize(out.len().next_multiple_of(8), 0);
    let table = out.len();
    let n = bands.len() + 1;
    out.resize(table + 8 + n * NOISE_BAND_RECORD_LEN, 0);
    out[table..table + 4].copy_from_slice(&(n as u32).to_le_bytes());
    for (k, (gain, m)) in bands.iter().enumerate() {
        let quant = out.len();
        for v in 0..nv {
            let (s, z) = match m.value_type(v) {
                ValueType::U8(q) => (q.scale, q.zero_point as u32),
                ValueType::F32 => (0.0, 0),
            };
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&z.to_le_bytes());
        }
        let index = out.len();
        out.resize(index + 4 * nn, 0xff);
        for i in 0..nn {
            if !int8_bias(base, i) {
                continue;
            }
            let at = out.len() as u32;
            out[index + 4 * i..index + 4 * i + 4].copy_from_slice(&at.to_le_bytes());
            for &x in m.tensor_i32(m.node(i).bias as usize) {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        let r = table + 8 + (k + 1) * NOISE_BAND_RECORD_LEN;
        out[r..r + 4].copy_from_slice(&gain.to_le_bytes());
        out[r + 4..r + 8].copy_from_slice(&(quant as u32).to_le_bytes());
        out[r + 8..r + 12].copy_from_slice(&(index as u32).to_le_bytes());
    }
    if out.len() > u32::MAX as usize {
        return bad("model too large for noise bands");
    }
    let put32 = |o: &mut [u8], at: usize, v: u32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put32(&mut out, header::VERSION, FORMAT_VERSION);
    put32(&mut out, header::BANDS_OFF, table as u32);
    let len = out.len() as u64;
    out[header::FILE_LEN..header::FILE_LEN + 8].copy_from_slice(&len.to_le_bytes());
    let crc = crate::crc32::crc32(&out[HEADER_LEN..]);
    put32(&mut out, header::CRC, crc);
    validate_bytes(&out)?;
    Ok(out)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

fn libm_ceil(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t < x {
        t + 1.0
    } else {
        t
    }
}
