//! The C ABI driven from fuzz input, as a C caller would drive it: model bytes, frame size,
//! CFA, levels, noise, tile and halo, strides, scratch sizes and stripe push patterns all come
//! from the input. Every call must end in a status (never `RAWNR_ERR_PANIC`, never a crash),
//! and where the documentation promises a result the target checks it:
//! - a scratch buffer one byte short is refused with `RAWNR_ERR_BUFFER_TOO_SMALL`;
//! - a stripe returns every row of the frame exactly once, in order, bit-identical to
//!   `rawnr_denoise_frame` with the same denoiser;
//! - the frame in parts (`rawnr_denoise_frame_part`) writes what the frame call writes.
//!
//! Input: a [`PARAMS_LEN`]-byte parameter block (layout in [`Params::read`]), then the `.rnm`
//! model bytes, whose header gets its length and CRC-32 fixed up (as in `model_run`).
#![no_main]

use std::ffi::c_void;
use std::ptr::null_mut;

use libfuzzer_sys::fuzz_target;
use rawnr_capi::*;
use rawnr_core::format::{header, HEADER_LEN};

/// Bytes of the parameter block.
const PARAMS_LEN: usize = 48;
/// Largest frame (pixels) the target runs; larger frames only go through init and the queries.
const MAX_RUN_PIXELS: u64 = 96 * 96;
/// Most scratch or stripe storage the target allocates (256 MiB, as `model_run`).
const MAX_BUFFER_BYTES: usize = 256 << 20;

/// The parameter block.
struct Params {
    cfg: rawnr_config,
    /// bit 0: caller storage (`*_init`) instead of `*_new`; bit 1: give the frame call one
    /// byte of scratch too few first; bit 2: run a stripe.
    flags: u8,
    /// Rows per stripe push (0 is passed once, then 1 is used).
    rows_per_push: usize,
    /// Extra pixels of input and output row stride.
    in_pad: usize,
    out_pad: usize,
    /// Seed of the frame's pixel values.
    pixel_seed: u32,
}

impl Params {
    /// Layout (little-endian): 0 width u32, 4 height u32, 8 cfa u8, 9 flags u8, 10 rows per
    /// push u8, 11 input pad u8, 12 black f32 (channel c gets black + 2c), 16 white f32,
    /// 20 k f32, 24 sigma2 f32, 28 iso f32, 32 tile u32, 36 halo i32, 40 output pad u8,
    /// 41 detail restoration u8 (mod 3: 0 off, 1 on, 2 invalid), 44 pixel seed u32.
    fn read(b: &[u8; PARAMS_LEN]) -> Params {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let f32_at = |o: usize| f32::from_bits(u32_at(o));
        let black = f32_at(12);
        Params {
            cfg: rawnr_config {
                width: u32_at(0),
                height: u32_at(4),
                cfa: b[8] as u32,
                black: [0.0f32, 2.0, 4.0, 6.0].map(|d| black + d),
                white: f32_at(16),
                noise_k: f32_at(20),
                noise_sigma2: f32_at(24),
                iso: f32_at(28),
                tile: u32_at(32),
                halo: u32_at(36) as i32,
                detail_restore: u32::from(b[41] % 3),
            },
            flags: b[9],
            rows_per_push: b[10] as usize,
            in_pad: b[11] as usize,
            out_pad: b[40] as usize,
            pixel_seed: u32_at(44),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, model)) = data.split_first_chunk::<PARAMS_LEN>() else {
        return;
    };
    let p = Params::read(head);
    // 4-byte aligned model copy with its length and CRC fixed up.
    let mut words = vec![0u32; model.len().div_ceil(4)];
    // SAFETY: u32 has no padding, any byte pattern is a valid u8, the length is in bounds.
    let bytes: &mut [u8] =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), model.len()) };
    bytes.copy_from_slice(model);
    if bytes.len() >= HEADER_LEN {
        let len = bytes.len() as u64;
        bytes[header::FILE_LEN..header::FILE_LEN + 8].copy_from_slice(&len.to_le_bytes());
        let crc = rawnr_core::crc32::crc32(&bytes[HEADER_LEN..]);
        bytes[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    }
    // SAFETY: every pointer passed below is valid for the size passed with it and outlives
    // the handles that keep it; handles are freed before their memory.
    unsafe { drive(&p, bytes) }
});

/// Asserts a call did not panic inside rawnr and passes the status on.
fn ok(status: rawnr_status) -> bool {
    assert_ne!(status, RAWNR_ERR_PANIC, "rawnr panicked inside the C ABI");
    status == RAWNR_OK
}

unsafe fn drive(p: &Params, model_bytes: &[u8]) {
    let caller_storage = p.flags & 1 != 0;
    let mut model_storage = [0u64; RAWNR_MODEL_STORAGE_SIZE / 8];
    let mut model: *mut rawnr_model = null_mut();
    let data = model_bytes.as_ptr().cast::<c_void>();
    let status = if caller_storage {
        rawnr_model_init(
            model_storage.as_mut_ptr().cast(),
            RAWNR_MODEL_STORAGE_SIZE,
            data,
            model_bytes.len(),
            &mut model,
        )
    } else {
        rawnr_model_load(data, model_bytes.len(), &mut model)
    };
    if !ok(status) {
        assert!(model.is_null(), "a failed model call left a handle");
        return;
    }
    let mut info = std::mem::zeroed::<rawnr_model_info>();
    assert!(ok(rawnr_model_get_info(model, &mut info)));
    let mut denoiser_storage = Vec::<u64>::new();
    let mut denoiser: *mut rawnr_denoiser = null_mut();
    let status = if caller_storage {
        let mut n = 0usize;
        assert!(ok(rawnr_denoiser_storage_size(model, &mut n)));
        if n > MAX_BUFFER_BYTES {
            rawnr_model_free(model);
            return;
        }
        denoiser_storage.resize(n.div_ceil(8), 0);
        rawnr_denoiser_init(
            model,
            &p.cfg,
            denoiser_storage.as_mut_ptr().cast(),
            n,
            &mut denoiser,
        )
    } else {
        rawnr_denoiser_new(model, &p.cfg, &mut denoiser)
    };
    if ok(status) {
        run_frame(p, denoiser);
        rawnr_denoiser_free(denoiser);
    }
    rawnr_model_free(model);
}

unsafe fn run_frame(p: &Params, d: *mut rawnr_denoiser) {
    let mut dinfo = std::mem::zeroed::<rawnr_denoiser_info>();
    assert!(ok(rawnr_denoiser_get_info(d, &mut dinfo)));
    let (w, h) = (p.cfg.width as usize, p.cfg.height as usize);
    if (w as u64) * (h as u64) > MAX_RUN_PIXELS {
        return;
    }
    let mut scratch_len = 0usize;
    assert!(ok(rawnr_denoiser_scratch_size(d, &mut scratch_len)));
    if scratch_len > MAX_BUFFER_BYTES {
        return;
    }
    let (in_stride, out_stride) = (w + p.in_pad, w + p.out_pad);
    let mut state = p.pixel_seed | 1;
    let input: Vec<u16> = (0..in_stride * h)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 16) as u16
        })
        .collect();
    let mut frame_out = vec![0u16; out_stride * h];
    let mut scratch = vec![0u8; scratch_len];
    let frame = |scratch: &mut [u8], out: &mut [u16]| {
        rawnr_denoise_frame(
            d,
            input.as_ptr(),
            input.len() * 2,
            in_stride * 2,
            out.as_mut_ptr(),
            out.len() * 2,
            out_stride * 2,
            scratch.as_mut_ptr().cast(),
            scratch.len(),
        )
    };
    if p.flags & 2 != 0 && scratch_len > 0 {
        let status = frame(&mut scratch[..scratch_len - 1], &mut frame_out);
        assert_eq!(
            status, RAWNR_ERR_BUFFER_TOO_SMALL,
            "scratch one byte short of rawnr_denoiser_scratch_size"
        );
    }
    // A denoiser made for this frame size runs any frame of it.
    let status = frame(&mut scratch, &mut frame_out);
    assert!(ok(status), "rawnr_denoise_frame failed: status {status:?}");
    // The same frame in parts (one to tile rows + 1 of them) writes the same output.
    if p.cfg.detail_restore == 0 {
        let n_parts = 1 + p.pixel_seed % dinfo.tile_rows.saturating_add(1);
        let mut parts_out = vec![0u16; out_stride * h];
        for part in 0..n_parts {
            let status = rawnr_denoise_frame_part(
                d,
                part,
                n_parts,
                input.as_ptr(),
                input.len() * 2,
                in_stride * 2,
                parts_out.as_mut_ptr(),
                parts_out.len() * 2,
                out_stride * 2,
                scratch.as_mut_ptr().cast(),
                scratch.len(),
            );
            assert!(ok(status), "part {part} of {n_parts} failed: status {status:?}");
        }
        assert!(parts_out == frame_out, "{n_parts} parts differ from the frame call");
    }
    drop(scratch);
    if p.flags & 4 != 0 {
        run_stripe(p, d, &input, in_stride, &frame_out);
    }
}

unsafe fn run_stripe(
    p: &Params,
    d: *mut rawnr_denoiser,
    input: &[u16],
    in_stride: usize,
    frame_out: &[u16],
) {
    let (w, h) = (p.cfg.width as usize, p.cfg.height as usize);
    let out_stride = w + p.out_pad;
    let mut storage = Vec::<u64>::new();
    let mut s: *mut rawnr_stripe = null_mut();
    let status = if p.flags & 1 != 0 {
        let mut n = 0usize;
        assert!(ok(rawnr_stripe_storage_size(d, &mut n)));
        if n > MAX_BUFFER_BYTES {
            return;
        }
        storage.resize(n.div_ceil(8), 0);
        rawnr_stripe_init(d, storage.as_mut_ptr().cast(), n, &mut s)
    } else {
        rawnr_stripe_new(d, &mut s)
    };
    if !ok(status) {
        return;
    }
    let mut sinfo = std::mem::zeroed::<rawnr_stripe_info>();
    assert!(ok(rawnr_stripe_get_info(s, &mut sinfo)));
    let mut max_rows = 0usize;
    let status = rawnr_stripe_max_output_rows(s, p.rows_per_push, &mut max_rows);
    if p.rows_per_push == 0 {
        assert_ne!(status, RAWNR_OK, "rows_per_push 0 accepted");
    }
    let step = p.rows_per_push.max(1);
    assert!(ok(rawnr_stripe_max_output_rows(s, step, &mut max_rows)));
    let mut out = vec![0u16; max_rows.max(1) * out_stride];
    let mut striped = vec![0u16; out_stride * h];
    let (mut row, mut next_out) = (0usize, 0usize);
    while row < h {
        let n = step.min(h - row);
        let rows = &input[row * in_stride..];
        let (mut first, mut got) = (usize::MAX, usize::MAX);
        let status = rawnr_stripe_push(
            s,
            rows.as_ptr(),
            n,
            ((n - 1) * in_stride + w) * 2,
            in_stride * 2,
            out.as_mut_ptr(),
            out.len() * 2,
            out_stride * 2,
            &mut first,
            &mut got,
        );
        // The denoiser ran the frame, so its stripe runs it too.
        assert!(ok(status), "rawnr_stripe_push failed: status {status:?}");
        assert!(
            got <= max_rows,
            "{got} rows returned, at most {max_rows} promised"
        );
        assert!(next_out + got <= h, "more rows returned than the frame has");
        if got > 0 {
            assert_eq!(first, next_out, "rows returned out of order");
        }
        striped[next_out * out_stride..(next_out + got) * out_stride]
            .copy_from_slice(&out[..got * out_stride]);
        next_out += got;
        row += n;
    }
    assert_eq!(next_out, h, "the stripe returned {next_out} of {h} rows");
    for r in 0..h {
        let row = r * out_stride..r * out_stride + w;
        assert!(
            striped[row.clone()] == frame_out[row],
            "stripe row {r} differs from the frame call"
        );
    }
    rawnr_stripe_free(s);
}
