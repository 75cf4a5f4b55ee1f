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
//! a Cast before the output (I/O stay float32).
#![warn(missing_docs)]

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    Message, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use rawnr_core::format::{Activation, Model, NoiseConditioning, OpKind, NO_TENSOR};

/// ONNX operator set the export targets.
pub const OPSET: i64 = 17;
/// ONNX IR version written (matches opset 17).
pub const IR_VERSION: i64 = 8;

/// Numeric precision of the exported graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// float32 weights and arithmetic.
    F32,
    /// float16 weights and arithmetic (float32 graph input and output).
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
    /// Serialising the protobuf failed.
    #[error("protobuf: {0}")]
    Protobuf(String),
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

fn tensor_f(name: &str, dims: &[i64], data: &[f32], precision: Precision) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    match precision {
        Precision::F32 => {
            t.data_type = DataType::FLOAT as i32;
            t.raw_data = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        }
        Precision::F16 => {
            t.data_type = DataType::FLOAT16 as i32;
            t.raw_data = data
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect();
        }
    }
    t
}

fn tensor_i64(name: &str, data: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = vec![data.len() as i64];
    t.data_type = DataType::INT64 as i32;
    t.raw_data = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    t
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

/// Exports `model` to serialised ONNX bytes.
pub fn export(model: &Model<'_>, precision: Precision) -> Result<Vec<u8>, ExportError> {
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
        let out = value_name(i as u32 + 1);
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
            out.clone()
        };
        let unsupported = |reason: &str| ExportError::Unsupported {
            node: i,
            reason: reason.into(),
        };
        match n.op {
            OpKind::Quantize | OpKind::Dequantize => {
                return Err(unsupported("quantized models are not exported yet"))
            }
            OpKind::Conv2d | OpKind::ConvTranspose2d => {
                let w = model.tensor(n.weight as usize);
                if w.dtype != rawnr_core::format::DType::F32 {
                    return Err(unsupported("f16/int8 weights are not exported yet"));
                }
                let wname = format!("w{i}");
                let dims: Vec<i64> = w.dims[..w.rank as usize]
                    .iter()
                    .map(|&d| d as i64)
                    .collect();
                g.initializer.push(tensor_f(
                    &wname,
                    &dims,
                    model.tensor_f32(n.weight as usize),
                    precision,
                ));
                let mut inputs = vec![ins[0], wname.as_str()];
                let bname = format!("b{i}");
                if n.bias != NO_TENSOR {
                    g.initializer.push(tensor_f(
                        &bname,
                        &[n.out_channels as i64],
                        model.tensor_f32(n.bias as usize),
                        precision,
                    ));
                    inputs.push(&bname);
                }
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
                let perm: Vec<i64> = (0..c * r * r)
                    .map(|o| (o % (r * r)) * c + o / (r * r))
                    .collect();
                let pname = format!("perm{i}");
                g.initializer.push(tensor_i64(&pname, &perm));
                g.node.push(node(
                    "Gather",
                    format!("n{i}_gather"),
                    &[&s2d, &pname],
                    &raw_out,
                    vec![attr_int("axis", 1)],
                ));
            }
        }
        if fused {
            match n.activation {
                Activation::Relu => {
                    g.node
                        .push(node("Relu", format!("n{i}_act"), &[&raw_out], &out, vec![]))
                }
                Activation::LeakyRelu(a) => g.node.push(node(
                    "LeakyRelu",
                    format!("n{i}_act"),
                    &[&raw_out],
                    &out,
                    vec![attr_float("alpha", a)],
                )),
                Activation::None => {}
            }
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
         k-sigma mapped, times input_scale; H, W multiples of size_multiple.",
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
    meta("rawnr.noise_k", format!("{:?}", info.default_noise.k));
    meta(
        "rawnr.noise_sigma2",
        format!("{:?}", info.default_noise.sigma2),
    );
    meta(
        "rawnr.precision",
        match precision {
            Precision::F32 => "fp32".into(),
            Precision::F16 => "fp16".into(),
        },
    );
    m.graph = Some(g).into();
    m.write_to_bytes()
        .map_err(|e| ExportError::Protobuf(e.to_string()))
}
