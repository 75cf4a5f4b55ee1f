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
use rawnr_kernels::quant::QOutput;
use rawnr_kernels::{Act, Conv1x1, ConvShape, PwEpilogue, QCONV1X1_STRIDED_MAX_IN_C};

use crate::fuse::Plane;
use crate::graph::{act, bytes, bytes_mut, conv_shape, qparams, slot_len, split_io, Engine, Shape};

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
    /// Value shapes at that size (the model's values, then clones' outputs).
    pub shapes: Vec<Shape>,
    /// Ring rows of every value (0 for the input: its readers pack rows from the frame).
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
    /// The streamed graph (clones included).
    graph: SGraph,
}

impl StreamPlan {
    /// Nodes run twice: clones that recompute, late, from the input frame, what a far-behind
    /// reader needs (instead of a ring holding the rows in between).
    pub fn recomputed_nodes(&self) -> usize {
        self.graph.origin.len() - self.graph.model_values
    }
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
    /// Run streamed node `c` for its output rows `[r0, r1)`.
    Node(usize, usize, usize),
    /// Hand output rows `[r0, r1)` to the caller.
    Emit(usize, usize),
}

/// A node of the streamed graph: a model node, or a clone of one that reads only the network
/// input (recomputed late for a far-behind reader instead of keeping its output rows).
#[derive(Debug, Clone, Copy)]
struct SNode {
    /// The model node it runs.
    node: usize,
    map: RowMap,
    /// Output value (a model value, or a clone's own value past the model's).
    out: usize,
    /// Input values.
    ins: [usize; 3],
    n_in: usize,
    /// Computed only as far as its readers need (a clone, or fed only by lazy nodes), so
    /// that the rows it lags behind stay in the input frame instead of a ring.
    lazy: bool,
    /// An f32 pointwise node fused with the add (this model node) that alone reads its
    /// output: inputs are the pointwise input and the add's other operand, the output is the
    /// add's, and the pointwise output never reaches a ring.
    fused_add: Option<usize>,
}

impl SNode {
    fn inputs(&self) -> &[usize] {
        &self.ins[..self.n_in]
    }
}

/// The streamed graph: the model's nodes in order, with clones inserted before the readers
/// they serve.
#[derive(Debug, Clone)]
struct SGraph {
    nodes: Vec<SNode>,
    /// The model value each streamed value stands for.
    origin: Vec<usize>,
    /// Readers (streamed nodes) of every streamed value.
    readers: Vec<Vec<usize>>,
    /// Whether each streamed value comes from a lazy node.
    lazy_value: Vec<bool>,
    /// Values of the model (the streamed values past these are clones' outputs).
    model_values: usize,
    /// The network output.
    out: usize,
}

impl SGraph {
    /// The model's graph, with node `p` cloned for the readers `late` of its output, for
    /// every `(p, late)` in `clones`, and (with `no_fuse`) every f32 pointwise node fused with
    /// the add that alone reads it, except those listed.
    fn new(
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

/// A clone pays off when a reader trails its value by more than this many rows.
const LATE_ROWS: usize = 48;

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

    /// If f32 pointwise node `i` and the add after it stream as one node: the add's slot of
    /// its other operand. `n_readers` counts every value's readers.
    fn pw_add_at(&self, i: usize, n_readers: &[usize]) -> Option<usize> {
        let m = &self.model;
        if i + 1 >= m.n_nodes() || self.kernels.conv1x1_into.is_none() {
            return None;
        }
        let (pw, add) = (m.node(i), m.node(i + 1));
        let f32v = |v: usize| m.value_type(v) == ValueType::F32;
        let pointwise = pw.op == OpKind::Conv2d
            && pw.kernel == [1, 1]
            && pw.stride == [1, 1]
            && pw.pad == [0; 4]
            && pw.groups == 1
            && pw.n_inputs == 1
            && m.tensor(pw.weight as usize).dtype == DType::F32;
        let ins = &add.inputs[..add.n_inputs as usize];
        let slot = ins.iter().position(|&u| u as usize != i + 1)?;
        let fits = add.op == OpKind::Add
            && ins.len() == 2
            && ins.iter().filter(|&&u| u as usize == i + 1).count() == 1
            && n_readers[i + 1] == 1
            && m.info().output_value as usize != i + 1
            && pw.inputs[0] != 0
            && ins[slot] != 0
            && [pw.inputs[0] as usize, i + 1, i + 2, ins[slot] as usize]
                .iter()
                .all(|&v| f32v(v));
        (pointwise && fits).then_some(slot)
    }

    /// Whether this model runs row-streamed ([`Engine::stream_plan`]).
    pub fn can_stream(&self) -> bool {
        (0..self.model.n_nodes()).all(|i| self.row_map(i).is_ok())
    }

    /// Runs the schedule of graph `g` for value shapes `shapes`: the input becomes readable
    /// `step` more rows at a time, then every node, in order, computes the output rows its
    /// inputs now allow (at most `call_rows[c]` per call; lazy nodes only as far as their
    /// readers need), then the new output rows go out. Calls `act(action, lo)` where `lo` is
    /// the first row still held by the ring the action writes (rows `[lo, r1)` must fit the
    /// ring). `lags[3 c + j]` receives the most rows input `j` of node `c` trailed its value.
    #[allow(clippy::too_many_arguments)]
    fn schedule(
        &self,
        g: &SGraph,
        shapes: &[Shape],
        step: usize,
        min_rows: usize,
        call_rows: &[usize],
        lags: &mut [usize],
        act: &mut dyn FnMut(Action, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let nsv = g.origin.len();
        let out_v = g.out;
        let h = |v: usize| shapes[v].h;
        let mut done = vec![0usize; nsv];
        let mut lo = vec![0usize; nsv];
        let mut demand = vec![0usize; nsv];
        let mut emitted = 0usize;
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
        while emitted < h(out_v) {
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
                    let mut lim = others_allow(&done, c, j);
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
                    lo[u] = first_needed(&done, emitted, u);
                    let lag = done[u].saturating_sub(first_of(&done, c, u));
                    if let Some(l) = lags.get_mut(3 * c + j) {
                        *l = (*l).max(lag);
                    }
                }
            }
            let io_rows = call_rows.get(g.nodes.len()).copied().unwrap_or(1).max(1);
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

    /// Plans a streamed run over regions of exactly `h` rows and up to `w` columns, the input
    /// advancing `step` rows per schedule step and nodes computing at least `min_rows` rows
    /// per call: ring sizes from a dry run of the schedule. A node reading only the network
    /// input whose output a reader consumes far behind the others (a U-Net's full-resolution
    /// skip) is cloned for that reader and run late, from the input frame, instead of keeping
    /// its rows. Errors when an op cannot be streamed (transposed convolutions whose kernel
    /// differs from their stride).
    pub fn stream_plan(
        &self,
        h: usize,
        w: usize,
        step: usize,
        min_rows: usize,
    ) -> Result<StreamPlan, Error> {
        let mut shapes = vec![Shape::default(); self.model.n_values()];
        self.infer_shapes(h, w, &mut shapes)?;
        // First the model's graph as it is, to see which readers trail their values.
        let base = SGraph::new(self, &[], None)?;
        let (plan, lags) = self.plan_graph(base, &shapes, (h, w), step, min_rows)?;
        let g = &plan.graph;
        // Values some reader trails far behind, traced back through single-input nodes to a
        // node that reads only the input: that node is cloned for the first node of the chain.
        let mut clones: Vec<(usize, Vec<usize>)> = Vec::new();
        let producer = |v: usize| g.nodes.iter().position(|sn| sn.out == v);
        for v in 1..g.origin.len() {
            let trailed = g.readers[v].iter().any(|&r| {
                let sn = &g.nodes[r];
                (0..sn.n_in).any(|j| sn.ins[j] == v && lags[3 * r + j] > LATE_ROWS)
            });
            if !trailed {
                continue;
            }
            let (mut cur, mut reader) = (v, None);
            while let Some(p) = producer(cur) {
                let sn = &g.nodes[p];
                if sn.n_in != 1 {
                    break;
                }
                if sn.ins[0] == 0 {
                    if let Some(r) = reader {
                        if g.readers[cur].len() > 1 && !clones.iter().any(|c| c.0 == sn.node) {
                            let rn: &SNode = &g.nodes[r];
                            // The model node of reader `r` that reads `cur` (a fused node's
                            // add reads its second input).
                            let model_reader = match rn.fused_add {
                                Some(add) if rn.ins[0] != cur => add,
                                _ => rn.node,
                            };
                            clones.push((sn.node, vec![model_reader]));
                        }
                    }
                    break;
                }
                (cur, reader) = (sn.ins[0], Some(p));
            }
        }
        // Pointwise + add pairs fuse, except where the add trails the pointwise output and the
        // pointwise narrows the channels: fused, the rows would wait at its wider input.
        let m = &self.model;
        let no_fuse: Vec<usize> = (0..m.n_nodes().saturating_sub(1))
            .filter(|&i| {
                let add = &g.nodes[i + 1];
                let trails =
                    (0..add.n_in).any(|j| add.ins[j] == i + 1 && lags[3 * (i + 1) + j] > LATE_ROWS);
                let n = m.node(i);
                trails && shapes[n.inputs[0] as usize].c > shapes[i + 1].c
            })
            .collect();
        let g = SGraph::new(self, &clones, Some(&no_fuse))?;
        Ok(self.plan_graph(g, &shapes, (h, w), step, min_rows)?.0)
    }

    /// The plan of graph `g` (model value shapes `model_shapes` for a region of `hw`) and
    /// how far each node input trailed its value.
    fn plan_graph(
        &self,
        g: SGraph,
        model_shapes: &[Shape],
        hw: (usize, usize),
        step: usize,
        min_rows: usize,
    ) -> Result<(StreamPlan, Vec<usize>), Error> {
        let m = &self.model;
        let nsv = g.origin.len();
        let shapes: Vec<Shape> = g.origin.iter().map(|&o| model_shapes[o]).collect();
        let types: Vec<ValueType> = g.origin.iter().map(|&o| m.value_type(o)).collect();
        let elem = |v: usize| match types[v] {
            ValueType::F32 => 4,
            ValueType::U8(_) => 1,
        };
        let row_bytes = |v: usize| shapes[v].c * shapes[v].w * elem(v);
        // Rows per call: inputs and output within CALL_BYTES; the last entry is for the
        // output emit.
        let mut call_rows: Vec<usize> = g
            .nodes
            .iter()
            .map(|sn| {
                let ratio = match sn.map {
                    RowMap::Conv { stride, .. } => stride,
                    _ => 1,
                };
                let per_row = row_bytes(sn.out)
                    + sn.inputs()
                        .iter()
                        .map(|&u| row_bytes(u) * ratio)
                        .sum::<usize>();
                (CALL_BYTES / per_row.max(1)).max(1)
            })
            .collect();
        call_rows.push((CALL_BYTES / row_bytes(g.out).max(1)).max(1));
        // The input has no ring: its readers pack their rows from the frame.
        // Rings are as deep as the schedule writes them; the input has none (its readers pack
        // rows from the frame), nor has a fused pointwise node's output.
        let mut ring_rows = vec![0usize; nsv];
        let mut window_len = 0usize;
        let window = |v: usize, rows: usize| {
            slot_len(
                types[v],
                &Shape {
                    h: rows,
                    ..shapes[v]
                },
            )
        };
        let mut lags = vec![0usize; 3 * g.nodes.len()];
        self.schedule(
            &g,
            &shapes,
            step,
            min_rows,
            &call_rows,
            &mut lags,
            &mut |a, lo| {
                match a {
                    Action::Emit(r0, r1) => window_len = window_len.max(window(g.out, r1 - r0)),
                    Action::Node(c, r0, r1) => {
                        let sn = &g.nodes[c];
                        ring_rows[sn.out] = ring_rows[sn.out].max(r1 - lo);
                        let mut len = window(sn.out, r1 - r0);
                        for &u in sn.inputs() {
                            let (a, b, _) = sn.map.input(r0, r1, shapes[u].h);
                            len += window(u, b - a);
                        }
                        window_len = window_len.max(len);
                    }
                }
                Ok(())
            },
        )?;
        // Whole granules per ring, so a call that stops at the ring's end stops on one.
        for sn in &g.nodes {
            ring_rows[sn.out] = ring_rows[sn.out].next_multiple_of(sn.map.granule());
        }
        let mut offsets = vec![0usize; nsv];
        let mut at = 0usize;
        for v in 0..nsv {
            offsets[v] = at;
            let len = slot_len(
                types[v],
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
        Ok((
            StreamPlan {
                input: hw,
                shapes,
                ring_rows,
                offsets,
                step,
                min_rows,
                call_rows,
                scratch_len,
                window_at,
                window_len,
                graph: g,
            },
            lags,
        ))
    }

    /// Runs a streamed pass over a region of `plan.input.0` rows and `w` columns (at most
    /// `plan.input.1`). `fill(r0, r1, planes)` writes input rows `[r0, r1)` as CHW planes of
    /// `r1 - r0` rows (asked again for rows a late reader needs: it must give the same
    /// values); `emit(r0, r1, planes)` receives output rows `[r0, r1)` the same way, in
    /// order, each row once. `scratch` holds at least `plan.scratch_len` elements.
    pub fn run_streamed(
        &self,
        plan: &StreamPlan,
        w: usize,
        scratch: &mut [f32],
        fill: &mut FillRows<'_>,
        emit: &mut EmitRows<'_>,
    ) -> Result<(), Error> {
        let m = &self.model;
        let g = &plan.graph;
        if w == 0 || w > plan.input.1 {
            return Err(Error::ShapeMismatch {
                node: 0,
                reason: "region wider than the stream plan",
            });
        }
        if scratch.len() < plan.scratch_len || plan.offsets.len() < g.origin.len() {
            return Err(Error::BufferTooSmall {
                needed: plan.scratch_len,
                got: scratch.len(),
            });
        }
        let mut model_shapes = vec![Shape::default(); m.n_values()];
        self.infer_shapes(plan.input.0, w, &mut model_shapes)?;
        let shapes: Vec<Shape> = g.origin.iter().map(|&o| model_shapes[o]).collect();
        if shapes.iter().zip(&plan.shapes).any(|(s, p)| s.h != p.h) {
            return Err(Error::ShapeMismatch {
                node: 0,
                reason: "region height differs from the stream plan's",
            });
        }
        let out_v = g.out;
        let (rings, rest) = scratch[..plan.scratch_len].split_at_mut(plan.window_at);
        let (win, widen) = rest.split_at_mut(plan.window_len);
        let r = Rings {
            shapes: &shapes,
            cap: &plan.ring_rows,
            offsets: &plan.offsets,
            types: g.origin.iter().map(|&o| m.value_type(o)).collect(),
        };
        let cap = &plan.ring_rows;
        let mut no_lags = [];
        self.schedule(
            g,
            &shapes,
            plan.step,
            plan.min_rows,
            &plan.call_rows,
            &mut no_lags,
            &mut |a, lo| match a {
                Action::Emit(r0, r1) => {
                    let n = r.window_len(out_v, r1 - r0);
                    r.load(rings, out_v, r0, r1, &mut win[..n]);
                    emit(r0, r1, &win[..n])
                }
                Action::Node(c, r0, r1) => {
                    let v = g.nodes[c].out;
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
                        let a1 = r1.min(r.wrap_after(v, a0));
                        self.stream_call(&r, &g.nodes[c], a0, a1, rings, win, widen, fill)?;
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
        let wide = |d: DType| d != DType::F16;
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
        let depthwise = n.op == OpKind::Conv2d
            && s.groups == s.in_c
            && s.out_c == s.in_c
            && s.k_h * s.k_w > 1
            && weight_ty.is_some_and(wide)
            && in_place;
        let pointwise = n.op == OpKind::Conv2d
            && s.k_h == 1
            && s.k_w == 1
            && s.stride_h == 1
            && s.stride_w == 1
            && s.groups == 1
            && s.pad == [0; 4];
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
            let d = self.dw_operands(i)?;
            let (ty_in, ty_out) = (ty(u0), ty(v));
            let h_out = r.shapes[v].h;
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
        if pointwise_f32 || sn.fused_add.is_some() {
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
            let qp = self.qconv_params(i).ok_or(Error::BadNode {
                node: i as u32,
                reason: "u8 input",
            })?;
            let (out, ins) = split_io(rings, r.range(v), &in_r[..1], i)?;
            let a = act(n.activation);
            let input = bytes(ins[0], r.shapes[u0].c * r.cap[u0] * x.w);
            // Rows read in place, one call per stretch the input ring does not wrap in.
            let mut s0 = r0;
            while s0 < r1 {
                let s1 = r1.min(r.wrap_after(u0, s0));
                let pw = ConvShape { in_h: s1 - s0, ..s };
                let (in_at, out_at) = (r.rows(u0, 0, s0, s1).start, r.rows(v, 0, s0, s1).start);
                let dst = match ty(v) {
                    ValueType::U8(q) => QOutput::U8 {
                        q: qparams(q),
                        relu: a == Act::Relu,
                        dst: &mut bytemuck::cast_slice_mut::<f32, u8>(out)[out_at..],
                    },
                    ValueType::F32 => QOutput::F32 {
                        act: a,
                        dst: &mut out[out_at..],
                    },
                };
                strided(
                    &pw,
                    &qp,
                    &input[in_at..],
                    dst,
                    r.cap[u0] * x.w,
                    r.cap[v] * y.w,
                );
                s0 = s1;
            }
            return Ok(());
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

/// Convolution shape `s` (of the whole input) cut to the window of input rows `[a, b)` that
/// `rows` output rows read, the window's unclipped start being `top`: the region's padding
/// only where the window passes its edge.
fn window_shape(
    s: &ConvShape,
    map: RowMap,
    rows: usize,
    a: usize,
    b: usize,
    top: isize,
) -> ConvShape {
    let mut w = ConvShape { in_h: b - a, ..*s };
    if let RowMap::Conv { stride, k, .. } = map {
        let hi = top + ((rows - 1) * stride + k) as isize;
        w.pad[0] = (a as isize - top) as usize;
        w.pad[2] = (hi - b as isize).max(0) as usize;
    }
    w
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
    /// The first row after `row` that goes back to the start of value `v`'s ring.
    fn wrap_after(&self, v: usize, row: usize) -> usize {
        (row / self.cap[v] + 1) * self.cap[v]
    }
    /// Whether rows `[a, b)` of value `v` are contiguous in its ring.
    fn contiguous(&self, v: usize, a: usize, b: usize) -> bool {
        self.cap[v] > 0 && a % self.cap[v] + (b - a) <= self.cap[v]
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
            0..self.shapes[v].c,
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

/// Copies rows `[r0, r1)` of channels `chans` of a ring (value type `ty`, shape `s`, `cap`
/// rows) into CHW planes.
#[allow(clippy::too_many_arguments)]
fn ring_load(
    ty: ValueType,
    ring: &[f32],
    s: Shape,
    cap: usize,
    chans: Range<usize>,
    r0: usize,
    r1: usize,
    dst: &mut [f32],
) {
    match ty {
        ValueType::F32 => ring_copy_load(ring, s, cap, chans, r0, r1, dst),
        ValueType::U8(_) => {
            let n = chans.len() * (r1 - r0) * s.w;
            let ring = bytes(ring, s.c * cap * s.w);
            ring_copy_load(ring, s, cap, chans, r0, r1, bytes_mut(dst, n));
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

fn ring_copy_load<T: Copy>(
    ring: &[T],
    s: Shape,
    cap: usize,
    chans: Range<usize>,
    r0: usize,
    r1: usize,
    dst: &mut [T],
) {
    let (n, w) = (r1 - r0, s.w);
    for (k, ch) in chans.enumerate() {
        for (rs, ws, rows) in segments(cap, r0, r1) {
            if rows > 0 {
                let src = (ch * cap + rs) * w;
                let d = (k * n + ws) * w;
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
