//! The stripe (line-buffer) API: rows go in as an ISP delivers them, finished rows come out
//! with bounded latency, bit-identical to `rawnr_denoise_frame` with the same denoiser.
//!
//! Tile row `i` of the frame (a band) produces the raw rows `band_output_rows(i)` and reads the
//! raw rows `band_input_rows(i)` (its tiles plus halo). The stripe keeps a window of input
//! rows; as soon as the rows pushed so far cover a band's input it runs that band, writes its
//! rows to the caller and drops the rows no later band reads. So a row comes out at most
//! `latency_rows` pushed rows after it went in (2 x (tile + halo) raw rows in the frame's
//! interior), the window holds at most `window_rows` rows, and memory does not depend on the
//! frame height.

use core::ffi::c_void;
use core::mem::size_of;

use rawnr_core::bayer::FrameLayout;
use rawnr_engine::denoiser::{Denoiser, FramePlan, TileGrid};
use rawnr_engine::graph::{PlanRef, Shape};

use crate::denoiser::{denoiser_ref, rawnr_denoiser, run_memory, DenoiserHandle};
use crate::mem::{bytes_of, frame_buf, push_output, total_size, Carver, HeapBlock};
use crate::status::*;

/// A stripe: the state of one frame streamed through a denoiser (opaque). Made by
/// `rawnr_stripe_init` (caller storage) or `rawnr_stripe_new` (heap, `std` builds).
pub struct rawnr_stripe {
    _opaque: [u8; 0],
}

/// What `rawnr_stripe_get_info` reports. Rows are raw (full-resolution) rows.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct rawnr_stripe_info {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Bands (tile rows) per frame; each push returns whole bands.
    pub bands: u32,
    /// Rows of a full band (2 x tile); the first and last band may be shorter.
    pub band_rows: u32,
    /// Bounded latency: output row `r` is returned by the push that brings the count of rows
    /// pushed in this frame to `min(r + latency_rows, height)`, or by an earlier one.
    pub latency_rows: u32,
    /// Input rows the stripe buffers at most.
    pub window_rows: u32,
    /// Rows pushed in the current frame.
    pub rows_pushed: u32,
    /// Rows returned in the current frame.
    pub rows_emitted: u32,
}

/// The band schedule of one frame plan.
pub(crate) struct Schedule<'a> {
    grid: &'a TileGrid,
    layout: &'a FrameLayout,
}

impl<'a> Schedule<'a> {
    pub(crate) fn new(fp: &'a FramePlan<PlanRef<'static>>, layout: &'a FrameLayout) -> Self {
        Schedule {
            grid: &fp.grid,
            layout,
        }
    }
    fn bands(&self) -> usize {
        self.grid.rows()
    }
    fn input(&self, band: usize) -> (usize, usize) {
        self.grid.band_input_rows(self.layout, band)
    }
    fn output(&self, band: usize) -> (usize, usize) {
        self.grid.band_output_rows(self.layout, band)
    }
    /// Input rows buffered at most.
    pub(crate) fn window_rows(&self) -> usize {
        (0..self.bands())
            .map(|i| {
                let (a, b) = self.input(i);
                b - a
            })
            .max()
            .unwrap_or(0)
    }
    /// Rows pushed after row `r` (counting `r`) at most before `r` is returned.
    pub(crate) fn latency(&self) -> usize {
        (0..self.bands())
            .map(|i| self.input(i).1 - self.output(i).0)
            .max()
            .unwrap_or(0)
    }
    /// The most rows one push of at most `n` rows can return: the bands whose last input row
    /// falls in a window of `n` consecutive rows, maximised over the windows.
    pub(crate) fn max_output_rows(&self, n: usize) -> usize {
        let bands = self.bands();
        let (mut best, mut sum, mut end) = (0, 0, 0);
        for i in 0..bands {
            // Bands `i..end` are those whose last input row lies in [need(i), need(i) + n).
            let v = self.input(i).1;
            if end < i {
                end = i;
                sum = 0;
            }
            while end < bands && self.input(end).1 < v.saturating_add(n) {
                let (a, b) = self.output(end);
                sum += b - a;
                end += 1;
            }
            best = best.max(sum);
            let (a, b) = self.output(i);
            sum -= (b - a).min(sum);
        }
        best
    }
}

/// Progress of the current frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StripeState {
    /// Rows pushed.
    pushed: usize,
    /// Next band to run.
    next_band: usize,
    /// Frame row of the window's first row.
    win_first: usize,
    /// Rows in the window.
    win_len: usize,
}

impl StripeState {
    fn start(s: &Schedule<'_>) -> Self {
        StripeState {
            win_first: if s.bands() > 0 { s.input(0).0 } else { 0 },
            ..StripeState::default()
        }
    }

    fn emitted(&self, s: &Schedule<'_>) -> usize {
        if self.next_band < s.bands() {
            s.output(self.next_band).0
        } else {
            s.layout.height
        }
    }

    /// The first row and the number of rows that pushing `n` more rows returns.
    fn pending(&self, s: &Schedule<'_>, n: usize) -> (usize, usize) {
        let avail = self.pushed + n;
        let mut j = self.next_band;
        while j < s.bands() && s.input(j).1 <= avail {
            j += 1;
        }
        let first = self.emitted(s);
        if j == self.next_band {
            (first, 0)
        } else {
            (first, s.output(j - 1).1 - first)
        }
    }
}

/// Pushes rows through the state machine (safe core of `rawnr_stripe_push`). `rows` holds `n`
/// rows `rows_stride` pixels apart; `out` receives the finished rows `out_stride` apart and is
/// large enough for [`StripeState::pending`]. Returns the first finished row and their count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_rows(
    st: &mut StripeState,
    s: &Schedule<'_>,
    d: &Denoiser<'static>,
    fp: &FramePlan<PlanRef<'static>>,
    rows: &[u16],
    n: usize,
    rows_stride: usize,
    window: &mut [u16],
    out: &mut [u16],
    out_stride: usize,
    shapes: &mut [Shape],
    arena: &mut [f32],
) -> Res<(usize, usize)> {
    let layout = s.layout;
    let width = layout.width;
    let win_layout = *layout;
    let out_layout = FrameLayout {
        stride: out_stride,
        ..*layout
    };
    let (first, count) = st.pending(s, n);
    let mut src = 0;
    loop {
        // Run every band whose input rows are all in the window.
        while st.next_band < s.bands() && s.input(st.next_band).1 <= st.pushed {
            let band = st.next_band;
            d.denoise_band_rows(
                fp,
                &window[..st.win_len * width],
                st.win_first,
                &win_layout,
                band,
                out,
                first,
                &out_layout,
                shapes,
                arena,
            )
            .map_err(status_of)?;
            st.next_band += 1;
            // Drop the rows no later band reads.
            let keep_from = if st.next_band < s.bands() {
                s.input(st.next_band).0
            } else {
                layout.height
            }
            .max(st.win_first);
            let end = st.win_first + st.win_len;
            if keep_from >= end {
                st.win_len = 0;
            } else {
                let drop = keep_from - st.win_first;
                window.copy_within(drop * width..st.win_len * width, 0);
                st.win_len -= drop;
            }
            st.win_first = keep_from;
        }
        if src == n {
            break;
        }
        // Take the next row if a band still reads it.
        if st.pushed >= st.win_first {
            let at = st.win_len * width;
            let dst = window
                .get_mut(at..at + width)
                .ok_or(RAWNR_ERR_SIZE_MISMATCH)?;
            dst.copy_from_slice(&rows[src * rows_stride..src * rows_stride + width]);
            st.win_len += 1;
        }
        st.pushed += 1;
        src += 1;
    }
    debug_assert_eq!(st.emitted(s), first + count);
    Ok((first, count))
}

const STRIPE_MAGIC: u32 = 0x5453_5252; // "RRST"

/// What a stripe relies on in its denoiser; checked on every push.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key {
    layout: FrameLayout,
    grid: TileGrid,
    scratch_len: usize,
    n_values: usize,
}

impl Key {
    fn of(h: &DenoiserHandle) -> Self {
        Key {
            layout: h.layout,
            grid: h.fp.grid,
            scratch_len: h.fp.scratch_len(),
            n_values: h.n_values,
        }
    }
}

#[repr(C)]
struct StripeHandle {
    magic: u32,
    heap: HeapBlock,
    denoiser: *const DenoiserHandle,
    key: Key,
    window_rows: usize,
    latency: usize,
    window: *mut u16,
    run: *mut c_void,
    run_size: usize,
    /// Address and size of the storage the stripe lives in.
    storage: (usize, usize),
    st: StripeState,
}

/// # Safety
/// `s` is NULL or points to readable memory of a handle's size.
unsafe fn stripe_ptr(s: *const rawnr_stripe) -> Res<*mut StripeHandle> {
    crate::mem::handle(s.cast::<StripeHandle>(), STRIPE_MAGIC)
}

/// The stripe's denoiser, checked against what the stripe was sized for.
///
/// # Safety
/// The stripe's denoiser pointer is still readable (the caller keeps it alive).
unsafe fn stripe_denoiser<'a>(h: &StripeHandle) -> Res<&'a DenoiserHandle> {
    let d = denoiser_ref(h.denoiser.cast())?;
    if Key::of(d) != h.key {
        return Err(RAWNR_ERR_SIZE_MISMATCH);
    }
    Ok(d)
}

fn storage_pieces(d: &DenoiserHandle) -> Res<([Option<usize>; 2], usize, usize)> {
    if d.detail_restore {
        // Restoration needs rows below each emitted row: not in stripes yet.
        return Err(RAWNR_ERR_UNSUPPORTED);
    }
    let s = Schedule::new(&d.fp, &d.layout);
    let window_rows = s.window_rows();
    let window = window_rows
        .checked_mul(d.layout.width)
        .and_then(bytes_of::<u16>);
    let run = total_size(&d.run_pieces()).ok_or(RAWNR_ERR_BAD_FRAME)?;
    Ok(([Some(size_of::<StripeHandle>()), window], window_rows, run))
}

fn storage_size(d: &DenoiserHandle) -> Res<usize> {
    let (pieces, _, run) = storage_pieces(d)?;
    total_size(&pieces)
        .and_then(|x| x.checked_add(run))
        .ok_or(RAWNR_ERR_BAD_FRAME)
}

/// Bytes of caller storage `rawnr_stripe_init` needs for a stripe of this denoiser (any
/// alignment): the stripe's state, its window of input rows and one worker's scratch. It grows
/// with the frame width, the tile and the halo, not with the frame height.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`.
///
/// Thread-safety: as `rawnr_denoiser_scratch_size`.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stripe_storage_size(
    d: *const rawnr_denoiser,
    bytes: *mut usize,
) -> rawnr_status {
    guard(|| {
        let h = denoiser_ref(d)?;
        if bytes.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        *bytes = storage_size(h)?;
        Ok(())
    })
}

/// # Safety
/// `storage` is writable for `storage_size` bytes.
unsafe fn init_in(
    d: &DenoiserHandle,
    storage: *mut c_void,
    storage_size: usize,
    heap: HeapBlock,
) -> Res<*mut StripeHandle> {
    let (pieces, window_rows, run_size) = storage_pieces(d)?;
    if storage_size < self::storage_size(d)? {
        return Err(RAWNR_ERR_BUFFER_TOO_SMALL);
    }
    let mut c = Carver::new(storage, storage_size);
    let h = c.take(size_of::<StripeHandle>()).cast::<StripeHandle>();
    let window_bytes = pieces[1].unwrap_or(0);
    let window = c.take(window_bytes).cast::<u16>();
    core::ptr::write_bytes(window.cast::<u8>(), 0, window_bytes);
    // The worker scratch fills the rest (its own alignment slack included in `run_size`).
    let used = window.cast::<u8>().add(window_bytes) as usize - storage as usize;
    let run = storage.cast::<u8>().add(used).cast::<c_void>();
    core::ptr::write_bytes(run.cast::<u8>(), 0, run_size);
    let s = Schedule::new(&d.fp, &d.layout);
    h.write(StripeHandle {
        magic: STRIPE_MAGIC,
        heap,
        denoiser: d,
        key: Key::of(d),
        window_rows,
        latency: s.latency(),
        window,
        run,
        run_size,
        storage: (storage as usize, storage_size),
        st: StripeState::start(&s),
    });
    Ok(h)
}

/// Makes a stripe for `d` in caller storage; allocates nothing. The denoiser must outlive the
/// stripe; it may be re-initialised between frames (e.g. for a new ISO) as long as the
/// geometry and tiling stay the same (`RAWNR_ERR_SIZE_MISMATCH` on the next push otherwise).
///
/// - `storage`, `storage_size`: at least `rawnr_stripe_storage_size` bytes, any alignment;
///   keep it valid and in place while the stripe is used.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_BUFFER_TOO_SMALL`.
///
/// Thread-safety: may run concurrently with calls that do not use this storage.
///
/// # Safety
/// Pointers must be NULL or valid for the sizes given.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stripe_init(
    d: *const rawnr_denoiser,
    storage: *mut c_void,
    storage_size: usize,
    out: *mut *mut rawnr_stripe,
) -> rawnr_status {
    guard(|| {
        if !out.is_null() {
            *out = core::ptr::null_mut();
        }
        let h = denoiser_ref(d)?;
        if storage.is_null() || out.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        *out = init_in(h, storage, storage_size, HeapBlock::CALLER)?.cast();
        Ok(())
    })
}

/// `std` builds: like `rawnr_stripe_init` with the storage allocated once here (release it
/// with `rawnr_stripe_free`); pushes allocate nothing. Other builds: `RAWNR_ERR_UNSUPPORTED`.
///
/// Thread-safety: as `rawnr_stripe_storage_size`.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stripe_new(
    d: *const rawnr_denoiser,
    out: *mut *mut rawnr_stripe,
) -> rawnr_status {
    guard(|| {
        if !out.is_null() {
            *out = core::ptr::null_mut();
        }
        let h = denoiser_ref(d)?;
        if out.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        #[cfg(feature = "std")]
        {
            let size = storage_size(h)?;
            let heap = HeapBlock::alloc(size)?;
            match init_in(h, heap.base.cast(), size, heap) {
                Ok(s) => {
                    *out = s.cast();
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
            let _ = h;
            Err(RAWNR_ERR_UNSUPPORTED)
        }
    })
}

/// Releases a stripe: frees the storage `rawnr_stripe_new` allocated; for a stripe in caller
/// storage it only marks the handle invalid. NULL and invalid handles are ignored.
///
/// Thread-safety: no other call may use the stripe during or after this one.
///
/// # Safety
/// `s` must be NULL or a handle that is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stripe_free(s: *mut rawnr_stripe) {
    guard_void(|| {
        let Ok(h) = stripe_ptr(s) else {
            return;
        };
        (*h).magic = 0;
        (*h).heap.release();
    })
}

/// Describes a stripe: band size, latency, window, progress of the current frame.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_SIZE_MISMATCH`.
///
/// Thread-safety: not concurrently with a push or reset of the same stripe.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stripe_get_info(
    s: *const rawnr_stripe,
    info: *mut rawnr_stripe_info,
) -> rawnr_status {
    guard(|| {
        let h = &*stripe_ptr(s)?;
        if info.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let d = stripe_denoiser(h)?;
        let sch = Schedule::new(&d.fp, &d.layout);
        let sat = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        info.write(rawnr_stripe_info {
            width: sat(d.layout.width),
            height: sat(d.layout.height),
            bands: sat(sch.bands()),
            band_rows: sat(d.fp.grid.tile.saturating_mul(2).min(d.layout.height)),
            latency_rows: sat(h.latency),
            window_rows: sat(h.window_rows),
            rows_pushed: sat(h.st.pushed),
            rows_emitted: sat(h.st.emitted(&sch)),
        });
        Ok(())
    })
}

/// The most rows one `rawnr_stripe_push` of at most `rows_per_push` rows can return: size
/// the output buffer of a streaming loop with it (exact worst case over the frame).
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_SIZE_MISMATCH`,
/// `RAWNR_ERR_BAD_ARGUMENT` (`rows_per_push` 0).
///
/// Thread-safety: as `rawnr_stripe_get_info`.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stripe_max_output_rows(
    s: *const rawnr_stripe,
    rows_per_push: usize,
    rows: *mut usize,
) -> rawnr_status {
    guard(|| {
        let h = &*stripe_ptr(s)?;
        if rows.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        if rows_per_push == 0 {
            return Err(RAWNR_ERR_BAD_ARGUMENT);
        }
        let d = stripe_denoiser(h)?;
        *rows = Schedule::new(&d.fp, &d.layout).max_output_rows(rows_per_push);
        Ok(())
    })
}

/// Pushes the next `n_rows` rows of the frame and receives the rows that are now final.
///
/// - `rows`: `n_rows` rows of `width` pixels, `rows_stride` bytes apart (even, at least
///   `2 * width`), `rows_size` bytes readable (at least `(n_rows - 1) * rows_stride +
///   2 * width`), 2-byte aligned. Copied into the stripe's window before the call returns.
/// - `output`: receives the finished rows `output_stride` bytes apart; `output_size` bytes
///   must hold as many rows as this push finishes (at most `rawnr_stripe_max_output_rows`).
///   Must not overlap `rows`, the stripe's or the denoiser's storage. May be NULL for a push
///   that finishes no row (`RAWNR_ERR_NULL` when it would).
/// - `out_first_row`, `out_rows`: receive the frame row of the first finished row and how
///   many rows were written (often 0: rows are returned a band at a time).
///
/// Every row of a frame is returned exactly once, in order, bit-identical to what
/// `rawnr_denoise_frame` writes with the same denoiser. After the frame's last row the stripe
/// starts the next frame with the next push. A push may not cross the end of a frame
/// (`RAWNR_ERR_SIZE_MISMATCH`). Checks happen before anything changes: on
/// `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_MISALIGNED`, `RAWNR_ERR_BAD_STRIDE`,
/// `RAWNR_ERR_BUFFER_TOO_SMALL`, `RAWNR_ERR_OVERLAP` or `RAWNR_ERR_SIZE_MISMATCH` the stripe
/// is unchanged and the push can be repeated; after any other error call `rawnr_stripe_reset`.
///
/// Thread-safety: one thread at a time per stripe; stripes of the same denoiser may run on
/// different threads at the same time.
///
/// # Safety
/// Pointers must be NULL or valid for the sizes given.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rawnr_stripe_push(
    s: *mut rawnr_stripe,
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
        let h = stripe_ptr(s)?;
        if rows.is_null() || out_first_row.is_null() || out_rows.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let d = stripe_denoiser(&*h)?;
        let layout = d.layout;
        let sch = Schedule::new(&d.fp, &layout);
        let mut st = (*h).st;
        if st.pushed == layout.height && n_rows > 0 {
            st = StripeState::start(&sch); // the next frame
        }
        let inb = frame_buf(rows, rows_size, rows_stride, layout.width, n_rows)?;
        // Alignment and stride of the output first; its size once the finished rows are known.
        if !output.is_null() {
            frame_buf(output, output_size, output_stride, layout.width, 0)?;
        }
        if n_rows > layout.height - st.pushed {
            return Err(RAWNR_ERR_SIZE_MISMATCH);
        }
        let (_, count) = st.pending(&sch, n_rows);
        // A push that finishes no row may pass no output.
        let (output, outb) = push_output(
            output,
            output_size,
            output_stride,
            layout.width,
            count,
            &inb,
            [(*h).storage, d.storage],
        )?;
        let window = core::slice::from_raw_parts_mut((*h).window, (*h).window_rows * layout.width);
        let (shapes, arena, _) = run_memory(d, (*h).run, (*h).run_size, false);
        let input = core::slice::from_raw_parts(rows, inb.elems);
        let out = core::slice::from_raw_parts_mut(output, outb.elems);
        let result = push_rows(
            &mut st,
            &sch,
            &d.denoiser,
            &d.fp,
            input,
            n_rows,
            inb.stride,
            window,
            out,
            outb.stride,
            shapes,
            arena,
        );
        (*h).st = st;
        let (first, n) = result?;
        *out_first_row = first;
        *out_rows = n;
        Ok(())
    })
}

/// Abandons the current frame: the next push starts a new frame at row 0.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`, `RAWNR_ERR_SIZE_MISMATCH`.
///
/// Thread-safety: one thread at a time per stripe.
///
/// # Safety
/// `s` must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_stripe_reset(s: *mut rawnr_stripe) -> rawnr_status {
    guard(|| {
        let h = stripe_ptr(s)?;
        let d = stripe_denoiser(&*h)?;
        (*h).st = StripeState::start(&Schedule::new(&d.fp, &d.layout));
        Ok(())
    })
}
