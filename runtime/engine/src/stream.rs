//! Row streaming: the network runs over a region from top to bottom, every value held as a
//! ring of its most recent rows, so each output row is computed once (no vertical halo and no
//! recomputation) and memory grows with the region's width, not its height.
//!
//! A schedule advances the output `step` rows at a time: a backward pass finds how many rows
//! of every value that needs (through each convolution's kernel and stride), a forward pass runs
//! every node on the rows still missing, a few rows per call. A call gathers its inputs' row
//! windows from the rings into contiguous CHW buffers, runs the node with the same kernels as a
//! whole-region run (a window's convolution gets the padding of the region's top or bottom edge
//! only where the window reaches it) and scatters the rows into the output's ring. Rows leave a
//! ring once no reader needs them. The ring sizes come from running the same schedule without
//! data ([`Engine::stream_plan`]). Results equal one pass over the whole region bit for bit.

use alloc::vec;
use alloc::vec::Vec;

use core::ops::Range;

use rawnr_core::format::{DType, OpKind, ValueType};
use rawnr_core::Error;
use rawnr_kernels::{Act, Conv1x1, ConvShape, PwEpilogue};

use crate::fuse::Plane;
use crate::graph::{act, bytes, bytes_mut, conv_shape, slot_len, split_io, Engine, Shape};

/// Bytes one node call aims at (its gathered input rows and output rows): within L2.
const CALL_BYTES: usize = 384 << 10;

/// Writes input rows `[r0, r1)` as CHW planes of `r1 - r0` rows (see
/// [`Engine::run_streamed`]).
pub type FillRows<'a> = dyn FnMut(usize, usize, &mut [f32]) -> Result<(), Error> + 'a;
/// Receives output rows `[r0, r1)` as CHW planes of `r1 - r0` rows.
pub type EmitRows<'a> = dyn FnMut(usize, usize, &[f32]) -> Result<(), Error> + 'a;

/// Memory plan of a streamed run over regions of one height and up to one width.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// Region height (exact) and width (the largest accepted).
    pub input: (usize, usize),
    /// Value shapes at that size.
    pub shapes: Vec<Shape>,
    /// Ring rows of every value.
    pub ring_rows: Vec<usize>,
    /// Offset of every value's ring in the scratch (f32 elements).
    pub offsets: Vec<usize>,
    /// Input rows each schedule step adds.
    pub step: usize,
    /// Fewest rows a node computes per call (before its last rows).
    pub min_rows: usize,
    /// Rows per call of every node (index: node).
    pub call_rows: Vec<usize>,
    /// Scratch elements (f32) one run needs: rings, call windows, f16 widening.
    pub scratch_len: usize,
    /// Where the call windows start in the scratch.
    window_at: usize,
    /// Elements of the call windows.
    window_len: usize,
}

/// Vertical geometry of one node: which input rows its output rows read.
#[derive(Debug, Clone, Copy)]
enum RowMap {
    /// Convolution (and space-to-depth, kernel = stride = factor): output row `r` reads input
    /// rows `r * stride - pad_top ..+ k`.
    Conv {
        stride: usize,
        pad_top: usize,
        k: usize,
    },
    /// Transposed convolution with kernel = stride and no vertical padding, or depth-to-space
    /// (factor = stride): output rows `[r0, r1)` (multiples of the stride) come from input
    /// rows `[r0 / s, r1 / s)`.
    Up { stride: usize },
    /// Element-wise (and channel concatenation): the same rows.
    Same,
}

impl RowMap {
    /// Input rows `[a, b)` (clipped to `[0, h_in)`) that output rows `[r0, r1)` read, and the
    /// unclipped start (negative: top padding).
    fn input(self, r0: usize, r1: usize, h_in: usize) -> (usize, usize, isize) {
        match self {
            RowMap::Conv { stride, pad_top, k } => {
                let lo = (r0 * stride) as isize - pad_top as isize;
                let hi = ((r1 - 1) * stride + k) as isize - pad_top as isize;
                (
                    lo.clamp(0, h_in as isize) as usize,
                    hi.clamp(0, h_in as isize) as usize,
                    lo,
                )
            }
            RowMap::Up { stride } => (r0 / stride, r1.div_ceil(stride).min(h_in), 0),
            RowMap::Same => (r0, r1.min(h_in), r0 as isize),
        }
    }
    /// Output rows computable once `done` of the input's `h_in` rows are there (`h_out`
    /// output rows in all).
    fn ready(self, done: usize, h_in: usize, h_out: usize) -> usize {
        if done >= h_in {
            return h_out;
        }
        match self {
            RowMap::Conv { stride, pad_top, k } => {
                ((done + pad_top).saturating_sub(k) / stride + 1).min(h_out)
                    * usize::from(done + pad_top >= k)
            }
            RowMap::Up { stride } => (done * stride).min(h_out),
            RowMap::Same => done.min(h_out),
        }
    }
    /// Output rows are produced in multiples of this (except at the end).
    fn granule(self) -> usize {
        match self {
            RowMap::Up { stride } => stride,
            _ => 1,
        }
    }
}

/// One action of the schedule.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Fill rows `[r0, r1)` of the input value.
    Fill(usize, usize),
    /// Run node `i` for its output rows `[r0, r1)`.
    Node(usize, usize, usize),
    /// Hand output rows `[r0, r1)` to the caller.
    Emit(usize, usize),
}

impl Engine<'_> {
    fn row_map(&self, i: usize) -> Result<RowMap, Error> {
        let n = self.model.node(i);
        let bad = |reason| Error::BadNode {
            node: i as u32,
            reason,
        };
        Ok(match n.op {
            OpKind::Conv2d => RowMap::Conv {
                stride: n.stride[0] as usize,
                pad_top: n.pad[0] as usize,
                k: n.kernel[0] as usize,
            },
            OpKind::ConvTranspose2d => {
                if n.kernel[0] != n.stride[0] || n.pad[0] != 0 || n.pad[2] != 0 {
                    return Err(bad(
                        "row streaming needs transposed convolutions with kernel = stride",
                    ));
                }
                RowMap::Up {
                    stride: n.stride[0] as usize,
                }
            }
            OpKind::Relu
            | OpKind::LeakyRelu
            | OpKind::Add
            | OpKind::Concat
            | OpKind::Quantize
            | OpKind::Dequantize => RowMap::Same,
            // Row `r` of a space-to-depth output packs input rows `r * f ..+ f`.
            OpKind::PixelUnshuffle => RowMap::Conv {
                stride: n.factor as usize,
                pad_top: 0,
                k: n.factor as usize,
            },
            OpKind::PixelShuffle => RowMap::Up {
                stride: n.factor as usize,
            },
        })
    }

    /// Whether this model runs row-streamed ([`Engine::stream_plan`]).
    pub fn can_stream(&self) -> bool {
        (0..self.model.n_nodes()).all(|i| self.row_map(i).is_ok())
    }

    /// Runs the schedule for value shapes `shapes`: the input advances `step` rows at a time,
    /// then every node, in order, computes the output rows its inputs now allow (at most
    /// `call_rows[i]` per call), then the new output rows go out. Calls `act(action, lo)`
    /// where `lo` is the first row still held by the ring the action writes (rows `[lo, r1)`
    /// must fit the ring).
    fn schedule(
        &self,
        shapes: &[Shape],
        step: usize,
        min_rows: usize,
        call_rows: &[usize],
        maps: &[RowMap],
        act: &mut dyn FnMut(Action, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let m = &self.model;
        let (nn, nv) = (m.n_nodes(), m.n_values());
        let out_v = m.info().output_value as usize;
        let h = |v: usize| shapes[v].h;
        // Inputs of every node and readers of every value (read once: parsing a node is not
        // free).
        let inputs: Vec<([usize; 3], usize)> = (0..nn)
            .map(|i| {
                let n = m.node(i);
                (n.inputs.map(|x| x as usize), n.n_inputs as usize)
            })
            .collect();
        let ins = |i: usize| inputs[i].0[..inputs[i].1].iter().copied();
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nv];
        for i in 0..nn {
            for u in ins(i) {
                if !readers[u].contains(&i) {
                    readers[u].push(i);
                }
            }
        }
        let mut done = vec![0usize; nv];
        let mut lo = vec![0usize; nv];
        let mut emitted = 0usize;
        // First row of `u` a reader still needs (the end when every reader is done).
        let first_needed = |done: &[usize], emitted: usize, u: usize| {
            let mut first = if u == out_v { emitted } else { h(u) };
            for &c in &readers[u] {
                {
                    let v = c + 1;
                    if done[v] < h(v) {
                        let g = maps[c].granule();
                        let (a, _, _) = maps[c].input(done[v], (done[v] + g).min(h(v)), h(u));
                        first = first.min(a);
                    }
                }
            }
            first
        };
        let io_rows = call_rows.get(nn).copied().unwrap_or(1).max(1);
        let step = step.max(1);
        let min_rows = min_rows.max(1);
        // Rows a value may advance per sweep: its share of the input's step (rounded up, so
        // no level falls behind), which also spreads the final flush over sweeps and keeps
        // every ring a few steps deep.
        let quota = |i: usize| {
            let g = maps[i].granule();
            (step * h(i + 1))
                .div_ceil(h(0).max(1))
                .max(min_rows)
                .next_multiple_of(g)
        };
        while emitted < h(out_v) {
            let mut progress = false;
            let target = (done[0] + step).min(h(0));
            while done[0] < target {
                let r1 = target.min(done[0] + io_rows);
                act(Action::Fill(done[0], r1), lo[0])?;
                done[0] = r1;
                progress = true;
            }
            for i in 0..nn {
                let v = i + 1;
                let g = maps[i].granule();
                let mut avail = h(v);
                for u in ins(i) {
                    avail = avail.min(maps[i].ready(done[u], h(u), h(v)));
                }
                if avail < h(v) {
                    avail -= avail % g;
                }
                let avail = avail.min(done[v] + quota(i));
                // Few rows per call waste the kernels (their register tiles span rows and
                // each call re-reads the kernel's halo rows): wait for a batch.
                if avail < h(v) && avail - done[v].min(avail) < min_rows {
                    continue;
                }
                while done[v] < avail {
                    let r1 = (done[v] + call_rows[i].max(g))
                        .next_multiple_of(g)
                        .min(avail);
                    act(Action::Node(i, done[v], r1), lo[v])?;
                    done[v] = r1;
                    progress = true;
                }
                for u in ins(i) {
                    lo[u] = first_needed(&done, emitted, u);
                }
            }
            while emitted < done[out_v] {
                let r1 = done[out_v].min(emitted + io_rows);
                act(Action::Emit(emitted, r1), lo[out_v])?;
                emitted = r1;
                progress = true;
            }
            lo[out_v] = first_needed(&done, emitted, out_v);
            if !progress {
                return Err(Error::BadInfo("row streaming made no progress"));
            }
        }
        Ok(())
    }

    /// Plans a streamed run over regions of exactly `h` rows and up to `w` columns, the output
    /// advancing `step` rows per schedule step: ring sizes from a dry run of the schedule.
    /// Errors when an op cannot be streamed (transposed convolutions whose kernel differs from
    /// their stride).
    pub fn stream_plan(
        &self,
        h: usize,
        w: usize,
        step: usize,
        min_rows: usize,
    ) -> Result<StreamPlan, Error> {
        let m = &self.model;
        let (nn, nv) = (m.n_nodes(), m.n_values());
        let maps = (0..nn)
            .map(|i| self.row_map(i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut shapes = vec![Shape::default(); nv];
        self.infer_shapes(h, w, &mut shapes)?;
        let out_v = m.info().output_value as usize;
        let elem = |v: usize| match m.value_type(v) {
            ValueType::F32 => 4,
            ValueType::U8(_) => 1,
        };
        let row_bytes = |v: usize| shapes[v].c * shapes[v].w * elem(v);
        // Rows per call: inputs and output within CALL_BYTES; the last entry is for the
        // input fill and output emit.
        let mut call_rows: Vec<usize> = (0..nn)
            .map(|i| {
                let n = m.node(i);
                let ratio = match maps[i] {
                    RowMap::Conv { stride, .. } => stride,
                    _ => 1,
                };
                let per_row = row_bytes(i + 1)
                    + n.inputs[..n.n_inputs as usize]
                        .iter()
                        .map(|&u| row_bytes(u as usize) * ratio)
                        .sum::<usize>();
                (CALL_BYTES / per_row.max(1)).max(1)
            })
            .collect();
        call_rows.push((CALL_BYTES / row_bytes(0).max(row_bytes(out_v)).max(1)).max(1));
        let mut ring_rows = vec![1usize; nv];
        let mut window_len = 0usize;
        let window = |v: usize, rows: usize| {
            slot_len(
                m.value_type(v),
                &Shape {
                    h: rows,
                    ..shapes[v]
                },
            )
        };
        self.schedule(&shapes, step, min_rows, &call_rows, &maps, &mut |a, lo| {
            match a {
                Action::Fill(_, r1) => {
                    ring_rows[0] = ring_rows[0].max(r1 - lo);
                    window_len = window_len.max(window(0, call_rows[nn]));
                }
                Action::Emit(r0, r1) => window_len = window_len.max(window(out_v, r1 - r0)),
                Action::Node(i, r0, r1) => {
                    let v = i + 1;
                    ring_rows[v] = ring_rows[v].max(r1 - lo);
                    let n = m.node(i);
                    let mut len = window(v, r1 - r0);
                    for &u in &n.inputs[..n.n_inputs as usize] {
                        let u = u as usize;
                        let (a, b, _) = maps[i].input(r0, r1, shapes[u].h);
                        len += window(u, b - a);
                    }
                    window_len = window_len.max(len);
                }
            }
            Ok(())
        })?;
        // Whole granules per ring, so a call that stops at the ring's end stops on one.
        for i in 0..nn {
            ring_rows[i + 1] = ring_rows[i + 1].next_multiple_of(maps[i].granule());
        }
        let mut offsets = vec![0usize; nv];
        let mut at = 0usize;
        for v in 0..nv {
            offsets[v] = at;
            let len = slot_len(
                m.value_type(v),
                &Shape {
                    h: ring_rows[v],
                    ..shapes[v]
                },
            );
            at = at.checked_add(len).ok_or(Error::Overflow)?;
        }
        let window_at = at;
        let scratch_len = at
            .checked_add(window_len)
            .and_then(|x| x.checked_add(self.f16_buffer))
            .ok_or(Error::Overflow)?;
        Ok(StreamPlan {
            input: (h, w),
            shapes,
            ring_rows,
            offsets,
            step,
            min_rows,
            call_rows,
            scratch_len,
            window_at,
            window_len,
        })
    }

    /// Runs a streamed pass over a region of `plan.input.0` rows and `w` columns (at most
    /// `plan.input.1`). `fill(r0, r1, planes)` writes input rows `[r0, r1)` as CHW planes of
    /// `r1 - r0` rows; `emit(r0, r1, planes)` receives output rows `[r0, r1)` the same way,
    /// in order, each row once. `scratch` holds at least `plan.scratch_len` elements.
    pub fn run_streamed(
        &self,
        plan: &StreamPlan,
        w: usize,
        scratch: &mut [f32],
        fill: &mut FillRows<'_>,
        emit: &mut EmitRows<'_>,
    ) -> Result<(), Error> {
        let m = &self.model;
        let (nn, nv) = (m.n_nodes(), m.n_values());
        if w == 0 || w > plan.input.1 {
            return Err(Error::ShapeMismatch {
                node: 0,
                reason: "region wider than the stream plan",
            });
        }
        if scratch.len() < plan.scratch_len || plan.offsets.len() < nv {
            return Err(Error::BufferTooSmall {
                needed: plan.scratch_len,
                got: scratch.len(),
            });
        }
        let maps = (0..nn)
            .map(|i| self.row_map(i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut shapes = vec![Shape::default(); nv];
        self.infer_shapes(plan.input.0, w, &mut shapes)?;
        if shapes.iter().zip(&plan.shapes).any(|(s, p)| s.h != p.h) {
            return Err(Error::ShapeMismatch {
                node: 0,
                reason: "region height differs from the stream plan's",
            });
        }
        let out_v = m.info().output_value as usize;
        let (rings, rest) = scratch[..plan.scratch_len].split_at_mut(plan.window_at);
        let (win, widen) = rest.split_at_mut(plan.window_len);
        let r = Rings {
            shapes: &shapes,
            cap: &plan.ring_rows,
            offsets: &plan.offsets,
            types: (0..nv).map(|v| m.value_type(v)).collect(),
        };
        let cap = &plan.ring_rows;
        self.schedule(
            &shapes,
            plan.step,
            plan.min_rows,
            &plan.call_rows,
            &maps,
            &mut |a, lo| match a {
                Action::Fill(r0, r1) => {
                    if r1 - lo > cap[0] {
                        return Err(Error::BufferTooSmall {
                            needed: r1 - lo,
                            got: cap[0],
                        });
                    }
                    let n = r.window_len(0, r1 - r0);
                    fill(r0, r1, &mut win[..n])?;
                    r.store(rings, 0, r0, r1, &win[..n]);
                    Ok(())
                }
                Action::Emit(r0, r1) => {
                    let n = r.window_len(out_v, r1 - r0);
                    r.load(rings, out_v, r0, r1, &mut win[..n]);
                    emit(r0, r1, &win[..n])
                }
                Action::Node(i, r0, r1) => {
                    let v = i + 1;
                    if r1 - lo > cap[v] {
                        return Err(Error::BufferTooSmall {
                            needed: r1 - lo,
                            got: cap[v],
                        });
                    }
                    // One call per stretch of the output ring that does not wrap (the ring
                    // holds a multiple of the node's row granule).
                    let mut a0 = r0;
                    while a0 < r1 {
                        let a1 = r1.min((a0 / cap[v] + 1) * cap[v]);
                        self.stream_call(&r, &maps, i, a0, a1, rings, win, widen)?;
                        a0 = a1;
                    }
                    Ok(())
                }
            },
        )
    }

    /// Computes rows `[r0, r1)` (not wrapping in its ring) of node `i`'s output. Depthwise
    /// convolutions and element-wise ops read and write the rings in place, channel by
    /// channel; f32 pointwise convolutions read rows in place and write through a strided
    /// epilogue; other ops gather their input rows into `win` and scatter their output.
    #[allow(clippy::too_many_arguments)]
    fn stream_call(
        &self,
        r: &Rings<'_>,
        maps: &[RowMap],
        i: usize,
        r0: usize,
        r1: usize,
        rings: &mut [f32],
        win: &mut [f32],
        widen: &mut [f32],
    ) -> Result<(), Error> {
        let m = &self.model;
        let k = &self.kernels;
        let n = m.node(i);
        let v = i + 1;
        let n_in = n.n_inputs as usize;
        let rows = r1 - r0;
        let y = Shape {
            h: rows,
            ..r.shapes[v]
        };
        let x = r.shapes[n.inputs[0] as usize];
        let u0 = n.inputs[0] as usize;
        let (a, b, top) = maps[i].input(r0, r1, x.h);
        let wide = |d: DType| d != DType::F16;
        // The convolution of this row window: the region's padding only where it reaches.
        let mut s = conv_shape(m, i, &Shape { h: b - a, ..x });
        if let RowMap::Conv { stride, k: kh, .. } = maps[i] {
            let hi = top + ((rows - 1) * stride + kh) as isize;
            s.pad[0] = (a as isize - top) as usize;
            s.pad[2] = (hi - b as isize).max(0) as usize;
        }
        let ty = |v: usize| r.types[v];
        let mut in_r = [0..0, 0..0, 0..0];
        for (rr, &u) in in_r.iter_mut().zip(&n.inputs[..n_in]) {
            *rr = r.range(u as usize);
        }
        let weight_ty = (n.op == OpKind::Conv2d).then(|| m.tensor(n.weight as usize).dtype);
        let depthwise = n.op == OpKind::Conv2d
            && s.groups == s.in_c
            && s.out_c == s.in_c
            && s.k_h * s.k_w > 1
            && weight_ty.is_some_and(wide)
            && r.contiguous(u0, a, b);
        let pointwise_f32 = n.op == OpKind::Conv2d
            && s.k_h == 1
            && s.k_w == 1
            && s.stride_h == 1
            && s.stride_w == 1
            && s.groups == 1
            && s.pad == [0; 4]
            && weight_ty == Some(DType::F32)
            && ty(u0) == ValueType::F32
            && ty(v) == ValueType::F32
            && k.conv1x1_into.is_some();
        let eltwise = matches!(
            n.op,
            OpKind::Add | OpKind::Quantize | OpKind::Dequantize | OpKind::Relu | OpKind::LeakyRelu
        );
        if depthwise {
            let (out, ins) = split_io(rings, r.range(v), &in_r[..1], i)?;
            let s1 = ConvShape {
                in_c: 1,
                out_c: 1,
                groups: 1,
                ..s
            };
            let d = self.dw_operands(i)?;
            let (ty_in, ty_out) = (ty(u0), ty(v));
            for ch in 0..y.c {
                let src = Plane::of(ty_in, ins[0], r.rows(u0, ch, a, b));
                self.depthwise_channel(&d, &s1, ch, src, out, ty_out, r.rows(v, ch, r0, r1))?;
            }
            return Ok(());
        }
        if eltwise {
            let (out, ins) = split_io(rings, r.range(v), &in_r[..n_in], i)?;
            let e = self.eltwise_operands(i)?;
            let ty_in = [ty(u0), ty(n.inputs[n_in.min(2) - 1] as usize)];
            // Stretches where no input ring wraps either.
            let mut s0 = r0;
            while s0 < r1 {
                let mut s1 = r1;
                for &u in &n.inputs[..n_in] {
                    let u = u as usize;
                    s1 = s1.min((s0 / r.cap[u] + 1) * r.cap[u]);
                }
                for ch in 0..y.c {
                    let mut src: [Plane<'_>; 2] = [Plane::F32(&[]), Plane::F32(&[])];
                    for (j, &u) in n.inputs[..n_in.min(2)].iter().enumerate() {
                        let u = u as usize;
                        src[j] = Plane::of(ty_in[j], ins[j], r.rows(u, ch, s0, s1));
                    }
                    self.eltwise_rows(&e, &src[..n_in.min(2)], out, r.rows(v, ch, s0, s1))?;
                }
                s0 = s1;
            }
            return Ok(());
        }
        if pointwise_f32 {
            let (wt, bias) = (m.tensor_f32(n.weight as usize), self.bias_f32(i));
            let into = k.conv1x1_into.ok_or(Error::BadInfo("pointwise kernel"))?;
            let pw = Conv1x1 {
                in_c: s.in_c,
                out_c: s.out_c,
                pixels: rows * y.w,
            };
            let out_at = r.rows(v, 0, r0, r1).start;
            let e_stride = r.cap[v] * y.w;
            if r.contiguous(u0, r0, r1) {
                let (out, ins) = split_io(rings, r.range(v), &in_r[..1], i)?;
                let in_at = r.rows(u0, 0, r0, r1).start;
                let e = PwEpilogue {
                    stride: e_stride,
                    in_stride: r.cap[u0] * x.w,
                    residual: None,
                    act: Act::None,
                };
                into(
                    &pw,
                    &ins[0][in_at..],
                    wt,
                    bias,
                    act(n.activation),
                    &mut out[out_at..],
                    &e,
                );
            } else {
                let len = r.window_len(u0, rows);
                r.load(rings, u0, r0, r1, &mut win[..len]);
                let e = PwEpilogue {
                    stride: e_stride,
                    in_stride: rows * x.w,
                    residual: None,
                    act: Act::None,
                };
                let out = &mut rings[r.range(v)];
                into(
                    &pw,
                    &win[..len],
                    wt,
                    bias,
                    act(n.activation),
                    &mut out[out_at..],
                    &e,
                );
            }
            return Ok(());
        }
        // Gather, run, scatter.
        let mut in_shapes = [Shape::default(); 3];
        let mut spans = [0..0, 0..0, 0..0];
        let mut at = 0;
        for j in 0..n_in {
            let u = n.inputs[j] as usize;
            let (a, b, _) = maps[i].input(r0, r1, r.shapes[u].h);
            in_shapes[j] = Shape {
                h: b - a,
                ..r.shapes[u]
            };
            let len = r.window_len(u, b - a);
            spans[j] = at..at + len;
            r.load(rings, u, a, b, &mut win[at..at + len]);
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

/// Where the rings of a streamed run are: value shapes, ring rows and offsets.
struct Rings<'a> {
    shapes: &'a [Shape],
    cap: &'a [usize],
    offsets: &'a [usize],
    /// Type of every value (read once).
    types: Vec<ValueType>,
}

impl Rings<'_> {
    fn value_type(&self, v: usize) -> ValueType {
        self.types[v]
    }
    /// Slots (f32) of value `v`'s ring in the scratch.
    fn range(&self, v: usize) -> Range<usize> {
        let len = slot_len(
            self.value_type(v),
            &Shape {
                h: self.cap[v],
                ..self.shapes[v]
            },
        );
        self.offsets[v]..self.offsets[v] + len
    }
    /// Slots (f32) of `rows` rows of value `v` as CHW planes.
    fn window_len(&self, v: usize, rows: usize) -> usize {
        slot_len(
            self.value_type(v),
            &Shape {
                h: rows,
                ..self.shapes[v]
            },
        )
    }
    /// Whether rows `[a, b)` of value `v` are contiguous in its ring.
    fn contiguous(&self, v: usize, a: usize, b: usize) -> bool {
        a % self.cap[v] + (b - a) <= self.cap[v]
    }
    /// Elements (f32 values) or bytes (u8 values) of channel `ch`, rows `[a, b)` of value
    /// `v` within its ring (the rows must not wrap).
    fn rows(&self, v: usize, ch: usize, a: usize, b: usize) -> Range<usize> {
        let w = self.shapes[v].w;
        let at = (ch * self.cap[v] + a % self.cap[v]) * w;
        at..at + (b - a) * w
    }
    fn load(&self, rings: &[f32], v: usize, r0: usize, r1: usize, dst: &mut [f32]) {
        ring_load(
            self.value_type(v),
            &rings[self.range(v)],
            self.shapes[v],
            self.cap[v],
            r0,
            r1,
            dst,
        );
    }
    fn store(&self, rings: &mut [f32], v: usize, r0: usize, r1: usize, src: &[f32]) {
        ring_store(
            self.value_type(v),
            &mut rings[self.range(v)],
            self.shapes[v],
            self.cap[v],
            r0,
            r1,
            src,
        );
    }
}

/// Copies rows `[r0, r1)` of a ring (value type `ty`, shape `s`, `cap` rows) into CHW planes.
fn ring_load(
    ty: ValueType,
    ring: &[f32],
    s: Shape,
    cap: usize,
    r0: usize,
    r1: usize,
    dst: &mut [f32],
) {
    match ty {
        ValueType::F32 => ring_copy_load(ring, s, cap, r0, r1, dst),
        ValueType::U8(_) => {
            let n = s.c * (r1 - r0) * s.w;
            let ring = bytes(ring, s.c * cap * s.w);
            ring_copy_load(ring, s, cap, r0, r1, bytes_mut(dst, n));
        }
    }
}

/// Copies CHW planes of rows `[r0, r1)` into a ring.
fn ring_store(
    ty: ValueType,
    ring: &mut [f32],
    s: Shape,
    cap: usize,
    r0: usize,
    r1: usize,
    src: &[f32],
) {
    match ty {
        ValueType::F32 => ring_copy_store(ring, s, cap, r0, r1, src),
        ValueType::U8(_) => {
            let n = s.c * (r1 - r0) * s.w;
            let ring = bytes_mut(ring, s.c * cap * s.w);
            ring_copy_store(ring, s, cap, r0, r1, bytes(src, n));
        }
    }
}

/// Ring rows `[r0, r1)` of each channel as (ring start, window start, rows) segments.
fn segments(cap: usize, r0: usize, r1: usize) -> [(usize, usize, usize); 2] {
    let n = r1 - r0;
    let first = r0 % cap;
    let a = n.min(cap - first);
    [(first, 0, a), (0, a, n - a)]
}

fn ring_copy_load<T: Copy>(ring: &[T], s: Shape, cap: usize, r0: usize, r1: usize, dst: &mut [T]) {
    let (n, w) = (r1 - r0, s.w);
    for ch in 0..s.c {
        for (rs, ws, rows) in segments(cap, r0, r1) {
            if rows > 0 {
                let src = (ch * cap + rs) * w;
                let d = (ch * n + ws) * w;
                dst[d..d + rows * w].copy_from_slice(&ring[src..src + rows * w]);
            }
        }
    }
}

fn ring_copy_store<T: Copy>(ring: &mut [T], s: Shape, cap: usize, r0: usize, r1: usize, src: &[T]) {
    let (n, w) = (r1 - r0, s.w);
    for ch in 0..s.c {
        for (rs, ws, rows) in segments(cap, r0, r1) {
            if rows > 0 {
                let d = (ch * cap + rs) * w;
                let from = (ch * n + ws) * w;
                ring[d..d + rows * w].copy_from_slice(&src[from..from + rows * w]);
            }
        }
    }
}
