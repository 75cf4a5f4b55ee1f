//! The streamed graph (the model's nodes, clones run late, fused pointwise + add pairs), each
//! node's vertical geometry, and the schedule that runs them row by row.

use alloc::vec;
use alloc::vec::Vec;

use rawnr_core::format::{DType, OpKind, ValueType};
use rawnr_core::Error;
use rawnr_kernels::QCONV1X1_STRIDED_MAX_IN_C;

use crate::graph::{Engine, Shape};
use crate::ops::NodeClass;

/// Vertical geometry of one node: which input rows its output rows read.
#[derive(Debug, Clone, Copy)]
pub(super) enum RowMap {
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
    pub(super) fn input(self, r0: usize, r1: usize, h_in: usize) -> (usize, usize, isize) {
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
    pub(super) fn ready(self, done: usize, h_in: usize, h_out: usize) -> usize {
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
    pub(super) fn granule(self) -> usize {
        match self {
            RowMap::Up { stride } => stride,
            _ => 1,
        }
    }
}

/// One action of the schedule.
#[derive(Debug, Clone, Copy)]
pub(super) enum Action {
    /// Run streamed node `c` for its output rows `[r0, r1)`.
    Node(usize, usize, usize),
    /// Hand output rows `[r0, r1)` to the caller.
    Emit(usize, usize),
}

/// Where a run of the schedule stands (see [`Engine::sweep`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SchedState {
    /// Rows computed of every streamed value (the input: rows made readable).
    pub(super) done: Vec<usize>,
    /// First row of every value some reader still needs.
    pub(super) lo: Vec<usize>,
    /// What each lazy value must provide this sweep (working memory).
    demand: Vec<usize>,
    /// Output rows handed out.
    pub(super) emitted: usize,
}

impl SchedState {
    /// The state before the first sweep over a graph of `n_values` streamed values.
    pub(super) fn new(n_values: usize) -> Self {
        SchedState {
            done: vec![0; n_values],
            lo: vec![0; n_values],
            demand: vec![0; n_values],
            emitted: 0,
        }
    }
    /// Whether every output row went out.
    pub(super) fn finished(&self, g: &SGraph, shapes: &[Shape]) -> bool {
        self.emitted >= shapes[g.out].h
    }
    /// Input rows readable once the next sweep ran (of `h0` in all).
    pub(super) fn next_input(&self, step: usize, h0: usize) -> usize {
        (self.done[0] + step.max(1)).min(h0)
    }
}

/// A node of the streamed graph: a model node, or a clone of one that reads only the network
/// input (recomputed late for a far-behind reader instead of keeping its output rows).
#[derive(Debug, Clone, Copy)]
pub(super) struct SNode {
    /// The model node it runs.
    pub(super) node: usize,
    pub(super) map: RowMap,
    /// Output value (a model value, or a clone's own value past the model's).
    pub(super) out: usize,
    /// Input values.
    pub(super) ins: [usize; 3],
    pub(super) n_in: usize,
    /// Computed only as far as its readers need (a clone, or fed only by lazy nodes), so
    /// that the rows it lags behind stay in the input frame instead of a ring.
    pub(super) lazy: bool,
    /// A pointwise node fused with the add (this model node) that alone reads its output: inputs are the pointwise input and the add's other operand, the output is the
    /// add's, and the pointwise output never reaches a ring.
    pub(super) fused_add: Option<usize>,
}

impl SNode {
    pub(super) fn inputs(&self) -> &[usize] {
        &self.ins[..self.n_in]
    }
}

/// The streamed graph: the model's nodes in order, with clones inserted before the readers
/// they serve.
#[derive(Debug, Clone)]
pub(super) struct SGraph {
    pub(super) nodes: Vec<SNode>,
    /// The model value each streamed value stands for.
    pub(super) origin: Vec<usize>,
    /// Readers (streamed nodes) of every streamed value.
    pub(super) readers: Vec<Vec<usize>>,
    /// Whether each streamed value comes from a lazy node.
    pub(super) lazy_value: Vec<bool>,
    /// Values of the model (the streamed values past these are clones' outputs).
    pub(super) model_values: usize,
    /// The network output.
    pub(super) out: usize,
}

impl SGraph {
    /// The model's graph, with node `p` cloned for the readers `late` of its output, for
    /// every `(p, late)` in `clones`, and (with `no_fuse`) every f32 pointwise node fused with
    /// the add that alone reads it, except those listed.
    pub(super) fn new(
        e: &Engine<'_>,
        clones: &[(usize, Vec<usize>)],
        no_fuse: Option<&[usize]>,
    ) -> Result<Self, Error> {
        let m = &e.model;
        let nn = m.n_nodes();
        let mut origin: Vec<usize> = (0..m.n_values()).collect();
        let mut nodes = Vec::with_capacity(nn + clones.len());
        let mut redirect: Vec<(usize, usize, usize)> = Vec::new(); // (reader, from, to)
        let mut n_readers = vec![0usize; m.n_values()];
        for i in 0..nn {
            let n = m.node(i);
            for &u in &n.inputs[..n.n_inputs as usize] {
                n_readers[u as usize] += 1;
            }
        }
        let mut i = 0;
        while i < nn {
            let fused = match no_fuse {
                Some(not) if !not.contains(&i) => e.pw_add_at(i, &n_readers),
                _ => None,
            };
            let span = i..i + if fused.is_some() { 2 } else { 1 };
            for (p, late) in clones {
                if late.first().is_some_and(|r| span.contains(r)) {
                    let v = origin.len();
                    origin.push(*p + 1);
                    let src = m.node(*p);
                    nodes.push(SNode {
                        node: *p,
                        map: e.row_map(*p)?,
                        out: v,
                        ins: src.inputs.map(|x| x as usize),
                        n_in: src.n_inputs as usize,
                        lazy: true,
                        fused_add: None,
                    });
                    for &r in late {
                        redirect.push((r, *p + 1, v));
                    }
                }
            }
            // Node `j`'s inputs, redirected to clones.
            let inputs_of = |j: usize| {
                let n = m.node(j);
                let mut ins = n.inputs.map(|x| x as usize);
                for x in ins.iter_mut().take(n.n_inputs as usize) {
                    if let Some(&(_, _, to)) = redirect.iter().find(|&&(r, f, _)| r == j && f == *x)
                    {
                        *x = to;
                    }
                }
                ins
            };
            match fused {
                Some(skip_slot) => {
                    // Pointwise `i` and the add `i + 1` that alone reads it, as one node.
                    let skip = inputs_of(i + 1)[skip_slot];
                    nodes.push(SNode {
                        node: i,
                        map: RowMap::Same,
                        out: i + 2,
                        ins: [inputs_of(i)[0], skip, 0],
                        n_in: 2,
                        lazy: false,
                        fused_add: Some(i + 1),
                    });
                    i += 2;
                }
                None => {
                    nodes.push(SNode {
                        node: i,
                        map: e.row_map(i)?,
                        out: i + 1,
                        ins: inputs_of(i),
                        n_in: m.node(i).n_inputs as usize,
                        lazy: false,
                        fused_add: None,
                    });
                    i += 1;
                }
            }
        }
        // Lazy: clones, and nodes fed only by lazy nodes.
        let mut lazy_value = vec![false; origin.len()];
        for c in nodes.iter_mut() {
            c.lazy = c.lazy || c.inputs().iter().all(|&u| lazy_value[u]);
            lazy_value[c.out] = c.lazy;
        }
        let mut readers = vec![Vec::new(); origin.len()];
        for (c, sn) in nodes.iter().enumerate() {
            for &u in sn.inputs() {
                if !readers[u].contains(&c) {
                    readers[u].push(c);
                }
            }
        }
        Ok(SGraph {
            nodes,
            origin,
            readers,
            lazy_value,
            model_values: m.n_values(),
            out: m.info().output_value as usize,
        })
    }
}

/// Most nodes of a row-streamed model. Planning a stream takes time quadratic in the nodes
/// (readers, clones and lags per node); real denoisers have a few hundred, and a larger
/// (hostile) model runs in tiles, whose planning is near-linear.
pub const STREAM_MAX_NODES: usize = 1024;

/// A clone pays off when a reader trails its value by more than this many rows.
pub(super) const LATE_ROWS: usize = 48;

impl Engine<'_> {
    pub(super) fn row_map(&self, i: usize) -> Result<RowMap, Error> {
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

    /// If pointwise node `i` and the add after it stream as one node: the add's slot of its
    /// other operand. f32 pointwise nodes fuse with an f32 add where the CPU has
    /// [`rawnr_kernels::Kernels::conv1x1_into`]; int8 ones (`u8` input) with an add of their
    /// output's type (f32 or `u8`) where it has [`rawnr_kernels::Kernels::qconv1x1_strided`].
    /// `n_readers` counts every value's readers.
    pub(super) fn pw_add_at(&self, i: usize, n_readers: &[usize]) -> Option<usize> {
        let m = &self.model;
        if i + 1 >= m.n_nodes() {
            return None;
        }
        let (pw, add) = (m.node(i), m.node(i + 1));
        if pw.op != OpKind::Conv2d {
            return None;
        }
        let pointwise = self.node_class(i) == NodeClass::Pointwise && pw.n_inputs == 1;
        let ins = &add.inputs[..add.n_inputs as usize];
        let slot = ins.iter().position(|&u| u as usize != i + 1)?;
        let fits = add.op == OpKind::Add
            && ins.len() == 2
            && ins.iter().filter(|&&u| u as usize == i + 1).count() == 1
            && n_readers[i + 1] == 1
            && m.info().output_value as usize != i + 1
            && pw.inputs[0] != 0
            && ins[slot] != 0;
        // The pointwise output, the add's output and its other operand: one type.
        let outs = [i + 1, i + 2, ins[slot] as usize].map(|v| m.value_type(v));
        let all = |f: fn(ValueType) -> bool| outs.iter().all(|&t| f(t));
        let k = &self.kernels;
        let w = m.tensor(pw.weight as usize);
        let kernel = match w.dtype {
            DType::F32 => {
                k.conv1x1_into.is_some()
                    && m.value_type(pw.inputs[0] as usize) == ValueType::F32
                    && all(|t| t == ValueType::F32)
            }
            DType::I8 => {
                k.qconv1x1_strided.is_some()
                    && matches!(m.value_type(pw.inputs[0] as usize), ValueType::U8(_))
                    && (1..=QCONV1X1_STRIDED_MAX_IN_C).contains(&(w.dims[1] as usize))
                    && (all(|t| t == ValueType::F32) || all(|t| matches!(t, ValueType::U8(_))))
            }
            DType::F16 | DType::I32 => false,
        };
        (pointwise && fits && kernel).then_some(slot)
    }

    /// Whether this model runs row-streamed ([`Engine::stream_plan`]): every op streams and
    /// it has at most [`STREAM_MAX_NODES`] nodes.
    pub fn can_stream(&self) -> bool {
        self.model.n_nodes() <= STREAM_MAX_NODES
            && (0..self.model.n_nodes()).all(|i| self.row_map(i).is_ok())
    }

    /// Runs the schedule of graph `g` for value shapes `shapes` to its end: sweep after sweep
    /// ([`Engine::sweep`]) until every output row went out.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn schedule(
        &self,
        g: &SGraph,
        shapes: &[Shape],
        step: usize,
        min_rows: usize,
        call_rows: &[usize],
        lags: &mut [usize],
        act: &mut dyn FnMut(Action, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut st = SchedState::new(g.origin.len());
        while !st.finished(g, shapes) {
            self.sweep(&mut st, g, shapes, step, min_rows, call_rows, lags, act)?;
        }
        Ok(())
    }

    /// One sweep of the schedule of graph `g` for value shapes `shapes`: the input becomes
    /// readable `step` more rows ([`SchedState::next_input`]), then every node, in order,
    /// computes the output rows its inputs now allow (at most `call_rows[c]` per call; lazy
    /// nodes only as far as their readers need), then the new output rows go out. Calls
    /// `act(action, lo)` where `lo` is the first row still held by the ring the action writes
    /// (rows `[lo, r1)` must fit the ring). `lags[3 c + j]` receives the most rows input `j`
    /// of node `c` trailed its value. Errors when the sweep makes no progress.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sweep(
        &self,
        st: &mut SchedState,
        g: &SGraph,
        shapes: &[Shape],
        step: usize,
        min_rows: usize,
        call_rows: &[usize],
        lags: &mut [usize],
        act: &mut dyn FnMut(Action, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let out_v = g.out;
        let h = |v: usize| shapes[v].h;
        let SchedState {
            done,
            lo,
            demand,
            emitted,
        } = st;
        // First row of `u` reader `c` still needs (`h(u)` once it is done).
        let first_of = |done: &[usize], c: usize, u: usize| {
            let sn = &g.nodes[c];
            let v = sn.out;
            if done[v] < h(v) {
                let gr = sn.map.granule();
                sn.map.input(done[v], (done[v] + gr).min(h(v)), h(u)).0
            } else {
                h(u)
            }
        };
        let first_needed = |done: &[usize], emitted: usize, u: usize| {
            let first = if u == out_v { emitted } else { h(u) };
            g.readers[u]
                .iter()
                .map(|&c| first_of(done, c, u))
                .fold(first, usize::min)
        };
        let step = step.max(1);
        let min_rows = min_rows.max(1);
        // Rows a value may advance per sweep: its share of the input's step (rounded up, so
        // no level falls behind), which also spreads the final flush over sweeps and keeps
        // every ring a few steps deep.
        let quota = |c: usize| {
            let sn = &g.nodes[c];
            let gr = sn.map.granule();
            (step * h(sn.out))
                .div_ceil(h(0).max(1))
                .max(min_rows)
                .next_multiple_of(gr)
        };
        // Rows of node `c`'s output its inputs other than slot `j` allow, plus a quota (so two
        // lazy inputs of one node never wait for each other).
        let others_allow = |done: &[usize], c: usize, j: usize| {
            let sn = &g.nodes[c];
            let v = sn.out;
            let mut lim = h(v);
            for (j2, &u2) in sn.inputs().iter().enumerate() {
                if j2 != j && u2 != sn.ins[j] {
                    lim = lim.min(sn.map.ready(done[u2], h(u2), h(v)) + quota(c));
                }
            }
            lim
        };
        let mut progress = false;
        if done[0] < h(0) {
            done[0] = (done[0] + step).min(h(0));
            progress = true;
        }
        // What lazy values must provide: their readers' next rows.
        demand.fill(0);
        for c in (0..g.nodes.len()).rev() {
            let sn = &g.nodes[c];
            let v = sn.out;
            for (j, &u) in sn.inputs().iter().enumerate() {
                if !g.lazy_value[u] {
                    continue;
                }
                let mut lim = others_allow(done, c, j);
                if sn.lazy {
                    lim = lim.min(demand[v]);
                }
                let lim = lim.min(h(v));
                if lim > done[v] {
                    demand[u] = demand[u].max(sn.map.input(done[v], lim, h(u)).1);
                }
            }
        }
        for (c, &sn) in g.nodes.iter().enumerate() {
            let v = sn.out;
            let gr = sn.map.granule();
            let mut avail = h(v);
            for &u in sn.inputs() {
                avail = avail.min(sn.map.ready(done[u], h(u), h(v)));
            }
            if avail < h(v) {
                avail -= avail % gr;
            }
            let avail = avail.min(done[v] + quota(c));
            // Few rows per call waste the kernels (their register tiles span rows and
            // each call re-reads the kernel's halo rows): wait for a batch.
            if avail < h(v) && avail - done[v].min(avail) < min_rows {
                continue;
            }
            let end = if sn.lazy {
                avail.min(demand[v].next_multiple_of(gr).min(h(v)))
            } else {
                avail
            };
            while done[v] < end {
                let r1 = (done[v] + call_rows[c].max(gr))
                    .next_multiple_of(gr)
                    .min(end);
                act(Action::Node(c, done[v], r1), lo[v])?;
                done[v] = r1;
                progress = true;
            }
            for (j, &u) in sn.inputs().iter().enumerate() {
                lo[u] = first_needed(done, *emitted, u);
                let lag = done[u].saturating_sub(first_of(done, c, u));
                if let Some(l) = lags.get_mut(3 * c + j) {
                    *l = (*l).max(lag);
                }
            }
        }
        let io_rows = call_rows.get(g.nodes.len()).copied().unwrap_or(1).max(1);
        while *emitted < done[out_v] {
            let r1 = done[out_v].min(*emitted + io_rows);
            act(Action::Emit(*emitted, r1), lo[out_v])?;
            *emitted = r1;
            progress = true;
        }
        lo[out_v] = first_needed(done, *emitted, out_v);
        if !progress {
            return Err(Error::BadInfo("row streaming made no progress"));
        }
        Ok(())
    }
}
