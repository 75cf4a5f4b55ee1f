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
use rawnr_kernels::{Act, Conv1x1, ConvShape, PwEpilogue};

use crate::graph::{slot_len, Engine, PlanRef, Shape};
use crate::ops::{act, bytes, bytes_mut, conv_shape, qparams, ConvWeights, NodeClass, Plane};

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
        // A depthwise kernel taller or wider than one whose padding leaves every band's window
        // inside the rows it pads, then a pointwise one reading only its output.
        let depthwise = self.node_class(i) == NodeClass::Depthwise
            && n0.kernel[0] as usize * n0.kernel[1] as usize > 1
            && n0.pad[0] < n0.kernel[0]
            && n0.pad[2] < n0.kernel[0];
        let pointwise = self.node_class(pw) == NodeClass::Pointwise
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
        let n0 = m.node(c.dw);
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
            (true, ValueType::U8(_)) => {
                let n2 = m.node(c.pw() + 1);
                let (a, b) = (n2.inputs[0] as usize, n2.inputs[1] as usize);
                Some(self.qadd_params(c.pw() + 1, a, b)?)
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
        let dw_ops = self.conv_operands(c.dw, &mut [])?;
        let pw_ops = self.conv_operands(c.pw(), &mut [])?;
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
                self.depthwise_channel(&dw_ops, &s1, ch, src, dw_band, ty_d, band_of(ch))?;
            }
            // The depthwise band quantized for an int8 pointwise.
            if c.quant {
                let q = m.value_quant(c.dw + 2).ok_or(bad("u8 quantize output"))?;
                let n = d.c * rows * d.w;
                (k.quantize)(&dw_band[..n], qparams(q), bytes_mut(q_band, n));
            }
            // Pointwise on the band.
            let band_px = rows * d.w;
            if let (Some(into), true, ConvWeights::F32 { weight, bias }) =
                (k.conv1x1_into, direct, pw_ops.weights)
            {
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
                let pw = Conv1x1 {
                    in_c: d.c,
                    out_c: p.c,
                    pixels: band_px,
                };
                let x = &dw_band[..d.c * band_px];
                into(&pw, x, weight, bias, pw_ops.act, &mut out[at..], &e);
                r0 += rows;
                continue;
            }
            let pw_in = if c.quant { &*q_band } else { &*dw_band };
            let pw_in = Plane::of(m.value_type(c.pw()), pw_in, 0..d.c * band_px);
            let pw_out = 0..p.c * band_px;
            self.pointwise(&pw_ops, d.c, p.c, band_px, pw_in, pw_band, ty_p, pw_out)?;
            // The band's rows of the chain's output: the pointwise result, or it plus the
            // add's other input.
            for ch in 0..p.c {
                let src = ch * band_px..(ch + 1) * band_px;
                let dst = ch * o.h * o.w + r0 * o.w..ch * o.h * o.w + (r0 + rows) * o.w;
                match (ty_o, c.add) {
                    (ValueType::F32, false) => out[dst].copy_from_slice(&pw_band[src]),
                    (ValueType::U8(_), false) => bytes_mut(out, o.len())[dst]
                        .copy_from_slice(&bytes(pw_band, p.c * band_px)[src]),
                    (ValueType::F32, true) => {
                        let a = act(m.node(c.pw() + 1).activation);
                        let (pa, sk) = (&pw_band[src], &ins[1][dst.clone()]);
                        let (l, r) = if pw_first { (pa, sk) } else { (sk, pa) };
                        (k.add)(l, r, a, &mut out[dst]);
                    }
                    (ValueType::U8(_), true) => {
                        let params = add_params.as_ref().ok_or(bad("add parameters"))?;
                        let pa = &bytes(pw_band, p.c * band_px)[src];
                        let sk = &bytes(ins[1], o.len())[dst.clone()];
                        let (l, r) = if pw_first { (pa, sk) } else { (sk, pa) };
                        (k.qadd)(l, r, params, &mut bytes_mut(out, o.len())[dst]);
                    }
                }
            }
            r0 += rows;
        }
        Ok(())
    }
}
