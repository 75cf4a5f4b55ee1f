//! Row-streamed denoising driven by its caller, as a line buffer is: raw rows go in as the
//! sensor reads them out, denoised rows come out as soon as the network's vertical reach
//! allows, no row is computed twice, and the result is bit-identical to
//! [`Denoiser::denoise`] with the same stripe options ([`Cut::Stripes`](crate::denoiser::Cut::Stripes)).
//!
//! The frame is cut into vertical stripes as [`Denoiser::denoise`] cuts it for
//! [`Cut::Stripes`](crate::denoiser::Cut::Stripes). A
//! [`RowStream`] runs some of them (a part: `part` of `parts`, so the caller's threads can each
//! run one part of every frame into one output), each stripe with its own rings and all
//! advancing together: once the rows pushed cover the next schedule sweep's input, that sweep
//! runs on every stripe of the part ([`crate::graph::Engine::sweep_streamed`]). The input rows
//! the stripes may still read are kept in a window; memory is the window, the rings and one
//! call's working memory ([`RowStream::sizes`]), none of which grows with the frame height.

use alloc::vec::Vec;

use rawnr_core::bayer::{pack_region_rows, unpack_region, FrameLayout, Levels, PixelTransform};
use rawnr_core::noise::ChannelNoise;
use rawnr_core::Error;

use crate::denoiser::{Denoiser, StripeOptions, Tile};
use crate::graph::Engine;
use crate::stream::{StreamCursor, StreamPlan};

/// Element counts of the buffers a [`RowStream`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowStreamSizes {
    /// `u16` samples of the input window (`window_rows` full-width raw rows).
    pub window: usize,
    /// `f32` elements of the rings (each stripe of the part its own).
    pub rings: usize,
    /// `f32` elements of one call's working memory.
    pub work: usize,
}

/// The buffers a [`RowStream`] runs on, of at least [`RowStream::sizes`] elements. The same
/// buffers must be passed to every push of a frame (they hold the frame's state).
#[derive(Debug)]
pub struct RowStreamBuffers<'b> {
    /// Input window.
    pub window: &'b mut [u16],
    /// Rings.
    pub rings: &'b mut [f32],
    /// Working memory.
    pub work: &'b mut [f32],
}

/// Rows of the window's buffer for a window of at most `live` rows: a quarter more, so the
/// live rows move to the buffer's front once per `live / 4` rows pushed (a few copies of each
/// row, against thousands of multiply-adds per pixel in the network).
fn window_capacity(live: usize) -> usize {
    live + (live / 4).max(16)
}

/// One sweep of the schedule in raw rows of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameSweep {
    /// Rows that must have been pushed before the sweep runs.
    need: usize,
    /// First row any later sweep reads.
    keep: usize,
    /// Rows returned once it ran.
    returned: usize,
}

/// A frame denoised row-streamed as its rows arrive ([`Denoiser::row_stream`]).
#[derive(Debug, Clone)]
pub struct RowStream<'m> {
    denoiser: Denoiser<'m>,
    /// The denoiser's engine at the noise band of the frames' noise.
    engine: Engine<'m>,
    /// Frame geometry (stride = width: the window's rows).
    layout: FrameLayout,
    forward: PixelTransform,
    inverse: PixelTransform,
    white: f32,
    plan: StreamPlan,
    stripes: Vec<Tile>,
    cursors: Vec<StreamCursor>,
    sweeps: Vec<FrameSweep>,
    /// Most rows the window holds at once (its buffer holds [`window_capacity`] rows).
    live_rows: usize,
    /// Progress of the current frame.
    next_sweep: usize,
    pushed: usize,
    /// Frame row of the window's first row, its position in the buffer (rows), its rows.
    win_first: usize,
    win_at: usize,
    win_len: usize,
}

impl<'m> Denoiser<'m> {
    /// A row stream over frames of `layout`'s size (its stride is ignored: every push gives
    /// its own) with `levels` and `noise`, cut into stripes by `opts` as
    /// [`Denoiser::denoise`] cuts it for stripes, running part `part` of `parts` (contiguous
    /// runs of stripes; `parts` at most the number of stripes,
    /// [`Denoiser::stream_stripes`]).
    pub fn row_stream(
        &self,
        layout: &FrameLayout,
        levels: &Levels,
        noise: impl Into<ChannelNoise>,
        opts: &StripeOptions,
        part: usize,
        parts: usize,
    ) -> Result<RowStream<'m>, Error> {
        levels.validate()?;
        layout.check_size()?;
        let layout = FrameLayout {
            stride: layout.width,
            ..*layout
        };
        let (grid, plan) = self.prepare_streamed(&layout, opts)?;
        let all: Vec<Tile> = grid.band_tiles(0).collect();
        if parts == 0 || parts > all.len() || part >= parts {
            return Err(Error::BadFrame(
                "stream part out of range (parts: 1 to the number of stripes)",
            ));
        }
        let stripes = all[part * all.len() / parts..(part + 1) * all.len() / parts].to_vec();
        let noise = noise.into();
        let (forward, inverse, engine) = self.stream_tuning(levels, &noise)?;
        let cursors = stripes
            .iter()
            .map(|t| engine.stream_cursor(&plan, t.region.3))
            .collect::<Result<Vec<_>, Error>>()?;
        // The schedule in raw rows, and the most input rows it holds at once.
        let (ph, h) = (grid.packed_h, layout.height);
        let sy = layout.cfa.red_offset().0;
        let returned = |e: usize| {
            if e == 0 {
                0
            } else {
                (2 * e.min(ph) - sy).min(h)
            }
        };
        let mut sweeps = Vec::new();
        let mut live_rows = 0;
        let mut keep = 0;
        for s in engine.stream_sweeps(&plan)? {
            let need = if s.input == 0 {
                0
            } else {
                layout.raw_rows_read(0, s.input).1
            };
            live_rows = live_rows.max(need.saturating_sub(keep));
            keep = if s.first_needed >= grid.padded_h {
                h
            } else {
                layout.raw_rows_read(s.first_needed, s.first_needed + 1).0
            };
            sweeps.push(FrameSweep {
                need,
                keep,
                returned: returned(s.emitted),
            });
        }
        Ok(RowStream {
            denoiser: self.clone(),
            engine,
            layout,
            forward,
            inverse,
            white: levels.white,
            plan,
            stripes,
            cursors,
            sweeps,
            live_rows,
            next_sweep: 0,
            pushed: 0,
            win_first: 0,
            win_at: 0,
            win_len: 0,
        })
    }

    /// Stripes of a row-streamed run over frames of `layout`'s size with `opts`: the most
    /// parts it can be split into.
    pub fn stream_stripes(
        &self,
        layout: &FrameLayout,
        opts: &StripeOptions,
    ) -> Result<usize, Error> {
        Ok(self.frame_grid(layout, &opts.tiles())?.cols())
    }
}

impl RowStream<'_> {
    /// Buffer sizes ([`RowStreamBuffers`]).
    pub fn sizes(&self) -> RowStreamSizes {
        RowStreamSizes {
            window: window_capacity(self.live_rows) * self.layout.width,
            rings: self.stripes.len() * self.plan.rings_len(),
            work: self.plan.work_len(),
        }
    }

    /// Raw columns `[x0, x1)` of the output this part writes.
    pub fn columns(&self) -> (usize, usize) {
        let sx = self.layout.cfa.red_offset().1;
        let w = self.layout.width;
        let raw = |p: usize| (2 * p).saturating_sub(sx).min(w);
        let first = self.stripes.first().map_or(0, |t| t.core.1);
        let last = self.stripes.last().map_or(0, |t| t.core.1 + t.core.3);
        (raw(first), raw(last))
    }

    /// Stripes this part runs.
    pub fn stripes(&self) -> usize {
        self.stripes.len()
    }

    /// Input rows the window holds at most.
    pub fn window_rows(&self) -> usize {
        self.live_rows
    }

    /// Latency in raw rows: output row `r` is returned by the push that brings the rows
    /// pushed to `min(r + latency_rows, height)`, or by an earlier one.
    pub fn latency_rows(&self) -> usize {
        let mut latency = 0;
        let mut prev = 0;
        for s in &self.sweeps {
            if s.returned > prev {
                // Rows [prev, returned) come out once `need` rows are in.
                latency = latency.max(s.need.saturating_sub(prev));
                prev = s.returned;
            }
        }
        latency
    }

    /// The most rows one push of at most `n` rows returns (exact worst case over the frame).
    pub fn max_output_rows(&self, n: usize) -> usize {
        // Rows returned once `p` rows are in: a step function rising at each sweep's need.
        let returned_at = |p: usize| self.returned_after(self.sweeps_ready(p));
        let mut best = 0;
        // The difference over a window of n pushed rows is largest with the window ending
        // at a step.
        for s in &self.sweeps {
            let end = s.need;
            let start = end.saturating_sub(n);
            best = best.max(returned_at(end) - returned_at(start));
        }
        best
    }

    /// Rows pushed in the current frame.
    pub fn rows_pushed(&self) -> usize {
        self.pushed
    }

    /// Rows returned in the current frame.
    pub fn rows_returned(&self) -> usize {
        self.returned_after(self.next_sweep)
    }

    /// Rows returned once the frame's first `j` sweeps ran.
    fn returned_after(&self, j: usize) -> usize {
        j.checked_sub(1).map_or(0, |i| self.sweeps[i].returned)
    }

    /// Sweeps that have run once `p` rows of the frame are in (their needs never fall).
    fn sweeps_ready(&self, p: usize) -> usize {
        self.sweeps.partition_point(|s| s.need <= p)
    }

    /// Frame height.
    pub fn height(&self) -> usize {
        self.layout.height
    }

    /// The first row and the number of rows that pushing `n` more rows returns (after a
    /// frame's last row: the next frame's first `n`).
    pub fn pending(&self, n: usize) -> (usize, usize) {
        let next_frame = self.pushed == self.layout.height && n > 0;
        let (pushed, next_sweep) = if next_frame {
            (0, 0)
        } else {
            (self.pushed, self.next_sweep)
        };
        let first = self.returned_after(next_sweep);
        let last = self.returned_after(self.sweeps_ready(pushed.saturating_add(n)));
        (first, last.max(first) - first)
    }

    /// Takes other levels and noise (another ISO) from the next frame on: only between
    /// frames (before a frame's first push or after its last); starts a new frame.
    pub fn retune(&mut self, levels: &Levels, noise: impl Into<ChannelNoise>) -> Result<(), Error> {
        if self.pushed != 0 && self.pushed != self.layout.height {
            return Err(Error::BadFrame(
                "levels and noise change only between frames",
            ));
        }
        levels.validate()?;
        let noise = noise.into();
        let (forward, inverse, engine) = self.denoiser.stream_tuning(levels, &noise)?;
        (self.forward, self.inverse, self.white) = (forward, inverse, levels.white);
        self.engine = engine;
        self.reset()
    }

    /// Starts a new frame (the next push is its row 0).
    pub fn reset(&mut self) -> Result<(), Error> {
        for (c, t) in self.cursors.iter_mut().zip(&self.stripes) {
            *c = self.engine.stream_cursor(&self.plan, t.region.3)?;
        }
        self.next_sweep = 0;
        self.pushed = 0;
        self.win_first = 0;
        self.win_at = 0;
        self.win_len = 0;
        Ok(())
    }

    /// Pushes the frame's next `n` rows (`rows`, `stride` samples apart) and writes the rows
    /// this finishes into `out` (rows `out_stride` apart, from the first row
    /// [`RowStream::pending`] names; only this part's [`RowStream::columns`] are written).
    /// Returns that first row and the number of rows finished. After the frame's last row
    /// the next push starts a new frame. On an error the frame must be [`RowStream::reset`].
    pub fn push(
        &mut self,
        rows: &[u16],
        n: usize,
        stride: usize,
        bufs: &mut RowStreamBuffers<'_>,
        out: &mut [u16],
        out_stride: usize,
    ) -> Result<(usize, usize), Error> {
        let width = self.layout.width;
        if self.pushed == self.layout.height && n > 0 {
            self.reset()?;
        }
        if n > self.layout.height - self.pushed {
            return Err(Error::BadFrame("push past the end of the frame"));
        }
        if stride < width || (n > 0 && rows.len() < (n - 1) * stride + width) {
            return Err(Error::BufferTooSmall {
                needed: n.saturating_sub(1) * stride + width,
                got: rows.len(),
            });
        }
        let sizes = self.sizes();
        if bufs.window.len() < sizes.window
            || bufs.rings.len() < sizes.rings
            || bufs.work.len() < sizes.work
        {
            return Err(Error::BufferTooSmall {
                needed: sizes.rings + sizes.work,
                got: bufs.rings.len() + bufs.work.len(),
            });
        }
        let (first, count) = self.pending(n);
        let out_layout = FrameLayout {
            stride: out_stride,
            ..self.layout
        };
        if count > 0 && (out_stride < width || out.len() < (count - 1) * out_stride + width) {
            return Err(Error::BufferTooSmall {
                needed: count.saturating_sub(1) * out_stride + width,
                got: out.len(),
            });
        }
        let cap = window_capacity(self.live_rows);
        for i in 0..n {
            self.run_ready(bufs, out, &out_layout, first)?;
            if self.pushed >= self.keep() {
                if self.win_at + self.win_len == cap {
                    // Move the live rows to the front: once per `cap - live_rows` rows pushed.
                    let (a, b) = (self.win_at * width, (self.win_at + self.win_len) * width);
                    bufs.window.copy_within(a..b, 0);
                    self.win_at = 0;
                }
                if self.win_len == 0 {
                    self.win_first = self.pushed;
                }
                let at = (self.win_at + self.win_len) * width;
                let dst = bufs
                    .window
                    .get_mut(at..at + width)
                    .ok_or(Error::BadInfo("row stream window too small"))?;
                dst.copy_from_slice(&rows[i * stride..i * stride + width]);
                self.win_len += 1;
            }
            self.pushed += 1;
        }
        self.run_ready(bufs, out, &out_layout, first)?;
        debug_assert_eq!(self.rows_returned(), first + count);
        Ok((first, count))
    }

    /// First frame row a later sweep reads.
    fn keep(&self) -> usize {
        self.next_sweep
            .checked_sub(1)
            .map_or(0, |i| self.sweeps[i].keep)
    }

    /// Runs every sweep whose input rows are all in, on every stripe, writing finished rows to
    /// `out` (which holds the frame's rows from `out_first` on), then drops the rows no later
    /// sweep reads.
    fn run_ready(
        &mut self,
        bufs: &mut RowStreamBuffers<'_>,
        out: &mut [u16],
        out_layout: &FrameLayout,
        out_first: usize,
    ) -> Result<(), Error> {
        let width = self.layout.width;
        let rings_len = self.plan.rings_len();
        while self.next_sweep < self.sweeps.len()
            && self.sweeps[self.next_sweep].need <= self.pushed
        {
            let window = &bufs.window[self.win_at * width..(self.win_at + self.win_len) * width];
            let (win_first, layout, forward) = (self.win_first, &self.layout, &self.forward);
            let (inverse, white, ph) = (&self.inverse, self.white, layout.packed_height());
            for (i, (t, cursor)) in self.stripes.iter().zip(&mut self.cursors).enumerate() {
                let (_, cx, _, cw) = t.core;
                let (_, rx, _, rw) = t.region;
                self.engine.sweep_streamed(
                    &self.plan,
                    cursor,
                    &mut bufs.rings[i * rings_len..(i + 1) * rings_len],
                    bufs.work,
                    &mut |r0, r1, planes| {
                        pack_region_rows(
                            window,
                            win_first,
                            layout,
                            forward,
                            r0,
                            rx,
                            r1 - r0,
                            rw,
                            planes,
                        )
                    },
                    &mut |r0, r1, planes| {
                        if r0 >= ph {
                            return Ok(());
                        }
                        unpack_region(
                            planes,
                            r1 - r0,
                            rw,
                            0,
                            cx - rx,
                            inverse,
                            white,
                            r0,
                            cx,
                            r1.min(ph) - r0,
                            cw,
                            out,
                            out_layout,
                            out_first,
                        )
                    },
                    None,
                )?;
            }
            self.next_sweep += 1;
            // Drop the rows no later sweep reads.
            let keep = self.keep().max(self.win_first);
            let drop = (keep - self.win_first).min(self.win_len);
            self.win_at += drop;
            self.win_len -= drop;
            self.win_first = keep;
            if self.win_len == 0 {
                self.win_at = 0;
            }
        }
        Ok(())
    }
}
