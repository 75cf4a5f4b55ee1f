//! One node call of a streamed run: rows of its output computed from rows of its inputs, in
//! place in the rings where the kernels allow it.

use rawnr_core::format::{DType, OpKind, ValueType};
use rawnr_core::Error;
use rawnr_kernels::quant::QResidual;
use rawnr_kernels::{Act, Conv1x1, ConvShape, PlaneLayout, PwEpilogue, QCONV1X1_STRIDED_MAX_IN_C};

use super::rings::{ring_load, window_shape, Rings};
use super::schedule::SNode;
use super::FillRows;
use crate::graph::{slot_len, split_io, Engine, Shape};
use crate::ops::{
    act, bytes, conv_shape, kernel_output, ConvOperands, ConvWeights, NodeClass, Plane,
};

impl Engine<'_> {
    /// Whether node `i` reading value `u` runs as a depthwise convolution in place in the
    /// rings (f32 or int8 weights, a kernel taller or wider than one, not the input, which
    /// has no ring).
    pub(super) fn in_place_depthwise(&self, i: usize, u: usize) -> bool {
        let m = &self.model;
        let n = m.node(i);
        u != 0
            && self.node_class(i) == NodeClass::Depthwise
            && n.kernel[0] as usize * n.kernel[1] as usize > 1
            && m.tensor(n.weight as usize).dtype != DType::F16
    }

    /// Depthwise convolution `d` on all channels at once where the kernels have one for
    /// these types, on planes laid out as `l` says (`s`: the node's shape for the rows it
    /// reads); the output rows start at element `at` of `out` (a byte for a u8 output).
    /// Returns `false` (nothing done) where the caller must go channel by channel
    /// ([`Engine::depthwise_channel`]) or the shape is not one the kernel takes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn depthwise_strided(
        &self,
        d: &ConvOperands<'_>,
        s: &ConvShape,
        input: Plane<'_>,
        out: &mut [f32],
        ty_out: ValueType,
        at: usize,
        l: &PlaneLayout,
    ) -> bool {
        let k = &self.kernels;
        match (d.weights, input, ty_out) {
            (ConvWeights::F32 { weight, bias }, Plane::F32(x), ValueType::F32) => {
                match k.depthwise_strided {
                    Some(kernel) => {
                        kernel(s, x, weight, bias, d.act, &mut out[at..], l);
                        true
                    }
                    None => false,
                }
            }
            (ConvWeights::I8(q), Plane::U8(x), ty) => match k.qdepthwise_strided {
                Some(kernel) => kernel(s, &q, x, kernel_output(ty, d.act, out, at..), l),
                None => false,
            },
            _ => false,
        }
    }
    /// Computes rows `[r0, r1)` (not wrapping in its ring) of node `i`'s output. Depthwise
    /// convolutions and element-wise ops read and write the rings in place, channel by
    /// channel; f32 pointwise convolutions read rows in place and write through a strided
    /// epilogue; other ops gather their input rows into `win` and scatter their output.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn stream_call(
        &self,
        r: &Rings<'_>,
        sn: &SNode,
        r0: usize,
        r1: usize,
        rings: &mut [f32],
        win: &mut [f32],
        widen: &mut [f32],
        fill: &mut FillRows<'_>,
    ) -> Result<(), Error> {
        let m = &self.model;
        let k = &self.kernels;
        let i = sn.node;
        let n = m.node(i);
        let v = sn.out;
        let n_in = sn.n_in;
        let inputs = sn.inputs();
        let rows = r1 - r0;
        let y = Shape {
            h: rows,
            ..r.shapes[v]
        };
        let u0 = inputs[0];
        let x = r.shapes[u0];
        let (a, b, top) = sn.map.input(r0, r1, x.h);
        // The convolution of this row window: the region's padding only where it reaches.
        let s = window_shape(&conv_shape(m, i, &x), sn.map, rows, a, b, top);
        let ty = |v: usize| r.types[v];
        let mut in_r = [0..0, 0..0, 0..0];
        for (rr, &u) in in_r.iter_mut().zip(inputs) {
            *rr = r.range(u);
        }
        // The input has no ring: readers of it gather rows packed from the frame.
        let in_place = !inputs.contains(&0);
        let weight_ty = (n.op == OpKind::Conv2d).then(|| m.tensor(n.weight as usize).dtype);
        let depthwise = self.in_place_depthwise(i, u0);
        let pointwise = self.node_class(i) == NodeClass::Pointwise;
        let pointwise_f32 = pointwise
            && weight_ty == Some(DType::F32)
            && ty(u0) == ValueType::F32
            && ty(v) == ValueType::F32
            && in_place
            && k.conv1x1_into.is_some();
        let eltwise = in_place
            && matches!(
                n.op,
                OpKind::Add
                    | OpKind::Quantize
                    | OpKind::Dequantize
                    | OpKind::Relu
                    | OpKind::LeakyRelu
            );
        if depthwise {
            let (out, ins) = split_io(rings, r.range(v), &in_r[..1], i)?;
            let d = self.conv_operands(i, &mut [])?;
            let (ty_in, ty_out) = (ty(u0), ty(v));
            let h_out = r.shapes[v].h;
            // All channels in one kernel call, reading the input ring where it wraps, where
            // the kernels have one.
            if b - a <= r.cap[u0] {
                let l = r.layout(u0, a, v);
                let at = r.rows(v, 0, r0, r1).start;
                let src = Plane::of(ty_in, ins[0], 0..x.c * r.cap[u0] * x.w);
                if self.depthwise_strided(&d, &s, src, out, ty_out, at, &l) {
                    return Ok(());
                }
            }
            // Pieces of output rows whose input windows do not wrap in the input ring, read
            // in place; a row whose window straddles the wrap reads a copy of it.
            let mut o = r0;
            while o < r1 {
                let (wa, wb, _) = sn.map.input(o, r1, x.h);
                let end = if r.contiguous(u0, wa, wb) {
                    r1
                } else {
                    let wrap = r.wrap_after(u0, wa);
                    sn.map.ready(wrap, x.h, h_out).clamp(o + 1, r1)
                };
                let (pa, pb, ptop) = sn.map.input(o, end, x.h);
                let s1 = ConvShape {
                    in_c: 1,
                    out_c: 1,
                    groups: 1,
                    ..window_shape(&s, sn.map, end - o, pa, pb, ptop)
                };
                let direct = r.contiguous(u0, pa, pb);
                for ch in 0..y.c {
                    let dst = r.rows(v, ch, o, end);
                    if direct {
                        let src = Plane::of(ty_in, ins[0], r.rows(u0, ch, pa, pb));
                        self.depthwise_channel(&d, &s1, ch, src, out, ty_out, dst)?;
                    } else {
                        let len = slot_len(
                            ty_in,
                            &Shape {
                                c: 1,
                                h: pb - pa,
                                ..x
                            },
                        );
                        let chans = ch..ch + 1;
                        ring_load(ty_in, ins[0], x, r.cap[u0], chans, pa, pb, &mut win[..len]);
                        let src = Plane::of(ty_in, &win[..len], 0..(pb - pa) * x.w);
                        self.depthwise_channel(&d, &s1, ch, src, out, ty_out, dst)?;
                    }
                }
                o = end;
            }
            return Ok(());
        }
        if eltwise {
            let (out, ins) = split_io(rings, r.range(v), &in_r[..n_in], i)?;
            let e = self.eltwise_operands(i)?;
            let ty_in = [ty(u0), ty(inputs[n_in.min(2) - 1])];
            // Stretches where no input ring wraps either.
            let mut s0 = r0;
            while s0 < r1 {
                let mut s1 = r1;
                for &u in inputs {
                    s1 = s1.min(r.wrap_after(u, s0));
                }
                for ch in 0..y.c {
                    let mut src: [Plane<'_>; 2] = [Plane::F32(&[]), Plane::F32(&[])];
                    for (j, &u) in inputs[..n_in.min(2)].iter().enumerate() {
                        src[j] = Plane::of(ty_in[j], ins[j], r.rows(u, ch, s0, s1));
                    }
                    self.eltwise_rows(&e, &src[..n_in.min(2)], out, r.rows(v, ch, s0, s1))?;
                }
                s0 = s1;
            }
            return Ok(());
        }
        // A fused pointwise + add node with int8 weights runs on the int8 kernel below.
        let fused_i8 = sn.fused_add.is_some() && weight_ty == Some(DType::I8);
        if pointwise_f32 || (sn.fused_add.is_some() && !fused_i8) {
            let (wt, bias) = (m.tensor_f32(n.weight as usize), self.bias_f32(i));
            let into = k.conv1x1_into.ok_or(Error::BadInfo("pointwise kernel"))?;
            // A fused add's other operand is the residual, read from its own ring.
            let (u1, act_add) = match sn.fused_add {
                Some(add) => (Some(inputs[1]), act(m.node(add).activation)),
                None => (None, Act::None),
            };
            let (out, ins) = split_io(rings, r.range(v), &in_r[..n_in], i)?;
            // Rows read in place, one call per stretch no input ring wraps in.
            let mut s0 = r0;
            while s0 < r1 {
                let s1 = u1.map_or(r1, |u1| r1.min(r.wrap_after(u1, s0)));
                let s1 = s1.min(r.wrap_after(u0, s0));
                let pw = Conv1x1 {
                    in_c: s.in_c,
                    out_c: s.out_c,
                    pixels: (s1 - s0) * y.w,
                };
                let e = PwEpilogue {
                    stride: r.cap[v] * y.w,
                    in_stride: r.cap[u0] * x.w,
                    residual: u1.map(|u1| &ins[1][r.rows(u1, 0, s0, s1).start..]),
                    res_stride: u1.map_or(0, |u1| r.cap[u1] * y.w),
                    act: act_add,
                };
                let (in_at, out_at) = (r.rows(u0, 0, s0, s1).start, r.rows(v, 0, s0, s1).start);
                let a = act(n.activation);
                into(&pw, &ins[0][in_at..], wt, bias, a, &mut out[out_at..], &e);
                s0 = s1;
            }
            return Ok(());
        }
        let pointwise_i8 = pointwise
            && weight_ty == Some(DType::I8)
            && matches!(ty(u0), ValueType::U8(_))
            && (1..=QCONV1X1_STRIDED_MAX_IN_C).contains(&s.in_c)
            && in_place
            && k.qconv1x1_strided.is_some();
        if let (true, Some(strided)) = (pointwise_i8, k.qconv1x1_strided) {
            let bad = |reason| Error::BadNode {
                node: i as u32,
                reason,
            };
            let qp = self.qconv_params(i).ok_or(bad("u8 input"))?;
            let (out, ins) = split_io(rings, r.range(v), &in_r[..n_in], i)?;
            let a = act(n.activation);
            let input = bytes(ins[0], r.shapes[u0].c * r.cap[u0] * x.w);
            // A fused add's other operand is the residual, read from its own ring; a `u8` add
            // takes the pointwise output as its first operand.
            let fused = match sn.fused_add {
                Some(add) if fused_i8 => {
                    let an = m.node(add);
                    let u1 = inputs[1];
                    let add_params = match (ty(u1), ty(v)) {
                        (ValueType::U8(_), ValueType::U8(_)) => {
                            Some(self.qadd_params(add, i + 1, u1)?)
                        }
                        _ => None,
                    };
                    Some((u1, act(an.activation), add_params))
                }
                _ => None,
            };
            // Rows read in place, one call per stretch no input ring wraps in.
            let mut s0 = r0;
            while s0 < r1 {
                let s1 = r1.min(r.wrap_after(u0, s0));
                let s1 = fused.map_or(s1, |(u1, ..)| s1.min(r.wrap_after(u1, s0)));
                let pw = ConvShape { in_h: s1 - s0, ..s };
                let residual = fused.map(|(u1, add_act, add_params)| {
                    let at = r.rows(u1, 0, s0, s1).start;
                    let stride = r.cap[u1] * y.w;
                    match add_params {
                        Some(add) => QResidual::U8 {
                            rows: &bytes(ins[1], y.c * stride)[at..],
                            stride,
                            add,
                        },
                        None => QResidual::F32 {
                            rows: &ins[1][at..],
                            stride,
                            act: add_act,
                        },
                    }
                });
                let (in_at, out_at) = (r.rows(u0, 0, s0, s1).start, r.rows(v, 0, s0, s1).start);
                // The pointwise node's own output (a fused add's output is `v`).
                let dst = kernel_output(m.value_type(i + 1), a, out, out_at..);
                strided(
                    &pw,
                    &qp,
                    &input[in_at..],
                    dst,
                    r.cap[u0] * x.w,
                    r.cap[v] * y.w,
                    residual.as_ref(),
                );
                s0 = s1;
            }
            return Ok(());
        }
        if sn.fused_add.is_some() {
            return Err(Error::BadNode {
                node: i as u32,
                reason: "a fused pointwise + add without its kernel",
            });
        }
        // A dense f32 convolution reads its input rows where they are (a ring's rows; the
        // input's, packed into the window) and writes its output rows into the ring.
        let dense_f32 = n.op == OpKind::Conv2d
            && n_in == 1
            && weight_ty == Some(DType::F32)
            && ty(u0) == ValueType::F32
            && ty(v) == ValueType::F32
            && !pointwise
            && s.groups == 1;
        if let (true, Some(kernel)) = (dense_f32, k.conv_strided) {
            let (wt, bias) = (m.tensor_f32(n.weight as usize), self.bias_f32(i));
            let a_act = act(n.activation);
            let out_at = r.rows(v, 0, r0, r1).start;
            let out_stride = r.cap[v] * y.w;
            let done = if in_place {
                if b - a > r.cap[u0] {
                    false
                } else {
                    let (out, ins) = split_io(rings, r.range(v), &in_r[..1], i)?;
                    let l = r.layout(u0, a, v);
                    kernel(&s, ins[0], wt, bias, a_act, &mut out[out_at..], &l)
                }
            } else {
                let len = r.window_len(u0, b - a);
                fill(a, b, &mut win[..len])?;
                let l = PlaneLayout {
                    in_stride: (b - a) * x.w,
                    in_rows: b - a,
                    in_first_row: 0,
                    out_stride,
                };
                let out = &mut rings[r.range(v)];
                kernel(&s, &win[..len], wt, bias, a_act, &mut out[out_at..], &l)
            };
            if done {
                return Ok(());
            }
        }
        // Gather, run, scatter.
        let mut in_shapes = [Shape::default(); 3];
        let mut spans = [0..0, 0..0, 0..0];
        let mut at = 0;
        for (j, &u) in inputs.iter().enumerate() {
            let (a, b, _) = sn.map.input(r0, r1, r.shapes[u].h);
            in_shapes[j] = Shape {
                h: b - a,
                ..r.shapes[u]
            };
            let len = r.window_len(u, b - a);
            spans[j] = at..at + len;
            if u == 0 {
                fill(a, b, &mut win[at..at + len])?;
            } else {
                r.load(rings, u, a, b, &mut win[at..at + len]);
            }
            at += len;
        }
        let (ins_area, out_area) = win.split_at_mut(at);
        let out_len = r.window_len(v, rows);
        let ins: [&[f32]; 3] = [
            &ins_area[spans[0].clone()],
            &ins_area[spans[1].clone()],
            &ins_area[spans[2].clone()],
        ];
        self.exec_node(
            i,
            &s,
            &in_shapes[..n_in],
            y,
            &ins[..n_in],
            &mut out_area[..out_len],
            widen,
        )?;
        r.store(rings, v, r0, r1, &out_area[..out_len]);
        Ok(())
    }
}
