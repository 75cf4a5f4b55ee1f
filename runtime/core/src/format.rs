//! The `.rnm` model file format, versions 1 to 3, and its zero-copy parser.
//!
//! All integers and floats are little-endian. Layout:
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 64 | [header](#header) |
//! | 64 | 256 | info record: input convention, noise conditioning, receptive field, halo |
//! | ... | 16 x n_values | value records (activations: channel count) |
//! | ... | 64 x n_tensors | tensor records (precision, dims, blob offset and length, name) |
//! | ... | 64 x n_nodes | node records (op, inputs, weights, op parameters, fused activation) |
//! | 64-aligned | ... | weight blobs, each starting at a multiple of 64 bytes |
//!
//! Header: magic `RAWNRMDL`, `u32` format version, `u32` header length (64), `u64` file length,
//! `u32` CRC-32 over every byte after the header, `u32` counts of values, tensors and nodes,
//! `u32` offsets of the value, tensor and node tables, `u32` offset of the first blob, padding.
//!
//! Graph convention: value 0 is the model input (packed RGGB planes, CHW); node `i` writes
//! value `i + 1`; a node may only read values defined before it, so node order is a valid
//! execution order. Conv weights are `[out, in / groups, kh, kw]`, ConvTranspose weights
//! `[in, out / groups, kh, kw]` (PyTorch layouts).
//!
//! Version 2 adds precisions (version 1 files, f32 only, still load; writers emit version 1
//! when a model uses nothing newer):
//! - tensors in f16 (weights stored in half precision, widened at run time), i8 (weights,
//!   symmetric per output channel) and i32 (biases of int8 convolutions);
//! - value records with a type: f32, or u8 with a per-tensor scale and zero point
//!   (`real = scale * (q - zero_point)`, bytes 4 = type code 1, 8 = scale, 12 = zero point);
//! - node records with a weight-scale tensor (f32, one per output channel; byte 60) for int8
//!   convolutions, whose bias is i32 in units of `in_scale * weight_scale`;
//! - `Quantize` (f32 -> u8) and `Dequantize` (u8 -> f32) nodes.
//!
//! Version 3 adds noise bands to int8 models: several sets of activation quantization (every
//! u8 value's scale and zero point) and int8 convolution biases, each for a range of the
//! noise transform's gain, over one set of weights. The header's byte 56 holds the offset of
//! the band table: `u32` count (2..=[`MAX_NOISE_BANDS`]), `u32` 0, then one 16-byte record per
//! band: `f32` least gain (band 0: 0, then strictly increasing), `u32` offset of the band's
//! quantization table (`n_values` x (`f32` scale, `i32` zero point); 0 for band 0, which is the
//! value table itself), `u32` offset of its bias table (`n_nodes` x `u32`: the file offset of
//! that int8 convolution's `out_channels` i32 biases, [`NO_TENSOR`] for every other node;
//! 0 for band 0, which uses the node records' bias tensors), `u32` 0. A runtime picks the last
//! band whose least gain is at most the frame's ([`Model::noise_band_for_gain`]). Every band
//! passes the same checks as the value table and biases of band 0.
//!
//! The model input and output values are always f32. The int8 arithmetic (W8A8, fixed-point
//! requantization) is specified in `rawnr_kernels::quant`; the parser checks that every scale
//! ratio it needs is within that arithmetic's range.

use crate::crc32::crc32;
use crate::error::Error;
use crate::noise::NoiseCurves;

/// File magic.
pub const MAGIC: [u8; 8] = *b"RAWNRMDL";
/// Highest format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 3;
/// The version of int8 and f16 models without noise bands.
pub const QUANT_FORMAT_VERSION: u32 = 2;
/// Most noise bands a model may carry (version 3).
pub const MAX_NOISE_BANDS: u32 = 32;
/// Length of one noise band record in bytes.
pub const NOISE_BAND_RECORD_LEN: usize = 16;
/// Oldest format version this build reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 64;
/// Info record length in bytes.
pub const INFO_LEN: usize = 256;
/// Value record length in bytes.
pub const VALUE_RECORD_LEN: usize = 16;
/// Tensor record length in bytes.
pub const TENSOR_RECORD_LEN: usize = 64;
/// Node record length in bytes.
pub const NODE_RECORD_LEN: usize = 64;
/// Alignment of every weight blob, in bytes (from the start of the file).
pub const BLOB_ALIGN: usize = 64;
/// "No tensor" marker in node records.
pub const NO_TENSOR: u32 = u32::MAX;
/// Upper bound on graph size accepted by the parser (guards hostile files).
pub const MAX_NODES: u32 = 1 << 16;
/// Upper bound on channels of one value.
pub const MAX_CHANNELS: u32 = 1 << 16;
/// Length of the model name field.
pub const NAME_LEN: usize = 32;
/// Length of a tensor name field.
pub const TENSOR_NAME_LEN: usize = 24;

/// Precision of a stored tensor (codes 1..=3 need format version 2; other codes are
/// rejected with [`Error::UnsupportedDtype`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// IEEE-754 binary32 (code 0).
    F32,
    /// IEEE-754 binary16 (code 1): weights of an f16 model.
    F16,
    /// Signed 8-bit (code 2): weights of an int8 convolution.
    I8,
    /// Signed 32-bit (code 3): bias of an int8 convolution.
    I32,
}

impl DType {
    /// File code of this precision.
    pub const fn code(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::I8 => 2,
            DType::I32 => 3,
        }
    }
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::I8 => 1,
        }
    }
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => DType::F32,
            1 => DType::F16,
            2 => DType::I8,
            3 => DType::I32,
            _ => return None,
        })
    }
}

/// Quantization of a `u8` value: `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueQuant {
    /// Step (finite, normal, > 0).
    pub scale: f32,
    /// Code of real zero, 0..=255.
    pub zero_point: i32,
}

/// Element type of a value (activation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueType {
    /// f32.
    F32,
    /// u8, affine-quantized per tensor.
    U8(ValueQuant),
}

/// Activation fused into a node's output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// Identity.
    None,
    /// max(x, 0).
    Relu,
    /// x if x >= 0 else alpha * x.
    LeakyRelu(f32),
}

/// The operation of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// 2-D convolution (dense, grouped, depthwise, 1x1; any kernel, stride, padding).
    Conv2d,
    /// 2-D transposed convolution.
    ConvTranspose2d,
    /// max(x, 0).
    Relu,
    /// Leaky ReLU with the node's `alpha`.
    LeakyRelu,
    /// Element-wise sum of two values.
    Add,
    /// Channel concatenation of two or three values.
    Concat,
    /// Depth-to-space by `factor` (PyTorch `PixelShuffle`).
    PixelShuffle,
    /// Space-to-depth by `factor` (PyTorch `PixelUnshuffle`).
    PixelUnshuffle,
    /// f32 -> u8 with the output value's quantization (ONNX `QuantizeLinear`; version 2).
    Quantize,
    /// u8 -> f32 (ONNX `DequantizeLinear`; version 2).
    Dequantize,
}

impl OpKind {
    /// File code of this op.
    pub const fn code(self) -> u16 {
        match self {
            OpKind::Conv2d => 1,
            OpKind::ConvTranspose2d => 2,
            OpKind::Relu => 3,
            OpKind::LeakyRelu => 4,
            OpKind::Add => 5,
            OpKind::Concat => 6,
            OpKind::PixelShuffle => 7,
            OpKind::PixelUnshuffle => 8,
            OpKind::Quantize => 9,
            OpKind::Dequantize => 10,
        }
    }
    fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            1 => OpKind::Conv2d,
            2 => OpKind::ConvTranspose2d,
            3 => OpKind::Relu,
            4 => OpKind::LeakyRelu,
            5 => OpKind::Add,
            6 => OpKind::Concat,
            7 => OpKind::PixelShuffle,
            8 => OpKind::PixelUnshuffle,
            9 => OpKind::Quantize,
            10 => OpKind::Dequantize,
            _ => return None,
        })
    }
}

/// How the noise level reaches the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseConditioning {
    /// The network is blind to the noise level.
    None,
    /// PMRID's k-sigma transform: the input is mapped to the noise statistics of
    /// `anchor_iso` before the network and mapped back after it.
    KSigma {
        /// ISO whose noise the network was trained on.
        anchor_iso: f32,
    },
}

/// How noise parameters that differ per CFA channel reach a k-sigma network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseChannels {
    /// One k-sigma transform per packed plane, from that plane's own parameters (file code
    /// 0, the default of files that predate the field).
    PerPlane,
    /// One transform for all four planes, from the parameters averaged over R, Gr, Gb and B
    /// (code 1): the colour balance the network sees is the frame's own. PMRID was trained so.
    Pooled,
}

/// How the raw samples become the network's input, as the model was trained (the `.rnm` info
/// record; the engine, CLI, C ABI and ONNX export follow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputConvention {
    /// Samples below the black level are raised to it before the transform (normalised input
    /// clipped at 0), as in training data that never went below black.
    pub clip_below_black: bool,
    /// How per-channel noise parameters are applied.
    pub noise_channels: NoiseChannels,
}

impl InputConvention {
    /// The convention of files without the fields: no clipping, per-plane transforms.
    pub const LEGACY: InputConvention = InputConvention {
        clip_below_black: false,
        noise_channels: NoiseChannels::PerPlane,
    };
}

/// The model's input convention and tiling facts (the file's info record).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelInfo {
    /// Model name, UTF-8, NUL-padded.
    pub name: [u8; NAME_LEN],
    /// Input channels (4: packed R, Gr, Gb, B planes).
    pub in_channels: u32,
    /// Output channels (4).
    pub out_channels: u32,
    /// Value id of the network output.
    pub output_value: u32,
    /// Input height and width must be multiples of this (product of the strides).
    pub size_multiple: u32,
    /// One-sided receptive field in packed-plane pixels, computed from the graph.
    pub receptive_field: u32,
    /// Halo the model asks for when tiled (packed-plane pixels). Tiled output equals
    /// whole-frame output exactly when `halo >= receptive_field`; smaller halos trade a
    /// bounded difference for speed.
    pub halo: u32,
    /// Network input = transformed signal in [0, 1] times this scale; output divided by it.
    pub input_scale: f32,
    /// How noise level enters.
    pub noise: NoiseConditioning,
    /// Noise profile used when the caller gives only an ISO (normalised units).
    pub default_noise: NoiseCurves,
    /// How raw samples and noise parameters become the network input.
    pub input: InputConvention,
}

impl ModelInfo {
    /// The model name as a string (up to the first NUL; lossy on invalid UTF-8).
    pub fn name_str(&self) -> &str {
        name_str(&self.name)
    }
}

fn name_str(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    match core::str::from_utf8(&bytes[..end]) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// A stored weight tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorDesc {
    /// Precision.
    pub dtype: DType,
    /// Number of dimensions (1..=4).
    pub rank: u8,
    /// Dimensions; unused ones are 1.
    pub dims: [u32; 4],
    /// Byte offset of the blob from the start of the file (multiple of 64).
    pub offset: u64,
    /// Byte length of the blob.
    pub byte_len: u64,
    /// Name, NUL-padded.
    pub name: [u8; TENSOR_NAME_LEN],
}

impl TensorDesc {
    /// Number of elements (`u64::MAX` where the product overflows, which no file can hold).
    pub fn elements(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
            .unwrap_or(u64::MAX)
    }
    /// Name as a string.
    pub fn name_str(&self) -> &str {
        name_str(&self.name)
    }
}

/// One operation of the graph. Node `i` writes value `i + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// Operation.
    pub op: OpKind,
    /// Input value ids (first `n_inputs` are used).
    pub inputs: [u32; 3],
    /// Number of inputs.
    pub n_inputs: u8,
    /// Weight tensor index or [`NO_TENSOR`].
    pub weight: u32,
    /// Bias tensor index or [`NO_TENSOR`].
    pub bias: u32,
    /// Per output channel weight scales (f32) of an int8 convolution, or [`NO_TENSOR`].
    pub weight_scale: u32,
    /// Kernel height and width (convolutions).
    pub kernel: [u16; 2],
    /// Stride (vertical, horizontal).
    pub stride: [u16; 2],
    /// Padding: top, left, bottom, right.
    pub pad: [u16; 4],
    /// Convolution groups.
    pub groups: u32,
    /// Output activation: fused into Conv/ConvTranspose/Add; for Relu and LeakyRelu nodes it
    /// is the op's own function.
    pub activation: Activation,
    /// Pixel (un)shuffle factor.
    pub factor: u32,
    /// Output channels.
    pub out_channels: u32,
}

/// A validated model, borrowing the file bytes (zero-copy).
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    bytes: &'a [u8],
    version: u32,
    info: ModelInfo,
    n_values: u32,
    n_tensors: u32,
    n_nodes: u32,
    values_off: usize,
    tensors_off: usize,
    nodes_off: usize,
    /// Offset of the noise band table (0: one band).
    bands_off: usize,
    /// Noise bands (1 without a band table).
    n_bands: u32,
    /// The band this view reads (0: the value table and node biases).
    band: u32,
    /// Offsets of this band's quantization and bias tables (0 for band 0).
    band_quant_off: usize,
    band_bias_off: usize,
}

// ---- little-endian field access (bounds are checked by the callers' table checks) ----

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
pub(crate) fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}
fn f32_at(b: &[u8], o: usize) -> f32 {
    f32::from_bits(u32_at(b, o))
}

/// What a model computes in ([`Model::precision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 weights and activations.
    F32,
    /// f16 weights, widened to f32 at run time; f32 activations.
    F16Weights,
    /// int8 weights and u8 activations (W8A8; some layers may stay f32).
    Int8,
}

/// Byte offsets of the header fields.
pub mod header {
    /// Magic (8 bytes).
    pub const MAGIC: usize = 0;
    /// Format version (u32).
    pub const VERSION: usize = 8;
    /// Header length (u32).
    pub const HEADER_LEN: usize = 12;
    /// File length (u64).
    pub const FILE_LEN: usize = 16;
    /// Payload CRC-32 (u32).
    pub const CRC: usize = 24;
    /// Number of values (u32).
    pub const N_VALUES: usize = 28;
    /// Number of tensors (u32).
    pub const N_TENSORS: usize = 32;
    /// Number of nodes (u32).
    pub const N_NODES: usize = 36;
    /// Offset of the value table (u32).
    pub const VALUES_OFF: usize = 40;
    /// Offset of the tensor table (u32).
    pub const TENSORS_OFF: usize = 44;
    /// Offset of the node table (u32).
    pub const NODES_OFF: usize = 48;
    /// Offset of the first blob (u32).
    pub const DATA_OFF: usize = 52;
    /// Offset of the noise band table (u32; version 3, 0 = no bands).
    pub const BANDS_OFF: usize = 56;
}

/// Byte offsets of the info record fields (relative to the record).
pub mod info {
    /// Name (32 bytes).
    pub const NAME: usize = 0;
    /// Input channels (u32).
    pub const IN_CHANNELS: usize = 32;
    /// Output channels (u32).
    pub const OUT_CHANNELS: usize = 36;
    /// Output value id (u32).
    pub const OUTPUT_VALUE: usize = 40;
    /// Input layout code (u32; 0 = packed RGGB planes, CHW).
    pub const LAYOUT: usize = 44;
    /// Size multiple (u32).
    pub const SIZE_MULTIPLE: usize = 48;
    /// Receptive field (u32).
    pub const RECEPTIVE_FIELD: usize = 52;
    /// Halo (u32).
    pub const HALO: usize = 56;
    /// Input scale (f32).
    pub const INPUT_SCALE: usize = 60;
    /// Noise conditioning code (u32; 0 none, 1 k-sigma).
    pub const NOISE_KIND: usize = 64;
    /// Anchor ISO (f32).
    pub const ANCHOR_ISO: usize = 68;
    /// k(ISO) coefficients, slope then intercept (2 x f32).
    pub const K_COEFFS: usize = 72;
    /// sigma^2(ISO) coefficients, ISO^2, ISO, 1 (3 x f32).
    pub const SIGMA2_COEFFS: usize = 80;
    /// Clip below black (u32; 0 no, 1 yes): [`super::InputConvention::clip_below_black`].
    pub const CLIP_BELOW_BLACK: usize = 92;
    /// Noise channels (u32; 0 per plane, 1 pooled): [`super::NoiseChannels`].
    pub const NOISE_CHANNELS: usize = 96;
}

/// The only input layout of format version 1: packed R, Gr, Gb, B planes, CHW.
pub const LAYOUT_PACKED_RGGB: u32 = 0;

impl<'a> Model<'a> {
    /// Parses and validates a model in place. `bytes` must be 4-byte aligned (a `Vec<u32>`-
    /// backed buffer or an mmap is); weights are then read without copying.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if cfg!(target_endian = "big") {
            return Err(Error::BigEndianTarget);
        }
        let got = bytes.len() as u64;
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated {
                needed: HEADER_LEN as u64,
                got,
            });
        }
        if bytes[..8] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u32_at(bytes, header::VERSION);
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if u32_at(bytes, header::HEADER_LEN) as usize != HEADER_LEN {
            return Err(Error::BadHeader("header length"));
        }
        let file_len = u64_at(bytes, header::FILE_LEN);
        if file_len > got {
            return Err(Error::Truncated {
                needed: file_len,
                got,
            });
        }
        if file_len < got {
            return Err(Error::BadHeader(
                "file length smaller than the buffer (trailing bytes)",
            ));
        }
        let stored = u32_at(bytes, header::CRC);
        let computed = crc32(&bytes[HEADER_LEN..]);
        if stored != computed {
            return Err(Error::ChecksumMismatch { stored, computed });
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(4) {
            return Err(Error::Misaligned);
        }
        let n_values = u32_at(bytes, header::N_VALUES);
        let n_tensors = u32_at(bytes, header::N_TENSORS);
        let n_nodes = u32_at(bytes, header::N_NODES);
        if n_nodes == 0 || n_nodes > MAX_NODES || n_tensors > 4 * MAX_NODES {
            return Err(Error::BadHeader("node or tensor count"));
        }
        if n_values != n_nodes + 1 {
            return Err(Error::BadHeader("value count must be node count + 1"));
        }
        let table = |off_field: usize, count: u32, rec: usize, what: &'static str| {
            let off = u32_at(bytes, off_field) as u64;
            let end = off + count as u64 * rec as u64;
            if off < (HEADER_LEN + INFO_LEN) as u64 || end > file_len {
                Err(Error::BadHeader(what))
            } else {
                Ok(off as usize)
            }
        };
        let values_off = table(
            header::VALUES_OFF,
            n_values,
            VALUE_RECORD_LEN,
            "value table",
        )?;
        let tensors_off = table(
            header::TENSORS_OFF,
            n_tensors,
            TENSOR_RECORD_LEN,
            "tensor table",
        )?;
        let nodes_off = table(header::NODES_OFF, n_nodes, NODE_RECORD_LEN, "node table")?;
        let data_off = u32_at(bytes, header::DATA_OFF) as u64;
        if data_off > file_len || !data_off.is_multiple_of(BLOB_ALIGN as u64) {
            return Err(Error::BadHeader("data offset"));
        }
        let info = parse_info(&bytes[HEADER_LEN..HEADER_LEN + INFO_LEN])?;
        let model = Model {
            bytes,
            version,
            info,
            n_values,
            n_tensors,
            n_nodes,
            values_off,
            tensors_off,
            nodes_off,
            bands_off: 0,
            n_bands: 1,
            band: 0,
            band_quant_off: 0,
            band_bias_off: 0,
        };
        for t in 0..n_tensors {
            let d = model.read_tensor(t)?;
            if d.offset < data_off {
                return Err(Error::BadTensor {
                    tensor: t,
                    reason: "blob overlaps the tables",
                });
            }
        }
        model.validate_graph()?;
        let model = model.with_band_table()?;
        for b in 1..model.n_bands {
            model.at_noise_band(b as usize)?.validate_graph()?;
        }
        Ok(model)
    }

    /// Reads the header's noise band table (version 3), checking its records' bounds.
    fn with_band_table(self) -> Result<Self, Error> {
        let b = self.bytes;
        let off = if self.version >= 3 {
            u32_at(b, header::BANDS_OFF) as usize
        } else {
            0
        };
        if off == 0 {
            return Ok(self);
        }
        let bad = |what| Err(Error::BadHeader(what));
        let file_len = b.len();
        let in_file = |o: usize, len: usize| {
            o >= HEADER_LEN + INFO_LEN && o.is_multiple_of(4) && o.saturating_add(len) <= file_len
        };
        if !in_file(off, 8) {
            return bad("noise band table outside the file");
        }
        let n = u32_at(b, off);
        if !(2..=MAX_NOISE_BANDS).contains(&n) {
            return bad("noise band count must be 2..=32");
        }
        if !in_file(off, 8 + n as usize * NOISE_BAND_RECORD_LEN) {
            return bad("noise band table outside the file");
        }
        let mut last = -1.0f32;
        for i in 0..n as usize {
            let r = off + 8 + i * NOISE_BAND_RECORD_LEN;
            let (gain, q, bias) = (f32_at(b, r), u32_at(b, r + 4), u32_at(b, r + 8));
            if !(gain.is_finite() && gain > last) || (i == 0 && gain != 0.0) {
                return bad("noise band gains must start at 0 and increase");
            }
            last = gain;
            if i == 0 {
                if q != 0 || bias != 0 {
                    return bad("noise band 0 is the value table itself");
                }
            } else if !in_file(q as usize, self.n_values as usize * 8)
                || !in_file(bias as usize, self.n_nodes as usize * 4)
            {
                return bad("noise band tables outside the file");
            }
        }
        Ok(Model {
            bands_off: off,
            n_bands: n,
            ..self
        })
    }

    /// Number of noise bands: sets of activation quantization and int8 biases, each for a
    /// range of the noise transform's gain (1: the model has one set).
    pub fn noise_bands(&self) -> usize {
        self.n_bands as usize
    }

    /// The band this view reads (see [`Model::at_noise_band`]).
    pub fn noise_band(&self) -> usize {
        self.band as usize
    }

    /// The least noise-transform gain band `b` serves (0 for band 0).
    pub fn noise_band_min_gain(&self, b: usize) -> f32 {
        if b == 0 || b >= self.noise_bands() {
            return 0.0;
        }
        f32_at(self.bytes, self.bands_off + 8 + b * NOISE_BAND_RECORD_LEN)
    }

    /// The band for frames whose noise transform has gain `gain`: the last band whose least
    /// gain is at most `gain` (band 0 for a NaN or a gain below every band's).
    pub fn noise_band_for_gain(&self, gain: f32) -> usize {
        (1..self.noise_bands())
            .take_while(|&b| self.noise_band_min_gain(b) <= gain)
            .last()
            .unwrap_or(0)
    }

    /// The same model reading band `b`'s activation quantization and int8 biases (every
    /// band was validated at parse time).
    pub fn at_noise_band(&self, b: usize) -> Result<Self, Error> {
        if b >= self.noise_bands() {
            return Err(Error::BadHeader("noise band index past the band table"));
        }
        if b == 0 {
            return Ok(Model {
                band: 0,
                band_quant_off: 0,
                band_bias_off: 0,
                ..*self
            });
        }
        let r = self.bands_off + 8 + b * NOISE_BAND_RECORD_LEN;
        Ok(Model {
            band: b as u32,
            band_quant_off: u32_at(self.bytes, r + 4) as usize,
            band_bias_off: u32_at(self.bytes, r + 8) as usize,
            ..*self
        })
    }

    /// The i32 bias of int8 convolution node `i` in this view's band (empty without one or
    /// for other nodes).
    pub fn bias_i32(&self, i: usize) -> &'a [i32] {
        let n = self.node(i);
        if n.bias == NO_TENSOR {
            return &[];
        }
        if self.band == 0 {
            return self.tensor_i32(n.bias as usize);
        }
        let at = u32_at(self.bytes, self.band_bias_off + 4 * i);
        let len = n.out_channels as usize * 4;
        if at == NO_TENSOR || at as usize + len > self.bytes.len() {
            return &[];
        }
        bytemuck::try_cast_slice(&self.bytes[at as usize..at as usize + len]).unwrap_or(&[])
    }

    /// The raw file bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The file's format version.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The info record.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }
    /// Number of values (activations), input included.
    pub fn n_values(&self) -> usize {
        self.n_values as usize
    }
    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.n_nodes as usize
    }
    /// Number of stored tensors.
    pub fn n_tensors(&self) -> usize {
        self.n_tensors as usize
    }

    /// Channel count of value `v` (validated at parse time).
    pub fn value_channels(&self, v: usize) -> usize {
        u32_at(self.bytes, self.values_off + v * VALUE_RECORD_LEN) as usize
    }

    /// Element type of value `v` (validated at parse time).
    pub fn value_type(&self, v: usize) -> ValueType {
        self.read_value_type(v).unwrap_or(ValueType::F32)
    }

    /// Whether the model has int8 parts (any `u8` value).
    pub fn is_int8(&self) -> bool {
        (0..self.n_values()).any(|v| matches!(self.value_type(v), ValueType::U8(_)))
    }

    /// What the model computes in: int8 when it has int8 parts, else f32 with f16 weights
    /// when any weight is f16, else f32.
    pub fn precision(&self) -> Precision {
        if self.is_int8() {
            Precision::Int8
        } else if self.max_f16_weight_len() > 0 {
            Precision::F16Weights
        } else {
            Precision::F32
        }
    }

    /// Quantization of value `v` if it is u8.
    pub fn value_quant(&self, v: usize) -> Option<ValueQuant> {
        match self.value_type(v) {
            ValueType::U8(q) => Some(q),
            ValueType::F32 => None,
        }
    }

    fn read_value_type(&self, v: usize) -> Result<ValueType, Error> {
        if self.version < 2 {
            return Ok(ValueType::F32);
        }
        let o = self.values_off + v * VALUE_RECORD_LEN;
        // Band 0 reads the value record, others their quantization table.
        let q = if self.band == 0 {
            o + 8
        } else {
            self.band_quant_off + 8 * v
        };
        match self.bytes[o + 4] {
            0 => Ok(ValueType::F32),
            1 => {
                let scale = f32_at(self.bytes, q);
                let zero_point = u32_at(self.bytes, q + 4) as i32;
                if !(scale.is_normal() && scale > 0.0) {
                    return Err(Error::BadHeader(
                        "value scale must be a positive normal float",
                    ));
                }
                if !(0..=255).contains(&zero_point) {
                    return Err(Error::BadHeader("value zero point must be 0..=255"));
                }
                Ok(ValueType::U8(ValueQuant { scale, zero_point }))
            }
            _ => Err(Error::BadHeader("unknown value type")),
        }
    }

    /// Elements of the largest f16 weight tensor (the widening buffer the engine needs).
    pub fn max_f16_weight_len(&self) -> usize {
        (0..self.n_tensors())
            .map(|t| self.tensor(t))
            .filter(|d| d.dtype == DType::F16)
            .map(|d| d.elements() as usize)
            .max()
            .unwrap_or(0)
    }

    /// Tensor record `t` (validated at parse time).
    pub fn tensor(&self, t: usize) -> TensorDesc {
        // Validated in `parse`; re-reading cannot fail.
        self.read_tensor(t as u32).unwrap_or(TensorDesc {
            dtype: DType::F32,
            rank: 1,
            dims: [0, 1, 1, 1],
            offset: 0,
            byte_len: 0,
            name: [0; TENSOR_NAME_LEN],
        })
    }

    fn blob(&self, t: usize, dtype: DType) -> &'a [u8] {
        let d = self.tensor(t);
        if d.dtype != dtype {
            return &[];
        }
        &self.bytes[d.offset as usize..(d.offset + d.byte_len) as usize]
    }

    /// The f32 data of tensor `t`, borrowed from the file (empty if it is not f32).
    pub fn tensor_f32(&self, t: usize) -> &'a [f32] {
        // Offsets are multiples of 64 and the buffer is 4-aligned (checked in `parse`).
        bytemuck::try_cast_slice(self.blob(t, DType::F32)).unwrap_or(&[])
    }

    /// The f16 data (IEEE binary16 bits) of tensor `t` (empty if it is not f16).
    pub fn tensor_f16(&self, t: usize) -> &'a [u16] {
        bytemuck::try_cast_slice(self.blob(t, DType::F16)).unwrap_or(&[])
    }

    /// The i8 data of tensor `t` (empty if it is not i8).
    pub fn tensor_i8(&self, t: usize) -> &'a [i8] {
        bytemuck::try_cast_slice(self.blob(t, DType::I8)).unwrap_or(&[])
    }

    /// The i32 data of tensor `t` (empty if it is not i32).
    pub fn tensor_i32(&self, t: usize) -> &'a [i32] {
        bytemuck::try_cast_slice(self.blob(t, DType::I32)).unwrap_or(&[])
    }

    /// Node `i` (validated at parse time).
    pub fn node(&self, i: usize) -> Node {
        self.read_node(i as u32).unwrap_or(Node {
            op: OpKind::Relu,
            inputs: [0; 3],
            n_inputs: 1,
            weight: NO_TENSOR,
            bias: NO_TENSOR,
            weight_scale: NO_TENSOR,
            kernel: [1, 1],
            stride: [1, 1],
            pad: [0; 4],
            groups: 1,
            activation: Activation::None,
            factor: 1,
            out_channels: 0,
        })
    }

    fn read_tensor(&self, t: u32) -> Result<TensorDesc, Error> {
        let b = self.bytes;
        let o = self.tensors_off + t as usize * TENSOR_RECORD_LEN;
        let bad = |reason| Error::BadTensor { tensor: t, reason };
        let code = b[o];
        let dtype = match DType::from_code(code) {
            Some(d) if self.version >= 2 || d == DType::F32 => d,
            _ => return Err(Error::UnsupportedDtype { tensor: t, code }),
        };
        let rank = b[o + 1];
        if !(1..=4).contains(&rank) {
            return Err(bad("rank must be 1..4"));
        }
        let mut dims = [1u32; 4];
        for (i, d) in dims.iter_mut().enumerate() {
            *d = u32_at(b, o + 4 + 4 * i);
            if (i as u8) < rank && *d == 0 {
                return Err(bad("zero dimension"));
            }
            if (i as u8) >= rank && *d != 1 {
                return Err(bad("unused dimension must be 1"));
            }
        }
        let offset = u64_at(b, o + 24);
        let byte_len = u64_at(b, o + 32);
        let mut name = [0u8; TENSOR_NAME_LEN];
        name.copy_from_slice(&b[o + 40..o + 40 + TENSOR_NAME_LEN]);
        let desc = TensorDesc {
            dtype,
            rank,
            dims,
            offset,
            byte_len,
            name,
        };
        let expected = desc
            .elements()
            .checked_mul(dtype.size() as u64)
            .ok_or(bad("size overflow"))?;
        if expected != byte_len {
            return Err(bad("byte length does not match dims"));
        }
        if !offset.is_multiple_of(BLOB_ALIGN as u64) {
            return Err(bad("blob not 64-byte aligned"));
        }
        match offset.checked_add(byte_len) {
            Some(end) if end <= b.len() as u64 => {}
            _ => return Err(bad("blob outside the file")),
        }
        Ok(desc)
    }

    fn read_node(&self, i: u32) -> Result<Node, Error> {
        let b = self.bytes;
        let o = self.nodes_off + i as usize * NODE_RECORD_LEN;
        let code = u16_at(b, o);
        let op = OpKind::from_code(code).ok_or(Error::UnknownOp { node: i, code })?;
        let n_inputs = b[o + 2];
        let act_code = b[o + 3];
        let alpha = f32_at(b, o + 48);
        let activation = match (op, act_code) {
            // Activation ops carry their function in the activation field; the file stores
            // code 0 for them and the slope in `alpha`.
            (OpKind::Relu, 0) => Activation::Relu,
            (OpKind::LeakyRelu, 0) if alpha.is_finite() => Activation::LeakyRelu(alpha),
            (OpKind::Relu | OpKind::LeakyRelu, _) => {
                return Err(Error::BadNode {
                    node: i,
                    reason: "activation op with a fused activation",
                })
            }
            (_, 0) => Activation::None,
            (_, 1) => Activation::Relu,
            (_, 2) if alpha.is_finite() => Activation::LeakyRelu(alpha),
            _ => {
                return Err(Error::BadNode {
                    node: i,
                    reason: "unknown activation",
                })
            }
        };
        let r16 = |k: usize| u16_at(b, o + k);
        Ok(Node {
            op,
            inputs: [u32_at(b, o + 4), u32_at(b, o + 8), u32_at(b, o + 12)],
            n_inputs,
            weight: u32_at(b, o + 20),
            bias: u32_at(b, o + 24),
            weight_scale: if self.version >= 2 {
                u32_at(b, o + 60)
            } else {
                NO_TENSOR
            },
            kernel: [r16(28), r16(30)],
            stride: [r16(32), r16(34)],
            pad: [r16(36), r16(38), r16(40), r16(42)],
            groups: u32_at(b, o + 44),
            activation,
            factor: u32_at(b, o + 52),
            out_channels: u32_at(b, o + 56),
        })
    }

    /// Checks every node against the value and tensor tables.
    fn validate_graph(&self) -> Result<(), Error> {
        for v in 0..self.n_values as usize {
            let c = self.value_channels(v) as u32;
            if c == 0 || c > MAX_CHANNELS {
                return Err(Error::BadHeader("value channel count"));
            }
        }
        if self.value_channels(0) as u32 != self.info.in_channels {
            return Err(Error::BadInfo("input channels differ from value 0"));
        }
        if self.info.output_value >= self.n_values || self.info.output_value == 0 {
            return Err(Error::BadInfo("output value id"));
        }
        if self.value_channels(self.info.output_value as usize) as u32 != self.info.out_channels {
            return Err(Error::BadInfo(
                "output channels differ from the output value",
            ));
        }
        for v in 0..self.n_values as usize {
            self.read_value_type(v)?;
        }
        if self.value_type(0) != ValueType::F32
            || self.value_type(self.info.output_value as usize) != ValueType::F32
        {
            return Err(Error::BadInfo("model input and output values must be f32"));
        }
        for i in 0..self.n_nodes {
            let n = self.read_node(i)?;
            validate_node(self, i, &n)?;
            if self.band != 0 {
                self.validate_band_bias(i, &n)?;
            }
            validate_types(self, i, &n)?;
        }
        Ok(())
    }

    /// Checks node `i`'s entry in this (non-zero) band's bias table: the place of its i32
    /// biases for an int8 convolution with a bias, [`NO_TENSOR`] for any other node.
    fn validate_band_bias(&self, i: u32, n: &Node) -> Result<(), Error> {
        let at = u32_at(self.bytes, self.band_bias_off + 4 * i as usize);
        let int8_bias = matches!(n.op, OpKind::Conv2d | OpKind::ConvTranspose2d)
            && n.bias != NO_TENSOR
            && self.read_tensor(n.weight)?.dtype == DType::I8;
        let bad = |reason| Err(Error::BadNode { node: i, reason });
        if !int8_bias {
            return if at == NO_TENSOR {
                Ok(())
            } else {
                bad("noise band bias for a node without int8 bias")
            };
        }
        let len = n.out_channels as usize * 4;
        let at = at as usize;
        if at < HEADER_LEN + INFO_LEN
            || !at.is_multiple_of(4)
            || at.saturating_add(len) > self.bytes.len()
        {
            return bad("noise band bias outside the file");
        }
        Ok(())
    }
}

fn validate_node(m: &Model<'_>, i: u32, n: &Node) -> Result<(), Error> {
    let bad = |reason| Err(Error::BadNode { node: i, reason });
    let expected_inputs: &[u8] = match n.op {
        OpKind::Add => &[2],
        OpKind::Concat => &[2, 3],
        _ => &[1],
    };
    if !expected_inputs.contains(&n.n_inputs) {
        return bad("wrong number of inputs");
    }
    let out_value = i + 1;
    let mut in_ch = [0usize; 3];
    for (ch, &v) in in_ch.iter_mut().zip(&n.inputs[..n.n_inputs as usize]) {
        if v >= out_value {
            return bad("input is not defined before the node");
        }
        *ch = m.value_channels(v as usize);
    }
    let out_ch = m.value_channels(out_value as usize);
    if n.out_channels as usize != out_ch {
        return bad("out_channels differs from the value table");
    }
    let has_weights = matches!(n.op, OpKind::Conv2d | OpKind::ConvTranspose2d);
    if !has_weights && (n.weight != NO_TENSOR || n.bias != NO_TENSOR || n.weight_scale != NO_TENSOR)
    {
        return bad("op takes no weights");
    }
    match n.op {
        OpKind::Conv2d | OpKind::ConvTranspose2d => {
            let [kh, kw] = n.kernel;
            let [sh, sw] = n.stride;
            if kh == 0 || kw == 0 || sh == 0 || sw == 0 || kh > 64 || kw > 64 {
                return bad("kernel and stride must be 1..64");
            }
            if n.pad.iter().any(|&p| p >= 64) {
                return bad("padding must be < 64");
            }
            let g = n.groups as usize;
            if g == 0 || in_ch[0] % g != 0 || !out_ch.is_multiple_of(g) {
                return bad("groups must divide input and output channels");
            }
            if n.weight >= m.n_tensors {
                return bad("missing weight tensor");
            }
            let w = m.read_tensor(n.weight)?;
            let want = if n.op == OpKind::Conv2d {
                [out_ch, in_ch[0] / g, kh as usize, kw as usize]
            } else {
                if n.pad.iter().any(|&p| p as usize >= kh.min(kw) as usize) {
                    return bad("transposed conv padding must be smaller than the kernel");
                }
                [in_ch[0], out_ch / g, kh as usize, kw as usize]
            };
            if w.rank != 4 || w.dims.iter().zip(want).any(|(&d, x)| d as usize != x) {
                return bad("weight dims do not match the op");
            }
            if n.bias != NO_TENSOR {
                if n.bias >= m.n_tensors {
                    return bad("bias tensor index");
                }
                let b = m.read_tensor(n.bias)?;
                if b.rank != 1 || b.dims[0] as usize != out_ch {
                    return bad("bias length must equal output channels");
                }
            }
        }
        OpKind::Relu | OpKind::LeakyRelu => {
            if out_ch != in_ch[0] {
                return bad("activation changes channel count");
            }
        }
        OpKind::Quantize | OpKind::Dequantize => {
            if out_ch != in_ch[0] {
                return bad("(de)quantization changes channel count");
            }
            if n.activation != Activation::None {
                return bad("(de)quantization with a fused activation");
            }
        }
        OpKind::Add => {
            if in_ch[0] != in_ch[1] || out_ch != in_ch[0] {
                return bad("add inputs must have equal channels");
            }
        }
        OpKind::Concat => {
            if in_ch[..n.n_inputs as usize].iter().sum::<usize>() != out_ch {
                return bad("concat output channels must be the sum of its inputs");
            }
        }
        OpKind::PixelShuffle | OpKind::PixelUnshuffle => {
            let r = n.factor as usize;
            if r == 0 || r > 16 {
                return bad("shuffle factor must be 1..16");
            }
            let (big, small) = if n.op == OpKind::PixelShuffle {
                (in_ch[0], out_ch)
            } else {
                (out_ch, in_ch[0])
            };
            if small * r * r != big {
                return bad("shuffle channels do not match the factor");
            }
        }
    }
    Ok(())
}

/// Largest ratio of scales an element-wise int8 op may rescale by (the fixed-point range of
/// `rawnr_kernels::quant::rescale_multiplier` is 2048).
const MAX_RESCALE_RATIO: f64 = 1024.0;

/// Checks the element types around node `i`: float ops on f32 values, int8 convolutions
/// from u8 values with complete quantization tensors, and scale ratios within the range of the
/// fixed-point arithmetic.
fn validate_types(m: &Model<'_>, i: u32, n: &Node) -> Result<(), Error> {
    let bad = |reason| Err(Error::BadNode { node: i, reason });
    let out_t = m.value_type(i as usize + 1);
    let mut in_t = [ValueType::F32; 3];
    for (t, &v) in in_t.iter_mut().zip(&n.inputs[..n.n_inputs as usize]) {
        *t = m.value_type(v as usize);
    }
    let ratio_ok =
        |a: &ValueQuant, y: &ValueQuant| (a.scale as f64 / y.scale as f64) < MAX_RESCALE_RATIO;
    let relu_or_none = matches!(n.activation, Activation::None | Activation::Relu);
    match n.op {
        OpKind::Conv2d | OpKind::ConvTranspose2d => {
            let w = m.read_tensor(n.weight)?;
            let bias = if n.bias == NO_TENSOR {
                None
            } else {
                Some(m.read_tensor(n.bias)?)
            };
            match w.dtype {
                DType::F32 | DType::F16 => {
                    if in_t[0] != ValueType::F32 || out_t != ValueType::F32 {
                        return bad("a float convolution reads and writes f32 values");
                    }
                    if n.weight_scale != NO_TENSOR {
                        return bad("a float convolution has no weight scales");
                    }
                    if bias.is_some_and(|b| b.dtype != DType::F32) {
                        return bad("a float convolution's bias must be f32");
                    }
                }
                DType::I8 => {
                    let ValueType::U8(qx) = in_t[0] else {
                        return bad("an int8 convolution reads a u8 value");
                    };
                    if n.weight_scale >= m.n_tensors {
                        return bad("an int8 convolution needs weight scales");
                    }
                    let sd = m.read_tensor(n.weight_scale)?;
                    if sd.dtype != DType::F32 || sd.rank != 1 || sd.dims[0] != n.out_channels {
                        return bad("weight scales must be f32, one per output channel");
                    }
                    let scales = m.tensor_f32(n.weight_scale as usize);
                    if scales.iter().any(|s| !(s.is_normal() && *s > 0.0)) {
                        return bad("weight scales must be positive normal floats");
                    }
                    let max_bias = match bias {
                        Some(b) if b.dtype != DType::I32 => {
                            return bad("an int8 convolution's bias must be i32");
                        }
                        Some(_) => m
                            .bias_i32(i as usize)
                            .iter()
                            .map(|&b| (b as i64).abs())
                            .max()
                            .unwrap_or(0),
                        None => 0,
                    };
                    // Terms per output element (an upper bound for transposed convolutions).
                    let terms = (w.elements() / n.out_channels.max(1) as u64) as i64;
                    let terms = if n.op == OpKind::Conv2d {
                        terms
                    } else {
                        (w.dims[0] / n.groups.max(1)) as i64 * w.dims[2] as i64 * w.dims[3] as i64
                    };
                    if terms * 128 * 255 + max_bias > i32::MAX as i64 {
                        return bad("int8 accumulator could overflow i32");
                    }
                    match out_t {
                        ValueType::U8(qy) => {
                            if !relu_or_none {
                                return bad("a u8 output takes no activation but ReLU");
                            }
                            let lo = 1.0 / (1u64 << 31) as f64;
                            let hi = (1u64 << 29) as f64;
                            for &ws in scales {
                                let r = qx.scale as f64 * ws as f64 / qy.scale as f64;
                                if !(lo..hi).contains(&r) {
                                    return bad("requantization multiplier out of range");
                                }
                            }
                        }
                        ValueType::F32 => {}
                    }
                }
                DType::I32 => return bad("i32 convolution weights"),
            }
        }
        OpKind::Relu => {
            if in_t[0] != out_t {
                return bad("ReLU must keep its value's type and quantization");
            }
        }
        OpKind::LeakyRelu => {
            if in_t[0] != ValueType::F32 || out_t != ValueType::F32 {
                return bad("leaky ReLU runs on f32 values");
            }
        }
        OpKind::Add | OpKind::Concat => {
            let ins = &in_t[..n.n_inputs as usize];
            match out_t {
                ValueType::F32 => {
                    if ins.iter().any(|t| *t != ValueType::F32) {
                        return bad("f32 add/concat needs f32 inputs");
                    }
                }
                ValueType::U8(qy) => {
                    if !relu_or_none {
                        return bad("a u8 output takes no activation but ReLU");
                    }
                    for t in ins {
                        match t {
                            ValueType::U8(q) if ratio_ok(q, &qy) => {}
                            ValueType::U8(_) => return bad("input/output scale ratio too large"),
                            ValueType::F32 => return bad("u8 add/concat needs u8 inputs"),
                        }
                    }
                }
            }
        }
        OpKind::PixelShuffle | OpKind::PixelUnshuffle => {
            if in_t[0] != out_t {
                return bad("pixel (un)shuffle must keep its value's type and quantization");
            }
        }
        OpKind::Quantize => {
            if in_t[0] != ValueType::F32 || !matches!(out_t, ValueType::U8(_)) {
                return bad("quantize maps an f32 value to a u8 value");
            }
        }
        OpKind::Dequantize => {
            if out_t != ValueType::F32 || !matches!(in_t[0], ValueType::U8(_)) {
                return bad("dequantize maps a u8 value to an f32 value");
            }
        }
    }
    Ok(())
}

fn parse_info(b: &[u8]) -> Result<ModelInfo, Error> {
    let mut name = [0u8; NAME_LEN];
    name.copy_from_slice(&b[info::NAME..info::NAME + NAME_LEN]);
    if u32_at(b, info::LAYOUT) != LAYOUT_PACKED_RGGB {
        return Err(Error::BadInfo("unknown input layout"));
    }
    let in_channels = u32_at(b, info::IN_CHANNELS);
    let out_channels = u32_at(b, info::OUT_CHANNELS);
    if in_channels != 4 || out_channels != 4 {
        return Err(Error::BadInfo(
            "a Bayer denoiser takes and returns 4 packed planes",
        ));
    }
    let size_multiple = u32_at(b, info::SIZE_MULTIPLE);
    if size_multiple == 0 || size_multiple > 1024 {
        return Err(Error::BadInfo("size multiple must be 1..1024"));
    }
    let input_scale = f32_at(b, info::INPUT_SCALE);
    if !(input_scale.is_finite() && input_scale > 0.0) {
        return Err(Error::BadInfo("input scale must be positive"));
    }
    let noise = match u32_at(b, info::NOISE_KIND) {
        0 => NoiseConditioning::None,
        1 => {
            let anchor_iso = f32_at(b, info::ANCHOR_ISO);
            if !(anchor_iso.is_finite() && anchor_iso > 0.0) {
                return Err(Error::BadInfo("anchor ISO must be positive"));
            }
            NoiseConditioning::KSigma { anchor_iso }
        }
        _ => return Err(Error::BadInfo("unknown noise conditioning")),
    };
    let k = [f32_at(b, info::K_COEFFS), f32_at(b, info::K_COEFFS + 4)];
    let s = [
        f32_at(b, info::SIGMA2_COEFFS),
        f32_at(b, info::SIGMA2_COEFFS + 4),
        f32_at(b, info::SIGMA2_COEFFS + 8),
    ];
    let default_noise = NoiseCurves { k, sigma2: s };
    if k.iter().chain(s.iter()).any(|x| !x.is_finite()) {
        return Err(Error::BadInfo("noise coefficients must be finite"));
    }
    let clip_below_black = match u32_at(b, info::CLIP_BELOW_BLACK) {
        0 => false,
        1 => true,
        _ => return Err(Error::BadInfo("clip-below-black flag must be 0 or 1")),
    };
    let noise_channels = match u32_at(b, info::NOISE_CHANNELS) {
        0 => NoiseChannels::PerPlane,
        1 => NoiseChannels::Pooled,
        _ => return Err(Error::BadInfo("unknown noise-channels code")),
    };
    let halo = u32_at(b, info::HALO);
    let receptive_field = u32_at(b, info::RECEPTIVE_FIELD);
    if halo > 4096 || receptive_field > 1 << 20 {
        return Err(Error::BadInfo("halo or receptive field out of range"));
    }
    Ok(ModelInfo {
        name,
        in_channels,
        out_channels,
        output_value: u32_at(b, info::OUTPUT_VALUE),
        size_multiple,
        receptive_field,
        halo,
        input_scale,
        noise,
        default_noise,
        input: InputConvention {
            clip_below_black,
            noise_channels,
        },
    })
}
