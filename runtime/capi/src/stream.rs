//! The row-streaming API: raw rows go in as the sensor reads them out and denoised rows come
//! out with the latency of the network's vertical reach only. Unlike `rawnr_stripe_*` (square
//! tiles with a halo above and below), nothing is computed twice: every network value keeps a
//! ring of its most recent rows, and the result is bit-identical to the frame row-streamed
//! with the same stripes (`denoise-raw --layout stripes` cuts the frame the same way, with
//! widths chosen for its scratch budget).
//!
//! The frame may be cut into vertical stripes (`stripe_width` packed columns plus the
//! denoiser's halo on each side; by default one per part). A stream runs part `part` of
//! `n_parts` of them, so the caller's own
//! threads can each run one part of every frame into one output (each part writes only its
//! columns, `rawnr_stream_info.first_column..end_column`); no thread is started inside.
//!
//! `std` builds only (the stream's schedule tables live on the heap; the window, rings and
//! working memory in caller storage or one allocation, sized first); other builds return
//! `RAWNR_ERR_UNSUPPORTED`. Pushes never allocate.

use core::ffi::c_void;

use crate::denoiser::rawnr_denoiser;
use crate::status::*;

/// A row stream: one part of every frame of a denoiser's geometry, streamed row by row
/// (opaque). Made by `rawnr_stream_init` (caller storage) or `rawnr_stream_new` (heap).
pub struct rawnr_stream {
    _opaque: [u8; 0],
}

/// How a stream cuts and runs the frame. Start from `rawnr_stream_config_default`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct rawnr_stream_config {
    /// Which part of the frame's stripes this stream runs, `0..n_parts`.
    pub part: u32,
    /// Parts the stripes are split into (contiguous runs of stripes), 1 to
    /// `rawnr_stream_info.stripes`; one stream (thread) per part.
    pub n_parts: u32,
    /// Stripe width in packed (half-resolution) pixels without the halo, rounded up to the
    /// model's size multiple; 0 (the default): one stripe per part, the frame's packed width
    /// divided by `n_parts` (with one part the result is the whole frame row-streamed, no
    /// stripe at all). Narrower stripes need less memory per stripe but repeat the halo's
    /// work, and a part's stripes advance together, each evicting the others' rows from the
    /// caches (PMRID f32: 13-39% slower with 2-3 stripes per part).
    pub stripe_width: u32,
    /// Packed input rows each schedule step adds; 0: the model's default (`denoise-raw`'s: 4
    /// for int8 models, 8 otherwise).
    pub step: u32,
    /// Fewest packed rows a node computes per call; 0: the model's default (2 for int8, 1).
    pub min_rows: u32,
}

/// What `rawnr_stream_get_info` reports. Rows and columns are raw (full-resolution).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct rawnr_stream_info {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Stripes of the frame: the most parts it can be split into.
    pub stripes: u32,
    /// Stripes this stream runs.
    pub part_stripes: u32,
    /// First column this stream writes.
    pub first_column: u32,
    /// Column after the last this stream writes.
    pub end_column: u32,
    /// Latency: output row `r` is returned by the push that brings the rows pushed in this
    /// frame to `min(r + latency_rows, height)`, or by an earlier one. The network's vertical
    /// reach plus the schedule's step; it does not depend on the frame height.
    pub latency_rows: u32,
    /// Input rows the stream keeps at most (its window).
    pub window_rows: u32,
    /// Rows pushed in the current frame.
    pub rows_pushed: u32,
    /// Rows returned in the current frame.
    pub rows_emitted: u32,
    /// Bytes of storage the stream runs on (`rawnr_stream_storage_size`).
    pub storage_size: u64,
}

/// Fills `cfg` with the defaults: the whole frame in one part, one stripe per part, the
/// model's step and rows per call.
///
/// Errors: `RAWNR_ERR_NULL`.
///
/// Thread-safety: may run concurrently with any call that does not use `cfg`.
///
/// # Safety
/// `cfg` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stream_config_default(
    cfg: *mut rawnr_stream_config,
) -> rawnr_status {
    guard(|| {
        if cfg.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        cfg.write(rawnr_stream_config {
            part: 0,
            n_parts: 1,
            stripe_width: 0,
            step: 0,
            min_rows: 0,
        });
        Ok(())
    })
}

/// Bytes of caller storage `rawnr_stream_init` needs for part `cfg` of the frames of `d`
/// (any alignment): the stream's state, its window of input rows, the rings of its stripes
/// and one call's working memory. It grows with the frame width and the network's vertical
/// reach, not with the frame height.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_BAD_ARGUMENT` (part or
/// parts out of range), `RAWNR_ERR_UNSUPPORTED` (a denoiser with `detail_restore`, or a
/// build without `std`), `RAWNR_ERR_BAD_MODEL` (a model that cannot be row-streamed).
///
/// Thread-safety: may run concurrently with any call that does not change `d`.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stream_storage_size(
    d: *const rawnr_denoiser,
    cfg: *const rawnr_stream_config,
    bytes: *mut usize,
) -> rawnr_status {
    guard(|| {
        if bytes.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        *bytes = imp::storage_size(d, cfg)?;
        Ok(())
    })
}

/// Makes a stream for part `cfg` of the frames of `d` in caller storage; plans the stream
/// (its schedule tables are allocated here, once). The denoiser must outlive the stream. The
/// stream takes the denoiser's levels and noise at the start of every frame, so the denoiser
/// may be re-initialised between frames (e.g. for a new ISO) as long as the geometry and
/// halo stay the same (`RAWNR_ERR_SIZE_MISMATCH` on the next push otherwise); it keeps
/// running the model it was made with.
///
/// - `storage`, `storage_size`: at least `rawnr_stream_storage_size` bytes, any alignment;
///   keep it valid and in place while the stream is used; release with `rawnr_stream_free`.
///
/// Errors: those of `rawnr_stream_storage_size`, and `RAWNR_ERR_BUFFER_TOO_SMALL`.
///
/// Thread-safety: may run concurrently with calls that do not use this storage or change `d`.
///
/// # Safety
/// Pointers must be NULL or valid for the sizes given.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stream_init(
    d: *const rawnr_denoiser,
    cfg: *const rawnr_stream_config,
    storage: *mut c_void,
    storage_size: usize,
    out: *mut *mut rawnr_stream,
) -> rawnr_status {
    guard(|| {
        if !out.is_null() {
            *out = core::ptr::null_mut();
        }
        if storage.is_null() || out.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        *out = imp::init(d, cfg, storage, storage_size, false)?;
        Ok(())
    })
}

/// Like `rawnr_stream_init` with the storage allocated once here (release it with
/// `rawnr_stream_free`); pushes allocate nothing.
///
/// Errors: those of `rawnr_stream_init`.
///
/// Thread-safety: as `rawnr_stream_storage_size`.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stream_new(
    d: *const rawnr_denoiser,
    cfg: *const rawnr_stream_config,
    out: *mut *mut rawnr_stream,
) -> rawnr_status {
    guard(|| {
        if !out.is_null() {
            *out = core::ptr::null_mut();
        }
        if out.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        *out = imp::init(d, cfg, core::ptr::null_mut(), 0, true)?;
        Ok(())
    })
}

/// Releases a stream: its schedule tables, and the storage `rawnr_stream_new` allocated; for
/// a stream in caller storage the storage is the caller's again. NULL and invalid handles
/// are ignored.
///
/// Thread-safety: no other call may use the stream during or after this one.
///
/// # Safety
/// `s` must be NULL or a handle that is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stream_free(s: *mut rawnr_stream) {
    guard_void(|| imp::free(s))
}

/// Describes a stream: stripes, columns, latency, window, progress of the current frame.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`.
///
/// Thread-safety: not concurrently with a push or reset of the same stream.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stream_get_info(
    s: *const rawnr_stream,
    info: *mut rawnr_stream_info,
) -> rawnr_status {
    guard(|| {
        if info.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        info.write(imp::info(s)?);
        Ok(())
    })
}

/// The most rows one `rawnr_stream_push` of at most `rows_per_push` rows can return: size
/// the output buffer of a streaming loop with it (exact worst case over the frame).
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_BAD_ARGUMENT`
/// (`rows_per_push` 0).
///
/// Thread-safety: as `rawnr_stream_get_info`.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stream_max_output_rows(
    s: *const rawnr_stream,
    rows_per_push: usize,
    rows: *mut usize,
) -> rawnr_status {
    guard(|| {
        if rows.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        if rows_per_push == 0 {
            return Err(RAWNR_ERR_BAD_ARGUMENT);
        }
        *rows = imp::max_output_rows(s, rows_per_push)?;
        Ok(())
    })
}

/// Pushes the next `n_rows` rows of the frame and receives the rows that are now final.
///
/// - `rows`: `n_rows` rows of `width` pixels, `rows_stride` bytes apart (even, at least
///   `2 * width`), `rows_size` bytes readable (at least `(n_rows - 1) * rows_stride +
///   2 * width`), 2-byte aligned. Copied into the stream's window before the call returns.
/// - `output`: receives the finished rows `output_stride` bytes apart; only this stream's
///   columns (`rawnr_stream_info.first_column..end_column`) are written, so the streams of
///   one frame's parts may share one output. `output_size` bytes must hold as many rows as
///   this push finishes (at most `rawnr_stream_max_output_rows`). Must not overlap `rows`
///   or the stream's or the denoiser's storage. May be NULL for a push that finishes no row (`RAWNR_ERR_NULL`
///   when it would).
/// - `out_first_row`, `out_rows`: receive the frame row of the first finished row and how
///   many rows were written (0 until the network's reach is covered, then a schedule step's
///   rows at a time).
///
/// Every row of a frame is returned exactly once, in order, bit-identical to the frame
/// row-streamed with the same stripes (`Denoiser::denoise` with `Cut::Stripes`; with one part and the
/// default stripe: one row-streamed pass over the whole frame). After the
/// frame's last row the stream starts the next frame with the next push, taking the
/// denoiser's levels and noise again. A push may not cross the end of a frame
/// (`RAWNR_ERR_SIZE_MISMATCH`). Checks happen before anything changes: on `RAWNR_ERR_NULL`,
/// `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_MISALIGNED`, `RAWNR_ERR_BAD_STRIDE`,
/// `RAWNR_ERR_BUFFER_TOO_SMALL`, `RAWNR_ERR_OVERLAP` or `RAWNR_ERR_SIZE_MISMATCH` the stream
/// is unchanged and the push can be repeated; after any other error call
/// `rawnr_stream_reset`.
///
/// Thread-safety: one thread at a time per stream; the streams of different parts (or
/// frames) may run on different threads at the same time.
///
/// # Safety
/// Pointers must be NULL or valid for the sizes given.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rawnr_stream_push(
    s: *mut rawnr_stream,
    rows: *const u16,
    n_rows: usize,
    rows_size: usize,
    rows_stride: usize,
    output: *mut u16,
    output_size: usize,
    output_stride: usize,
    out_first_row: *mut usize,
    out_rows: *mut usize,
) -> rawnr_status {
    guard(|| {
        if rows.is_null() || out_first_row.is_null() || out_rows.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let (first, n) = imp::push(
            s,
            rows,
            n_rows,
            rows_size,
            rows_stride,
            output,
            output_size,
            output_stride,
        )?;
        *out_first_row = first;
        *out_rows = n;
        Ok(())
    })
}

/// Abandons the current frame: the next push starts a new frame at row 0 (with the
/// denoiser's levels and noise as they are then).
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_SIZE_MISMATCH`.
///
/// Thread-safety: one thread at a time per stream.
///
/// # Safety
/// `s` must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stream_reset(s: *mut rawnr_stream) -> rawnr_status {
    guard(|| imp::reset(s))
}

#[cfg(feature = "std")]
mod imp {
    use core::ffi::c_void;
    use core::mem::size_of;
    use std::boxed::Box;

    use rawnr_core::bayer::{FrameLayout, Levels};
    use rawnr_core::noise::NoiseParams;
    use rawnr_engine::denoiser::StripeOptions;
    use rawnr_engine::row_stream::{RowStream, RowStreamBuffers};

    use super::{rawnr_stream, rawnr_stream_config, rawnr_stream_info};
    use crate::denoiser::{denoiser_ref, rawnr_denoiser, DenoiserHandle};
    use crate::mem::{bytes_of, frame_buf, push_output, total_size, Carver, HeapBlock};
    use crate::status::*;

    const STREAM_MAGIC: u32 = 0x5253_5252; // "RRSR"

    /// What a stream relies on in its denoiser; checked on every push.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Key {
        layout: FrameLayout,
        halo: usize,
        n_values: usize,
    }

    impl Key {
        fn of(d: &DenoiserHandle) -> Self {
            Key {
                layout: d.layout,
                halo: d.fp.grid.halo,
                n_values: d.n_values,
            }
        }
    }

    #[repr(C)]
    struct StreamHandle {
        magic: u32,
        heap: HeapBlock,
        denoiser: *const DenoiserHandle,
        key: Key,
        /// Levels and noise the current frame runs with.
        tuned: (Levels, NoiseParams),
        stripes: usize,
        stream: Box<RowStream<'static>>,
        /// Bytes of storage it needs.
        size: usize,
        window: (*mut u16, usize),
        rings: (*mut f32, usize),
        work: (*mut f32, usize),
        storage: (usize, usize),
    }

    /// # Safety
    /// `s` is NULL or points to readable memory of a handle's size.
    unsafe fn stream_ptr(s: *const rawnr_stream) -> Res<*mut StreamHandle> {
        crate::mem::handle(s.cast::<StreamHandle>(), STREAM_MAGIC)
    }

    /// The stream of part `cfg` of `d`'s frames and the frame's stripes.
    unsafe fn plan(
        d: &DenoiserHandle,
        cfg: *const rawnr_stream_config,
    ) -> Res<(RowStream<'static>, usize)> {
        if cfg.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let cfg = *cfg;
        if d.detail_restore {
            // Restoration reads rows below each output row: frame calls only.
            return Err(RAWNR_ERR_UNSUPPORTED);
        }
        let dn = &d.denoiser;
        if !dn.engine().can_stream() {
            return Err(RAWNR_ERR_BAD_MODEL);
        }
        let defaults = StripeOptions::for_model(dn.engine().model());
        let or = |v: u32, default: usize| if v == 0 { default } else { v as usize };
        // Default: one stripe per part (the fewest halo columns, and each stripe's rings
        // stay with one thread).
        let one_per_part = d
            .layout
            .packed_width()
            .div_ceil(cfg.n_parts.max(1) as usize);
        let opts = StripeOptions {
            width: or(cfg.stripe_width, one_per_part),
            halo: Some(d.fp.grid.halo),
            step: or(cfg.step, defaults.step),
            min_rows: or(cfg.min_rows, defaults.min_rows),
        };
        let stripes = dn.stream_stripes(&d.layout, &opts).map_err(status_of)?;
        if cfg.n_parts == 0 || cfg.n_parts as usize > stripes || cfg.part >= cfg.n_parts {
            return Err(RAWNR_ERR_BAD_ARGUMENT);
        }
        let s = dn
            .row_stream(
                &d.layout,
                &d.levels,
                d.noise,
                &opts,
                cfg.part as usize,
                cfg.n_parts as usize,
            )
            .map_err(status_of)?;
        Ok((s, stripes))
    }

    fn pieces(s: &RowStream<'_>) -> [Option<usize>; 4] {
        let z = s.sizes();
        [
            Some(size_of::<StreamHandle>()),
            bytes_of::<u16>(z.window),
            bytes_of::<f32>(z.rings),
            bytes_of::<f32>(z.work),
        ]
    }

    pub(super) unsafe fn storage_size(
        d: *const rawnr_denoiser,
        cfg: *const rawnr_stream_config,
    ) -> Res<usize> {
        let d = denoiser_ref(d)?;
        let (s, _) = plan(d, cfg)?;
        total_size(&pieces(&s)).ok_or(RAWNR_ERR_BAD_FRAME)
    }

    pub(super) unsafe fn init(
        d: *const rawnr_denoiser,
        cfg: *const rawnr_stream_config,
        storage: *mut c_void,
        storage_size: usize,
        allocate: bool,
    ) -> Res<*mut rawnr_stream> {
        let dh = denoiser_ref(d)?;
        let (s, stripes) = plan(dh, cfg)?;
        let pieces = pieces(&s);
        let size = total_size(&pieces).ok_or(RAWNR_ERR_BAD_FRAME)?;
        let (storage, storage_size, heap) = if allocate {
            let heap = HeapBlock::alloc(size)?;
            (heap.base.cast::<c_void>(), size, heap)
        } else {
            if storage_size < size {
                return Err(RAWNR_ERR_BUFFER_TOO_SMALL);
            }
            (storage, storage_size, HeapBlock::CALLER)
        };
        let z = s.sizes();
        let mut c = Carver::new(storage, storage_size);
        let h = c.take(size_of::<StreamHandle>()).cast::<StreamHandle>();
        let window = c.take(pieces[1].unwrap_or(0)).cast::<u16>();
        let rings = c.take(pieces[2].unwrap_or(0)).cast::<f32>();
        let work = c.take(pieces[3].unwrap_or(0)).cast::<f32>();
        for (p, n) in [
            (window.cast::<u8>(), z.window * 2),
            (rings.cast::<u8>(), z.rings * 4),
            (work.cast::<u8>(), z.work * 4),
        ] {
            core::ptr::write_bytes(p, 0, n);
        }
        h.write(StreamHandle {
            magic: STREAM_MAGIC,
            heap,
            denoiser: dh,
            key: Key::of(dh),
            tuned: (dh.levels, dh.noise),
            stripes,
            stream: Box::new(s),
            size,
            window: (window, z.window),
            rings: (rings, z.rings),
            work: (work, z.work),
            storage: (storage as usize, storage_size),
        });
        Ok(h.cast())
    }

    pub(super) unsafe fn free(s: *mut rawnr_stream) {
        let Ok(h) = stream_ptr(s) else {
            return;
        };
        (*h).magic = 0;
        let heap = (*h).heap;
        core::ptr::drop_in_place(core::ptr::addr_of_mut!((*h).stream));
        heap.release();
    }

    pub(super) unsafe fn info(s: *const rawnr_stream) -> Res<rawnr_stream_info> {
        let h = &*stream_ptr(s)?;
        let st = &h.stream;
        let sat = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        let (x0, x1) = st.columns();
        Ok(rawnr_stream_info {
            width: sat(h.key.layout.width),
            height: sat(h.key.layout.height),
            stripes: sat(h.stripes),
            part_stripes: sat(st.stripes()),
            first_column: sat(x0),
            end_column: sat(x1),
            latency_rows: sat(st.latency_rows()),
            window_rows: sat(st.window_rows()),
            rows_pushed: sat(st.rows_pushed()),
            rows_emitted: sat(st.rows_returned()),
            storage_size: h.size as u64,
        })
    }

    pub(super) unsafe fn max_output_rows(s: *const rawnr_stream, n: usize) -> Res<usize> {
        Ok((*stream_ptr(s)?).stream.max_output_rows(n))
    }

    /// The stream's denoiser, checked against what the stream was made for.
    ///
    /// # Safety
    /// The stream's denoiser pointer is still readable (the caller keeps it alive).
    unsafe fn stream_denoiser<'a>(h: &StreamHandle) -> Res<&'a DenoiserHandle> {
        let d = denoiser_ref(h.denoiser.cast())?;
        if Key::of(d) != h.key {
            return Err(RAWNR_ERR_SIZE_MISMATCH);
        }
        Ok(d)
    }

    /// Between frames the stream takes its denoiser's levels and noise.
    fn sync_denoiser(h: &mut StreamHandle, d: &DenoiserHandle) -> Res<()> {
        let st = &h.stream;
        let between = st.rows_pushed() == 0 || st.rows_pushed() == st.height();
        if between && h.tuned != (d.levels, d.noise) {
            h.stream.retune(&d.levels, d.noise).map_err(status_of)?;
            h.tuned = (d.levels, d.noise);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn push(
        s: *mut rawnr_stream,
        rows: *const u16,
        n_rows: usize,
        rows_size: usize,
        rows_stride: usize,
        output: *mut u16,
        output_size: usize,
        output_stride: usize,
    ) -> Res<(usize, usize)> {
        let h = &mut *stream_ptr(s)?;
        let d = stream_denoiser(h)?;
        let width = h.key.layout.width;
        let height = h.key.layout.height;
        let inb = frame_buf(rows, rows_size, rows_stride, width, n_rows)?;
        if !output.is_null() {
            frame_buf(output, output_size, output_stride, width, 0)?;
        }
        let pushed = h.stream.rows_pushed();
        let left = if pushed == height {
            height
        } else {
            height - pushed
        };
        if n_rows > left {
            return Err(RAWNR_ERR_SIZE_MISMATCH);
        }
        let (_, count) = h.stream.pending(n_rows);
        let (output, outb) = push_output(
            output,
            output_size,
            output_stride,
            width,
            count,
            &inb,
            [h.storage, d.storage],
        )?;
        sync_denoiser(h, d)?;
        let mut bufs = RowStreamBuffers {
            window: core::slice::from_raw_parts_mut(h.window.0, h.window.1),
            rings: core::slice::from_raw_parts_mut(h.rings.0, h.rings.1),
            work: core::slice::from_raw_parts_mut(h.work.0, h.work.1),
        };
        let input = core::slice::from_raw_parts(rows, inb.elems);
        let out = core::slice::from_raw_parts_mut(output, outb.elems);
        h.stream
            .push(input, n_rows, inb.stride, &mut bufs, out, outb.stride)
            .map_err(status_of)
    }

    pub(super) unsafe fn reset(s: *mut rawnr_stream) -> Res<()> {
        let h = &mut *stream_ptr(s)?;
        let d = stream_denoiser(h)?;
        h.stream.reset().map_err(status_of)?;
        sync_denoiser(h, d)
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    //! Without `std` there is no heap for the stream's schedule tables.
    use core::ffi::c_void;

    use super::{rawnr_stream, rawnr_stream_config, rawnr_stream_info};
    use crate::denoiser::rawnr_denoiser;
    use crate::status::*;

    pub(super) unsafe fn storage_size(
        _: *const rawnr_denoiser,
        _: *const rawnr_stream_config,
    ) -> Res<usize> {
        Err(RAWNR_ERR_UNSUPPORTED)
    }
    pub(super) unsafe fn init(
        _: *const rawnr_denoiser,
        _: *const rawnr_stream_config,
        _: *mut c_void,
        _: usize,
        _: bool,
    ) -> Res<*mut rawnr_stream> {
        Err(RAWNR_ERR_UNSUPPORTED)
    }
    pub(super) unsafe fn free(_: *mut rawnr_stream) {}
    pub(super) unsafe fn info(_: *const rawnr_stream) -> Res<rawnr_stream_info> {
        Err(RAWNR_ERR_UNSUPPORTED)
    }
    pub(super) unsafe fn max_output_rows(_: *const rawnr_stream, _: usize) -> Res<usize> {
        Err(RAWNR_ERR_UNSUPPORTED)
    }
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn push(
        _: *mut rawnr_stream,
        _: *const u16,
        _: usize,
        _: usize,
        _: usize,
        _: *mut u16,
        _: usize,
        _: usize,
    ) -> Res<(usize, usize)> {
        Err(RAWNR_ERR_UNSUPPORTED)
    }
    pub(super) unsafe fn reset(_: *mut rawnr_stream) -> Res<()> {
        Err(RAWNR_ERR_UNSUPPORTED)
    }
}
