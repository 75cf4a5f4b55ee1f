//! The C API driven from Rust with random frames, CFA phases, strides, tile sizes, halos and
//! push patterns: the whole-frame call equals the Rust API, and the stripe API returns every
//! row once, in order, within the latency it reports, bit-identical to the whole-frame call.

mod common;

use std::ptr::null_mut;

use common::*;
use rand::{Rng, SeedableRng};
use rawnr_capi::*;
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::Model;
use rawnr_core::noise::NoiseParams;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, TileOptions};
use rawnr_engine::graph::Engine;

const CFAS: [(u32, CfaPhase); 4] = [
    (RAWNR_CFA_RGGB, CfaPhase::Rggb),
    (RAWNR_CFA_BGGR, CfaPhase::Bggr),
    (RAWNR_CFA_GRBG, CfaPhase::Grbg),
    (RAWNR_CFA_GBRG, CfaPhase::Gbrg),
];

struct Handles {
    model: *mut rawnr_model,
    den: *mut rawnr_denoiser,
}

impl Drop for Handles {
    fn drop(&mut self) {
        unsafe {
            rawnr_denoiser_free(self.den);
            rawnr_model_free(self.model);
        }
    }
}

/// The tiny test model written to a work folder `name` and loaded aligned.
fn tiny_model_in(name: &str) -> AlignedModel {
    let path = work_dir(name).join("tiny.rnm");
    std::fs::write(&path, tiny_model()).unwrap();
    AlignedModel::load(&path)
}

/// `rawnr_config_default` with a frame's size, CFA, black levels (white 1023) and noise.
fn frame_config(
    width: usize,
    height: usize,
    cfa: u32,
    black: [f32; 4],
    noise: NoiseParams,
) -> rawnr_config {
    let mut cfg = unsafe {
        let mut c = std::mem::zeroed();
        assert_eq!(rawnr_config_default(&mut c), RAWNR_OK);
        c
    };
    let c: &mut rawnr_config = &mut cfg;
    c.width = width as u32;
    c.height = height as u32;
    c.cfa = cfa;
    c.black = black;
    c.white = 1023.0;
    c.noise_k = noise.k;
    c.noise_sigma2 = noise.sigma2;
    cfg
}

#[test]
fn stripes_equal_frames_and_frames_equal_the_rust_api() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(61);
    let aligned = tiny_model_in("stripe_rs");
    let m = Model::parse(aligned.bytes()).unwrap();
    let rust = Denoiser::new(Engine::new(m));
    for case in 0..40 {
        let (cfa_code, cfa) = CFAS[case % 4];
        let width = rng.random_range(2..70usize);
        let height = rng.random_range(2..90usize);
        let pad = rng.random_range(0..4usize);
        let stride = width + pad;
        let tile = 2 * rng.random_range(1..9u32);
        let halo: i32 = [-1, 0, 2, 4][rng.random_range(0..4)];
        let black = [3.0, 4.0, 5.0, 6.0];
        let (k, sigma2) = (2e-3f32, 1e-5f32);
        let input: Vec<u16> = (0..(height - 1) * stride + width)
            .map(|_| rng.random_range(0..1024))
            .collect();

        // Rust API.
        let layout = FrameLayout {
            width,
            height,
            stride,
            cfa,
        };
        let levels = Levels {
            black,
            white: 1023.0,
        };
        let opts = TileOptions {
            tile: tile as usize,
            halo: usize::try_from(halo).ok(),
        };
        let mut want = vec![0u16; input.len()];
        rust.denoise(
            &input,
            &layout,
            &mut want,
            &layout,
            &levels,
            NoiseParams { k, sigma2 },
            &DenoiseOptions::tiles(opts, 1),
        )
        .unwrap();

        // C API, whole frame.
        let mut h = Handles {
            model: null_mut(),
            den: null_mut(),
        };
        let mut cfg = frame_config(width, height, cfa_code, black, NoiseParams { k, sigma2 });
        cfg.tile = tile;
        cfg.halo = halo;
        let bytes = input.len() * 2;
        let mut got = vec![0xFFFFu16; input.len()];
        unsafe {
            assert_eq!(
                rawnr_model_load(
                    aligned.bytes().as_ptr().cast(),
                    aligned.bytes().len(),
                    &mut h.model
                ),
                RAWNR_OK
            );
            assert_eq!(rawnr_denoiser_new(h.model, &cfg, &mut h.den), RAWNR_OK);
            let mut scratch_size = 0;
            assert_eq!(
                rawnr_denoiser_scratch_size(h.den, &mut scratch_size),
                RAWNR_OK
            );
            let mut scratch = vec![0xA5u8; scratch_size];
            assert_eq!(
                rawnr_denoise_frame(
                    h.den,
                    input.as_ptr(),
                    bytes,
                    stride * 2,
                    got.as_mut_ptr(),
                    bytes,
                    stride * 2,
                    scratch.as_mut_ptr().cast(),
                    scratch_size,
                ),
                RAWNR_OK
            );
        }
        for y in 0..height {
            assert_eq!(
                &got[y * stride..][..width],
                &want[y * stride..][..width],
                "case {case}: frame row {y}"
            );
        }

        // C API, the frame in parts on the caller's threads (a scratch each), into one output:
        // what the frame call wrote, and nothing in the rows' padding.
        let tile_rows = unsafe {
            let mut i: rawnr_denoiser_info = std::mem::zeroed();
            assert_eq!(rawnr_denoiser_get_info(h.den, &mut i), RAWNR_OK);
            i.tile_rows
        };
        let n_parts = rng.random_range(1..=tile_rows + 2);
        let mut parts_out = vec![0xFFFFu16; input.len()];
        let (out_addr, den_addr) = (parts_out.as_mut_ptr() as usize, h.den as usize);
        std::thread::scope(|sc| {
            for part in 0..n_parts {
                let input = &input;
                sc.spawn(move || unsafe {
                    let den = den_addr as *const rawnr_denoiser;
                    let mut size = 0;
                    assert_eq!(rawnr_denoiser_scratch_size(den, &mut size), RAWNR_OK);
                    let mut scratch = vec![0x5Au8; size];
                    let status = rawnr_denoise_frame_part(
                        den,
                        part,
                        n_parts,
                        input.as_ptr(),
                        bytes,
                        stride * 2,
                        out_addr as *mut u16,
                        bytes,
                        stride * 2,
                        scratch.as_mut_ptr().cast(),
                        size,
                    );
                    assert_eq!(status, RAWNR_OK, "part {part} of {n_parts}");
                });
            }
        });
        assert!(
            parts_out == got,
            "case {case}: {n_parts} parts of {tile_rows} tile rows differ from the frame call"
        );

        // C API, stripes: two frames through one stripe, each with its own push pattern.
        unsafe {
            let mut s = null_mut();
            assert_eq!(rawnr_stripe_new(h.den, &mut s), RAWNR_OK);
            let mut info = std::mem::zeroed();
            assert_eq!(rawnr_stripe_get_info(s, &mut info), RAWNR_OK);
            let info: rawnr_stripe_info = info;
            let latency = info.latency_rows as usize;
            // The window is bounded by the tile and halo, not by the frame.
            let mut dinfo = std::mem::zeroed();
            assert_eq!(rawnr_denoiser_get_info(h.den, &mut dinfo), RAWNR_OK);
            let dinfo: rawnr_denoiser_info = dinfo;
            let span = 2 * (dinfo.tile + 2 * dinfo.halo) as usize + 2;
            assert!(info.window_rows as usize <= span.min(height), "case {case}");
            assert!(latency <= (2 * (dinfo.tile + dinfo.halo) as usize + 1).min(height));
            for frame in 0..2 {
                let max_push = rng.random_range(1..=height.min(24));
                let mut max_out = 0;
                assert_eq!(
                    rawnr_stripe_max_output_rows(s, max_push, &mut max_out),
                    RAWNR_OK
                );
                let out_stride = width + 1;
                let mut out = vec![0u16; height * out_stride];
                let (mut pushed, mut emitted) = (0usize, 0usize);
                while pushed < height {
                    let n = rng.random_range(1..=max_push).min(height - pushed);
                    let rows = &input[pushed * stride..];
                    let rows_len = (n - 1) * stride + width;
                    let (mut first, mut count) = (usize::MAX, usize::MAX);
                    // The output buffer holds exactly max_out rows: enough, always.
                    let out_rows = &mut out[emitted * out_stride..];
                    let out_bytes =
                        (max_out.min(height - emitted) * out_stride).min(out_rows.len()) * 2;
                    assert_eq!(
                        rawnr_stripe_push(
                            s,
                            rows.as_ptr(),
                            n,
                            rows_len * 2,
                            stride * 2,
                            out_rows.as_mut_ptr(),
                            out_bytes,
                            out_stride * 2,
                            &mut first,
                            &mut count,
                        ),
                        RAWNR_OK,
                        "case {case} frame {frame}"
                    );
                    assert!(count <= max_out, "case {case}: {count} > {max_out}");
                    if count > 0 {
                        assert_eq!(first, emitted, "case {case}: rows in order");
                        // Nothing came late: the rows were not yet final before this push.
                        assert!(pushed < first + latency, "case {case}: late rows");
                    }
                    pushed += n;
                    emitted += count;
                    // And nothing that is final is held back beyond the latency bound.
                    assert!(
                        pushed < emitted + latency || emitted == height,
                        "case {case}: {pushed} pushed, {emitted} emitted, latency {latency}"
                    );
                }
                assert_eq!(emitted, height, "case {case}");
                for y in 0..height {
                    assert_eq!(
                        &out[y * out_stride..][..width],
                        &want[y * stride..][..width],
                        "case {case} frame {frame}: stripe row {y}"
                    );
                }
            }
            rawnr_stripe_free(s);
        }
    }
}

#[test]
fn max_output_rows_is_reached_and_never_exceeded() {
    // With the whole frame in one push, every row comes back at once.
    let aligned = tiny_model_in("stripe_max");
    unsafe {
        let mut h = Handles {
            model: null_mut(),
            den: null_mut(),
        };
        assert_eq!(
            rawnr_model_load(
                aligned.bytes().as_ptr().cast(),
                aligned.bytes().len(),
                &mut h.model
            ),
            RAWNR_OK
        );
        let noise = NoiseParams {
            k: 1e-3,
            sigma2: 0.0,
        };
        let mut cfg = frame_config(20, 50, RAWNR_CFA_RGGB, [0.0; 4], noise);
        cfg.tile = 4;
        cfg.halo = 2;
        assert_eq!(rawnr_denoiser_new(h.model, &cfg, &mut h.den), RAWNR_OK);
        let mut s = null_mut();
        assert_eq!(rawnr_stripe_new(h.den, &mut s), RAWNR_OK);
        let mut info = std::mem::zeroed();
        rawnr_stripe_get_info(s, &mut info);
        let info: rawnr_stripe_info = info;
        assert_eq!((info.bands, info.band_rows), (7, 8));
        // Bands of 8 rows reading 4 rows of halo on each side: band i needs rows up to
        // 8 (i + 1) + 4, so it is final 12 rows after its first row.
        assert_eq!(info.latency_rows, 12);
        assert_eq!(info.window_rows, 16);
        let mut rows = 0;
        rawnr_stripe_max_output_rows(s, 50, &mut rows);
        assert_eq!(rows, 50);
        // Bands 5 (rows 40..48) and 6 (48..50) both need the last row.
        rawnr_stripe_max_output_rows(s, 1, &mut rows);
        assert_eq!(rows, 10, "the last row finishes the last two bands");
        // Band 4 needs rows up to 44: a push of 8 from row 43 finishes bands 4, 5 and 6.
        rawnr_stripe_max_output_rows(s, 8, &mut rows);
        assert_eq!(rows, 18);
        rawnr_stripe_max_output_rows(s, 7, &mut rows);
        assert_eq!(rows, 18);
        rawnr_stripe_max_output_rows(s, 6, &mut rows);
        assert_eq!(rows, 10);
        // ... and that push really returns 18 rows.
        let input = vec![500u16; 20 * 50];
        let mut out = vec![0u16; 20 * 50];
        let (mut first, mut n) = (0, 0);
        assert_eq!(
            rawnr_stripe_push(
                s,
                input.as_ptr(),
                43,
                43 * 40,
                40,
                out.as_mut_ptr(),
                2000,
                40,
                &mut first,
                &mut n
            ),
            RAWNR_OK
        );
        assert_eq!((first, n), (0, 32));
        assert_eq!(
            rawnr_stripe_push(
                s,
                input.as_ptr(),
                7,
                7 * 40,
                40,
                out.as_mut_ptr(),
                2000,
                40,
                &mut first,
                &mut n
            ),
            RAWNR_OK
        );
        assert_eq!((first, n), (32, 18));
        rawnr_stripe_free(s);
    }
}

/// `rawnr_config.detail_restore = 1`: the frame call equals the Rust API followed by
/// `rawnr_engine::detail::restore` (input and output strides differing), the scratch grows by
/// the restoration's ring, stripes refuse the denoiser, and other values are refused.
#[test]
fn frames_with_detail_restoration_equal_the_rust_api() {
    use rawnr_engine::detail::{restore, DetailRestore};
    let mut rng = rand::rngs::StdRng::seed_from_u64(62);
    let aligned = tiny_model_in("detail_rs");
    let m = Model::parse(aligned.bytes()).unwrap();
    let rust = Denoiser::new(Engine::new(m));
    for case in 0..12 {
        let (cfa_code, cfa) = CFAS[case % 4];
        let (width, height) = (rng.random_range(2..70usize), rng.random_range(2..60usize));
        let (in_stride, out_stride) = (
            width + rng.random_range(0..3),
            width + rng.random_range(0..3),
        );
        let black = [3.0, 4.0, 5.0, 6.0];
        let noise = NoiseParams {
            k: 2e-4,
            sigma2: 1e-6,
        };
        let input: Vec<u16> = (0..(height - 1) * in_stride + width)
            .map(|_| rng.random_range(0..1024))
            .collect();
        let in_layout = FrameLayout {
            width,
            height,
            stride: in_stride,
            cfa,
        };
        let out_layout = FrameLayout {
            stride: out_stride,
            ..in_layout
        };
        let levels = Levels {
            black,
            white: 1023.0,
        };
        let mut want = vec![0u16; (height - 1) * out_stride + width];
        let opts = TileOptions::default();
        rust.denoise(
            &input,
            &in_layout,
            &mut want,
            &out_layout,
            &levels,
            noise,
            &DenoiseOptions::tiles(opts, 1),
        )
        .unwrap();
        let p = DetailRestore::default();
        let mut ring = vec![0f32; p.ring_len(width)];
        restore(
            &p,
            &input,
            &in_layout,
            &mut want,
            &out_layout,
            &levels,
            &noise.into(),
            &mut ring,
        )
        .unwrap();

        let mut h = Handles {
            model: null_mut(),
            den: null_mut(),
        };
        let mut cfg = frame_config(width, height, cfa_code, black, noise);
        let cfg: &mut rawnr_config = &mut cfg;
        assert_eq!(cfg.detail_restore, 0, "off by default");
        cfg.tile = 0;
        let mut got = vec![0xFFFFu16; want.len()];
        unsafe {
            assert_eq!(
                rawnr_model_load(
                    aligned.bytes().as_ptr().cast(),
                    aligned.bytes().len(),
                    &mut h.model
                ),
                RAWNR_OK
            );
            let mut plain_scratch = 0;
            assert_eq!(rawnr_denoiser_new(h.model, cfg, &mut h.den), RAWNR_OK);
            assert_eq!(
                rawnr_denoiser_scratch_size(h.den, &mut plain_scratch),
                RAWNR_OK
            );
            rawnr_denoiser_free(h.den);
            cfg.detail_restore = 2;
            assert_eq!(
                rawnr_denoiser_new(h.model, cfg, &mut h.den),
                RAWNR_ERR_BAD_ARGUMENT
            );
            cfg.detail_restore = 1;
            assert_eq!(rawnr_denoiser_new(h.model, cfg, &mut h.den), RAWNR_OK);
            let mut scratch_size = 0;
            assert_eq!(
                rawnr_denoiser_scratch_size(h.den, &mut scratch_size),
                RAWNR_OK
            );
            assert!(
                scratch_size >= plain_scratch + 4 * p.ring_len(width),
                "case {case}"
            );
            let mut scratch = vec![0xA5u8; scratch_size];
            assert_eq!(
                rawnr_denoise_frame(
                    h.den,
                    input.as_ptr(),
                    input.len() * 2,
                    in_stride * 2,
                    got.as_mut_ptr(),
                    got.len() * 2,
                    out_stride * 2,
                    scratch.as_mut_ptr().cast(),
                    scratch_size,
                ),
                RAWNR_OK
            );
            let mut s = null_mut();
            assert_eq!(rawnr_stripe_new(h.den, &mut s), RAWNR_ERR_UNSUPPORTED);
            let mut bytes = 0;
            assert_eq!(
                rawnr_stripe_storage_size(h.den, &mut bytes),
                RAWNR_ERR_UNSUPPORTED
            );
        }
        for y in 0..height {
            assert_eq!(
                &got[y * out_stride..][..width],
                &want[y * out_stride..][..width],
                "case {case}: row {y}"
            );
        }
    }
}

#[test]
fn frame_parts_check_their_arguments() {
    let aligned = tiny_model_in("parts_rs");
    let (width, height) = (40usize, 36usize);
    let input = vec![300u16; width * height];
    let mut output = vec![0u16; width * height];
    let bytes = input.len() * 2;
    let noise = NoiseParams {
        k: 2e-3,
        sigma2: 1e-5,
    };
    for detail in [0u32, 1] {
        let mut h = Handles {
            model: null_mut(),
            den: null_mut(),
        };
        let mut cfg = frame_config(width, height, RAWNR_CFA_RGGB, [3.0; 4], noise);
        cfg.tile = 8;
        cfg.detail_restore = detail;
        unsafe {
            let b = aligned.bytes();
            assert_eq!(
                rawnr_model_load(b.as_ptr().cast(), b.len(), &mut h.model),
                RAWNR_OK
            );
            assert_eq!(rawnr_denoiser_new(h.model, &cfg, &mut h.den), RAWNR_OK);
            let mut size = 0;
            assert_eq!(rawnr_denoiser_scratch_size(h.den, &mut size), RAWNR_OK);
            let mut scratch = vec![0u8; size];
            let run = |part: u32, n: u32, inp: *const u16, out: *mut u16, scratch: &mut [u8]| {
                rawnr_denoise_frame_part(
                    h.den,
                    part,
                    n,
                    inp,
                    bytes,
                    width * 2,
                    out,
                    bytes,
                    width * 2,
                    scratch.as_mut_ptr().cast(),
                    scratch.len(),
                )
            };
            let (i, o) = (input.as_ptr(), output.as_mut_ptr());
            if detail == 1 {
                // Detail restoration needs the whole frame.
                assert_eq!(run(0, 1, i, o, &mut scratch), RAWNR_ERR_UNSUPPORTED);
                continue;
            }
            assert_eq!(run(0, 0, i, o, &mut scratch), RAWNR_ERR_BAD_ARGUMENT);
            assert_eq!(run(2, 2, i, o, &mut scratch), RAWNR_ERR_BAD_ARGUMENT);
            assert_eq!(run(0, 2, std::ptr::null(), o, &mut scratch), RAWNR_ERR_NULL);
            assert_eq!(run(0, 2, i, null_mut(), &mut scratch), RAWNR_ERR_NULL);
            let short = size - 1;
            assert_eq!(
                run(0, 2, i, o, &mut scratch[..short]),
                RAWNR_ERR_BUFFER_TOO_SMALL
            );
            assert!(output.iter().all(|&v| v == 0), "a refused call wrote");
            // The largest part numbers (their shares are computed in 64 bits).
            assert_eq!(run(u32::MAX - 1, u32::MAX, i, o, &mut scratch), RAWNR_OK);
            // More parts than tile rows: the extra parts write nothing.
            for part in 0..64 {
                assert_eq!(run(part, 64, i, o, &mut scratch), RAWNR_OK);
            }
            assert!(output.iter().all(|&v| v != 0), "parts left rows unwritten");
            // The denoiser reports the stripes' latency.
            let mut di: rawnr_denoiser_info = std::mem::zeroed();
            assert_eq!(rawnr_denoiser_get_info(h.den, &mut di), RAWNR_OK);
            let mut s = null_mut();
            assert_eq!(rawnr_stripe_new(h.den, &mut s), RAWNR_OK);
            let mut si: rawnr_stripe_info = std::mem::zeroed();
            assert_eq!(rawnr_stripe_get_info(s, &mut si), RAWNR_OK);
            assert_eq!(di.latency_rows, si.latency_rows);
            assert!(di.latency_rows > 0);
            rawnr_stripe_free(s);
        }
    }
}
