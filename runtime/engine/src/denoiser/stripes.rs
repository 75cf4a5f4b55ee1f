//! Row-streamed stripes: the frame's packed planes cut into full-height stripes with a halo at
//! their sides; each stripe runs from top to bottom with every network value held as a ring of
//! rows ([`crate::stream`]), so no row is computed twice and there is no vertical halo.

#[cfg(feature = "std")]
use alloc::vec::Vec;

#[cfg(feature = "alloc")]
use rawnr_core::bayer::FrameLayout;
#[cfg(feature = "std")]
use rawnr_core::bayer::{pack_region_rows, unpack_region};
#[cfg(feature = "alloc")]
use rawnr_core::Error;

#[cfg(feature = "std")]
use super::{run_workers, scratch_vec, FrameJob, Tile};
#[cfg(feature = "alloc")]
use super::{Denoiser, TileGrid, TileOptions};
#[cfg(feature = "alloc")]
use crate::stream::StreamPlan;

/// How to cut a frame into stripes for row-streamed denoising
/// ([`Denoiser::denoise`] with [`super::Cut::Stripes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeOptions {
    /// Stripe width in packed pixels, without the halo (rounded up to the size multiple).
    pub width: usize,
    /// Horizontal halo in packed pixels (rounded up to the size multiple); `None` takes the
    /// model's.
    pub halo: Option<usize>,
    /// Input rows each streaming step adds (the rings hold a few steps' rows).
    pub step: usize,
    /// Fewest rows a node computes per call (more rows per call run the kernels faster; the
    /// rings grow with it).
    pub min_rows: usize,
}

impl Default for StripeOptions {
    fn default() -> Self {
        StripeOptions {
            width: 512,
            halo: None,
            step: 8,
            min_rows: 1,
        }
    }
}

impl StripeOptions {
    /// The tile grid's options of these stripes: each stripe is a full-height tile of
    /// `width` columns with the halo at its sides.
    #[cfg(feature = "alloc")]
    pub(crate) fn tiles(&self) -> TileOptions {
        TileOptions {
            tile: self.width,
            halo: self.halo,
        }
    }

    /// The defaults for `model`: a model with int8 parts (any `u8` value) streams 4 input rows
    /// per step and computes at least 2 rows per call, an f32 one 8 and 1. Measured in one
    /// process (PMRID, two 2336x1024 stripes on 2 threads, fastest of 7 alternating runs):
    /// int8 step 8 -> 4 875-914 -> 792-805 ms (its rings, a quarter of f32's per row, then
    /// stay nearer the cores' L2), min_rows 1 -> 2 5% faster; f32 no faster either way.
    pub fn for_model(model: &rawnr_core::format::Model<'_>) -> Self {
        let (step, min_rows) = if model.is_int8() { (4, 2) } else { (8, 1) };
        StripeOptions {
            step,
            min_rows,
            ..Self::default()
        }
    }
}

#[cfg(feature = "alloc")]
impl Denoiser<'_> {
    /// The stripe grid and stream plan of a row-streamed run over frames of `layout`'s size
    /// (see [`super::Cut::Stripes`]).
    #[cfg(feature = "alloc")]
    pub fn prepare_streamed(
        &self,
        layout: &FrameLayout,
        opts: &StripeOptions,
    ) -> Result<(TileGrid, StreamPlan), Error> {
        let grid = self.frame_grid(layout, &opts.tiles())?;
        let plan =
            self.engine
                .stream_plan(grid.padded_h, grid.max_region_w, opts.step, opts.min_rows)?;
        self.check_output_size(&plan.shapes, plan.input)?;
        let v = self.engine.model().info().output_value;
        if plan.shapes[0].c != 4 || plan.shapes[v as usize].c != 4 {
            return Err(Error::ShapeMismatch {
                node: v,
                reason: "network input or output is not 4 planes",
            });
        }
        Ok((grid, plan))
    }

    /// Denoises `input` into `output` row-streamed: the frame is cut into vertical stripes
    /// (`opts.width` packed columns plus a horizontal halo), and each stripe runs from top to
    /// bottom with every network value held as a ring of rows ([`crate::stream`]), so no row is
    /// computed twice and there is no vertical halo: down each stripe the result equals one
    /// pass over the whole frame's height bit for bit (and the whole frame exactly when one
    /// stripe covers it or the halo covers the receptive field). Stripes are spread over
    /// `threads` threads, each with its own scratch ([`StreamPlan::scratch_len`]).
    /// `on_rows(done, total)` reports progress in packed rows of all stripes.
    #[cfg(feature = "std")]
    pub(super) fn denoise_stripes(
        &self,
        job: FrameJob<'_, '_>,
        opts: &StripeOptions,
    ) -> Result<(), Error> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex;
        let FrameJob {
            input,
            layout,
            output,
            out_layout,
            levels,
            noise,
            threads,
            progress: on_rows,
        } = job;
        levels.validate()?;
        let (grid, plan) = self.prepare_streamed(layout, opts)?;
        let (forward, inverse, engine) = self.stream_tuning(levels, &noise)?;
        // A stripe is a full-height "tile row 0" tile of the grid.
        let stripes: Vec<Tile> = grid.band_tiles(0).collect();
        let total = stripes.len() * grid.padded_h;
        let (next, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let output = Mutex::new(output);
        let white = levels.white;
        let worker = || -> Result<(), Error> {
            let mut scratch = scratch_vec(plan.scratch_len)?;
            loop {
                let Some(t) = stripes.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return Ok(());
                };
                let (_, cx, _, cw) = t.core;
                let (_, rx, _, rw) = t.region;
                engine.run_streamed(
                    &plan,
                    rw,
                    &mut scratch,
                    &mut |r0, r1, planes| {
                        pack_region_rows(input, 0, layout, &forward, r0, rx, r1 - r0, rw, planes)
                    },
                    &mut |r0, r1, planes| {
                        if r0 < grid.packed_h {
                            let mut out = output
                                .lock()
                                .map_err(|_| Error::BadFrame("a worker thread failed"))?;
                            unpack_region(
                                planes,
                                r1 - r0,
                                rw,
                                0,
                                cx - rx,
                                &inverse,
                                white,
                                r0,
                                cx,
                                r1.min(grid.packed_h) - r0,
                                cw,
                                &mut out,
                                out_layout,
                                0,
                            )?;
                        }
                        on_rows(done.fetch_add(r1 - r0, Ordering::Relaxed) + r1 - r0, total);
                        Ok(())
                    },
                )?;
            }
        };
        let workers = threads.clamp(1, stripes.len().max(1));
        run_workers(workers, worker)
    }
}
