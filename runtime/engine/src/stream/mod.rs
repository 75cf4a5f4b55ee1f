//! Row streaming: the network runs over a region from top to bottom, every value held as a
//! ring of its most recent rows, so each output row is computed once (no vertical halo and no
//! recomputation) and memory grows with the region's width, not its height.
//!
//! - `schedule.rs`: the streamed graph (the model's nodes; a node that reads only the input,
//!   cloned and run late for a reader chain far behind; an f32 pointwise node fused with the
//!   residual add that alone reads it) and the schedule: the input becomes readable `step`
//!   more rows at a time, each node then computes the rows its inputs allow (lazy nodes only
//!   what their readers need), and rows leave a ring once no reader needs them.
//! - `call.rs`: one node call on rows, in place in the rings where the kernels take strided
//!   planes (depthwise, element-wise, pointwise), else through contiguous copies; a
//!   convolution's row window gets the region's padding only where it reaches the region's
//!   edge, so every output element gets the arithmetic of a whole-region run.
//! - `rings.rs`: where each value's rows live.
//!
//! [`Engine::stream_plan`] sizes the rings by running the schedule without data, and
//! [`Engine::run_streamed`] runs it. Results equal one pass over the whole region bit for bit.

use alloc::vec;
use alloc::vec::Vec;

use rawnr_core::format::ValueType;
use rawnr_core::Error;

use crate::fuse::elem_bytes;
use crate::graph::{slot_len, Engine, Shape};

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

impl StreamPlan {
    /// Elements of one run's rings (the part of [`StreamPlan::scratch_len`] each concurrent
    /// or interleaved run needs for itself).
    pub fn rings_len(&self) -> usize {
        self.window_at
    }
    /// Elements of a run's working memory (call windows, f16 widening): the rest of
    /// [`StreamPlan::scratch_len`], which runs on one thread may share.
    pub fn work_len(&self) -> usize {
        self.scratch_len - self.window_at
    }
}

/// One sweep of a streamed run's schedule ([`Engine::stream_sweeps`]), in rows of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepRows {
    /// Input rows readable once the sweep ran (the sweep reads no row at or past it).
    pub input: usize,
    /// First input row any later sweep reads.
    pub first_needed: usize,
    /// Output rows handed out by then.
    pub emitted: usize,
}

/// A streamed run in progress, advanced sweep by sweep by its caller
/// ([`Engine::stream_cursor`], [`Engine::sweep_streamed`]).
#[derive(Debug, Clone)]
pub struct StreamCursor {
    st: SchedState,
    /// Region height (input) and network output height.
    h0: usize,
    h_out: usize,
    /// Value shapes of this region.
    shapes: Vec<Shape>,
    /// Value types.
    types: Vec<ValueType>,
}

impl StreamCursor {
    /// Whether every output row went out.
    pub fn finished(&self) -> bool {
        self.st.emitted >= self.h_out
    }
    /// Input rows the next sweep reads up to (exclusive): the caller must have them.
    pub fn next_input(&self, plan: &StreamPlan) -> usize {
        self.st.next_input(plan.step, self.h0)
    }
    /// Output rows handed out so far.
    pub fn emitted(&self) -> usize {
        self.st.emitted
    }
}

mod call;
mod rings;
mod schedule;

use rings::Rings;
pub use schedule::STREAM_MAX_NODES;
use schedule::{Action, RowMap, SGraph, SNode, SchedState, LATE_ROWS};
// The limit as the error message states it.
const _: () = assert!(STREAM_MAX_NODES == 1024);

impl Engine<'_> {
    /// Plans a streamed run over regions of exactly `h` rows and up to `w` columns, the input
    /// advancing `step` rows per schedule step and nodes computing at least `min_rows` rows
    /// per call: ring sizes from a dry run of the schedule. A node reading only the network
    /// input whose output a reader consumes far behind the others (a U-Net's full-resolution
    /// skip) is cloned for that reader and run late, from the input frame, instead of keeping
    /// its rows. Errors when an op cannot be streamed (transposed convolutions whose kernel
    /// differs from their stride) or the model has over [`STREAM_MAX_NODES`] nodes.
    pub fn stream_plan(
        &self,
        h: usize,
        w: usize,
        step: usize,
        min_rows: usize,
    ) -> Result<StreamPlan, Error> {
        if self.model.n_nodes() > STREAM_MAX_NODES {
            return Err(Error::BadNode {
                node: STREAM_MAX_NODES as u32,
                reason: "row streaming runs models of at most 1024 nodes (tiles run any)",
            });
        }
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
        let row_bytes = |v: usize| shapes[v].c * shapes[v].w * elem_bytes(types[v]);
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
        self.run_streamed_impl(plan, w, scratch, fill, emit, None)
    }

    /// [`Engine::run_streamed`] that calls `after_call(node, rows)` after every node call,
    /// with the model node it ran (a clone's original; a pointwise node fused with its add)
    /// and the rows it computed (profilers time nodes with it).
    pub fn run_streamed_with_hook(
        &self,
        plan: &StreamPlan,
        w: usize,
        scratch: &mut [f32],
        fill: &mut FillRows<'_>,
        emit: &mut EmitRows<'_>,
        after_call: &mut dyn FnMut(usize, usize),
    ) -> Result<(), Error> {
        self.run_streamed_impl(plan, w, scratch, fill, emit, Some(after_call))
    }

    fn run_streamed_impl(
        &self,
        plan: &StreamPlan,
        w: usize,
        scratch: &mut [f32],
        fill: &mut FillRows<'_>,
        emit: &mut EmitRows<'_>,
        mut after_call: Option<&mut dyn FnMut(usize, usize)>,
    ) -> Result<(), Error> {
        let mut cursor = self.stream_cursor(plan, w)?;
        if scratch.len() < plan.scratch_len {
            return Err(Error::BufferTooSmall {
                needed: plan.scratch_len,
                got: scratch.len(),
            });
        }
        let (rings, work) = scratch[..plan.scratch_len].split_at_mut(plan.window_at);
        while !cursor.finished() {
            self.sweep_streamed(
                plan,
                &mut cursor,
                rings,
                work,
                fill,
                emit,
                match after_call {
                    Some(ref mut hook) => Some(&mut **hook),
                    None => None,
                },
            )?;
        }
        Ok(())
    }

    /// A cursor at the start of a streamed run over a region of `plan.input.0` rows and `w`
    /// columns (at most `plan.input.1`), for a caller that advances the run itself as input
    /// rows arrive ([`Engine::sweep_streamed`]).
    pub fn stream_cursor(&self, plan: &StreamPlan, w: usize) -> Result<StreamCursor, Error> {
        let m = &self.model;
        let g = &plan.graph;
        if w == 0 || w > plan.input.1 {
            return Err(Error::ShapeMismatch {
                node: 0,
                reason: "region wider than the stream plan",
            });
        }
        if plan.offsets.len() < g.origin.len() {
            return Err(Error::BadInfo("stream plan of another model"));
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
        Ok(StreamCursor {
            st: SchedState::new(g.origin.len()),
            h0: plan.input.0,
            h_out: shapes[g.out].h,
            types: g.origin.iter().map(|&o| m.value_type(o)).collect(),
            shapes,
        })
    }

    /// Runs the next sweep of a streamed run ([`Engine::stream_cursor`]): input rows up to
    /// [`StreamCursor::next_input`] become readable (`fill` is asked only for rows below it),
    /// every node computes what they allow, and finished output rows go to `emit` (as in
    /// [`Engine::run_streamed`]). `rings` holds [`StreamPlan::rings_len`] elements and must
    /// be the same for every sweep of the run; `work` holds [`StreamPlan::work_len`] and may be
    /// shared between runs. `after_call` is as in [`Engine::run_streamed_with_hook`].
    #[allow(clippy::too_many_arguments)]
    pub fn sweep_streamed(
        &self,
        plan: &StreamPlan,
        cursor: &mut StreamCursor,
        rings: &mut [f32],
        work: &mut [f32],
        fill: &mut FillRows<'_>,
        emit: &mut EmitRows<'_>,
        mut after_call: Option<&mut (dyn FnMut(usize, usize) + '_)>,
    ) -> Result<(), Error> {
        let g = &plan.graph;
        if rings.len() < plan.rings_len() || work.len() < plan.work_len() {
            return Err(Error::BufferTooSmall {
                needed: plan.scratch_len,
                got: rings.len().min(plan.rings_len()) + work.len().min(plan.work_len()),
            });
        }
        if cursor.shapes.len() != g.origin.len() || cursor.h0 != plan.input.0 {
            return Err(Error::BadInfo("stream cursor of another plan"));
        }
        let out_v = g.out;
        let (win, widen) = work[..plan.work_len()].split_at_mut(plan.window_len);
        let StreamCursor {
            st, shapes, types, ..
        } = cursor;
        let r = Rings {
            shapes,
            cap: &plan.ring_rows,
            offsets: &plan.offsets,
            types,
        };
        let cap = &plan.ring_rows;
        let mut no_lags = [];
        self.sweep(
            st,
            g,
            shapes,
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
                        if let Some(hook) = after_call.as_mut() {
                            hook(g.nodes[c].node, a1 - a0);
                        }
                        a0 = a1;
                    }
                    Ok(())
                }
            },
        )
    }

    /// The schedule of `plan` sweep by sweep, run without data: after each sweep, the input
    /// rows readable, the first input row a later sweep still reads and the output rows out.
    /// A caller that pushes input rows sizes its buffers and latency with it.
    pub fn stream_sweeps(&self, plan: &StreamPlan) -> Result<Vec<SweepRows>, Error> {
        let g = &plan.graph;
        let mut st = SchedState::new(g.origin.len());
        let mut sweeps = Vec::new();
        let mut no_lags = [];
        while !st.finished(g, &plan.shapes) {
            self.sweep(
                &mut st,
                g,
                &plan.shapes,
                plan.step,
                plan.min_rows,
                &plan.call_rows,
                &mut no_lags,
                &mut |_, _| Ok(()),
            )?;
            sweeps.push(SweepRows {
                input: st.done[0],
                first_needed: st.lo[0].min(st.done[0]),
                emitted: st.emitted,
            });
        }
        Ok(sweeps)
    }
}
