//! The rings of a streamed run: where each value's rows live, and copies in and out of them.

use core::ops::Range;

use rawnr_core::format::ValueType;
use rawnr_kernels::{ConvShape, PlaneLayout};

use super::schedule::RowMap;
use crate::graph::{slot_len, Shape};
use crate::ops::{bytes, bytes_mut};

/// Convolution shape `s` (of the whole input) cut to the window of input rows `[a, b)` that
/// `rows` output rows read, the window's unclipped start being `top`: the region's padding
/// only where the window passes its edge.
pub(super) fn window_shape(
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
pub(super) struct Rings<'a> {
    pub(super) shapes: &'a [Shape],
    pub(super) cap: &'a [usize],
    pub(super) offsets: &'a [usize],
    /// Type of every value (read once).
    pub(super) types: &'a [ValueType],
}

impl Rings<'_> {
    pub(super) fn value_type(&self, v: usize) -> ValueType {
        self.types[v]
    }
    /// Slots (f32) of value `v`'s ring in the scratch.
    pub(super) fn range(&self, v: usize) -> Range<usize> {
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
    pub(super) fn window_len(&self, v: usize, rows: usize) -> usize {
        slot_len(
            self.value_type(v),
            &Shape {
                h: rows,
                ..self.shapes[v]
            },
        )
    }
    /// The first row after `row` that goes back to the start of value `v`'s ring.
    pub(super) fn wrap_after(&self, v: usize, row: usize) -> usize {
        (row / self.cap[v] + 1) * self.cap[v]
    }
    /// Whether rows `[a, b)` of value `v` are contiguous in its ring.
    pub(super) fn contiguous(&self, v: usize, a: usize, b: usize) -> bool {
        self.cap[v] > 0 && a % self.cap[v] + (b - a) <= self.cap[v]
    }
    /// Elements (f32 values) or bytes (u8 values) of channel `ch`, rows `[a, b)` of value
    /// `v` within its ring (the rows must not wrap).
    pub(super) fn rows(&self, v: usize, ch: usize, a: usize, b: usize) -> Range<usize> {
        let w = self.shapes[v].w;
        let at = (ch * self.cap[v] + a % self.cap[v]) * w;
        at..at + (b - a) * w
    }
    /// The layout of a call reading value `u`'s ring from row `a` on (wrapping at the ring's
    /// end) and writing rows of value `v`'s ring.
    pub(super) fn layout(&self, u: usize, a: usize, v: usize) -> PlaneLayout {
        PlaneLayout {
            in_stride: self.cap[u] * self.shapes[u].w,
            in_rows: self.cap[u],
            in_first_row: a % self.cap[u].max(1),
            out_stride: self.cap[v] * self.shapes[v].w,
        }
    }
    pub(super) fn load(&self, rings: &[f32], v: usize, r0: usize, r1: usize, dst: &mut [f32]) {
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
    pub(super) fn store(&self, rings: &mut [f32], v: usize, r0: usize, r1: usize, src: &[f32]) {
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
pub(super) fn ring_load(
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
pub(super) fn ring_store(
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
pub(super) fn segments(cap: usize, r0: usize, r1: usize) -> [(usize, usize, usize); 2] {
    let n = r1 - r0;
    let first = r0 % cap;
    let a = n.min(cap - first);
    [(first, 0, a), (0, a, n - a)]
}

pub(super) fn ring_copy_load<T: Copy>(
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

pub(super) fn ring_copy_store<T: Copy>(
    ring: &mut [T],
    s: Shape,
    cap: usize,
    r0: usize,
    r1: usize,
    src: &[T],
) {
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
