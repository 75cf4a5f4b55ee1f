//! Square tiles: the frame's packed planes cut into tiles whose origins are multiples of the
//! model's size multiple, each run with a halo (clipped at the padded frame's border) as whole
//! planes; only each tile's centre is written back. Because the grid is aligned to every
//! stride of the network and border tiles stop exactly where the padded frame stops, a halo of
//! at least the receptive field gives bitwise the output of one whole-frame pass.

#[cfg(feature = "alloc")]
use alloc::vec;
#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use rawnr_core::bayer::{pack_region_rows, unpack_region, FrameLayout, Levels, PixelTransform};
use rawnr_core::noise::ChannelNoise;
use rawnr_core::Error;

#[cfg(feature = "std")]
use super::run_workers;
use super::Denoiser;
#[cfg(feature = "alloc")]
use super::{scratch_vec, FrameJob};
#[cfg(feature = "alloc")]
use crate::graph::Plan;
use crate::graph::{AsPlan, Engine, PlanRef, Shape};

/// Errors of [`Denoiser::denoise_via`]: the runtime's own, or the backend's.
#[derive(Debug)]
pub enum ViaError<E> {
    /// Frame, plan or packing error.
    Runtime(Error),
    /// The backend failed on a tile.
    Backend(E),
}

impl<E> From<Error> for ViaError<E> {
    fn from(e: Error) -> Self {
        ViaError::Runtime(e)
    }
}

/// How to cut a frame into tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileOptions {
    /// Tile centre size in packed pixels (rounded up to the size multiple); `usize::MAX` runs
    /// the whole frame as one tile.
    pub tile: usize,
    /// Halo in packed pixels (rounded up to the size multiple); `None` takes the model's.
    pub halo: Option<usize>,
}

impl TileOptions {
    /// One tile covering the whole frame (the reference for tiled runs).
    pub const WHOLE_FRAME: TileOptions = TileOptions {
        tile: usize::MAX,
        halo: Some(0),
    };
}

impl Default for TileOptions {
    fn default() -> Self {
        TileOptions {
            tile: 256,
            halo: None,
        }
    }
}

/// A tile: the centre it produces and the region it reads, in padded packed coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Centre rows `[y0, y0 + h)` and columns `[x0, x0 + w)`.
    pub core: (usize, usize, usize, usize),
    /// Region run through the network (centre plus halo, clipped to the padded frame).
    pub region: (usize, usize, usize, usize),
}

/// The tile grid of one frame size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileGrid {
    /// Packed frame height, `ceil(H/2)`.
    pub packed_h: usize,
    /// Packed frame width, `ceil(W/2)`.
    pub packed_w: usize,
    /// Packed height rounded up to the size multiple.
    pub padded_h: usize,
    /// Packed width rounded up to the size multiple.
    pub padded_w: usize,
    /// Tile centre size.
    pub tile: usize,
    /// Halo.
    pub halo: usize,
    /// Largest region height (the network input the plan is made for).
    pub max_region_h: usize,
    /// Largest region width.
    pub max_region_w: usize,
}

impl TileGrid {
    /// The grid for a frame of packed size `packed_h x packed_w`.
    pub fn new(
        packed_h: usize,
        packed_w: usize,
        multiple: usize,
        opts: &TileOptions,
        model_halo: usize,
    ) -> Result<Self, Error> {
        let m = multiple.max(1);
        let round = |x: usize| x.div_ceil(m).checked_mul(m).ok_or(Error::Overflow);
        let padded_h = round(packed_h)?;
        let padded_w = round(packed_w)?;
        let tile = round(opts.tile.clamp(1, padded_h.max(padded_w)))?;
        let halo = round(opts.halo.unwrap_or(model_halo).min(1 << 16))?;
        let span = tile.checked_add(2 * halo).ok_or(Error::Overflow)?;
        Ok(TileGrid {
            packed_h,
            packed_w,
            padded_h,
            padded_w,
            tile,
            halo,
            max_region_h: span.min(padded_h),
            max_region_w: span.min(padded_w),
        })
    }

    /// Number of tile rows.
    pub fn rows(&self) -> usize {
        self.padded_h.div_ceil(self.tile)
    }

    /// Number of tile columns.
    pub fn cols(&self) -> usize {
        self.padded_w.div_ceil(self.tile)
    }

    /// The tiles of tile row `row` whose centre is not entirely in the padding.
    pub fn band_tiles(&self, row: usize) -> impl Iterator<Item = Tile> + '_ {
        (0..self.cols())
            .map(move |col| self.tile_at(row, col))
            .filter(|t| t.core.0 < self.packed_h && t.core.1 < self.packed_w)
    }

    /// Tile at grid position (`row`, `col`).
    pub fn tile_at(&self, row: usize, col: usize) -> Tile {
        let span = |i: usize, padded: usize| {
            let c0 = i * self.tile;
            let c1 = (c0 + self.tile).min(padded);
            let r0 = c0.saturating_sub(self.halo);
            let r1 = (c1 + self.halo).min(padded);
            (c0, c1 - c0, r0, r1 - r0)
        };
        let (cy, ch, ry, rh) = span(row, self.padded_h);
        let (cx, cw, rx, rw) = span(col, self.padded_w);
        Tile {
            core: (cy, cx, ch, cw),
            region: (ry, rx, rh, rw),
        }
    }

    /// Raw rows `[first, end)` of a frame of `layout` that tile row `row` produces: packed rows
    /// `[row * tile, (row + 1) * tile)`, i.e. raw rows from `2 * row * tile - sy` for a phase
    /// whose red row offset is `sy`, clipped to the frame. Consecutive tile rows tile the frame.
    pub fn band_output_rows(&self, layout: &FrameLayout, row: usize) -> (usize, usize) {
        let sy = layout.cfa.red_offset().0;
        let end = |i: usize| {
            (2usize.saturating_mul(self.tile).saturating_mul(i + 1))
                .saturating_sub(sy)
                .min(layout.height)
        };
        (if row == 0 { 0 } else { end(row - 1) }, end(row))
    }

    /// Raw rows `[first, end)` of a frame of `layout` that tile row `row` reads (its tiles'
    /// regions, halo included): what a line-buffer caller must hold to run that tile row.
    pub fn band_input_rows(&self, layout: &FrameLayout, row: usize) -> (usize, usize) {
        let (ry, _, rh, _) = self.tile_at(row, 0).region;
        layout.raw_rows_read(ry, ry + rh)
    }
}

/// The plan storage [`FramePlan`] holds by default: the owned [`Plan`] with `alloc`, a
/// [`PlanRef`] in caller memory without it.
#[cfg(feature = "alloc")]
pub type DefaultPlan = Plan;

/// The plan storage [`FramePlan`] holds by default: the owned `Plan` with `alloc`, a
/// [`PlanRef`] in caller memory without it.
#[cfg(not(feature = "alloc"))]
pub type DefaultPlan = PlanRef<'static>;

/// The per-frame state of a denoising run: grid, transforms and plan. `P` is the plan's
/// storage: [`Plan`] from [`Denoiser::prepare`], [`PlanRef`] from [`Denoiser::prepare_in`].
#[derive(Debug, Clone)]
pub struct FramePlan<P = DefaultPlan> {
    /// Tile grid.
    pub grid: TileGrid,
    /// Memory plan of the largest tile.
    pub plan: P,
    forward: PixelTransform,
    inverse: PixelTransform,
    white: f32,
    band: usize,
}

impl<P: AsPlan> FramePlan<P> {
    /// The model's noise band this frame runs with (see [`Denoiser::noise_band`]).
    pub fn noise_band(&self) -> usize {
        self.band
    }

    /// Scratch elements (f32) one worker needs.
    pub fn scratch_len(&self) -> usize {
        self.plan.as_plan().scratch_len
    }

    /// Packs tile `t`'s region of `input` (the frame's rows from `in_first_row` on) into the
    /// network input `planes` (`4 x rh x rw`).
    fn pack_tile(
        &self,
        t: &Tile,
        input: &[u16],
        in_first_row: usize,
        layout: &FrameLayout,
        planes: &mut [f32],
    ) -> Result<(), Error> {
        let (ry, rx, rh, rw) = t.region;
        pack_region_rows(
            input,
            in_first_row,
            layout,
            &self.forward,
            ry,
            rx,
            rh,
            rw,
            planes,
        )
    }

    /// Writes the centre of tile `t` from the network output `planes` (`4 x rh x rw`) into
    /// `band` (the output frame's rows from `first_row` on).
    fn unpack_tile(
        &self,
        t: &Tile,
        planes: &[f32],
        band: &mut [u16],
        out_layout: &FrameLayout,
        first_row: usize,
    ) -> Result<(), Error> {
        let (ry, rx, rh, rw) = t.region;
        let (cy, cx, ch, cw) = t.core;
        unpack_region(
            planes,
            rh,
            rw,
            cy - ry,
            cx - rx,
            &self.inverse,
            self.white,
            cy,
            cx,
            ch,
            cw,
            band,
            out_layout,
            first_row,
        )
    }
}

impl<'m> Denoiser<'m> {
    /// Prepares a run on frames of `layout`'s size: grid, transforms and memory plan.
    #[cfg(feature = "alloc")]
    pub fn prepare(
        &self,
        layout: &FrameLayout,
        levels: &Levels,
        noise: impl Into<ChannelNoise>,
        opts: &TileOptions,
    ) -> Result<FramePlan, Error> {
        self.prepare_with(layout, levels, noise.into(), opts, |e, h, w| e.plan(h, w))
    }

    /// [`Denoiser::prepare`] without allocating: the plan's tables go to `shapes` and `offsets`
    /// ([`rawnr_core::format::Model::n_values`] entries each), `work` is temporary
    /// ([`crate::graph::PLAN_WORK_PER_VALUE`] times as many; see [`Engine::plan_in`]).
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_in<'a>(
        &self,
        layout: &FrameLayout,
        levels: &Levels,
        noise: impl Into<ChannelNoise>,
        opts: &TileOptions,
        shapes: &'a mut [Shape],
        offsets: &'a mut [usize],
        work: &mut [usize],
    ) -> Result<FramePlan<PlanRef<'a>>, Error> {
        self.prepare_with(layout, levels, noise.into(), opts, |e, h, w| {
            e.plan_in(h, w, shapes, offsets, work)
        })
    }

    fn prepare_with<P: AsPlan>(
        &self,
        layout: &FrameLayout,
        levels: &Levels,
        noise: ChannelNoise,
        opts: &TileOptions,
        make_plan: impl FnOnce(&Engine<'m>, usize, usize) -> Result<P, Error>,
    ) -> Result<FramePlan<P>, Error> {
        levels.validate()?;
        let grid = self.frame_grid(layout, opts)?;
        let plan = make_plan(&self.engine, grid.max_region_h, grid.max_region_w)?;
        let p = plan.as_plan();
        self.check_output_size(p.shapes, p.input)?;
        let (forward, inverse) = self.transforms(levels, &noise)?;
        Ok(FramePlan {
            grid,
            forward,
            inverse,
            white: levels.white,
            plan,
            band: self.noise_band(&noise)?,
        })
    }

    /// Denoises one band of tiles (tile row `row`) into `band`, which holds the output frame's
    /// rows from `first_row` on.
    #[allow(clippy::too_many_arguments)]
    fn denoise_band<P: AsPlan>(
        &self,
        fp: &FramePlan<P>,
        input: &[u16],
        layout: &FrameLayout,
        row: usize,
        (band, out_layout, first_row): (&mut [u16], &FrameLayout, usize),
        shapes: &mut [Shape],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        self.band_from_rows(
            fp, input, 0, layout, row, band, out_layout, first_row, shapes, scratch,
        )
    }

    /// Denoises tile row `row` for a line-buffer (stripe) caller. `input` holds the frame's rows
    /// from `in_first_row` on (stride `layout.stride`) and must cover
    /// [`TileGrid::band_input_rows`]; `output` holds the output frame's rows from
    /// `out_first_row` on (stride `out_layout.stride`) and receives the rows
    /// [`TileGrid::band_output_rows`]. Writes exactly what [`Denoiser::denoise_with`] writes
    /// for that tile row; `fp` must have been prepared for `layout`'s size.
    #[allow(clippy::too_many_arguments)]
    pub fn denoise_band_rows<P: AsPlan>(
        &self,
        fp: &FramePlan<P>,
        input: &[u16],
        in_first_row: usize,
        layout: &FrameLayout,
        row: usize,
        output: &mut [u16],
        out_first_row: usize,
        out_layout: &FrameLayout,
        shapes: &mut [Shape],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        Self::check_same_frame(layout, out_layout)?;
        if (fp.grid.packed_h, fp.grid.packed_w) != (layout.packed_height(), layout.packed_width()) {
            return Err(Error::BadFrame(
                "frame plan prepared for another frame size",
            ));
        }
        if row >= fp.grid.rows() {
            return Err(Error::BadFrame("tile row outside the frame"));
        }
        if scratch.len() < fp.scratch_len() {
            return Err(Error::BufferTooSmall {
                needed: fp.scratch_len(),
                got: scratch.len(),
            });
        }
        self.band_from_rows(
            fp,
            input,
            in_first_row,
            layout,
            row,
            output,
            out_layout,
            out_first_row,
            shapes,
            scratch,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn band_from_rows<P: AsPlan>(
        &self,
        fp: &FramePlan<P>,
        input: &[u16],
        in_first_row: usize,
        layout: &FrameLayout,
        row: usize,
        band: &mut [u16],
        out_layout: &FrameLayout,
        first_row: usize,
        shapes: &mut [Shape],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let plan = fp.plan.as_plan();
        let engine = self.engine.at_noise_band(fp.band)?;
        let out_v = engine.model().info().output_value as usize;
        for t in fp.grid.band_tiles(row) {
            let (_, _, rh, rw) = t.region;
            engine.infer_shapes(rh, rw, shapes)?;
            let in_r = plan.range(0, &shapes[0]);
            fp.pack_tile(&t, input, in_first_row, layout, &mut scratch[in_r])?;
            engine.run(&plan, shapes, scratch)?;
            let out_r = plan.range(out_v, &shapes[out_v]);
            fp.unpack_tile(&t, &scratch[out_r], band, out_layout, first_row)?;
        }
        Ok(())
    }

    /// Denoises `input` into `output` with another implementation of the same network (e.g.
    /// ONNX Runtime): the same grid, packing and transforms as the native path, tile by tile on
    /// the calling thread. `run(input, h, w, output)` maps the `[4, h, w]` network input of one
    /// tile region to its `[4, h, w]` output. `on_band(done, total)` reports progress.
    #[cfg(feature = "alloc")]
    #[allow(clippy::too_many_arguments)]
    pub fn denoise_via<E>(
        &self,
        fp: &FramePlan,
        input: &[u16],
        layout: &FrameLayout,
        output: &mut [u16],
        out_layout: &FrameLayout,
        mut run: impl FnMut(&[f32], usize, usize, &mut [f32]) -> Result<(), E>,
        on_band: &dyn Fn(usize, usize),
    ) -> Result<(), ViaError<E>> {
        Self::check_output(layout, input, out_layout, output)?;
        let n = 4 * fp.grid.max_region_h * fp.grid.max_region_w;
        let (mut tile_in, mut tile_out) = (vec![0f32; n], vec![0f32; n]);
        let all = bands(output, out_layout, fp.grid.tile);
        let total = all.len();
        for (row, (first_row, band)) in all.into_iter().enumerate() {
            for t in fp.grid.band_tiles(row) {
                let (_, _, rh, rw) = t.region;
                let len = 4 * rh * rw;
                fp.pack_tile(&t, input, 0, layout, &mut tile_in[..len])?;
                run(&tile_in[..len], rh, rw, &mut tile_out[..len]).map_err(ViaError::Backend)?;
                fp.unpack_tile(&t, &tile_out[..len], band, out_layout, first_row)?;
            }
            on_band(row + 1, total);
        }
        Ok(())
    }

    /// Denoises `input` into `output` on the calling thread with caller memory: `scratch` must
    /// hold [`FramePlan::scratch_len`] elements and `shapes` [`rawnr_core::format::Model::n_values`].
    #[allow(clippy::too_many_arguments)]
    pub fn denoise_with<P: AsPlan>(
        &self,
        fp: &FramePlan<P>,
        input: &[u16],
        layout: &FrameLayout,
        output: &mut [u16],
        out_layout: &FrameLayout,
        shapes: &mut [Shape],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        Self::check_output(layout, input, out_layout, output)?;
        if scratch.len() < fp.scratch_len() {
            return Err(Error::BufferTooSmall {
                needed: fp.scratch_len(),
                got: scratch.len(),
            });
        }
        for (row, (first_row, band)) in Bands::new(output, out_layout, fp.grid.tile).enumerate() {
            let out = (band, out_layout, first_row);
            self.denoise_band(fp, input, layout, row, out, shapes, scratch)?;
        }
        Ok(())
    }

    /// [`Denoiser::denoise`] with tiles: the job's progress is told after each band of tiles
    /// (from worker threads).
    #[cfg(feature = "alloc")]
    pub(super) fn denoise_tiles(
        &self,
        job: FrameJob<'_, '_>,
        opts: &TileOptions,
    ) -> Result<(), Error> {
        let fp = self.prepare(job.layout, job.levels, job.noise, opts)?;
        let n_values = self.engine.model().n_values();
        #[cfg(feature = "std")]
        if job.threads > 1 && fp.grid.rows() > 1 {
            return self.denoise_threads(&fp, job);
        }
        let mut shapes = vec![Shape::default(); n_values];
        let mut scratch = scratch_vec(fp.scratch_len())?;
        let bands = bands(job.output, job.out_layout, fp.grid.tile);
        let total = bands.len();
        for (row, (first_row, band)) in bands.into_iter().enumerate() {
            let out = (band, job.out_layout, first_row);
            self.denoise_band(
                &fp,
                job.input,
                job.layout,
                row,
                out,
                &mut shapes,
                &mut scratch,
            )?;
            (job.progress)(row + 1, total);
        }
        Ok(())
    }

    #[cfg(feature = "std")]
    fn denoise_threads(&self, fp: &FramePlan, job: FrameJob<'_, '_>) -> Result<(), Error> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex;
        let all = bands(job.output, job.out_layout, fp.grid.tile);
        let total = all.len();
        let done = AtomicUsize::new(0);
        let work = Mutex::new(all.into_iter().enumerate());
        let n_values = self.engine.model().n_values();
        let workers = job.threads.min(fp.grid.rows());
        run_workers(workers, || -> Result<(), Error> {
            let mut shapes = vec![Shape::default(); n_values];
            let mut scratch = scratch_vec(fp.scratch_len())?;
            loop {
                let next = match work.lock() {
                    Ok(mut it) => it.next(),
                    Err(_) => return Err(Error::BadFrame("a worker thread failed")),
                };
                let Some((row, (first_row, band))) = next else {
                    return Ok(());
                };
                let out = (band, job.out_layout, first_row);
                self.denoise_band(
                    fp,
                    job.input,
                    job.layout,
                    row,
                    out,
                    &mut shapes,
                    &mut scratch,
                )?;
                (job.progress)(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            }
        })
    }
}

/// Splits an output frame into one band of rows per tile row: tile row `i` produces packed rows
/// `[i * tile, (i + 1) * tile)`, i.e. raw rows `[2 * i * tile - sy, 2 * (i + 1) * tile - sy)`
/// (clipped to the frame) for a phase whose red row offset is `sy`. Returns each band's first
/// raw row and its rows.
#[cfg(feature = "alloc")]
fn bands<'a>(
    output: &'a mut [u16],
    layout: &FrameLayout,
    tile: usize,
) -> Vec<(usize, &'a mut [u16])> {
    Bands::new(output, layout, tile).collect()
}

/// The bands of [`bands`], one at a time (no allocation).
struct Bands<'a> {
    rest: &'a mut [u16],
    layout: FrameLayout,
    tile: usize,
    row: usize,
    i: usize,
}

impl<'a> Bands<'a> {
    fn new(output: &'a mut [u16], layout: &FrameLayout, tile: usize) -> Self {
        let total = ((layout.height - 1) * layout.stride + layout.width).min(output.len());
        Bands {
            rest: &mut output[..total],
            layout: *layout,
            tile,
            row: 0,
            i: 0,
        }
    }
}

impl<'a> Iterator for Bands<'a> {
    type Item = (usize, &'a mut [u16]);

    fn next(&mut self) -> Option<Self::Item> {
        let l = &self.layout;
        if self.row >= l.height {
            return None;
        }
        let sy = l.cfa.red_offset().0;
        let end = (2 * self.tile * (self.i + 1))
            .saturating_sub(sy)
            .min(l.height);
        let take = if end == l.height {
            self.rest.len()
        } else {
            ((end - self.row) * l.stride).min(self.rest.len())
        };
        let (band, tail) = core::mem::take(&mut self.rest).split_at_mut(take);
        self.rest = tail;
        let first = self.row;
        self.row = end;
        self.i += 1;
        Some((first, band))
    }
}
