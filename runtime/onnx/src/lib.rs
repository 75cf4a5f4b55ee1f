//! Exports a rawnr `.rnm` model to ONNX (opset 17, dynamic height and width).
//!
//! The graph maps one to one: Conv, ConvTranspose (PyTorch weight layouts are ONNX's), Relu,
//! LeakyRelu, Add, Concat (axis 1), DepthToSpace in CRD mode (= PyTorch PixelShuffle), and
//! SpaceToDepth followed by a channel Gather (ONNX's SpaceToDepth orders channels DCR, PyTorch's
//! PixelUnshuffle CRD). Fused activations become their own nodes. The input is `input`
//! `[1, 4, H, W]` float (packed R, Gr, Gb, B planes after rawnr's k-sigma transform and input
//! scale), the output `output` of the same shape; H and W must be multiples of the model's size
//! multiple. The model's input convention travels in `metadata_props`.
//!
//! [`Precision::F16`] stores weights and computes in float16 between a Cast after the input and
//! a Cast before the output (I/O stay float32). Models with f16 weights export them as stored
//! with [`Precision::F16`] and widened to float32 (exactly) with [`Precision::F32`].
//!
//! # int8 models: QDQ
//!
//! A model with `u8` values (made by `rawnr-quant`) exports, with [`Precision::F32`], as an ONNX
//! QDQ graph, the form ONNX Runtime (which fuses it into QLinearConv etc.), TensorRT, QNN and
//! NNAPI recognise as int8:
//! - every `u8` value is a float tensor made by `QuantizeLinear -> DequantizeLinear` (uint8,
//!   the value's scale and zero point) after the float op that computes it (after the fused
//!   ReLU; a PixelUnshuffle's SpaceToDepth intermediate gets the same pair);
//! - a `Quantize` node is that pair on its input, a `Dequantize` node an `Identity`;
//! - an int8 convolution reads its weights through a per-channel `DequantizeLinear` (axis 0 for
//!   Conv `[out, in/g, kh, kw]`, axis 1 for ConvTranspose `[in, out/g, kh, kw]`), stored as
//!   [`QdqWeights`] says, and its bias as an int32 initializer through a `DequantizeLinear` with
//!   scale `in_scale * weight_scale[oc]` (axis 0).
//!
//! ## Weight storage and ONNX Runtime's CPU kernels
//!
//! Both [`QdqWeights`] forms dequantize to the very same numbers; they differ in which integer
//! kernels a runtime picks. [`QdqWeights::S8`] (int8, zero point 0) is what TensorRT, QNN and
//! NNAPI expect. On x86 CPUs without AVX-512 VNNI / AVX-VNNI, ONNX Runtime's CPU EP multiplies
//! u8 activations by s8 weights with `vpmaddubsw`, which saturates the 16-bit sum of two
//! products (255 x 127 x 2 > 32767): measured on PMRID int8, up to 42 DN from the native engine
//! where VNNI machines give 11 DN. [`QdqWeights::U8Offset`] (uint8 `q + 128`, zero point 128)
//! takes ONNX Runtime's u8 x u8 kernels, which widen to 16 bits before multiplying and are
//! exact on every CPU: the default, for a file that may run anywhere. Where the CPU has VNNI,
//! ONNX Runtime's u8 x s8 kernels are exact too and faster (PMRID-int8 on AVX-512 VNNI: 2.8 s
//! against 4.1-4.3 s for uint8 weights, identical outputs), so `denoise-raw --backend ort`
//! picks [`QdqWeights::S8`] on such CPUs and for the accelerators.
//!
//! A grouped int8 ConvTranspose whose weight scales differ between groups cannot be written
//! as a per-axis `DequantizeLinear` (axis 1 has `out/g` entries); its weights are then the
//! dequantized products `q * scale` as float32 (the same numbers `DequantizeLinear` would make,
//! but not recognised as int8 by the providers). No shipped model has one.
//!
//! The QDQ graph computes what the native int8 engine computes up to rounding: the engine
//! requantizes with fixed-point multipliers and rounds half up, ONNX Runtime with float
//! multipliers and ties to even (tests `tests/tests/onnx_export.rs` bound the difference).
//! QDQ graphs are float32 between the pairs: [`Precision::F16`] on an int8 model is
//! [`ExportError::Int8NeedsF32`].
#![warn(missing_docs)]

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    Message, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use rawnr_core::format::{
    Activation, DType, Model, NoiseChannels, NoiseConditioning, OpKind, ValueQuant, NO_TENSOR,
};

/// ONNX operator set the export targets.
pub const OPSET: i64 = 17;
/// ONNX IR version written (matches opset 17).
pub const IR_VERSION: i64 = 8;

/// Numeric precision of the exported graph's float arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// float32 weights and arithmetic; for an int8 model, the QDQ graph (int8 weights and
    /// uint8 activations through QuantizeLinear/DequantizeLinear, float32 in between).
    F32,
    /// float16 weights and arithmetic (float32 graph input and output); float models only.
    F16,
}

/// Errors of the export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The model uses something ONNX export does not cover.
    #[error("node {node}: {reason}")]
    Unsupported {
        /// Node index.
        node: usize,
        /// What is missing.
        reason: String,
    },
    /// An int8 model was asked for in float16 (its QDQ graph is float32 between the pairs).
    #[error(
        "an int8 model exports as a QDQ graph, float32 between the Q/DQ pairs: export it at fp32"
    )]
    Int8NeedsF32,
    /// Serialising the protobuf failed.
    #[error("protobuf: {0}")]
    Protobuf(String),
}

/// How an int8 model's QDQ graph stores convolution weights (see the crate documentation). Both
/// dequantize to the same values: the choice is which integer kernels a runtime runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QdqWeights {
    /// uint8 `q + 128` with zero point 128: exact in ONNX Runtime's CPU EP on every x86 CPU
    /// (its u8 x u8 kernels cannot saturate).
    #[default]
    U8Offset,
    /// int8 with zero point 0 (symmetric): for TensorRT, QNN, NNAPI; ONNX Runtime's CPU EP on
    /// x86 without VNNI saturates some products' pair sums with these.
    S8,
}

impl QdqWeights {
    /// The name written to the model's `rawnr.qdq_weights` property.
    pub fn name(self) -> &'static str {
        match self {
            QdqWeights::U8Offset => "u8-offset128",
            QdqWeights::S8 => "s8",
        }
    }
}

/// True when `model` has int8 parts (any `u8` value): it exports as a QDQ graph.
pub fn is_int8(model: &Model<'_>) -> bool {
    model.is_int8()
}

/// What `export(model, precision)` produces, in words: `"int8 QDQ"`, `"fp32"` or `"fp16"`
/// (also written to the `rawnr.precision` metadata).
pub fn graph_precision(model: &Model<'_>, precision: Precision) -> &'static str {
    match (is_int8(model), precision) {
        (true, _) => "int8 QDQ",
        (false, Precision::F32) => "fp32",
        (false, Precision::F16) => "fp16",
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = v;
    a
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = v.to_vec();
    a
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::FLOAT.into();
    a.f = v;
    a
}

fn attr_string(name: &str, v: &str) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::STRING.into();
    a.s = v.as_bytes().to_vec();
    a
}

fn node(
    op: &str,
    name: String,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = name;
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.to_string()];
    n.attribute = attrs;
    n
}

fn tensor_raw(name: &str, dims: &[i64], ty: DataType, raw: Vec<u8>) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = ty as i32;
    t.raw_data = raw;
    t
}

fn tensor_f(name: &str, dims: &[i64], data: &[f32], precision: Precision) -> TensorProto {
    match precision {
        Precision::F32 => tensor_raw(
            name,
            dims,
            DataType::FLOAT,
            data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
        Precision::F16 => tensor_raw(
            name,
            dims,
            DataType::FLOAT16,
            data.iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
        ),
    }
}

fn tensor_i64(name: &str, data: &[i64]) -> TensorProto {
    tensor_raw(
        name,
        &[data.len() as i64],
        DataType::INT64,
        data.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

fn value_info(name: &str, elem: DataType) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in ["1", "4", "H", "W"] {
        let mut dim = tensor_shape_proto::Dimension::new();
        match d.parse::<i64>() {
            Ok(v) => dim.set_dim_value(v),
            Err(_) => dim.set_dim_param(d.into()),
        }
        shape.dim.push(dim);
    }
    let mut tt = type_proto::Tensor::new();
    tt.elem_type = elem as i32;
    tt.shape = Some(shape).into();
    let mut tp = TypeProto::new();
    tp.set_tensor_type(tt);
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(tp).into();
    v
}

fn value_name(v: u32) -> String {
    if v == 0 {
        "x".into()
    } else {
        format!("v{v}")
    }
}

/// Appends `QuantizeLinear -> DequantizeLinear` (uint8, per tensor) of float tensor `src`,
/// writing float tensor `dst`; `tag` names the nodes and initializers.
fn push_qdq(g: &mut GraphProto, tag: &str, src: &str, dst: &str, q: ValueQuant) {
    let (s, z, qn) = (
        format!("{tag}_scale"),
        format!("{tag}_zp"),
        format!("{tag}_q"),
    );
    g.initializer.push(tensor_raw(
        &s,
        &[],
        DataType::FLOAT,
        q.scale.to_le_bytes().to_vec(),
    ));
    // The format guarantees 0..=255.
    g.initializer.push(tensor_raw(
        &z,
        &[],
        DataType::UINT8,
        vec![q.zero_point as u8],
    ));
    g.node.push(node(
        "QuantizeLinear",
        format!("{tag}_quantize"),
        &[src, &s, &z],
        &qn,
        vec![],
    ));
    g.node.push(node(
        "DequantizeLinear",
        format!("{tag}_dequantize"),
        &[&qn, &s, &z],
        dst,
        vec![],
    ));
}

/// Per-axis `DequantizeLinear` of a constant: the quantized initializer `{name}_q`, scales
/// `{name}_scale` and zero points `{name}_zp` (all `zero_point`, of the initializer's type;
/// 128 for offset uint8 weights, else 0) make `name`.
fn push_dq_const(
    g: &mut GraphProto,
    name: &str,
    (dims, ty, raw): (&[i64], DataType, Vec<u8>),
    scales: &[f32],
    axis: i64,
    zero_point: u8,
) {
    let (q, s, z) = (
        format!("{name}_q"),
        format!("{name}_scale"),
        format!("{name}_zp"),
    );
    g.initializer.push(tensor_raw(&q, dims, ty, raw));
    let n = scales.len() as i64;
    g.initializer.push(tensor_raw(
        &s,
        &[n],
        DataType::FLOAT,
        scales.iter().flat_map(|x| x.to_le_bytes()).collect(),
    ));
    let zero_len = scales.len()
        * match ty {
            DataType::INT32 => 4,
            _ => 1,
        };
    g.initializer
        .push(tensor_raw(&z, &[n], ty, vec![zero_point; zero_len]));
    g.node.push(node(
        "DequantizeLinear",
        format!("{name}_dequantize"),
        &[&q, &s, &z],
        name,
        vec![attr_int("axis", axis)],
    ));
}

/// Emits the weight (and bias) of convolution node `i` and returns the Conv input names after
/// the data input: `[weight]` or `[weight, bias]`.
fn conv_operands(
    g: &mut GraphProto,
    model: &Model<'_>,
    i: usize,
    precision: Precision,
    weights: QdqWeights,
) -> Result<Vec<String>, ExportError> {
    let n = model.node(i);
    let w = model.tensor(n.weight as usize);
    let dims: Vec<i64> = w.dims[..w.rank as usize]
        .iter()
        .map(|&d| d as i64)
        .collect();
    let (wname, bname) = (format!("w{i}"), format!("b{i}"));
    let has_bias = n.bias != NO_TENSOR;
    match w.dtype {
        DType::F32 => g.initializer.push(tensor_f(
            &wname,
            &dims,
            model.tensor_f32(n.weight as usize),
            precision,
        )),
        DType::F16 => {
            let bits = model.tensor_f16(n.weight as usize);
            g.initializer.push(match precision {
                // Stored halves as they are.
                Precision::F16 => tensor_raw(
                    &wname,
                    &dims,
                    DataType::FLOAT16,
                    bits.iter().flat_map(|b| b.to_le_bytes()).collect(),
                ),
                // Widening is exact: what the engine computes with.
                Precision::F32 => {
                    let wide: Vec<f32> = bits
                        .iter()
                        .map(|&b| half::f16::from_bits(b).to_f32())
                        .collect();
                    tensor_f(&wname, &dims, &wide, Precision::F32)
                }
            });
        }
        DType::I8 => {
            let in_v = n.inputs[0] as usize;
            let qx = model.value_quant(in_v).ok_or(ExportError::Unsupported {
                node: i,
                reason: "int8 convolution on a float input".into(),
            })?;
            let q = model.tensor_i8(n.weight as usize);
            let ws = model.tensor_f32(n.weight_scale as usize);
            let transposed = n.op == OpKind::ConvTranspose2d;
            let groups = n.groups.max(1) as usize;
            let per_group = ws.len() / groups;
            // Scales along the DequantizeLinear axis: all of them for Conv (axis 0 = out);
            // for ConvTranspose (axis 1 = out / groups) only when every group has the same.
            let axis_scales = if !transposed {
                Some(ws)
            } else if (0..ws.len()).all(|oc| ws[oc] == ws[oc % per_group]) {
                Some(&ws[..per_group])
            } else {
                None
            };
            // Offset uint8 is the same value: (q + 128) - 128 (q is in -128..=127).
            let (ty, raw, zp) = match weights {
                QdqWeights::S8 => (DataType::INT8, q.iter().map(|&x| x as u8).collect(), 0),
                QdqWeights::U8Offset => (
                    DataType::UINT8,
                    q.iter().map(|&x| (x as i16 + 128) as u8).collect(),
                    128,
                ),
            };
            match axis_scales {
                Some(s) => push_dq_const(
                    g,
                    &wname,
                    (&dims, ty, raw),
                    s,
                    if transposed { 1 } else { 0 },
                    zp,
                ),
                None => {
                    // [in, out/g, kh, kw]: input channel ic is in group ic / (in/g).
                    let (cin, opg) = (dims[0] as usize, dims[1] as usize);
                    let k = (dims[2] * dims[3]) as usize;
                    let ipg = cin / groups;
                    let deq: Vec<f32> = q
                        .iter()
                        .enumerate()
                        .map(|(e, &x)| {
                            let (ic, j) = (e / (opg * k), e / k % opg);
                            x as f32 * ws[(ic / ipg) * opg + j]
                        })
                        .collect();
                    g.initializer
                        .push(tensor_f(&wname, &dims, &deq, Precision::F32));
                }
            }
            if has_bias {
                let b = model.bias_i32(i);
                // The engine's f32 output stage multiplies by the same f32 product.
                let bscale: Vec<f32> = ws.iter().map(|&s| qx.scale * s).collect();
                push_dq_const(
                    g,
                    &bname,
                    (
                        &[b.len() as i64],
                        DataType::INT32,
                        b.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    ),
                    &bscale,
                    0,
                    0,
                );
            }
            let mut names = vec![wname];
            if has_bias {
                names.push(bname);
            }
            return Ok(names);
        }
        DType::I32 => {
            return Err(ExportError::Unsupported {
                node: i,
                reason: "i32 convolution weights".into(),
            })
        }
    }
    let mut names = vec![wname];
    if has_bias {
        g.initializer.push(tensor_f(
            &bname,
            &[n.out_channels as i64],
            model.tensor_f32(n.bias as usize),
            precision,
        ));
        names.push(bname);
    }
    Ok(names)
}

/// Exports `model` to serialised ONNX bytes (an int8 model as a QDQ graph with the default
/// [`QdqWeights`]; see the crate documentation).
pub fn export(model: &Model<'_>, precision: Precision) -> Result<Vec<u8>, ExportError> {
    export_with(model, precision, QdqWeights::default())
}

/// [`export`] with the int8 weight storage chosen (ignored for models without int8 parts).
pub fn export_with(
    model: &Model<'_>,
    precision: Precision,
    weights: QdqWeights,
) -> Result<Vec<u8>, ExportError> {
    let int8 = is_int8(model);
    if int8 && precision == Precision::F16 {
        return Err(ExportError::Int8NeedsF32);
    }
    let info = model.info();
    let mut g = GraphProto::new();
    g.name = info.name_str().to_string();
    g.input.push(value_info("input", DataType::FLOAT));
    g.output.push(value_info("output", DataType::FLOAT));
    let compute = match precision {
        Precision::F32 => DataType::FLOAT,
        Precision::F16 => DataType::FLOAT16,
    };
    g.node.push(node(
        "Cast",
        "cast_in".into(),
        &["input"],
        "x",
        vec![attr_int("to", compute as i64)],
    ));
    for i in 0..model.n_nodes() {
        let n = model.node(i);
        let out_v = i + 1;
        let out = value_name(out_v as u32);
        let out_q = model.value_quant(out_v);
        // A u8 value's float result goes through Q/DQ into `out`.
        let float_out = if out_q.is_some() {
            format!("{out}_f")
        } else {
            out.clone()
        };
        let ins: Vec<String> = n.inputs[..n.n_inputs as usize]
            .iter()
            .map(|&v| value_name(v))
            .collect();
        let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
        let fused = matches!(n.op, OpKind::Conv2d | OpKind::ConvTranspose2d | OpKind::Add)
            && n.activation != Activation::None;
        let raw_out = if fused {
            format!("{out}_pre")
        } else {
            float_out.clone()
        };
        let unsupported = |reason: &str| ExportError::Unsupported {
            node: i,
            reason: reason.into(),
        };
        match n.op {
            OpKind::Quantize => {
                let q = out_q.ok_or_else(|| unsupported("quantize to a float value"))?;
                push_qdq(&mut g, &out, ins[0], &out, q);
                continue;
            }
            OpKind::Dequantize => {
                g.node.push(node(
                    "Identity",
                    format!("n{i}_identity"),
                    &ins,
                    &out,
                    vec![],
                ));
                continue;
            }
            OpKind::Conv2d | OpKind::ConvTranspose2d => {
                let operands = conv_operands(&mut g, model, i, precision, weights)?;
                let mut inputs = vec![ins[0]];
                inputs.extend(operands.iter().map(String::as_str));
                let [pt, pl, pb, pr] = n.pad.map(|p| p as i64);
                let attrs = vec![
                    attr_ints("kernel_shape", &[n.kernel[0] as i64, n.kernel[1] as i64]),
                    attr_ints("strides", &[n.stride[0] as i64, n.stride[1] as i64]),
                    attr_ints("pads", &[pt, pl, pb, pr]),
                    attr_int("group", n.groups as i64),
                ];
                let op = if n.op == OpKind::Conv2d {
                    "Conv"
                } else {
                    "ConvTranspose"
                };
                g.node.push(node(
                    op,
                    format!("n{i}_{}", op.to_lowercase()),
                    &inputs,
                    &raw_out,
                    attrs,
                ));
            }
            OpKind::Relu => g
                .node
                .push(node("Relu", format!("n{i}_relu"), &ins, &raw_out, vec![])),
            OpKind::LeakyRelu => {
                let Activation::LeakyRelu(a) = n.activation else {
                    return Err(unsupported("LeakyRelu without slope"));
                };
                g.node.push(node(
                    "LeakyRelu",
                    format!("n{i}_leaky"),
                    &ins,
                    &raw_out,
                    vec![attr_float("alpha", a)],
                ));
            }
            OpKind::Add => g
                .node
                .push(node("Add", format!("n{i}_add"), &ins, &raw_out, vec![])),
            OpKind::Concat => g.node.push(node(
                "Concat",
                format!("n{i}_concat"),
                &ins,
                &raw_out,
                vec![attr_int("axis", 1)],
            )),
            OpKind::PixelShuffle => {
                let attrs = vec![
                    attr_int("blocksize", n.factor as i64),
                    attr_string("mode", "CRD"),
                ];
                g.node.push(node(
                    "DepthToSpace",
                    format!("n{i}_d2s"),
                    &ins,
                    &raw_out,
                    attrs,
                ));
            }
            OpKind::PixelUnshuffle => {
                // SpaceToDepth gives channel (i*r + j)*C + c; PyTorch wants c*r*r + i*r + j.
                let r = n.factor as i64;
                let c = n.out_channels as i64 / (r * r);
                let s2d = format!("{out}_s2d");
                g.node.push(node(
                    "SpaceToDepth",
                    format!("n{i}_s2d"),
                    &ins,
                    &s2d,
                    vec![attr_int("blocksize", r)],
                ));
                // In a QDQ graph every float tensor between quantized ops is a Q/DQ pair
                // (exact here: same scale and zero point as the input).
                let gather_in = match out_q {
                    Some(q) => {
                        let dq = format!("{s2d}_dq");
                        push_qdq(&mut g, &s2d, &s2d, &dq, q);
                        dq
                    }
                    None => s2d,
                };
                let perm: Vec<i64> = (0..c * r * r)
                    .map(|o| (o % (r * r)) * c + o / (r * r))
                    .collect();
                let pname = format!("perm{i}");
                g.initializer.push(tensor_i64(&pname, &perm));
                g.node.push(node(
                    "Gather",
                    format!("n{i}_gather"),
                    &[&gather_in, &pname],
                    &raw_out,
                    vec![attr_int("axis", 1)],
                ));
            }
        }
        if fused {
            match n.activation {
                Activation::Relu => g.node.push(node(
                    "Relu",
                    format!("n{i}_act"),
                    &[&raw_out],
                    &float_out,
                    vec![],
                )),
                Activation::LeakyRelu(a) => g.node.push(node(
                    "LeakyRelu",
                    format!("n{i}_act"),
                    &[&raw_out],
                    &float_out,
                    vec![attr_float("alpha", a)],
                )),
                Activation::None => {}
            }
        }
        if let Some(q) = out_q {
            push_qdq(&mut g, &out, &float_out, &out, q);
        }
    }
    let last = value_name(info.output_value);
    g.node.push(node(
        "Cast",
        "cast_out".into(),
        &[&last],
        "output",
        vec![attr_int("to", DataType::FLOAT as i64)],
    ));

    let mut m = ModelProto::new();
    m.ir_version = IR_VERSION;
    let mut opset = OperatorSetIdProto::new();
    opset.domain = String::new();
    opset.version = OPSET;
    m.opset_import.push(opset);
    m.producer_name = "rawnr".into();
    m.producer_version = env!("CARGO_PKG_VERSION").into();
    m.doc_string = format!(
        "rawnr model '{}': input [1,4,H,W] = packed R,Gr,Gb,B planes, normalised ((raw-black)/(white-black)), \
         clipped at 0 when rawnr.clip_below_black is true, k-sigma mapped (one transform from the \
         channel-averaged noise when rawnr.noise_channels is pooled, else one per plane), times \
         input_scale; H, W multiples of size_multiple.",
        info.name_str()
    );
    let mut meta = |k: &str, v: String| {
        let mut e = StringStringEntryProto::new();
        e.key = k.into();
        e.value = v;
        m.metadata_props.push(e);
    };
    meta("rawnr.input_scale", info.input_scale.to_string());
    meta("rawnr.size_multiple", info.size_multiple.to_string());
    meta("rawnr.receptive_field", info.receptive_field.to_string());
    meta("rawnr.halo", info.halo.to_string());
    if let NoiseConditioning::KSigma { anchor_iso } = info.noise {
        meta("rawnr.noise", "k-sigma".into());
        meta("rawnr.anchor_iso", anchor_iso.to_string());
    }
    meta(
        "rawnr.clip_below_black",
        info.input.clip_below_black.to_string(),
    );
    meta(
        "rawnr.noise_channels",
        match info.input.noise_channels {
            NoiseChannels::PerPlane => "per-plane",
            NoiseChannels::Pooled => "pooled",
        }
        .into(),
    );
    meta("rawnr.noise_k", format!("{:?}", info.default_noise.k));
    meta(
        "rawnr.noise_sigma2",
        format!("{:?}", info.default_noise.sigma2),
    );
    meta(
        "rawnr.precision",
        match graph_precision(model, precision) {
            "int8 QDQ" => "int8-qdq".into(),
            p => p.into(),
        },
    );
    if int8 {
        meta("rawnr.qdq_weights", weights.name().into());
    }
    m.graph = Some(g).into();
    m.write_to_bytes()
        .map_err(|e| ExportError::Protobuf(e.to_string()))
}
