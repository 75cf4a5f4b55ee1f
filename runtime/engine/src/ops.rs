//! From a node to its kernel call, in one place for every path that runs nodes: the whole-plane
//! node loop ([`crate::graph`]), the fused bands of separable blocks (`fuse.rs`) and the
//! row-streamed calls ([`crate::stream`]). Here a node gets its class ([`NodeClass`]: which
//! kernel family runs it), its operands read from the model once per call (`ConvOperands`,
//! `EltOperands`), its inputs as typed planes (`Plane`) and its output as the kernels take it
//! (`kernel_output`). The calls on plane windows (`Engine::pointwise`,
//! `Engine::depthwise_channel`, `Engine::eltwise_rows`) and on whole planes
//! (`Engine::exec_node`) are the only places the engine calls a convolution or element-wise
//! kernel, apart from the ring-aware streamed kernels (`stream/call.rs`).

use core::ops::{Bound, Range, RangeBounds};

use rawnr_core::format::{Activation, DType, Model, OpKind, ValueQuant, ValueType, NO_TENSOR};
use rawnr_core::Error;
use rawnr_kernels::quant::{QAddParams, QConvParams, QOutput, QParams, QRescale};
use rawnr_kernels::{generic, generic_i8, Act, Conv1x1, ConvShape};

use crate::graph::{Engine, Shape};

/// The kernel family that runs a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeClass {
    /// Convolution with a 1x1 kernel, stride 1, no padding, one group
    /// ([`ConvShape::is_pointwise`]).
    Pointwise,
    /// Convolution with one group per channel and stride 1 or 2 ([`ConvShape::is_depthwise`]).
    Depthwise,
    /// Any other convolution.
    Dense,
    /// Transposed convolution.
    Transposed,
    /// Add, ReLU / LeakyReLU, Quantize, Dequantize: each output element from the same element
    /// of each input.
    Elementwise,
    /// Channel concatenation.
    Concat,
    /// Depth to space.
    PixelShuffle,
    /// Space to depth.
    PixelUnshuffle,
}

impl NodeClass {
    /// Short lower-case name (profiles, messages).
    pub fn name(self) -> &'static str {
        match self {
            NodeClass::Pointwise => "pointwise",
            NodeClass::Depthwise => "depthwise",
            NodeClass::Dense => "dense",
            NodeClass::Transposed => "transposed",
            NodeClass::Elementwise => "element-wise",
            NodeClass::Concat => "concat",
            NodeClass::PixelShuffle => "pixel shuffle",
            NodeClass::PixelUnshuffle => "pixel unshuffle",
        }
    }
}

/// The kernels' activation of a model activation.
pub(crate) fn act(a: Activation) -> Act {
    match a {
        Activation::None => Act::None,
        Activation::Relu => Act::Relu,
        Activation::LeakyRelu(x) => Act::LeakyRelu(x),
    }
}

/// The kernels' quantization parameters of a value's.
pub(crate) fn qparams(q: ValueQuant) -> QParams {
    QParams {
        scale: q.scale,
        zero_point: q.zero_point,
    }
}

/// The first `n` bytes of an arena slot holding a u8 value.
pub(crate) fn bytes(x: &[f32], n: usize) -> &[u8] {
    &bytemuck::cast_slice::<f32, u8>(x)[..n]
}

/// The first `n` bytes of an arena slot holding a u8 value, writable.
pub(crate) fn bytes_mut(x: &mut [f32], n: usize) -> &mut [u8] {
    &mut bytemuck::cast_slice_mut::<f32, u8>(x)[..n]
}

/// The convolution shape of node `node_index` on an input of shape `input`.
pub(crate) fn conv_shape(model: &Model<'_>, node_index: usize, input: &Shape) -> ConvShape {
    let n = model.node(node_index);
    ConvShape {
        in_c: input.c,
        in_h: input.h,
        in_w: input.w,
        out_c: n.out_channels as usize,
        k_h: n.kernel[0] as usize,
        k_w: n.kernel[1] as usize,
        stride_h: n.stride[0] as usize,
        stride_w: n.stride[1] as usize,
        pad: n.pad.map(|p| p as usize),
        groups: n.groups as usize,
    }
}

/// A kernel's output: elements `range` of `out`, which holds a value of type `ty` (u8 codes
/// are bytes of the slots, so a u8 range counts bytes); `act` is the node's activation (a u8
/// output takes a ReLU in its requantization).
pub(crate) fn kernel_output<'a>(
    ty: ValueType,
    act: Act,
    out: &'a mut [f32],
    range: impl RangeBounds<usize>,
) -> QOutput<'a> {
    let bounds = |len: usize| {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e + 1,
            Bound::Excluded(&e) => e,
            Bound::Unbounded => len,
        };
        start..end
    };
    match ty {
        ValueType::U8(q) => {
            let dst = bytemuck::cast_slice_mut::<f32, u8>(out);
            let r = bounds(dst.len());
            QOutput::U8 {
                q: qparams(q),
                relu: act == Act::Relu,
                dst: &mut dst[r],
            }
        }
        ValueType::F32 => {
            let r = bounds(out.len());
            QOutput::F32 {
                act,
                dst: &mut out[r],
            }
        }
    }
}

/// Rows of one channel in a ring or buffer of f32 slots: f32 values, or the u8 codes of a
/// quantized value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Plane<'a> {
    /// f32 values.
    F32(&'a [f32]),
    /// u8 codes.
    U8(&'a [u8]),
}

impl<'a> Plane<'a> {
    /// Elements `r` (values, or bytes for a u8 value) of a value of type `ty` held in `slots`.
    pub fn of(ty: ValueType, slots: &'a [f32], r: Range<usize>) -> Self {
        match ty {
            ValueType::F32 => Plane::F32(&slots[r]),
            ValueType::U8(_) => Plane::U8(&bytemuck::cast_slice::<f32, u8>(slots)[r]),
        }
    }
}

/// A convolution node's weights as its kernels take them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConvWeights<'a> {
    /// f32 weights (f16 ones widened) and bias (empty without one).
    F32 {
        /// Weights, OIHW.
        weight: &'a [f32],
        /// Bias per output channel, or empty.
        bias: &'a [f32],
    },
    /// int8 weights, per-channel scales and i32 bias, with the input's quantization.
    I8(QConvParams<'a>),
}

/// A convolution node's operands, read once per call ([`Engine::conv_operands`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvOperands<'a> {
    /// The weights.
    pub weights: ConvWeights<'a>,
    /// The node's activation.
    pub act: Act,
    /// Taps per output channel and input channel of its group.
    pub taps: usize,
    /// The node.
    pub node: usize,
}

/// An element-wise node's operands, read once per call ([`Engine::eltwise_operands`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EltOperands {
    op: OpKind,
    act: Act,
    /// Output type.
    ty: ValueType,
    /// Quantized add (u8 add).
    qadd: Option<QAddParams>,
    /// Input quantization (dequantize).
    q_in: Option<QParams>,
    node: usize,
}

impl<'m> Engine<'m> {
    /// The kernel family that runs node `i` (from the node and its input's channels; the
    /// class does not depend on the input's height and width).
    pub fn node_class(&self, i: usize) -> NodeClass {
        let m = &self.model;
        let n = m.node(i);
        match n.op {
            OpKind::Conv2d => {
                let in_c = m.value_channels(n.inputs[0] as usize);
                let s = conv_shape(
                    m,
                    i,
                    &Shape {
                        c: in_c,
                        h: 0,
                        w: 0,
                    },
                );
                if s.is_pointwise() {
                    NodeClass::Pointwise
                } else if s.is_depthwise() {
                    NodeClass::Depthwise
                } else {
                    NodeClass::Dense
                }
            }
            OpKind::ConvTranspose2d => NodeClass::Transposed,
            OpKind::Add
            | OpKind::Relu
            | OpKind::LeakyRelu
            | OpKind::Quantize
            | OpKind::Dequantize => NodeClass::Elementwise,
            OpKind::Concat => NodeClass::Concat,
            OpKind::PixelShuffle => NodeClass::PixelShuffle,
            OpKind::PixelUnshuffle => NodeClass::PixelUnshuffle,
        }
    }

    /// The int8 operands of convolution node `i` (weights, per-channel scales, i32 bias) with
    /// its input's quantization; `None` when the input is not a u8 value.
    pub(crate) fn qconv_params(&self, i: usize) -> Option<QConvParams<'m>> {
        let m = &self.model;
        let n = m.node(i);
        let qx = m.value_quant(n.inputs[0] as usize)?;
        Some(QConvParams {
            in_zero_point: qx.zero_point,
            in_scale: qx.scale,
            weight: m.tensor_i8(n.weight as usize),
            weight_scale: m.tensor_f32(n.weight_scale as usize),
            bias: m.bias_i32(i),
        })
    }

    /// The f32 bias of convolution node `i` (empty without one).
    pub(crate) fn bias_f32(&self, i: usize) -> &'m [f32] {
        let n = self.model.node(i);
        if n.bias == NO_TENSOR {
            &[]
        } else {
            self.model.tensor_f32(n.bias as usize)
        }
    }

    /// The operands of convolution node `i`; f16 weights are widened into `widen` (an error
    /// when it is too short, e.g. empty where f16 weights are not expected).
    pub(crate) fn conv_operands<'a>(
        &'a self,
        i: usize,
        widen: &'a mut [f32],
    ) -> Result<ConvOperands<'a>, Error> {
        let m = &self.model;
        let n = m.node(i);
        let bad = |reason| Error::BadNode {
            node: i as u32,
            reason,
        };
        let weights = match m.tensor(n.weight as usize).dtype {
            DType::I8 => ConvWeights::I8(self.qconv_params(i).ok_or(bad("u8 input"))?),
            DType::F16 => {
                let h = m.tensor_f16(n.weight as usize);
                let buf = widen.get_mut(..h.len()).ok_or(bad("f16 buffer"))?;
                (self.kernels.f16_to_f32)(h, buf);
                ConvWeights::F32 {
                    weight: buf,
                    bias: self.bias_f32(i),
                }
            }
            _ => ConvWeights::F32 {
                weight: m.tensor_f32(n.weight as usize),
                bias: self.bias_f32(i),
            },
        };
        Ok(ConvOperands {
            weights,
            act: act(n.activation),
            taps: n.kernel[0] as usize * n.kernel[1] as usize,
            node: i,
        })
    }

    /// The quantized add of node `add` with operands `a` and `b` (value ids, in the order the
    /// kernel takes them) into its output value.
    pub(crate) fn qadd_params(&self, add: usize, a: usize, b: usize) -> Result<QAddParams, Error> {
        let m = &self.model;
        let bad = |reason| Error::BadNode {
            node: add as u32,
            reason,
        };
        let quant = |v: usize| m.value_quant(v).map(qparams).ok_or(bad("u8 value"));
        let relu = act(m.node(add).activation) == Act::Relu;
        QAddParams::new(quant(a)?, quant(b)?, quant(add + 1)?, relu).ok_or(bad("add scale ratio"))
    }

    /// The operands of element-wise node `i` (add, quantize, dequantize, ReLU).
    pub(crate) fn eltwise_operands(&self, i: usize) -> Result<EltOperands, Error> {
        let m = &self.model;
        let n = m.node(i);
        let ty = m.value_type(i + 1);
        let qadd = match (n.op, ty) {
            (OpKind::Add, ValueType::U8(_)) => {
                Some(self.qadd_params(i, n.inputs[0] as usize, n.inputs[1] as usize)?)
            }
            _ => None,
        };
        let q_in = match n.op {
            OpKind::Dequantize => Some(qparams(m.value_quant(n.inputs[0] as usize).ok_or(
                Error::BadNode {
                    node: i as u32,
                    reason: "u8 value",
                },
            )?)),
            _ => None,
        };
        Ok(EltOperands {
            op: n.op,
            act: act(n.activation),
            ty,
            qadd,
            q_in,
            node: i,
        })
    }

    /// Pointwise convolution `c` on `pixels` pixels of `in_c` planes `input` (each `pixels`
    /// long) into elements `dst` of `out` (a value of type `ty_out`; bytes for u8), `pixels`
    /// apart per output channel.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pointwise(
        &self,
        c: &ConvOperands<'_>,
        in_c: usize,
        out_c: usize,
        pixels: usize,
        input: Plane<'_>,
        out: &mut [f32],
        ty_out: ValueType,
        dst: Range<usize>,
    ) -> Result<(), Error> {
        let k = &self.kernels;
        match (c.weights, input) {
            (ConvWeights::I8(p), Plane::U8(x)) => {
                let s = ConvShape::pointwise(in_c, out_c, 1, pixels);
                (k.qconv1x1)(&s, &p, x, kernel_output(ty_out, c.act, out, dst));
            }
            (ConvWeights::F32 { weight, bias }, Plane::F32(x)) if ty_out == ValueType::F32 => {
                let s = Conv1x1 {
                    in_c,
                    out_c,
                    pixels,
                };
                (k.conv1x1)(&s, x, weight, bias, c.act, &mut out[dst]);
            }
            _ => {
                return Err(Error::BadNode {
                    node: c.node as u32,
                    reason: "pointwise operand types",
                })
            }
        }
        Ok(())
    }

    /// Depthwise convolution `d` on channel `ch` alone: `s1` is the node's shape for one
    /// channel and the rows `src` holds (padding where the window passes an edge); writes
    /// elements `dst` (bytes for a u8 output) of `out`, whose value has type `ty_out`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn depthwise_channel(
        &self,
        d: &ConvOperands<'_>,
        s1: &ConvShape,
        ch: usize,
        src: Plane<'_>,
        out: &mut [f32],
        ty_out: ValueType,
        dst: Range<usize>,
    ) -> Result<(), Error> {
        let kk = d.taps;
        match (d.weights, src) {
            (ConvWeights::I8(all), Plane::U8(input)) => {
                // Channel `ch`'s operands (a per-tensor weight scale serves every channel).
                let ws = all.weight_scale;
                let p = QConvParams {
                    weight: &all.weight[ch * kk..(ch + 1) * kk],
                    weight_scale: if ws.len() == 1 { ws } else { &ws[ch..ch + 1] },
                    bias: if all.bias.is_empty() {
                        all.bias
                    } else {
                        &all.bias[ch..ch + 1]
                    },
                    ..all
                };
                (self.kernels.qdepthwise)(s1, &p, input, kernel_output(ty_out, d.act, out, dst));
            }
            (ConvWeights::F32 { weight, bias }, Plane::F32(input)) if ty_out == ValueType::F32 => {
                (self.kernels.depthwise)(
                    s1,
                    input,
                    &weight[ch * kk..(ch + 1) * kk],
                    if bias.is_empty() {
                        bias
                    } else {
                        &bias[ch..ch + 1]
                    },
                    d.act,
                    &mut out[dst],
                );
            }
            _ => {
                return Err(Error::BadNode {
                    node: d.node as u32,
                    reason: "depthwise operand types",
                })
            }
        }
        Ok(())
    }

    /// Element-wise op `e` on one stretch of elements: inputs `src`, output elements `dst`
    /// (bytes for a u8 value) of `out`.
    pub(crate) fn eltwise_rows(
        &self,
        e: &EltOperands,
        src: &[Plane<'_>],
        out: &mut [f32],
        dst: Range<usize>,
    ) -> Result<(), Error> {
        let k = &self.kernels;
        let bad = |reason| Error::BadNode {
            node: e.node as u32,
            reason,
        };
        let a = e.act;
        match (e.op, e.ty, src) {
            (OpKind::Add, ValueType::F32, [Plane::F32(x), Plane::F32(y)]) => {
                (k.add)(x, y, a, &mut out[dst])
            }
            (OpKind::Add, ValueType::U8(_), [Plane::U8(x), Plane::U8(y)]) => {
                let p = e.qadd.as_ref().ok_or(bad("add parameters"))?;
                (k.qadd)(x, y, p, &mut bytemuck::cast_slice_mut::<f32, u8>(out)[dst]);
            }
            (OpKind::Quantize, ValueType::U8(q), [Plane::F32(x)]) => (k.quantize)(
                x,
                qparams(q),
                &mut bytemuck::cast_slice_mut::<f32, u8>(out)[dst],
            ),
            (OpKind::Dequantize, ValueType::F32, [Plane::U8(x)]) => {
                (k.dequantize)(x, e.q_in.ok_or(bad("u8 input"))?, &mut out[dst])
            }
            (OpKind::Relu | OpKind::LeakyRelu, ValueType::F32, [Plane::F32(x)]) => {
                generic::activation(x, a, &mut out[dst])
            }
            (OpKind::Relu | OpKind::LeakyRelu, ValueType::U8(q), [Plane::U8(x)]) => {
                generic_i8::qrelu(
                    x,
                    q.zero_point,
                    &mut bytemuck::cast_slice_mut::<f32, u8>(out)[dst],
                )
            }
            _ => return Err(bad("element-wise operand types")),
        }
        Ok(())
    }

    /// Runs node `i` alone on whole planes: `ins` hold its inputs (shapes `in_shapes`), `out`
    /// receives its output (shape `y`); `conv` is a convolution node's shape (the node's own,
    /// or a row window of it with the padding of that window); `widen` holds f16 weights
    /// widened.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn exec_node(
        &self,
        i: usize,
        conv: &ConvShape,
        in_shapes: &[Shape],
        y: Shape,
        ins: &[&[f32]],
        out: &mut [f32],
        widen: &mut [f32],
    ) -> Result<(), Error> {
        let m = &self.model;
        let n = m.node(i);
        let ty = |v: usize| m.value_type(v);
        let ty_out = ty(i + 1);
        let x = in_shapes[0];
        let k = &self.kernels;
        let n_in = n.n_inputs as usize;
        // Input `j` as a typed plane.
        let plane = |j: usize| Plane::of(ty(n.inputs[j] as usize), ins[j], 0..in_shapes[j].len());
        let bad = |reason| Error::BadNode {
            node: i as u32,
            reason,
        };
        match self.node_class(i) {
            NodeClass::Pointwise => {
                let c = self.conv_operands(i, widen)?;
                let pixels = x.h * x.w;
                self.pointwise(&c, x.c, y.c, pixels, plane(0), out, ty_out, 0..y.len())?;
            }
            class @ (NodeClass::Depthwise | NodeClass::Dense | NodeClass::Transposed) => {
                let c = self.conv_operands(i, widen)?;
                match c.weights {
                    ConvWeights::I8(p) => {
                        let f = match class {
                            NodeClass::Transposed => k.qconv_transpose,
                            NodeClass::Depthwise => k.qdepthwise,
                            _ => k.qconv,
                        };
                        let input = bytes(ins[0], x.len());
                        f(
                            conv,
                            &p,
                            input,
                            kernel_output(ty_out, c.act, out, 0..y.len()),
                        );
                    }
                    ConvWeights::F32 { weight, bias } => {
                        let f = match class {
                            NodeClass::Transposed => k.conv_transpose,
                            NodeClass::Depthwise => k.depthwise,
                            _ => k.conv,
                        };
                        f(conv, ins[0], weight, bias, c.act, out);
                    }
                }
            }
            NodeClass::Elementwise => {
                let e = self.eltwise_operands(i)?;
                let src = [plane(0), if n_in > 1 { plane(1) } else { plane(0) }];
                self.eltwise_rows(&e, &src[..n_in.min(2)], out, 0..y.len())?;
            }
            NodeClass::Concat => match ty_out {
                ValueType::F32 => generic::concat(&ins[..n_in], out),
                ValueType::U8(qy) => {
                    let dst = bytes_mut(out, y.len());
                    let mut at = 0;
                    for (j, &v) in n.inputs[..n_in].iter().enumerate() {
                        let len = in_shapes[j].len();
                        let q = m.value_quant(v as usize).ok_or(bad("u8 input"))?;
                        let src = bytes(ins[j], len);
                        if q == qy {
                            dst[at..at + len].copy_from_slice(src);
                        } else {
                            let r = QRescale::new(qparams(q), qparams(qy))
                                .ok_or(bad("concat scale ratio"))?;
                            generic_i8::qrescale(src, &r, &mut dst[at..at + len]);
                        }
                        at += len;
                    }
                }
            },
            NodeClass::PixelShuffle => {
                let r = n.factor as usize;
                match plane(0) {
                    Plane::F32(src) => generic::pixel_shuffle(src, x.c / (r * r), x.h, x.w, r, out),
                    Plane::U8(src) => generic::pixel_shuffle(
                        src,
                        x.c / (r * r),
                        x.h,
                        x.w,
                        r,
                        bytes_mut(out, y.len()),
                    ),
                }
            }
            NodeClass::PixelUnshuffle => {
                let r = n.factor as usize;
                match plane(0) {
                    Plane::F32(src) => generic::pixel_unshuffle(src, x.c, x.h, x.w, r, out),
                    Plane::U8(src) => {
                        generic::pixel_unshuffle(src, x.c, x.h, x.w, r, bytes_mut(out, y.len()))
                    }
                }
            }
        }
        Ok(())
    }
}
