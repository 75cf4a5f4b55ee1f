//! Graph execution: shape inference, arena planning and the node loop.

#[cfg(feature = "alloc")]
use alloc::vec;
#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::ops::Range;

use rawnr_core::format::{Model, OpKind, ValueType};
use rawnr_core::Error;
use rawnr_kernels::Kernels;

use crate::ops::conv_shape;

/// Shape of one activation (CHW). `repr(C)` (three `usize`), so callers without an allocator
/// can keep shape slots in memory they manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Shape {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Shape {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    /// True when the shape holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Arena slots (f32 elements) a value of type `ty` and shape `s` occupies: u8 values are
/// packed four to a slot.
pub(crate) fn slot_len(ty: ValueType, s: &Shape) -> usize {
    match ty {
        ValueType::F32 => s.len(),
        ValueType::U8(_) => s.len().div_ceil(4),
    }
}

/// Memory plan for one input size: where each value lives in the scratch arena.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone)]
pub struct Plan {
    /// Input height and width the plan was made for (the largest it accepts).
    pub input: (usize, usize),
    /// Shapes of every value at that size.
    pub shapes: Vec<Shape>,
    /// Offset of every value in the arena, in f32 elements.
    pub offsets: Vec<usize>,
    /// Scratch length in f32 elements: the arena, the fused bands, then the f16
    /// weight-widening buffer.
    pub scratch_len: usize,
    /// Scratch elements for the bands of fused layers (0: nothing fused; see
    /// [`Engine::with_fusion`]).
    pub band_len: usize,
}

#[cfg(feature = "alloc")]
impl Plan {
    /// Elements of f32 value `v` in the arena, for the shapes of the current run.
    pub fn range(&self, v: usize, shape: &Shape) -> Range<usize> {
        self.offsets[v]..self.offsets[v] + shape.len()
    }
}

/// Entries of [`Engine::plan_in`]'s `work` buffer per model value.
pub const PLAN_WORK_PER_VALUE: usize = 3;

/// Most arena values the planner packs by size with reuse (quadratic in the values that are
/// alive together); larger graphs get one slot per value in linear time (see
/// [`Engine::plan_in`]).
pub const GREEDY_PLAN_MAX_VALUES: usize = 2048;

/// A memory plan whose tables live in caller memory ([`Engine::plan_in`]): the same content
/// as [`Plan`], borrowed. Works without an allocator.
#[derive(Debug, Clone, Copy)]
pub struct PlanRef<'a> {
    /// Input height and width the plan was made for (the largest it accepts).
    pub input: (usize, usize),
    /// Shapes of every value at that size.
    pub shapes: &'a [Shape],
    /// Offset of every value in the arena, in f32 elements.
    pub offsets: &'a [usize],
    /// Scratch length in f32 elements: the arena, the fused bands, then the f16
    /// weight-widening buffer.
    pub scratch_len: usize,
    /// Scratch elements for the bands of fused layers (0: nothing fused; see
    /// [`Engine::with_fusion`]).
    pub band_len: usize,
}

impl PlanRef<'_> {
    /// Elements of f32 value `v` in the arena, for the shapes of the current run.
    pub fn range(&self, v: usize, shape: &Shape) -> Range<usize> {
        self.offsets[v]..self.offsets[v] + shape.len()
    }
}

/// A memory plan, owned ([`Plan`]) or in caller memory ([`PlanRef`]).
pub trait AsPlan {
    /// The plan's tables.
    fn as_plan(&self) -> PlanRef<'_>;
}

impl AsPlan for PlanRef<'_> {
    fn as_plan(&self) -> PlanRef<'_> {
        *self
    }
}

#[cfg(feature = "alloc")]
impl AsPlan for Plan {
    fn as_plan(&self) -> PlanRef<'_> {
        PlanRef {
            input: self.input,
            shapes: &self.shapes,
            offsets: &self.offsets,
            scratch_len: self.scratch_len,
            band_len: self.band_len,
        }
    }
}

/// A callback shown each f32 value as it is computed: `(value id, data)`.
pub type Observer<'a> = dyn FnMut(usize, &[f32]) + 'a;

/// Runs one validated model.
#[derive(Debug, Clone)]
pub struct Engine<'m> {
    pub(crate) model: Model<'m>,
    pub(crate) kernels: Kernels,
    /// Elements of the largest f16 weight tensor (its f32 widening buffer ends the scratch).
    pub(crate) f16_buffer: usize,
    /// Whether plans fuse separable blocks (see [`Engine::with_fusion`]).
    pub(crate) fusion: bool,
}

impl<'m> Engine<'m> {
    /// Prepares a model for execution (allocates nothing).
    pub fn new(model: Model<'m>) -> Self {
        Self::with_kernels(model, Kernels::best())
    }

    /// The same engine on band `b` of the model's noise bands (see
    /// [`Model::noise_band_for_gain`]; a model without bands has only band 0).
    pub fn at_noise_band(&self, b: usize) -> Result<Self, Error> {
        Ok(Engine {
            model: self.model.at_noise_band(b)?,
            ..self.clone()
        })
    }

    /// Prepares a model for execution with a given kernel set (e.g. [`Kernels::reference`]).
    pub fn with_kernels(model: Model<'m>, kernels: Kernels) -> Self {
        Engine {
            f16_buffer: model.max_f16_weight_len(),
            model,
            kernels,
            fusion: true,
        }
    }

    /// Turns layer fusion on (the default) or off for the plans made from now on. Fused, a
    /// depthwise convolution, the pointwise one that alone reads it (directly or through a
    /// Quantize) and the residual add that alone reads that run together band by band of rows,
    /// with bit-identical results: the intermediate tensors stay in cache and take no arena
    /// space. [`Engine::run_observed`] needs a plan without fusion (it shows every value).
    pub fn with_fusion(mut self, on: bool) -> Self {
        self.fusion = on;
        self
    }

    /// Nodes that run as one fused chain from node `i` under `plan` (1 when node `i` runs
    /// alone).
    pub fn fused_nodes<P: AsPlan + ?Sized>(&self, plan: &P, i: usize) -> usize {
        self.planned_chain(i, &plan.as_plan())
            .map_or(1, |c| c.len())
    }

    /// The kernels in use.
    pub fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// Infers the shape of every value for an input of `h x w` into `shapes`
    /// (length [`Model::n_values`]).
    pub fn infer_shapes(&self, h: usize, w: usize, shapes: &mut [Shape]) -> Result<(), Error> {
        let m = &self.model;
        if shapes.len() < m.n_values() {
            return Err(Error::BufferTooSmall {
                needed: m.n_values(),
                got: shapes.len(),
            });
        }
        if h == 0 || w == 0 {
            return Err(Error::ShapeMismatch {
                node: 0,
                reason: "empty input",
            });
        }
        shapes[0] = Shape {
            c: m.value_channels(0),
            h,
            w,
        };
        for i in 0..m.n_nodes() {
            let n = m.node(i);
            let bad = |reason| {
                Err(Error::ShapeMismatch {
                    node: i as u32,
                    reason,
                })
            };
            let x = shapes[n.inputs[0] as usize];
            let c = n.out_channels as usize;
            let out = match n.op {
                OpKind::Conv2d => match conv_shape(m, i, &x).conv_out() {
                    Some((h, w)) => Shape { c, h, w },
                    None => return bad("input smaller than the kernel"),
                },
                OpKind::ConvTranspose2d => match conv_shape(m, i, &x).conv_transpose_out() {
                    Some((h, w)) => Shape { c, h, w },
                    None => return bad("transposed conv output is empty"),
                },
                OpKind::Relu | OpKind::LeakyRelu | OpKind::Quantize | OpKind::Dequantize => x,
                OpKind::Add => {
                    let y = shapes[n.inputs[1] as usize];
                    if (x.h, x.w) != (y.h, y.w) {
                        return bad("add inputs differ in size (input not a multiple of the model's size multiple?)");
                    }
                    x
                }
                OpKind::Concat => {
                    for k in 1..n.n_inputs as usize {
                        let y = shapes[n.inputs[k] as usize];
                        if (x.h, x.w) != (y.h, y.w) {
                            return bad("concat inputs differ in size");
                        }
                    }
                    Shape { c, ..x }
                }
                OpKind::PixelShuffle => {
                    let r = n.factor as usize;
                    Shape {
                        c,
                        h: x.h * r,
                        w: x.w * r,
                    }
                }
                OpKind::PixelUnshuffle => {
                    let r = n.factor as usize;
                    if !x.h.is_multiple_of(r) || !x.w.is_multiple_of(r) {
                        return bad("pixel unshuffle input not divisible by the factor");
                    }
                    Shape {
                        c,
                        h: x.h / r,
                        w: x.w / r,
                    }
                }
            };
            out.c
                .checked_mul(out.h)
                .and_then(|v| v.checked_mul(out.w))
                .ok_or(Error::Overflow)?;
            shapes[i + 1] = out;
        }
        Ok(())
    }

    /// Plans the arena for inputs up to `h x w`. Values are placed first-fit among the values
    /// still alive, so memory is the peak of simultaneously live activations, not their sum.
    #[cfg(feature = "alloc")]
    pub fn plan(&self, h: usize, w: usize) -> Result<Plan, Error> {
        let n = self.model.n_values();
        let mut shapes = vec![Shape::default(); n];
        let mut offsets = vec![0usize; n];
        let mut work = vec![0usize; n * PLAN_WORK_PER_VALUE];
        let p = self.plan_in(h, w, &mut shapes, &mut offsets, &mut work)?;
        let (scratch_len, band_len) = (p.scratch_len, p.band_len);
        Ok(Plan {
            input: (h, w),
            shapes,
            offsets,
            scratch_len,
            band_len,
        })
    }

    /// [`Engine::plan`] into caller memory, without allocating: `shapes` and `offsets` receive
    /// the plan's tables and `work` is temporary; `shapes` and `offsets` need
    /// [`Model::n_values`] entries, `work` [`PLAN_WORK_PER_VALUE`] times as many (else
    /// [`Error::BufferTooSmall`]).
    ///
    /// Time: up to [`GREEDY_PLAN_MAX_VALUES`] arena values, they are placed largest first
    /// (sorted once), each at the lowest offset clear of the placed values whose lifetimes
    /// overlap its own (those sorted by offset, then one sweep): per value a scan of the others
    /// and a sort of the `k` it overlaps, a few milliseconds at the limit even when all are
    /// alive at once. Above it (no real denoiser has that many; a hostile file can) each value
    /// gets its own slot in value order, O(n): the arena is then the sum of the values, which
    /// the caller's scratch bound sees in `scratch_len` before anything is allocated.
    pub fn plan_in<'a>(
        &self,
        h: usize,
        w: usize,
        shapes: &'a mut [Shape],
        offsets: &'a mut [usize],
        work: &mut [usize],
    ) -> Result<PlanRef<'a>, Error> {
        let n = self.model.n_values();
        let got = shapes.len().min(offsets.len());
        if got < n {
            return Err(Error::BufferTooSmall { needed: n, got });
        }
        let work_len = n.saturating_mul(PLAN_WORK_PER_VALUE);
        if work.len() < work_len {
            return Err(Error::BufferTooSmall {
                needed: work_len,
                got: work.len(),
            });
        }
        let (shapes, offsets) = (&mut shapes[..n], &mut offsets[..n]);
        let (last_use, rest) = work[..work_len].split_at_mut(n);
        let (order, near) = rest.split_at_mut(n);
        // Index of the last node reading each value; the output lives to the end.
        last_use.fill(0);
        for i in 0..self.model.n_nodes() {
            let node = self.model.node(i);
            for &v in &node.inputs[..node.n_inputs as usize] {
                last_use[v as usize] = i;
            }
        }
        last_use[self.model.info().output_value as usize] = usize::MAX;
        self.infer_shapes(h, w, shapes)?;
        // Every value starts unplaced; fused chains' intermediate values take no arena space
        // (offset usize::MAX) and the depthwise input stays alive until the chain's last node
        // has run.
        const UNPLACED: usize = usize::MAX - 1;
        offsets.fill(UNPLACED);
        let mut band_len = 0usize;
        let mut i = 0;
        // `near` holds the reader counts until placement needs it.
        crate::fuse::count_readers(&self.model, near);
        while i < self.model.n_nodes() {
            match self.chain_at(i, shapes, near) {
                Some(c) => {
                    offsets[c.dw + 1..c.out_value()].fill(usize::MAX);
                    let x = self.model.node(i).inputs[0] as usize;
                    last_use[x] = last_use[x].max(c.dw + c.len() - 1);
                    band_len = band_len.max(self.band_slots(&c, shapes));
                    i += c.len();
                }
                None => i += 1,
            }
        }
        let m = &self.model;
        let slots = |u: usize| slot_len(m.value_type(u), &shapes[u]);
        // Greedy by size (the largest value first, the lowest index among equals; each at the
        // lowest offset clear of the values already placed whose lifetimes overlap its own):
        // closer to the peak of live memory than placing in execution order, which fragments
        // the arena. Value `v` lives from node `v - 1` (the input from node 0) to its last
        // reader.
        let born = |v: usize| v.saturating_sub(1);
        let dies = |v: usize| last_use[v].max(born(v));
        let mut n_order = 0;
        for (v, &o) in offsets.iter().enumerate() {
            if o == UNPLACED {
                order[n_order] = v;
                n_order += 1;
            }
        }
        let mut end = 0usize;
        // Values placed greedily by size; above the limit none, and each gets its own slot in
        // `order`, which holds them by index, that is in execution order.
        let greedy = if n_order > GREEDY_PLAN_MAX_VALUES {
            for &v in &order[..n_order] {
                offsets[v] = end;
                end = end.checked_add(slots(v)).ok_or(Error::Overflow)?;
            }
            0
        } else {
            n_order
        };
        order[..greedy].sort_unstable_by(|&a, &b| slots(b).cmp(&slots(a)).then(a.cmp(&b)));
        for k in 0..greedy {
            let v = order[k];
            let size = slots(v);
            // The placed values alive with `v`, by offset (then end).
            let mut n_near = 0;
            for &u in &order[..k] {
                if born(u) <= dies(v) && born(v) <= dies(u) {
                    near[n_near] = u;
                    n_near += 1;
                }
            }
            let near = &mut near[..n_near];
            near.sort_unstable_by_key(|&u| (offsets[u], offsets[u] + slots(u)));
            // The lowest offset where `v` overlaps none of them: a value at [o, e) blocks
            // [cand, cand + size) when cand < e and o < cand + size; sweeping by offset, a
            // blocking value moves the candidate to its end, and the first value that starts
            // at or past the candidate's end (so do all after it) leaves the candidate free.
            // Every point skipped was blocked, so this is the lowest free offset.
            let mut cand = 0usize;
            for &u in near.iter() {
                let (o, e) = (offsets[u], offsets[u] + slots(u));
                if cand < e && o < cand + size {
                    cand = e;
                } else if o >= cand + size {
                    break;
                }
            }
            offsets[v] = cand;
            end = end.max(cand.checked_add(size).ok_or(Error::Overflow)?);
        }
        Ok(PlanRef {
            input: (h, w),
            shapes,
            offsets,
            scratch_len: end
                .checked_add(band_len)
                .and_then(|e| e.checked_add(self.f16_buffer))
                .ok_or(Error::Overflow)?,
            band_len,
        })
    }

    /// Multiply-accumulates of one run with value shapes `shapes` (convolutions only).
    pub fn macs(&self, shapes: &[Shape]) -> u64 {
        (0..self.model.n_nodes())
            .map(|i| self.node_macs(i, shapes))
            .sum()
    }

    /// Multiply-accumulates of node `i` with value shapes `shapes` (0 unless a convolution).
    pub fn node_macs(&self, i: usize, shapes: &[Shape]) -> u64 {
        let n = self.model.node(i);
        let k = n.kernel[0] as usize * n.kernel[1] as usize;
        let x = shapes[n.inputs[0] as usize];
        match n.op {
            OpKind::Conv2d => (shapes[i + 1].len() * (x.c / n.groups.max(1) as usize) * k) as u64,
            OpKind::ConvTranspose2d => {
                (x.len() * (n.out_channels as usize / n.groups.max(1) as usize) * k) as u64
            }
            _ => 0,
        }
    }

    /// Scratch elements (f32) needed to run inputs up to `h x w`.
    #[cfg(feature = "alloc")]
    pub fn scratch_len(&self, h: usize, w: usize) -> Result<usize, Error> {
        Ok(self.plan(h, w)?.scratch_len)
    }

    /// Scratch bytes needed to run inputs up to `h x w` (CMSIS-NN style `scratch_size`).
    #[cfg(feature = "alloc")]
    pub fn scratch_size(&self, h: usize, w: usize) -> Result<usize, Error> {
        self.scratch_len(h, w)?
            .checked_mul(4)
            .ok_or(Error::Overflow)
    }

    /// Runs the graph. The input (value 0, shape `shapes[0]`) must already be in
    /// `scratch[plan.range(0, ..)]`; afterwards the output value is at
    /// `plan.range(output_value, ..)`. `shapes` comes from [`Engine::infer_shapes`] for an
    /// input no larger than the plan's. `plan` is a [`Plan`] or a [`PlanRef`].
    pub fn run<P: AsPlan + ?Sized>(
        &self,
        plan: &P,
        shapes: &[Shape],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        self.run_impl(plan.as_plan(), shapes, scratch, None, None)
    }

    /// [`Engine::run`] that shows every f32 value to `observe(value, data)` as soon as it is
    /// computed (the input first): post-training quantization collects activation ranges
    /// with it.
    pub fn run_observed<P: AsPlan + ?Sized>(
        &self,
        plan: &P,
        shapes: &[Shape],
        scratch: &mut [f32],
        observe: &mut Observer<'_>,
    ) -> Result<(), Error> {
        self.run_impl(plan.as_plan(), shapes, scratch, Some(observe), None)
    }

    /// [`Engine::run`] that calls `after_node(node)` as each node finishes (profilers time
    /// nodes with it).
    pub fn run_with_hook<P: AsPlan + ?Sized>(
        &self,
        plan: &P,
        shapes: &[Shape],
        scratch: &mut [f32],
        after_node: &mut dyn FnMut(usize),
    ) -> Result<(), Error> {
        self.run_impl(plan.as_plan(), shapes, scratch, None, Some(after_node))
    }

    fn run_impl(
        &self,
        plan: PlanRef<'_>,
        shapes: &[Shape],
        scratch: &mut [f32],
        mut observe: Option<&mut Observer<'_>>,
        mut after_node: Option<&mut dyn FnMut(usize)>,
    ) -> Result<(), Error> {
        let m = &self.model;
        if scratch.len() < plan.scratch_len {
            return Err(Error::BufferTooSmall {
                needed: plan.scratch_len,
                got: scratch.len(),
            });
        }
        if shapes.len() < m.n_values() || plan.shapes.len() < m.n_values() {
            return Err(Error::BufferTooSmall {
                needed: m.n_values(),
                got: shapes.len(),
            });
        }
        for (v, (s, p)) in shapes.iter().zip(plan.shapes).enumerate() {
            if s.len() > p.len() {
                return Err(Error::ShapeMismatch {
                    node: v as u32,
                    reason: "input larger than the plan",
                });
            }
        }
        if observe.is_some() && plan.band_len > 0 {
            return Err(Error::BadInfo(
                "observed runs need a plan without fusion (Engine::with_fusion(false))",
            ));
        }
        let tail = self.f16_buffer.saturating_add(plan.band_len);
        let arena_len = plan
            .scratch_len
            .checked_sub(tail)
            .ok_or(Error::BufferTooSmall {
                needed: tail,
                got: plan.scratch_len,
            })?;
        let (arena, rest) = scratch[..plan.scratch_len].split_at_mut(arena_len);
        let (band, widen) = rest.split_at_mut(plan.band_len);
        let ty = |v: usize| m.value_type(v);
        let range = |v: usize| {
            let start = plan.offsets[v];
            start..start + slot_len(ty(v), &shapes[v])
        };
        if let Some(obs) = observe.as_mut() {
            obs(0, &arena[range(0)]);
        }
        let mut i = 0;
        while i < m.n_nodes() {
            if let Some(c) = self.planned_chain(i, &plan) {
                self.run_chain(&c, shapes, arena, &range, band)?;
                if let Some(hook) = after_node.as_mut() {
                    for j in i..i + c.len() {
                        hook(j);
                    }
                }
                i += c.len();
                continue;
            }
            let n = m.node(i);
            let out_v = i + 1;
            let out_r = range(out_v);
            let mut in_r = [0..0, 0..0, 0..0];
            for (r, &v) in in_r.iter_mut().zip(&n.inputs[..n.n_inputs as usize]) {
                *r = range(v as usize);
            }
            let (out, ins) = split_io(arena, out_r, &in_r[..n.n_inputs as usize], i)?;
            let mut in_shapes = [Shape::default(); 3];
            for (s, &v) in in_shapes.iter_mut().zip(&n.inputs[..n.n_inputs as usize]) {
                *s = shapes[v as usize];
            }
            let x = shapes[n.inputs[0] as usize];
            let s = conv_shape(m, i, &x);
            self.exec_node(
                i,
                &s,
                &in_shapes[..n.n_inputs as usize],
                shapes[out_v],
                &ins[..n.n_inputs as usize],
                out,
                widen,
            )?;
            if let Some(obs) = observe.as_mut() {
                if ty(out_v) == ValueType::F32 {
                    obs(out_v, &arena[range(out_v)]);
                }
            }
            if let Some(hook) = after_node.as_mut() {
                hook(i);
            }
            i += 1;
        }
        Ok(())
    }
}

/// Splits the arena into the output slice and the input slices (which the planner keeps
/// disjoint from the output).
pub(crate) fn split_io<'a>(
    scratch: &'a mut [f32],
    out: Range<usize>,
    ins: &[Range<usize>],
    node: usize,
) -> Result<(&'a mut [f32], [&'a [f32]; 3]), Error> {
    let (left, rest) = scratch.split_at_mut(out.start);
    let (out_s, right) = rest.split_at_mut(out.end - out.start);
    let (left, right): (&'a [f32], &'a [f32]) = (left, right);
    let mut res: [&'a [f32]; 3] = [&[], &[], &[]];
    for (k, r) in ins.iter().enumerate() {
        res[k] = if r.end <= out.start {
            &left[r.clone()]
        } else if r.start >= out.end {
            &right[r.start - out.end..r.end - out.end]
        } else {
            return Err(Error::BadNode {
                node: node as u32,
                reason: "arena plan overlaps input and output",
            });
        };
    }
    Ok((out_s, res))
}
