//! The row-streaming C API (`rawnr_stream_*`) driven from Rust: random frames, CFA phases,
//! strides, stripe widths, halos, steps and push patterns, one part or several on real
//! threads into one output; every row comes out once, in order, within the reported latency
//! and per-push maximum, bit-identical to the Rust API's row-streamed frame
//! (`Denoiser::denoise` with `Cut::Stripes`). Then PMRID on the real strip, levels and noise taken again
//! between frames, and misuse.

mod common;

use std::ptr::{null, null_mut};

use common::*;
use rand::{Rng, SeedableRng};
use rawnr_capi::*;
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::Model;
use rawnr_core::noise::NoiseParams;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, StripeOptions};
use rawnr_engine::graph::Engine;

const CFAS: [(u32, CfaPhase); 4] = [
    (RAWNR_CFA_RGGB, CfaPhase::Rggb),
    (RAWNR_CFA_BGGR, CfaPhase::Bggr),
    (RAWNR_CFA_GRBG, CfaPhase::Grbg),
    (RAWNR_CFA_GBRG, CfaPhase::Gbrg),
];

/// A model and a denoiser made through the C API, freed on drop.
struct Handles {
    model: *mut rawnr_model,
    den: *mut rawnr_denoiser,
}

impl Handles {
    fn new(model: &[u8], cfg: &rawnr_config) -> Self {
        let mut h = Handles {
            model: null_mut(),
            den: null_mut(),
        };
        unsafe {
            assert_eq!(
                rawnr_model_load(model.as_ptr().cast(), model.len(), &mut h.model),
                RAWNR_OK
            );
            assert_eq!(rawnr_denoiser_new(h.model, cfg, &mut h.den), RAWNR_OK);
        }
        h
    }
}

impl Drop for Handles {
    fn drop(&mut self) {
        unsafe {
            rawnr_denoiser_free(self.den);
            rawnr_model_free(self.model);
        }
    }
}

/// A stream, freed on drop.
struct Stream(*mut rawnr_stream);

// Each stream is used by one thread at a time (the C API's rule).
unsafe impl Send for Stream {}
unsafe impl Sync for Stream {}

impl Drop for Stream {
    fn drop(&mut self) {
        unsafe { rawnr_stream_free(self.0) }
    }
}

fn config(width: usize, height: usize, cfa: u32, noise: NoiseParams, halo: i32) -> rawnr_config {
    let mut c: rawnr_config = unsafe { std::mem::zeroed() };
    unsafe { assert_eq!(rawnr_config_default(&mut c), RAWNR_OK) };
    c.width = width as u32;
    c.height = height as u32;
    c.cfa = cfa;
    c.black = [3.0, 4.0, 5.0, 6.0];
    c.white = 1023.0;
    c.noise_k = noise.k;
    c.noise_sigma2 = noise.sigma2;
    c.halo = halo;
    c
}

fn stream_config(
    part: u32,
    n_parts: u32,
    width: u32,
    step: u32,
    min_rows: u32,
) -> rawnr_stream_config {
    let mut c: rawnr_stream_config = unsafe { std::mem::zeroed() };
    unsafe { assert_eq!(rawnr_stream_config_default(&mut c), RAWNR_OK) };
    assert_eq!((c.part, c.n_parts), (0, 1));
    c.part = part;
    c.n_parts = n_parts;
    c.stripe_width = width;
    c.step = step;
    c.min_rows = min_rows;
    c
}

fn info(s: &Stream) -> rawnr_stream_info {
    let mut i: rawnr_stream_info = unsafe { std::mem::zeroed() };
    unsafe { assert_eq!(rawnr_stream_get_info(s.0, &mut i), RAWNR_OK) };
    i
}

/// Pushes one frame (`input`, `stride` pixels apart) through `stream` in pushes of `pattern`
/// rows, writing its columns of the finished rows into `out` (same stride); checks order,
/// latency and per-push maxima.
fn run_frame(s: &Stream, input: &[u16], stride: usize, pattern: &[usize], out: &mut [u16]) {
    let i = info(s);
    let (w, h) = (i.width as usize, i.height as usize);
    let (x0, x1) = (i.first_column as usize, i.end_column as usize);
    let latency = i.latency_rows as usize;
    let (mut pushed, mut returned, mut k) = (0usize, 0usize, 0usize);
    let mut rows_out = vec![0u16; h * stride];
    while pushed < h {
        let n = pattern[k % pattern.len()].min(h - pushed);
        k += 1;
        let mut max = 0;
        let (mut first, mut count) = (usize::MAX, usize::MAX);
        let rows = &input[pushed * stride..];
        let rows_bytes = ((n - 1) * stride + w) * 2;
        unsafe {
            assert_eq!(rawnr_stream_max_output_rows(s.0, n, &mut max), RAWNR_OK);
            let st = rawnr_stream_push(
                s.0,
                rows.as_ptr(),
                n,
                rows_bytes,
                stride * 2,
                rows_out.as_mut_ptr(),
                rows_out.len() * 2,
                stride * 2,
                &mut first,
                &mut count,
            );
            assert_eq!(st, RAWNR_OK);
        }
        assert!(count <= max, "{count} rows from a push of {n}, max {max}");
        assert_eq!(first, returned, "rows come out in order");
        for r in 0..count {
            out[(first + r) * stride + x0..(first + r) * stride + x1]
                .copy_from_slice(&rows_out[r * stride + x0..r * stride + x1]);
        }
        pushed += n;
        returned += count;
        let due = if pushed == h {
            h
        } else {
            (pushed + 1).saturating_sub(latency)
        };
        assert!(
            returned >= due,
            "{returned} rows out after {pushed} (latency {latency})"
        );
    }
    assert_eq!(returned, h);
}

#[test]
fn streams_equal_the_rust_streamed_frame_on_random_frames() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(71);
    let model = tiny_model();
    let aligned = {
        let path = work_dir("stream_rs").join("tiny.rnm");
        std::fs::write(&path, &model).unwrap();
        AlignedModel::load(&path)
    };
    let rust = Denoiser::new(Engine::new(Model::parse(aligned.bytes()).unwrap()));
    for case in 0..40 {
        let (cfa_code, cfa) = CFAS[case % 4];
        let width = rng.random_range(2..90usize);
        let height = rng.random_range(2..120usize);
        let stride = width + rng.random_range(0..4usize);
        let halo: i32 = [-1, 0, 2, 4][rng.random_range(0..4)];
        let noise = NoiseParams {
            k: 2e-3,
            sigma2: 1e-5,
        };
        let input: Vec<u16> = (0..height * stride)
            .map(|_| rng.random_range(0..1024))
            .collect();
        let (sw, step, min_rows) = (
            2 * rng.random_range(1..12u32),
            rng.random_range(1..9u32),
            rng.random_range(1..4u32),
        );
        let layout = FrameLayout {
            width,
            height,
            stride,
            cfa,
        };
        let levels = Levels {
            black: [3.0, 4.0, 5.0, 6.0],
            white: 1023.0,
        };
        let opts = StripeOptions {
            width: sw as usize,
            halo: usize::try_from(halo)
                .ok()
                .or(Some(rust.engine().model().info().halo as usize)),
            step: step as usize,
            min_rows: min_rows as usize,
        };
        let mut want = vec![0u16; input.len()];
        rust.denoise(
            &input,
            &layout,
            &mut want,
            &layout,
            &levels,
            noise,
            &DenoiseOptions::stripes(opts, 1),
        )
        .unwrap();

        let h = Handles::new(
            aligned.bytes(),
            &config(width, height, cfa_code, noise, halo),
        );
        let one = stream_config(0, 1, sw, step, min_rows);
        let mut s = Stream(null_mut());
        unsafe { assert_eq!(rawnr_stream_new(h.den, &one, &mut s.0), RAWNR_OK) };
        let stripes = info(&s).stripes;
        let patterns = [vec![1usize], vec![height], vec![5, 1, 9, 2]];
        let pattern = &patterns[case % 3];
        // One stream, two frames back to back.
        for frame in 0..2 {
            let mut got = vec![0u16; input.len()];
            run_frame(&s, &input, stride, pattern, &mut got);
            for y in 0..height {
                assert_eq!(
                    got[y * stride..][..width],
                    want[y * stride..][..width],
                    "case {case} frame {frame}: {width}x{height} {cfa:?} halo {halo} {opts:?}, row {y}"
                );
            }
        }
        // All stripes in parts, each part on its own thread, one output; in caller storage.
        let parts = stripes.min(3);
        let streams: Vec<(Stream, Vec<u64>)> = (0..parts)
            .map(|p| {
                let cfg = stream_config(p, parts, sw, step, min_rows);
                let mut size = 0;
                unsafe { assert_eq!(rawnr_stream_storage_size(h.den, &cfg, &mut size), RAWNR_OK) };
                let mut storage = vec![0u64; size.div_ceil(8) + 1];
                let mut s = Stream(null_mut());
                unsafe {
                    // Any alignment: start one byte in.
                    let base = storage.as_mut_ptr().cast::<u8>().add(1).cast();
                    assert_eq!(
                        rawnr_stream_init(h.den, &cfg, base, size, &mut s.0),
                        RAWNR_OK
                    );
                    assert_eq!(
                        rawnr_stream_init(h.den, &cfg, base, size - 1, &mut s.0),
                        RAWNR_ERR_BUFFER_TOO_SMALL
                    );
                    assert!(s.0.is_null());
                    assert_eq!(
                        rawnr_stream_init(h.den, &cfg, base, size, &mut s.0),
                        RAWNR_OK
                    );
                }
                assert_eq!(info(&s).storage_size as usize, size);
                (s, storage)
            })
            .collect();
        let results: Vec<Vec<u16>> = std::thread::scope(|sc| {
            let handles: Vec<_> = streams
                .iter()
                .map(|(s, _)| {
                    let input = &input;
                    sc.spawn(move || {
                        let mut part = vec![0u16; input.len()];
                        run_frame(s, input, stride, &[3, 8], &mut part);
                        part
                    })
                })
                .collect();
            handles.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut got = vec![0u16; input.len()];
        let mut covered = 0;
        for ((s, _), part) in streams.iter().zip(&results) {
            let i = info(s);
            let (x0, x1) = (i.first_column as usize, i.end_column as usize);
            covered += x1 - x0;
            for y in 0..height {
                got[y * stride + x0..y * stride + x1]
                    .copy_from_slice(&part[y * stride + x0..y * stride + x1]);
            }
        }
        assert_eq!(covered, width, "the parts cover every column once");
        for y in 0..height {
            assert_eq!(
                got[y * stride..][..width],
                want[y * stride..][..width],
                "case {case}: {parts} parts, row {y}"
            );
        }
    }
}

#[test]
fn pmrid_stream_on_real_raw_takes_new_noise_between_frames() {
    let pgm = read_pgm(&real_raw());
    let (w, h) = (pgm.width, pgm.height);
    let aligned = AlignedModel::load(&model_path());
    let rust = Denoiser::new(Engine::new(Model::parse(aligned.bytes()).unwrap()));
    let layout = FrameLayout::new(w, h, CfaPhase::Grbg);
    let levels = Levels::uniform(25.0, 1023.0);
    let mut cfg = config(
        w,
        h,
        RAWNR_CFA_GRBG,
        NoiseParams {
            k: 1e-3,
            sigma2: 1e-6,
        },
        -1,
    );
    cfg.black = [25.0; 4];
    let hd = Handles::new(aligned.bytes(), &cfg);
    let mut s = Stream(null_mut());
    let scfg = stream_config(0, 1, 0, 0, 0);
    unsafe { assert_eq!(rawnr_stream_new(hd.den, &scfg, &mut s.0), RAWNR_OK) };
    // The default stripe: the whole frame (one part).
    let opts = StripeOptions {
        width: layout.packed_width(),
        ..StripeOptions::for_model(rust.engine().model())
    };
    for (k, sigma2) in [(1e-3f32, 1e-6f32), (4e-3, 2e-5)] {
        // Re-initialise the denoiser (another ISO) between frames: the stream takes it.
        cfg.noise_k = k;
        cfg.noise_sigma2 = sigma2;
        let mut want = vec![0u16; pgm.data.len()];
        rust.denoise(
            &pgm.data,
            &layout,
            &mut want,
            &layout,
            &levels,
            NoiseParams { k, sigma2 },
            &DenoiseOptions::stripes(opts, 2),
        )
        .unwrap();
        unsafe {
            let mut size = 0;
            assert_eq!(rawnr_denoiser_storage_size(hd.model, &mut size), RAWNR_OK);
            // In place: the heap storage `rawnr_denoiser_new` made is re-initialised.
            let mut again = null_mut();
            assert_eq!(
                rawnr_denoiser_init(hd.model, &cfg, hd.den.cast(), size, &mut again),
                RAWNR_OK
            );
            assert_eq!(again, hd.den);
        }
        let mut got = vec![0u16; pgm.data.len()];
        run_frame(&s, &pgm.data, w, &[16], &mut got);
        assert!(
            got == want,
            "k {k}: the stream equals the Rust row-streamed frame"
        );
        assert!(got != pgm.data);
    }
    let i = info(&s);
    assert!(i.latency_rows > 0 && (i.latency_rows as usize) < 2 * h);
}

#[test]
fn stream_calls_check_their_arguments() {
    let aligned = {
        let path = work_dir("stream_args").join("tiny.rnm");
        std::fs::write(&path, tiny_model()).unwrap();
        AlignedModel::load(&path)
    };
    let noise = NoiseParams {
        k: 2e-3,
        sigma2: 1e-5,
    };
    let (w, h) = (40usize, 30usize);
    let hd = Handles::new(aligned.bytes(), &config(w, h, RAWNR_CFA_RGGB, noise, -1));
    let cfg = stream_config(0, 1, 8, 0, 0);
    let rows = vec![100u16; w * (h + 1)];
    let mut out = vec![0u16; w * h];
    let (mut first, mut n) = (0usize, 0usize);
    unsafe {
        let mut s = Stream(null_mut());
        let mut size = 0;
        // NULLs and bad handles.
        assert_eq!(rawnr_stream_config_default(null_mut()), RAWNR_ERR_NULL);
        assert_eq!(
            rawnr_stream_storage_size(null(), &cfg, &mut size),
            RAWNR_ERR_NULL
        );
        assert_eq!(
            rawnr_stream_storage_size(hd.den, null(), &mut size),
            RAWNR_ERR_NULL
        );
        assert_eq!(
            rawnr_stream_storage_size(hd.den, &cfg, null_mut()),
            RAWNR_ERR_NULL
        );
        assert_eq!(rawnr_stream_new(hd.den, &cfg, null_mut()), RAWNR_ERR_NULL);
        let junk = [0u64; 64];
        assert_eq!(
            rawnr_stream_new(junk.as_ptr().cast(), &cfg, &mut s.0),
            RAWNR_ERR_BAD_HANDLE
        );
        assert_eq!(
            rawnr_stream_get_info(junk.as_ptr().cast(), &mut std::mem::zeroed()),
            RAWNR_ERR_BAD_HANDLE
        );
        // Parts out of range.
        for (p, np) in [(0, 0), (1, 1), (0, 1000)] {
            let bad = stream_config(p, np, 8, 0, 0);
            assert_eq!(
                rawnr_stream_new(hd.den, &bad, &mut s.0),
                RAWNR_ERR_BAD_ARGUMENT
            );
            assert!(s.0.is_null());
        }
        assert_eq!(rawnr_stream_new(hd.den, &cfg, &mut s.0), RAWNR_OK);
        let mut max = 0;
        assert_eq!(
            rawnr_stream_max_output_rows(s.0, 0, &mut max),
            RAWNR_ERR_BAD_ARGUMENT
        );
        assert_eq!(
            rawnr_stream_max_output_rows(s.0, 1, null_mut()),
            RAWNR_ERR_NULL
        );
        let push = |rows: *const u16,
                    k: usize,
                    rs: usize,
                    out: *mut u16,
                    os: usize,
                    f: &mut usize,
                    n: &mut usize| {
            rawnr_stream_push(s.0, rows, k, rs, 2 * w, out, os, 2 * w, f, n)
        };
        let full = w * h * 2;
        // Past the frame's end, short rows, odd stride: nothing changes.
        assert_eq!(
            push(
                rows.as_ptr(),
                h + 1,
                full + 2 * w,
                out.as_mut_ptr(),
                full,
                &mut first,
                &mut n
            ),
            RAWNR_ERR_SIZE_MISMATCH
        );
        assert_eq!(
            push(
                rows.as_ptr(),
                3,
                2 * w,
                out.as_mut_ptr(),
                full,
                &mut first,
                &mut n
            ),
            RAWNR_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(
            rawnr_stream_push(
                s.0,
                rows.as_ptr(),
                1,
                full,
                2 * w + 1,
                out.as_mut_ptr(),
                full,
                2 * w,
                &mut first,
                &mut n
            ),
            RAWNR_ERR_BAD_STRIDE
        );
        assert_eq!(
            push(
                rows.as_ptr().cast::<u8>().add(1).cast(),
                1,
                full,
                out.as_mut_ptr(),
                full,
                &mut first,
                &mut n
            ),
            RAWNR_ERR_MISALIGNED
        );
        assert_eq!(
            push(null(), 1, full, out.as_mut_ptr(), full, &mut first, &mut n),
            RAWNR_ERR_NULL
        );
        assert_eq!(info(&s).rows_pushed, 0);
        // A push that finishes no row may pass no output; one that finishes rows may not.
        assert_eq!(
            push(rows.as_ptr(), 1, full, null_mut(), 0, &mut first, &mut n),
            RAWNR_OK
        );
        assert_eq!((first, n), (0, 0));
        assert_eq!(
            push(
                rows.as_ptr(),
                h - 1,
                full,
                null_mut(),
                0,
                &mut first,
                &mut n
            ),
            RAWNR_ERR_NULL
        );
        // Output too small for the rows this push finishes; input and output overlapping.
        assert_eq!(
            push(
                rows.as_ptr(),
                h - 1,
                full,
                out.as_mut_ptr(),
                2 * w,
                &mut first,
                &mut n
            ),
            RAWNR_ERR_BUFFER_TOO_SMALL
        );
        let mut same = rows.clone();
        assert_eq!(
            push(
                same.as_ptr(),
                h - 1,
                full,
                same.as_mut_ptr(),
                full,
                &mut first,
                &mut n
            ),
            RAWNR_ERR_OVERLAP
        );
        assert_eq!(info(&s).rows_pushed, 1);
        assert_eq!(
            push(
                rows.as_ptr(),
                h - 1,
                full,
                out.as_mut_ptr(),
                full,
                &mut first,
                &mut n
            ),
            RAWNR_OK
        );
        assert_eq!((first, n), (0, h));
        // A denoiser re-initialised for another geometry: the stream refuses to run.
        let mut other = config(w + 2, h, RAWNR_CFA_RGGB, noise, -1);
        other.white = 1023.0;
        let mut size = 0;
        assert_eq!(rawnr_denoiser_storage_size(hd.model, &mut size), RAWNR_OK);
        let mut again = null_mut();
        assert_eq!(
            rawnr_denoiser_init(hd.model, &other, hd.den.cast(), size, &mut again),
            RAWNR_OK
        );
        assert_eq!(
            push(
                rows.as_ptr(),
                1,
                full,
                out.as_mut_ptr(),
                full,
                &mut first,
                &mut n
            ),
            RAWNR_ERR_SIZE_MISMATCH
        );
        // Reset, free, free again, use after free.
        assert_eq!(rawnr_stream_reset(null_mut()), RAWNR_ERR_NULL);
        rawnr_stream_free(s.0);
        rawnr_stream_free(s.0);
        assert_eq!(rawnr_stream_reset(s.0), RAWNR_ERR_BAD_HANDLE);
        s.0 = null_mut();
        // Detail restoration is for frame calls only.
        let mut dr = config(w, h, RAWNR_CFA_RGGB, noise, -1);
        dr.detail_restore = 1;
        let hr = Handles::new(aligned.bytes(), &dr);
        assert_eq!(
            rawnr_stream_storage_size(hr.den, &cfg, &mut size),
            RAWNR_ERR_UNSUPPORTED
        );
    }
}
