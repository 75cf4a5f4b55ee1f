//! Layer fusion: a depthwise convolution, the pointwise convolution that alone reads its
//! output (or a quantization of it: an f32 depthwise feeding an int8 pointwise), and optionally
//! the residual add that alone reads the pointwise output (PMRID's separable blocks) run band
//! by band of output rows. Each band's intermediate results live in small buffers that stay in
//! the core's L2 cache; only the chain's last output reaches the arena, so the intermediate
//! tensors are never written to memory nor planned in the arena (which shrinks the scratch a
//! tile needs, so a memory budget affords larger tiles with less halo overlap).
//!
//! The kernels are the same as for unfused nodes, called on row windows: the depthwise kernel
//! one channel at a time on the input rows the band needs (rows outside the input enter as
//! padding exactly as in a whole-plane call), the pointwise kernel on the band, the add kernel
//! per channel. Every output element therefore gets the same arithmetic as unfused, and the
//! results are bit-identical.

use core::ops::Range;

use rawnr_core::format::{DType, Model, OpKind, ValueType};
use rawnr_core::Error;
use rawnr_kernels::quant::{QAddParams, QConvParams, QOutput};
#[cfg(feature = "alloc")]
use rawnr_kernels::PlaneLayout;
use rawnr_kernels::{Act, Conv1x1, ConvShape, PwEpilogue};

use crate::graph::{act, conv_shape, qparams, slot_len, Engine, PlanRef, Shape};

/// Bytes of one band's two buffers (depthwise and pointwise output) the band height aims at:
/// a quarter of a 1 MiB L2, leaving room for the input rows and the weights.
const BAND_BYTES: usize = 256 << 10;

/// Narrowest plane fused.
const MIN_WIDTH: usize = 64;

/// Smallest intermediate data (depthwise and pointwise outputs) fused.
const MIN_FUSED_BYTES: usize = 1 << 20;

/// Bands are a multiple of this many rows (the depthwise kernels' register tile height).
const BAND_ROW_MULTIPLE: usize = 8;

/// A fusable chain starting at a depthwise node: depthwise, [quantize,] pointwise, [add].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chain {
    /// The depthwise node.
    pub dw: usize,
    /// Whether a Quantize node sits between the depthwise and the pointwise node.
    pub quant: bool,
    /// Whether the add after the pointwise node is part of the chain.
    pub add: bool,
    /// Output rows per band.
    pub rows: usize,
}

impl Chain {
    /// Nodes the chain covers.
    pub fn len(&self) -> usize {
        2 + usize::from(self.quant) + usize::from(self.add)
    }
    /// The pointwise node (its input is value `pw()`, its output value `pw() + 1`).
    pub fn pw(&self) -> usize {
        self.dw + 1 + usize::from(self.quant)
    }
    /// The value the chain writes to the arena.
    pub fn out_value(&self) -> usize {
        self.dw + self.len()
    }
}

/// Counts, per value, the node inputs that read it (a node reading a value twice counts
/// twice) into `readers` (at least [`Model::n_values`] entries): one pass over the nodes.
pub(crate) fn count_readers(m: &Model<'_>, readers: &mut [usize]) {
    readers[..m.n_values()].fill(0);
    for i in 0..m.n_nodes() {
        let n = m.node(i);
        for &x in &n.inputs[..n.n_inputs as usize] {
            readers[x as usize] += 1;
        }
    }
}

/// Bytes of one element of a value of type `ty`.
pub(crate) fn elem_bytes(ty: ValueType) -> usize {
    match ty {
        ValueType::F32 => 4,
        ValueType::U8(_) => 1,
    }
}

impl Engine<'_> {
    /// The chain starting at node `i`, if it fuses with the plan's value shapes `shapes`:
    /// node `i` a depthwise convolution (padding smaller than the kernel, f32 input and output
    /// unless int8), optionally a Quantize of its output, then a pointwise convolution reading
    /// only that, no f16 weights, each intermediate value read by nothing else, and bands
    /// smaller than the plane. The add after joins when it alone reads the pointwise output.
    /// `readers`: per value, the node inputs reading it ([`count_readers`]).
    pub(crate) fn chain_at(&self, i: usize, shapes: &[Shape], readers: &[usize]) -> Option<Chain> {
        let m = &self.model;
        if !self.fusion || i + 1 >= m.n_nodes() {
            return None;
        }
        let n0 = m.node(i);
        let output = m.info().output_value as usize;
        let quant = m.node(i + 1).op == OpKind::Quantize;
        let pw = i + 1 + usize::from(quant);
        if n0.op != OpKind::Conv2d || pw >= m.n_nodes() {
            return None;
        }
        let n1 = m.node(pw);
        if n1.op != OpKind::Conv2d {
            return None;
        }
        let x = shapes[n0.inputs[0] as usize];
        let s0 = conv_shape(m, i, &x);
        let depthwise = s0.groups == s0.in_c
            && s0.out_c == s0.in_c
            && s0.k_h * s0.k_w > 1
            && s0.stride_h == s0.stride_w
            && s0.stride_h <= 2
            && s0.pad[0] < s0.k_h
            && s0.pad[2] < s0.k_h;
        let s1 = conv_shape(m, pw, &shapes[pw]);
        let pointwise = s1.k_h == 1
            && s1.k_w == 1
            && s1.stride_h == 1
            && s1.stride_w == 1
            && s1.groups == 1
            && s1.pad == [0; 4]
            && n1.n_inputs == 1
            && n1.inputs[0] as usize == pw;
        let no_f16 = |n: &rawnr_core::format::Node| m.tensor(n.weight as usize).dtype != DType::F16;
        // Every intermediate value (depthwise output, quantized copy) read once, by the next.
        let private = (i + 1..=pw).all(|v| v != output && readers[v] == 1);
        let quant_ok = !quant || {
            let q = m.node(i + 1);
            q.n_inputs == 1
                && q.inputs[0] as usize == i + 1
                && m.value_type(i + 1) == ValueType::F32
                && matches!(m.value_type(i + 2), ValueType::U8(_))
        };
        if !depthwise || !pointwise || !no_f16(&n0) || !no_f16(&n1) || !private || !quant_ok {
            return None;
        }
        let add = pw + 1 < m.n_nodes() && {
            let n2 = m.node(pw + 1);
            let ins = &n2.inputs[..n2.n_inputs as usize];
            n2.op == OpKind::Add
                && ins.len() == 2
                && ins.iter().filter(|&&v| v as usize == pw + 1).count() == 1
                && shapes[ins[0] as usize] == shapes[ins[1] as usize]
                && pw + 1 != output
                && readers[pw + 1] == 1
        };
        let c = Chain {
            dw: i,
            quant,
            add,
            rows: self.band_rows(i, quant, shapes),
        };
        // Small planes stay in cache unfused, and their bands would be a few pixels per
        // channel (per-call overheads).
        let d = shapes[i + 1];
        let whole: usize = (i + 1..=pw + 1)
            .map(|v| shapes[v].len() * elem_bytes(m.value_type(v)))
            .sum();
        (c.rows < d.h && d.w >= MIN_WIDTH && whole > MIN_FUSED_BYTES).then_some(c)
    }

    /// Output rows per band of a chain from depthwise node `i` (value shapes of the plan).
    fn band_rows(&self, i: usize, quant: bool, shapes: &[Shape]) -> usize {
        let m = &self.model;
        let row_bytes: usize = (i + 1..=i + 2 + usize::from(quant))
            .map(|v| shapes[v].c * shapes[v].w * elem_bytes(m.value_type(v)))
            .sum();
        let rows = (BAND_BYTES / row_bytes.max(1)) / BAND_ROW_MULTIPLE * BAND_ROW_MULTIPLE;
        rows.max(BAND_ROW_MULTIPLE)
    }

    /// The chain the plan fused at node `i` (read back from the plan's offsets, where
    /// [`Engine::plan_in`] marked the fused-away values; no model scan per run).
    pub(crate) fn planned_chain(&self, i: usize, plan: &PlanRef<'_>) -> Option<Chain> {
        let away = |v: usize| plan.offsets.get(v) == Some(&usize::MAX);
        if plan.band_len == 0 || !away(i + 1) {
            return None;
        }
        let quant = self.model.node(i + 1).op == OpKind::Quantize;
        let pw = i + 1 + usize::from(quant);
        Some(Chain {
            dw: i,
            quant,
            add: away(pw + 1),
            rows: self.band_rows(i, quant, plan.shapes),
        })
    }

    /// Arena slots of chain `c`'s band buffers (depthwise output, its quantized copy, the
    /// pointwise output unless written straight to the arena) with value shapes `shapes`.
    pub(crate) fn band_slots(&self, c: &Chain, shapes: &[Shape]) -> usize {
        let (dw, q, pw) = self.band_lens(c, shapes);
        dw + q + pw
    }

    fn band_lens(&self, c: &Chain, shapes: &[Shape]) -> (usize, usize, usize) {
        let m = &self.model;
        let band = |v: usize| {
            slot_len(
                m.value_type(v),
                &Shape {
                    h: c.rows,
                    ..shapes[v]
                },
            )
        };
        (
            band(c.dw + 1),
            if c.quant { band(c.dw + 2) } else { 0 },
            if self.pw_direct(c) {
                0
            } else {
                band(c.pw() + 1)
            },
        )
    }

    /// Whether chain `c`'s pointwise convolution writes straight into the output rows (f32,
    /// with a [`rawnr_kernels::Kernels::conv1x1_into`] kernel) instead of a band buffer.
    fn pw_direct(&self, c: &Chain) -> bool {
        let m = &self.model;
        self.kernels.conv1x1_into.is_some()
            && m.tensor(m.node(c.pw()).weight as usize).dtype == DType::F32
            && m.value_type(c.pw() + 1) == ValueType::F32
            && m.value_type(c.out_value()) == ValueType::F32
    }

    /// Runs chain `c` with the run's value shapes `shapes`: reads the depthwise input (and the
    /// add's other input) from `arena`, writes the chain's output value there, and uses `band`
    /// (at least [`Engine::band_slots`] for the plan's shapes) for the bands.
    pub(crate) fn run_chain(
        &self,
        c: &Chain,
        shapes: &[Shape],
        arena: &mut [f32],
        ranges: &dyn Fn(usize) -> Range<usize>,
        band: &mut [f32],
    ) -> Result<(), Error> {
        let m = &self.model;
        let k = &self.kernels;
        let (n0, n1) = (m.node(c.dw), m.node(c.pw()));
        let bad = |reason| Error::BadNode {
            node: c.dw as u32,
            reason,
        };
        let xv = n0.inputs[0] as usize;
        let x = shapes[xv];
        let s0 = conv_shape(m, c.dw, &x);
        let (d, p) = (shapes[c.dw + 1], shapes[c.pw() + 1]);
        let out_v = c.out_value();
        let (ty_x, ty_d, ty_p, ty_o) = (
            m.value_type(xv),
            m.value_type(c.dw + 1),
            m.value_type(c.pw() + 1),
            m.value_type(out_v),
        );
        // The add's other input and whether the pointwise output is its first operand.
        let (skip_v, pw_first) = if c.add {
            let n2 = m.node(c.pw() + 1);
            if n2.inputs[0] as usize == c.pw() + 1 {
                (n2.inputs[1] as usize, true)
            } else {
                (n2.inputs[0] as usize, false)
            }
        } else {
            (xv, true)
        };
        let out_r = ranges(out_v);
        let mut in_r = [ranges(xv), ranges(skip_v), 0..0];
        if !c.add {
            in_r[1] = 0..0;
        }
        let (out, ins) = crate::graph::split_io(arena, out_r, &in_r[..2], c.dw)?;
        let (dw_len, q_len, pw_len) = self.band_lens(c, shapes);
        if band.len() < dw_len + q_len + pw_len {
            return Err(Error::BufferTooSmall {
                needed: dw_len + q_len + pw_len,
                got: band.len(),
            });
        }
        let (dw_band, rest) = band.split_at_mut(dw_len);
        let (q_band, rest) = rest.split_at_mut(q_len);
        let pw_band = &mut rest[..pw_len];
        let plane = x.h * x.w;
        let (stride, pad_top) = (s0.stride_h, s0.pad[0]);
        let add_params = match (c.add, ty_o) {
            (true, ValueType::U8(qy)) => {
                let n2 = m.node(c.pw() + 1);
                let qa = m
                    .value_quant(n2.inputs[0] as usize)
                    .ok_or(bad("u8 input"))?;
                let qb = m
                    .value_quant(n2.inputs[1] as usize)
                    .ok_or(bad("u8 input"))?;
                Some(
                    QAddParams::new(
                        qparams(qa),
                        qparams(qb),
                        qparams(qy),
                        act(n2.activation) == Act::Relu,
                    )
                    .ok_or(bad("add scale ratio"))?,
                )
            }
            _ => None,
        };
        // Input rows `[a, b)` the band from output row `r0` reads, clipped to the plane, and
        // the unclipped `[lo, hi)`.
        let window_rows = |r0: usize| {
            let rows = c.rows.min(d.h - r0);
            let lo = (r0 * stride) as isize - pad_top as isize;
            let hi = lo + ((rows - 1) * stride + s0.k_h) as isize;
            (
                lo,
                hi,
                lo.max(0) as usize,
                hi.min(x.h as isize).max(0) as usize,
            )
        };
        let o = shapes[out_v];
        let direct = self.pw_direct(c);
        let ops = self.dw_operands(c.dw)?;
        let mut r0 = 0;
        while r0 < d.h {
            let rows = c.rows.min(d.h - r0);
            // Input rows the band reads, clipped to the plane; the clipped ones become padding.
            let (lo, hi, a, b) = window_rows(r0);
            if a >= b {
                return Err(bad("band outside the input"));
            }
            let s1 = ConvShape {
                in_c: 1,
                in_h: b - a,
                out_c: 1,
                groups: 1,
                pad: [
                    (a as isize - lo) as usize,
                    s0.pad[1],
                    (hi - b as isize) as usize,
                    s0.pad[3],
                ],
                ..s0
            };
            if s1.conv_out() != Some((rows, d.w)) {
                return Err(bad("band shape"));
            }
            let window = |ch: usize| ch * plane + a * x.w..ch * plane + b * x.w;
            let band_of = |ch: usize| ch * rows * d.w..(ch + 1) * rows * d.w;
            // Depthwise, one channel at a time.
            for ch in 0..d.c {
                let src = Plane::of(ty_x, ins[0], window(ch));
                self.depthwise_channel(&ops, &s1, ch, src, dw_band, ty_d, band_of(ch))?;
            }
            // The depthwise band quantized for an int8 pointwise.
            if c.quant {
                let q = m.value_quant(c.dw + 2).ok_or(bad("u8 quantize output"))?;
                let n = d.c * rows * d.w;
                (k.quantize)(
                    &dw_band[..n],
                    qparams(q),
                    crate::graph::bytes_mut(q_band, n),
                );
            }
            // Pointwise on the band.
            let pw = Conv1x1 {
                in_c: d.c,
                out_c: p.c,
                pixels: rows * d.w,
            };
            let band_px = rows * d.w;
            if m.tensor(n1.weight as usize).dtype == DType::I8 {
                let qp = self.qconv_params(c.pw()).ok_or(bad("u8 input"))?;
                let s = ConvShape {
                    in_c: d.c,
                    in_h: rows,
                    in_w: d.w,
                    out_c: p.c,
                    k_h: 1,
                    k_w: 1,
                    stride_h: 1,
                    stride_w: 1,
                    pad: [0; 4],
                    groups: 1,
                };
                let dst = match ty_p {
                    ValueType::U8(q) => QOutput::U8 {
                        q: qparams(q),
                        relu: act(n1.activation) == Act::Relu,
                        dst: crate::graph::bytes_mut(pw_band, p.c * band_px),
                    },
                    ValueType::F32 => QOutput::F32 {
                        act: act(n1.activation),
                        dst: &mut pw_band[..p.c * band_px],
                    },
                };
                let pw_in = if c.quant { &*q_band } else { &*dw_band };
                (k.qconv1x1)(&s, &qp, crate::graph::bytes(pw_in, d.c * band_px), dst);
            } else {
                if ty_p != ValueType::F32 {
                    return Err(bad("f32 pointwise to a u8 value"));
                }
                let b = self.bias_f32(c.pw());
                if let (Some(into), true) = (k.conv1x1_into, direct) {
                    // Straight into the output rows, the residual added in the epilogue.
                    let at = r0 * o.w;
                    let e = PwEpilogue {
                        stride: o.h * o.w,
                        in_stride: band_px,
                        res_stride: o.h * o.w,
                        residual: if c.add { Some(&ins[1][at..]) } else { None },
                        act: if c.add {
                            act(m.node(c.pw() + 1).activation)
                        } else {
                            Act::None
                        },
                    };
                    into(
                        &pw,
                        &dw_band[..d.c * band_px],
                        m.tensor_f32(n1.weight as usize),
                        b,
                        act(n1.activation),
                        &mut out[at..],
                        &e,
                    );
                    r0 += rows;
                    continue;
                }
                (k.conv1x1)(
                    &pw,
                    &dw_band[..d.c * band_px],
                    m.tensor_f32(n1.weight as usize),
                    b,
                    act(n1.activation),
                    &mut pw_band[..p.c * band_px],
                );
            }
            // The band's rows of the chain's output: the pointwise result, or it plus the
            // add's other input.
            for ch in 0..p.c {
                let src = ch * band_px..(ch + 1) * band_px;
                let dst = ch * o.h * o.w + r0 * o.w..ch * o.h * o.w + (r0 + rows) * o.w;
                match (ty_o, c.add) {
                    (ValueType::F32, false) => out[dst].copy_from_slice(&pw_band[src]),
                    (ValueType::U8(_), false) => crate::graph::bytes_mut(out, o.len())[dst]
                        .copy_from_slice(&crate::graph::bytes(pw_band, p.c * band_px)[src]),
                    (ValueType::F32, true) => {
                        let a = act(m.node(c.pw() + 1).activation);
                        let (pa, sk) = (&pw_band[src], &ins[1][dst.clone()]);
                        let (l, r) = if pw_first { (pa, sk) } else { (sk, pa) };
                        (k.add)(l, r, a, &mut out[dst]);
                    }
                    (ValueType::U8(_), true) => {
                        let params = add_params.as_ref().ok_or(bad("add parameters"))?;
                        let pa = &crate::graph::bytes(pw_band, p.c * band_px)[src];
                        let sk = &crate::graph::bytes(ins[1], o.len())[dst.clone()];
                        let (l, r) = if pw_first { (pa, sk) } else { (sk, pa) };
                        (k.qadd)(
                            l,
                            r,
                            params,
                            &mut crate::graph::bytes_mut(out, o.len())[dst],
                        );
                    }
                }
            }
            r0 += rows;
        }
        Ok(())
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

/// A depthwise convolution node's operands, read once per call ([`Engine::dw_operands`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DwOperands<'m> {
    /// int8 operands (int8 weights), else `None`.
    q: Option<QConvParams<'m>>,
    /// f32 weights (empty for int8).
    weight: &'m [f32],
    /// f32 bias (empty for int8 or none).
    bias: &'m [f32],
    act: Act,
    /// Taps per channel.
    kk: usize,
    node: usize,
}

/// An element-wise node's operands, read once per call ([`Engine::eltwise_operands`]).
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct EltOperands {
    op: OpKind,
    act: Act,
    /// Output type.
    ty: ValueType,
    /// Quantized add (u8 add).
    qadd: Option<QAddParams>,
    /// Input quantization (dequantize).
    q_in: Option<rawnr_kernels::quant::QParams>,
    node: usize,
}

impl<'m> Engine<'m> {
    /// The operands of depthwise convolution node `i` (f32 or int8 weights).
    pub(crate) fn dw_operands(&self, i: usize) -> Result<DwOperands<'m>, Error> {
        let m = &self.model;
        let n = m.node(i);
        let int8 = m.tensor(n.weight as usize).dtype == DType::I8;
        Ok(DwOperands {
            q: if int8 {
                Some(self.qconv_params(i).ok_or(Error::BadNode {
                    node: i as u32,
                    reason: "u8 input",
                })?)
            } else {
                None
            },
            weight: if int8 {
                &[]
            } else {
                m.tensor_f32(n.weight as usize)
            },
            bias: if int8 { &[] } else { self.bias_f32(i) },
            act: act(n.activation),
            kk: n.kernel[0] as usize * n.kernel[1] as usize,
            node: i,
        })
    }

    /// Depthwise convolution `d` on channel `ch` alone: `s1` is the node's shape for one
    /// channel and the rows `src` holds (padding where the window passes an edge); writes
    /// elements `dst` (bytes for a u8 output) of `out`, whose value has type `ty_out`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn depthwise_channel(
        &self,
        d: &DwOperands<'_>,
        s1: &ConvShape,
        ch: usize,
        src: Plane<'_>,
        out: &mut [f32],
        ty_out: ValueType,
        dst: Range<usize>,
    ) -> Result<(), Error> {
        let kk = d.kk;
        let bad = |reason| Error::BadNode {
            node: d.node as u32,
            reason,
        };
        match (d.q, src) {
            (Some(all), Plane::U8(input)) => {
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
                let dst = match ty_out {
                    ValueType::U8(q) => QOutput::U8 {
                        q: qparams(q),
                        relu: d.act == Act::Relu,
                        dst: &mut bytemuck::cast_slice_mut::<f32, u8>(out)[dst],
                    },
                    ValueType::F32 => QOutput::F32 {
                        act: d.act,
                        dst: &mut out[dst],
                    },
                };
                (self.kernels.qdepthwise)(s1, &p, input, dst);
            }
            (None, Plane::F32(input)) if ty_out == ValueType::F32 => {
                (self.kernels.depthwise)(
                    s1,
                    input,
                    &d.weight[ch * kk..(ch + 1) * kk],
                    if d.bias.is_empty() {
                        d.bias
                    } else {
                        &d.bias[ch..ch + 1]
                    },
                    d.act,
                    &mut out[dst],
                );
            }
            _ => return Err(bad("depthwise operand types")),
        }
        Ok(())
    }

    /// Depthwise convolution `d` on all channels at once where the kernels have one for
    /// these types, on planes laid out as `l` says (`s`: the node's shape for the rows it
    /// reads); the output rows start at element `at` of `out` (a byte for a u8 output).
    /// Returns `false` (nothing done) where the caller must go channel by channel
    /// ([`Engine::depthwise_channel`]) or the shape is not one the kernel takes.
    #[cfg(feature = "alloc")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn depthwise_strided(
        &self,
        d: &DwOperands<'_>,
        s: &ConvShape,
        input: Plane<'_>,
        out: &mut [f32],
        ty_out: ValueType,
        at: usize,
        l: &PlaneLayout,
    ) -> bool {
        let k = &self.kernels;
        match (d.q, input, ty_out) {
            (None, Plane::F32(x), ValueType::F32) => match k.depthwise_strided {
                Some(kernel) => {
                    kernel(s, x, d.weight, d.bias, d.act, &mut out[at..], l);
                    true
                }
                None => false,
            },
            (Some(q), Plane::U8(x), ty) => match k.qdepthwise_strided {
                Some(kernel) => {
                    let dst = match ty {
                        ValueType::U8(vq) => QOutput::U8 {
                            q: qparams(vq),
                            relu: d.act == Act::Relu,
                            dst: &mut bytemuck::cast_slice_mut::<f32, u8>(out)[at..],
                        },
                        ValueType::F32 => QOutput::F32 {
                            act: d.act,
                            dst: &mut out[at..],
                        },
                    };
                    kernel(s, &q, x, dst, l)
                }
                None => false,
            },
            _ => false,
        }
    }

    /// The operands of element-wise node `i` (add, quantize, dequantize, ReLU).
    #[cfg(feature = "alloc")]
    pub(crate) fn eltwise_operands(&self, i: usize) -> Result<EltOperands, Error> {
        let m = &self.model;
        let n = m.node(i);
        let bad = |reason| Error::BadNode {
            node: i as u32,
            reason,
        };
        let quant = |v: u32| m.value_quant(v as usize).ok_or(bad("u8 value"));
        let ty = m.value_type(i + 1);
        let a = act(n.activation);
        let qadd = match (n.op, ty) {
            (OpKind::Add, ValueType::U8(qy)) => Some(
                QAddParams::new(
                    qparams(quant(n.inputs[0])?),
                    qparams(quant(n.inputs[1])?),
                    qparams(qy),
                    a == Act::Relu,
                )
                .ok_or(bad("add scale ratio"))?,
            ),
            _ => None,
        };
        let q_in = match n.op {
            OpKind::Dequantize => Some(qparams(quant(n.inputs[0])?)),
            _ => None,
        };
        Ok(EltOperands {
            op: n.op,
            act: a,
            ty,
            qadd,
            q_in,
            node: i,
        })
    }

    /// Element-wise op `e` on one stretch of rows of one channel: inputs `src`, output
    /// elements `dst` (bytes for a u8 value) of `out`.
    #[cfg(feature = "alloc")]
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
                rawnr_kernels::generic::activation(x, a, &mut out[dst])
            }
            (OpKind::Relu | OpKind::LeakyRelu, ValueType::U8(q), [Plane::U8(x)]) => {
                rawnr_kernels::generic_i8::qrelu(
                    x,
                    q.zero_point,
                    &mut bytemuck::cast_slice_mut::<f32, u8>(out)[dst],
                )
            }
            _ => return Err(bad("element-wise operand types")),
        }
        Ok(())
    }
}
