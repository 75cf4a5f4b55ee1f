//! Denoisers (a model planned for one frame geometry, levels, noise and tiling) and the
//! whole-frame call.

use core::ffi::c_void;
use core::mem::size_of;

use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::noise::NoiseParams;
use rawnr_engine::denoiser::{Denoiser, FramePlan, TileOptions};
use rawnr_engine::detail::{restore, DetailRestore};
use rawnr_engine::graph::{PlanRef, Shape, PLAN_WORK_PER_VALUE};

use crate::mem::{
    bytes_of, frame_buf, overlaps, total_size, with_stride, Carver, FrameBuf, HeapBlock,
};
use crate::model::{model_ref, rawnr_model};
use crate::status::*;

/// CFA code of `rawnr_config.cfa`: R G / G B at the top-left corner.
pub const RAWNR_CFA_RGGB: u32 = 0;
/// CFA code: B G / G R.
pub const RAWNR_CFA_BGGR: u32 = 1;
/// CFA code: G R / B G.
pub const RAWNR_CFA_GRBG: u32 = 2;
/// CFA code: G B / R G.
pub const RAWNR_CFA_GBRG: u32 = 3;

/// What to denoise and how. Start from `rawnr_config_default` and set at least `width`,
/// `height`, `cfa` and the levels.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct rawnr_config {
    /// Frame width in pixels, 2 to 65535 (`RAWNR_ERR_BAD_FRAME` otherwise).
    pub width: u32,
    /// Frame height in pixels, 2 to 65535, and at most 400 Mpixels in all.
    pub height: u32,
    /// CFA phase of the top-left 2x2 block: `RAWNR_CFA_*`.
    pub cfa: u32,
    /// Black level per colour channel, in the order R, Gr (green on red rows), Gb, B.
    pub black: [f32; 4],
    /// White (saturation) level, above every black level and at most 65535.
    pub white: f32,
    /// Shot-noise gain k in normalised units (`x = (raw - black) / (white - black)`,
    /// `var = k x + sigma2`). 0 selects the model's default profile at `iso`.
    pub noise_k: f32,
    /// Read-noise variance sigma2 in normalised units (used when `noise_k` is not 0).
    pub noise_sigma2: f32,
    /// ISO of the frame (used when `noise_k` is 0).
    pub iso: f32,
    /// Tile size in packed (half-resolution) pixels, rounded up to the model's size multiple
    /// (1 becomes 32 for PMRID); a tile larger than the padded frame, or 0, runs the whole
    /// frame as one tile. Scratch memory grows with the tile, not the frame.
    pub tile: u32,
    /// Tile halo in packed pixels, rounded up to the size multiple; negative: the model's.
    /// Values above 65536 count as 65536 (beyond the padded frame a halo changes nothing).
    pub halo: i32,
    /// 1: after the network, restore the detail it removed and its bias on flat fields, as
    /// `denoise-raw` does by default (where the residual holds more energy than the noise
    /// explains, the output takes that part of the input back; then the local mean of the
    /// rest): frame calls only, `rawnr_stripe_*` refuse such a denoiser
    /// (`RAWNR_ERR_UNSUPPORTED`); the scratch grows by 68 bytes per pixel of width. 0 (the default):
    /// the network's output. Other values: `RAWNR_ERR_BAD_ARGUMENT`.
    pub detail_restore: u32,
}

/// What `rawnr_denoiser_get_info` reports.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct rawnr_denoiser_info {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Tile size in packed pixels after rounding.
    pub tile: u32,
    /// Halo in packed pixels after rounding.
    pub halo: u32,
    /// Tile rows (bands) of the frame.
    pub tile_rows: u32,
    /// Tile columns of the frame.
    pub tile_cols: u32,
    /// Bytes `rawnr_denoise_frame` needs as scratch (as `rawnr_denoiser_scratch_size`).
    pub scratch_size: u64,
    /// The model's noise band this denoiser runs, chosen from the configured noise (0 for a
    /// model without bands; see `rawnr_model_info.noise_bands`).
    pub noise_band: u32,
    /// Line-buffer latency of stripes made from this denoiser, in raw rows: what
    /// `rawnr_stripe_info.latency_rows` reports (output row `r` is back once row
    /// `r + latency_rows - 1` is pushed).
    pub latency_rows: u32,
}

/// A model planned for one frame geometry, levels, noise and tiling (opaque). Made by
/// `rawnr_denoiser_init` (caller storage) or `rawnr_denoiser_new` (heap, `std` builds);
/// read-only afterwards, so one denoiser serves any number of threads, each with its own
/// scratch.
pub struct rawnr_denoiser {
    _opaque: [u8; 0],
}

const DENOISER_MAGIC: u32 = 0x4e44_5252; // "RRDN"

#[repr(C)]
pub(crate) struct DenoiserHandle {
    magic: u32,
    heap: HeapBlock,
    pub(crate) denoiser: Denoiser<'static>,
    /// Frame geometry (stride = width).
    pub(crate) layout: FrameLayout,
    /// Grid, transforms and the plan, whose tables follow the handle in its storage.
    pub(crate) fp: FramePlan<PlanRef<'static>>,
    pub(crate) n_values: usize,
    /// Address and size of the storage the handle and its tables live in.
    pub(crate) storage: (usize, usize),
    /// Levels of the frames, for detail restoration.
    pub(crate) levels: Levels,
    /// Noise of the frames, for detail restoration.
    pub(crate) noise: NoiseParams,
    /// Detail restoration after the network (`rawnr_config.detail_restore`).
    pub(crate) detail_restore: bool,
}

impl DenoiserHandle {
    /// Scratch pieces of one worker: value shapes, then the f32 arena.
    pub(crate) fn run_pieces(&self) -> [Option<usize>; 3] {
        [
            bytes_of::<Shape>(self.n_values),
            bytes_of::<f32>(self.fp.scratch_len()),
            bytes_of::<f32>(self.ring_len()),
        ]
    }

    /// `f32` entries of detail restoration's working memory (0 when it is off).
    pub(crate) fn ring_len(&self) -> usize {
        if self.detail_restore {
            DetailRestore::default().ring_len(self.layout.width)
        } else {
            0
        }
    }
}

/// The handle behind `d`, checked.
///
/// # Safety
/// `d` is NULL or points to readable memory of a handle's size.
pub(crate) unsafe fn denoiser_ref<'a>(d: *const rawnr_denoiser) -> Res<&'a DenoiserHandle> {
    Ok(&*crate::mem::handle(
        d.cast::<DenoiserHandle>(),
        DENOISER_MAGIC,
    )?)
}

/// Fills `cfg` with the defaults: width and height 0 (to be set), RGGB, black 0, white 65535,
/// noise from the model's profile at ISO 1600, tile 256, the model's halo.
///
/// Errors: `RAWNR_ERR_NULL`.
///
/// Thread-safety: may run concurrently with any call that does not use `cfg`.
///
/// # Safety
/// `cfg` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rawnr_config_default(cfg: *mut rawnr_config) -> rawnr_status {
    guard(|| {
        if cfg.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        cfg.write(rawnr_config {
            width: 0,
            height: 0,
            cfa: RAWNR_CFA_RGGB,
            black: [0.0; 4],
            white: 65535.0,
            noise_k: 0.0,
            noise_sigma2: 0.0,
            iso: 1600.0,
            tile: 256,
            halo: -1,
            detail_restore: 0,
        });
        Ok(())
    })
}

fn storage_pieces(n_values: usize) -> [Option<usize>; 4] {
    [
        Some(size_of::<DenoiserHandle>()),
        bytes_of::<Shape>(n_values),
        bytes_of::<usize>(n_values),
        n_values
            .checked_mul(PLAN_WORK_PER_VALUE)
            .and_then(bytes_of::<usize>),
    ]
}

/// Bytes of caller storage `rawnr_denoiser_init` needs for this model (any alignment). It
/// depends on the model only, not on the frame.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`.
///
/// Thread-safety: may run concurrently with any call except `rawnr_model_free` of the model.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_denoiser_storage_size(
    model: *const rawnr_model,
    bytes: *mut usize,
) -> rawnr_status {
    guard(|| {
        let m = model_ref(model)?;
        if bytes.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let n = m.denoiser.engine().model().n_values();
        *bytes = total_size(&storage_pieces(n)).ok_or(RAWNR_ERR_BAD_MODEL)?;
        Ok(())
    })
}

fn settings(
    d: &Denoiser<'static>,
    cfg: &rawnr_config,
) -> Res<(FrameLayout, Levels, NoiseParams, TileOptions)> {
    let cfa = match cfg.cfa {
        RAWNR_CFA_RGGB => CfaPhase::Rggb,
        RAWNR_CFA_BGGR => CfaPhase::Bggr,
        RAWNR_CFA_GRBG => CfaPhase::Grbg,
        RAWNR_CFA_GBRG => CfaPhase::Gbrg,
        _ => return Err(RAWNR_ERR_BAD_FRAME),
    };
    let layout = FrameLayout::new(cfg.width as usize, cfg.height as usize, cfa);
    layout.check_size().map_err(status_of)?;
    let levels = Levels {
        black: cfg.black,
        white: cfg.white,
    };
    levels.validate().map_err(status_of)?;
    let noise = if cfg.noise_k == 0.0 {
        d.default_noise(cfg.iso)
    } else {
        NoiseParams {
            k: cfg.noise_k,
            sigma2: cfg.noise_sigma2,
        }
        .validate()
    }
    .map_err(status_of)?;
    let opts = TileOptions {
        tile: if cfg.tile == 0 {
            usize::MAX
        } else {
            cfg.tile as usize
        },
        halo: usize::try_from(cfg.halo).ok(),
    };
    Ok((layout, levels, noise, opts))
}

/// Plans `model` for the frames `cfg` describes, in caller storage: validates the
/// configuration, cuts the frame into tiles and plans the scratch arena. Allocates nothing.
/// Re-initialising the same storage (e.g. for another ISO) is allowed while no call uses the
/// denoiser; stripes made from it keep working if the geometry and tiling are unchanged. On
/// failure the storage holds no valid denoiser.
///
/// - `storage`, `storage_size`: at least `rawnr_denoiser_storage_size` bytes, any alignment;
///   keep it valid and in place while the denoiser (or a stripe made from it) is used.
/// - The model handle must outlive the denoiser.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_BUFFER_TOO_SMALL` (storage),
/// `RAWNR_ERR_BAD_FRAME` (size, CFA code, levels), `RAWNR_ERR_BAD_NOISE`,
/// `RAWNR_ERR_BAD_MODEL` (the model cannot run at this tile size).
///
/// Thread-safety: may run concurrently with calls that use neither this storage nor a
/// denoiser or stripe living in it.
///
/// # Safety
/// Pointers must be NULL or valid for the sizes given.
#[no_mangle]
pub unsafe extern "C" fn rawnr_denoiser_init(
    model: *const rawnr_model,
    cfg: *const rawnr_config,
    storage: *mut c_void,
    storage_size: usize,
    out: *mut *mut rawnr_denoiser,
) -> rawnr_status {
    guard(|| {
        if !out.is_null() {
            *out = core::ptr::null_mut();
        }
        let m = model_ref(model)?;
        if cfg.is_null() || storage.is_null() || out.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let h = init_in(m, &*cfg, storage, storage_size, HeapBlock::CALLER)?;
        *out = h.cast();
        Ok(())
    })
}

/// # Safety
/// `storage` is writable for `storage_size` bytes.
unsafe fn init_in(
    m: &crate::model::ModelHandle,
    cfg: &rawnr_config,
    storage: *mut c_void,
    storage_size: usize,
    heap: HeapBlock,
) -> Res<*mut DenoiserHandle> {
    let d = m.denoiser.clone();
    let n = d.engine().model().n_values();
    let pieces = storage_pieces(n);
    let need = total_size(&pieces).ok_or(RAWNR_ERR_BAD_MODEL)?;
    if storage_size < need {
        return Err(RAWNR_ERR_BUFFER_TOO_SMALL);
    }
    let (layout, levels, noise, opts) = settings(&d, cfg)?;
    let detail_restore = match cfg.detail_restore {
        0 => false,
        1 => true,
        _ => return Err(RAWNR_ERR_BAD_ARGUMENT),
    };
    // Invalidate whatever lived here before, then carve: handle, shapes, offsets, work.
    let mut c = Carver::new(storage, storage_size);
    let h = c.take(size_of::<DenoiserHandle>()).cast::<DenoiserHandle>();
    h.cast::<u32>().write(0);
    let shapes = c.take(size_of::<Shape>() * n).cast::<Shape>();
    let offsets = c.take(size_of::<usize>() * n).cast::<usize>();
    let work = c
        .take(size_of::<usize>() * n * PLAN_WORK_PER_VALUE)
        .cast::<usize>();
    for i in 0..n {
        shapes.add(i).write(Shape::default());
        offsets.add(i).write(0);
    }
    for i in 0..n * PLAN_WORK_PER_VALUE {
        work.add(i).write(0);
    }
    let shapes: &'static mut [Shape] = core::slice::from_raw_parts_mut(shapes, n);
    let offsets: &'static mut [usize] = core::slice::from_raw_parts_mut(offsets, n);
    let work = core::slice::from_raw_parts_mut(work, n * PLAN_WORK_PER_VALUE);
    let fp = d
        .prepare_in(&layout, &levels, noise, &opts, shapes, offsets, work)
        .map_err(status_of)?;
    h.write(DenoiserHandle {
        magic: DENOISER_MAGIC,
        heap,
        denoiser: d,
        layout,
        fp,
        n_values: n,
        storage: (storage as usize, storage_size),
        levels,
        noise,
        detail_restore,
    });
    // The arena size must be expressible, so that scratch queries cannot fail later.
    total_size(&(*h).run_pieces()).ok_or_else(|| {
        (*h).magic = 0;
        RAWNR_ERR_BAD_FRAME
    })?;
    Ok(h)
}

/// `std` builds: like `rawnr_denoiser_init`, with the storage allocated once here (release
/// it with `rawnr_denoiser_free`); frames still run on caller scratch. Other builds:
/// `RAWNR_ERR_UNSUPPORTED`.
///
/// Thread-safety: may run concurrently with any call except `rawnr_model_free` of the model.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_denoiser_new(
    model: *const rawnr_model,
    cfg: *const rawnr_config,
    out: *mut *mut rawnr_denoiser,
) -> rawnr_status {
    guard(|| {
        if !out.is_null() {
            *out = core::ptr::null_mut();
        }
        let m = model_ref(model)?;
        if cfg.is_null() || out.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        #[cfg(feature = "std")]
        {
            let n = m.denoiser.engine().model().n_values();
            let size = total_size(&storage_pieces(n)).ok_or(RAWNR_ERR_BAD_MODEL)?;
            let heap = HeapBlock::alloc(size)?;
            match init_in(m, &*cfg, heap.base.cast(), size, heap) {
                Ok(h) => {
                    *out = h.cast();
                    Ok(())
                }
                Err(e) => {
                    heap.release();
                    Err(e)
                }
            }
        }
        #[cfg(not(feature = "std"))]
        {
            let _ = m;
            Err(RAWNR_ERR_UNSUPPORTED)
        }
    })
}

/// Releases a denoiser: frees the storage `rawnr_denoiser_new` allocated; for a denoiser in
/// caller storage it only marks the handle invalid. NULL and invalid handles are ignored.
/// Stripes made from it must not be used afterwards.
///
/// Thread-safety: no other call may use the denoiser during or after this one.
///
/// # Safety
/// `d` must be NULL or a handle that is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rawnr_denoiser_free(d: *mut rawnr_denoiser) {
    guard_void(|| {
        if denoiser_ref(d).is_err() {
            return;
        }
        let h = d.cast::<DenoiserHandle>();
        (*h).magic = 0;
        (*h).heap.release();
    })
}

/// Bytes of scratch `rawnr_denoise_frame` needs with this denoiser (any alignment): the
/// activations of the largest tile, which depend on the tile size and halo, not on the
/// frame size. One scratch buffer per thread running frames at the same time.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`.
///
/// Thread-safety: may run concurrently with any call except those (re-)initialising or
/// freeing the denoiser.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_denoiser_scratch_size(
    d: *const rawnr_denoiser,
    bytes: *mut usize,
) -> rawnr_status {
    guard(|| {
        let h = denoiser_ref(d)?;
        if bytes.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        *bytes = total_size(&h.run_pieces()).ok_or(RAWNR_ERR_BAD_FRAME)?;
        Ok(())
    })
}

/// Describes a denoiser's tiling (tile and halo after rounding, grid, scratch size).
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`.
///
/// Thread-safety: as `rawnr_denoiser_scratch_size`.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_denoiser_get_info(
    d: *const rawnr_denoiser,
    info: *mut rawnr_denoiser_info,
) -> rawnr_status {
    guard(|| {
        let h = denoiser_ref(d)?;
        if info.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let g = &h.fp.grid;
        let sat = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        info.write(rawnr_denoiser_info {
            width: sat(h.layout.width),
            height: sat(h.layout.height),
            tile: sat(g.tile),
            halo: sat(g.halo),
            tile_rows: sat(g.rows()),
            tile_cols: sat(g.cols()),
            scratch_size: total_size(&h.run_pieces()).unwrap_or(usize::MAX) as u64,
            noise_band: sat(h.fp.noise_band()),
            latency_rows: sat(crate::stripe::Schedule::new(&h.fp, &h.layout).latency()),
        });
        Ok(())
    })
}

/// Carves one worker's shapes, arena and detail-restoration ring (empty when restoration is
/// off) from scratch memory (checked size); `zero` clears the arena (caller memory of unknown
/// contents), else it must have been cleared before.
///
/// # Safety
/// `scratch` is writable for the run pieces' total size and not otherwise referenced.
pub(crate) unsafe fn run_memory<'a>(
    h: &DenoiserHandle,
    scratch: *mut c_void,
    scratch_size: usize,
    zero: bool,
) -> (&'a mut [Shape], &'a mut [f32], &'a mut [f32]) {
    let mut c = Carver::new(scratch, scratch_size);
    let shapes = c.take(size_of::<Shape>() * h.n_values).cast::<Shape>();
    let arena = c.take(size_of::<f32>() * h.fp.scratch_len()).cast::<f32>();
    let ring = c.take(size_of::<f32>() * h.ring_len()).cast::<f32>();
    for i in 0..h.n_values {
        shapes.add(i).write(Shape::default());
    }
    if zero {
        core::ptr::write_bytes(arena, 0, h.fp.scratch_len());
    }
    (
        core::slice::from_raw_parts_mut(shapes, h.n_values),
        core::slice::from_raw_parts_mut(arena, h.fp.scratch_len()),
        core::slice::from_raw_parts_mut(ring, h.ring_len()),
    )
}

/// Checks a frame call's buffers: NULLs, alignment, strides, sizes (the scratch too) and
/// overlaps. Returns the input and output frames.
#[allow(clippy::too_many_arguments)]
unsafe fn frame_args(
    h: &DenoiserHandle,
    input: *const u16,
    input_size: usize,
    input_stride: usize,
    output: *mut u16,
    output_size: usize,
    output_stride: usize,
    scratch: *mut c_void,
    scratch_size: usize,
) -> Res<(FrameBuf, FrameBuf)> {
    if input.is_null() || output.is_null() || scratch.is_null() {
        return Err(RAWNR_ERR_NULL);
    }
    let (w, rows) = (h.layout.width, h.layout.height);
    let inb = frame_buf(input, input_size, input_stride, w, rows)?;
    let outb = frame_buf(output, output_size, output_stride, w, rows)?;
    let need = total_size(&h.run_pieces()).ok_or(RAWNR_ERR_BAD_FRAME)?;
    if scratch_size < need {
        return Err(RAWNR_ERR_BUFFER_TOO_SMALL);
    }
    let s = scratch as usize;
    let (d0, dn) = h.storage;
    if overlaps(inb.addr, inb.bytes(), outb.addr, outb.bytes())
        || overlaps(s, scratch_size, inb.addr, inb.bytes())
        || overlaps(s, scratch_size, outb.addr, outb.bytes())
        || overlaps(d0, dn, s, scratch_size)
        || overlaps(d0, dn, outb.addr, outb.bytes())
    {
        return Err(RAWNR_ERR_OVERLAP);
    }
    Ok((inb, outb))
}

/// Denoises one whole Bayer frame into a caller buffer, on the calling thread, with caller
/// scratch; allocates nothing.
///
/// - `input`: `height` rows of `width` 16-bit pixels, rows `input_stride` bytes apart (even,
///   at least `2 * width`); `input_size` bytes are readable (at least
///   `(height - 1) * input_stride + 2 * width`). 2-byte aligned.
/// - `output`: the same for the denoised frame; may have another stride. Only the frame's
///   pixels are written (padding between rows is left alone), each rounded half up and
///   clamped to `[0, white]` (samples below black stay as the network gives them, not
///   raised to black). Must not overlap `input`. Any width and height the denoiser accepts
///   work, odd ones included (the packed planes mirror the missing samples).
/// - `scratch`: at least `rawnr_denoiser_scratch_size` bytes, any alignment, not overlapping
///   the frames or the denoiser's storage; its contents are overwritten.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_MISALIGNED`,
/// `RAWNR_ERR_BAD_STRIDE`, `RAWNR_ERR_BUFFER_TOO_SMALL` (a frame or the scratch),
/// `RAWNR_ERR_OVERLAP`. Nothing is written when an argument check fails.
///
/// Thread-safety: any number of threads may run frames with the same denoiser at the same
/// time, each with its own scratch and output.
///
/// # Safety
/// Pointers must be NULL or valid for the sizes given.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rawnr_denoise_frame(
    d: *const rawnr_denoiser,
    input: *const u16,
    input_size: usize,
    input_stride: usize,
    output: *mut u16,
    output_size: usize,
    output_stride: usize,
    scratch: *mut c_void,
    scratch_size: usize,
) -> rawnr_status {
    guard(|| {
        let h = denoiser_ref(d)?;
        let (inb, outb) = frame_args(
            h,
            input,
            input_size,
            input_stride,
            output,
            output_size,
            output_stride,
            scratch,
            scratch_size,
        )?;
        let (shapes, arena, ring) = run_memory(h, scratch, scratch_size, true);
        let inp = core::slice::from_raw_parts(input, inb.elems);
        let out = core::slice::from_raw_parts_mut(output, outb.elems);
        let (in_layout, out_layout) = (with_stride(&h.layout, &inb), with_stride(&h.layout, &outb));
        h.denoiser
            .denoise_with(&h.fp, inp, &in_layout, out, &out_layout, shapes, arena)
            .map_err(status_of)?;
        if h.detail_restore {
            restore(
                &DetailRestore::default(),
                inp,
                &in_layout,
                out,
                &out_layout,
                &h.levels,
                &h.noise.into(),
                ring,
            )
            .map_err(status_of)?;
        }
        Ok(())
    })
}

/// Denoises part `part` of `n_parts` of a frame: the tile rows `part * R / n_parts` up to
/// `(part + 1) * R / n_parts` of the frame's `R` (`rawnr_denoiser_info.tile_rows`), so the
/// caller's own threads can share one frame: thread `i` of `n` runs part `i` with its own
/// scratch, into the same output. The parts together write exactly what
/// `rawnr_denoise_frame` writes; a part writes only its own output rows (part with no tile
/// row: nothing). Arguments as `rawnr_denoise_frame`, buffers for the whole frame.
///
/// Errors: as `rawnr_denoise_frame`, and `RAWNR_ERR_BAD_ARGUMENT` (`n_parts` 0 or `part >=
/// n_parts`), `RAWNR_ERR_UNSUPPORTED` (a denoiser with detail restoration, which needs the
/// whole frame: use `rawnr_denoise_frame`).
///
/// Thread-safety: parts of one frame may run at the same time on different threads, each with
/// its own scratch; the input is only read.
///
/// # Safety
/// Pointers must be NULL or valid for the sizes given.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rawnr_denoise_frame_part(
    d: *const rawnr_denoiser,
    part: u32,
    n_parts: u32,
    input: *const u16,
    input_size: usize,
    input_stride: usize,
    output: *mut u16,
    output_size: usize,
    output_stride: usize,
    scratch: *mut c_void,
    scratch_size: usize,
) -> rawnr_status {
    guard(|| {
        let h = denoiser_ref(d)?;
        let (inb, outb) = frame_args(
            h,
            input,
            input_size,
            input_stride,
            output,
            output_size,
            output_stride,
            scratch,
            scratch_size,
        )?;
        if n_parts == 0 || part >= n_parts {
            return Err(RAWNR_ERR_BAD_ARGUMENT);
        }
        if h.detail_restore {
            return Err(RAWNR_ERR_UNSUPPORTED);
        }
        let grid = &h.fp.grid;
        let rows = grid.rows();
        // In 64 bits: `part * rows` overflows a 32-bit usize for large part numbers.
        let share = |p: u32| (u64::from(p) * rows as u64 / u64::from(n_parts)) as usize;
        let (r0, r1) = (share(part), share(part + 1));
        if r0 == r1 {
            return Ok(());
        }
        let (y0, _) = grid.band_output_rows(&h.layout, r0);
        let (_, y1) = grid.band_output_rows(&h.layout, r1 - 1);
        if y1 <= y0 {
            return Ok(());
        }
        // Only this part's output rows become a slice: parts on other threads own the rest.
        let w = h.layout.width;
        let out = core::slice::from_raw_parts_mut(
            output.add(y0 * outb.stride),
            (y1 - y0 - 1) * outb.stride + w,
        );
        let inp = core::slice::from_raw_parts(input, inb.elems);
        let (in_layout, out_layout) = (with_stride(&h.layout, &inb), with_stride(&h.layout, &outb));
        let (shapes, arena, _) = run_memory(h, scratch, scratch_size, true);
        for row in r0..r1 {
            h.denoiser
                .denoise_band_rows(
                    &h.fp,
                    inp,
                    0,
                    &in_layout,
                    row,
                    out,
                    y0,
                    &out_layout,
                    shapes,
                    arena,
                )
                .map_err(status_of)?;
        }
        Ok(())
    })
}
