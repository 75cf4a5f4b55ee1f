//! The C examples in `firmware-examples/`, built with `gcc -Wall -Wextra -Werror` against
//! rawnr's static library, run on real raw data and compared bit for bit with the Rust API;
//! then again under AddressSanitizer and valgrind on small crops, which must report nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use rawnr_core::bayer::CfaPhase;
use rawnr_engine::denoiser::{DenoiseOptions, TileOptions};

fn assert_same(c_out: &Path, want: &Frame, what: &str) {
    let got = read_pgm(c_out);
    assert_eq!((got.width, got.height), (want.width, want.height), "{what}");
    if let Some((x, y, a, b)) = first_difference(&got, want) {
        panic!("{what}: C output differs from the Rust API at ({x}, {y}): {a} vs {b}");
    }
}

/// Under valgrind the program sees valgrind's virtual CPU (no AVX-512), so the engine may pick
/// other SIMD kernels than the Rust reference in this process, which agree with each other to
/// rounding only. Bit-exactness is checked natively (same CPU, same kernels); here the output
/// must be equal or within 2 DN.
fn assert_same_or_close(c_out: &Path, want: &Frame, what: &str) {
    let got = read_pgm(c_out);
    assert_eq!((got.width, got.height), (want.width, want.height), "{what}");
    let worst = got
        .data
        .iter()
        .zip(&want.data)
        .map(|(&a, &b)| a.abs_diff(b))
        .max()
        .unwrap_or(0);
    if worst > 0 {
        eprintln!("{what}: differs from the Rust API by up to {worst} DN (other SIMD kernels)");
    }
    assert!(
        worst <= 2,
        "{what}: C output differs from the Rust API by {worst} DN"
    );
}

fn arg(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}

/// A crop of the real strip written as PGM (even offsets keep GRBG).
fn real_crop(dir: &Path, x: usize, y: usize, w: usize, h: usize) -> (PathBuf, Frame) {
    let crop = read_pgm(&real_raw()).crop(x, y, w, h);
    let path = dir.join(format!("crop_{w}x{h}.pgm"));
    write_pgm(&path, &crop);
    (path, crop)
}

fn reference(frame: &Frame, tile: usize, halo: Option<usize>) -> Frame {
    reference_with(&model_path(), frame, tile, halo)
}

/// The Rust API's output of `model` on `frame` (the real strip's CFA, levels and ISO 3200).
fn reference_with(model: &Path, frame: &Frame, tile: usize, halo: Option<usize>) -> Frame {
    let model = AlignedModel::load(model);
    rust_denoise(
        model.bytes(),
        frame,
        CfaPhase::Grbg,
        real_levels(),
        3200.0,
        TileOptions { tile, halo },
    )
}

/// The tiny model, as a file in `dir`.
fn tiny_model_file(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.rnm");
    std::fs::write(&path, tiny_model()).unwrap();
    path
}

#[test]
fn test_errors_passes_every_check() {
    let dir = work_dir("test_errors");
    let exe = build_example("test_errors", &dir, Build::Plain);
    for model in [model_path(), tiny_model_file(&dir)] {
        let out = run_ok(Command::new(&exe).arg(&model).env("TMPDIR", &dir));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("checks passed"), "{text}");
    }
}

#[test]
fn denoise_file_matches_the_rust_api_on_the_real_strip() {
    let dir = work_dir("denoise_file");
    let exe = build_example("denoise_file", &dir, Build::Plain);
    let out = dir.join("out.pgm");
    // Whole 2592x304 strip, default tiling (256, the model's halo), padded rows in C.
    let log = run_ok(
        Command::new(&exe)
            .arg(model_path())
            .arg(real_raw())
            .arg(&out)
            .args(REAL_OPTS)
            .args(["--pad", "5"]),
    );
    eprintln!("{}", String::from_utf8_lossy(&log.stderr));
    let frame = read_pgm(&real_raw());
    assert_same(
        &out,
        &reference(&frame, 256, None),
        "denoise_file, 2592x304",
    );
}

#[test]
fn denoise_file_with_detail_restoration_matches_the_rust_api() {
    use rawnr_engine::detail::{restore_alloc, DetailRestore};
    let dir = work_dir("denoise_file_detail");
    let exe = build_example("denoise_file", &dir, Build::Plain);
    let (crop, frame) = real_crop(&dir, 320, 64, 256, 128);
    let out = dir.join("out.pgm");
    run_ok(
        Command::new(&exe)
            .arg(model_path())
            .arg(&crop)
            .arg(&out)
            .args(REAL_OPTS)
            .arg("--detail"),
    );
    let mut want = reference(&frame, 256, None);
    let m = AlignedModel::load(&model_path());
    let d = rawnr_engine::denoiser::Denoiser::new(rawnr_engine::graph::Engine::new(
        rawnr_core::format::Model::parse(m.bytes()).unwrap(),
    ));
    let noise: rawnr_core::noise::ChannelNoise = d.default_noise(3200.0).unwrap().into();
    let layout = rawnr_core::bayer::FrameLayout::new(frame.width, frame.height, CfaPhase::Grbg);
    let before = want.data.clone();
    restore_alloc(
        &DetailRestore::default(),
        &frame.data,
        &mut want.data,
        &layout,
        &real_levels(),
        &noise,
    )
    .unwrap();
    assert!(
        want.data != before,
        "restoration changed nothing on the crop"
    );
    assert_same(&out, &want, "denoise_file --detail, 256x128");
}

#[test]
fn stripe_isp_matches_the_rust_api_on_a_real_crop() {
    let dir = work_dir("stripe_isp");
    let exe = build_example("stripe_isp", &dir, Build::Plain);
    // 254x304 crop (packed 127x152), tile 64, halo 32: 3 bands of 128 rows, 2 tile columns;
    // two frames through one stripe.
    let (input, crop) = real_crop(&dir, 1024, 0, 254, 304);
    let want = reference(&crop, 64, Some(32));
    for (rows, extra) in [("16", None), ("11", Some("--jitter"))] {
        let out = dir.join(format!("out_{rows}.pgm"));
        let log = run_ok(
            Command::new(&exe)
                .arg(model_path())
                .arg(&input)
                .arg(&out)
                .args(REAL_OPTS)
                .args([
                    "--tile", "64", "--halo", "32", "--rows", rows, "--frames", "2",
                ])
                .args(extra),
        );
        let text = String::from_utf8_lossy(&log.stderr);
        eprintln!("{text}");
        assert!(text.contains("3 bands of 128 rows"), "{text}");
        assert_same(&out, &want, &format!("stripe_isp, {rows} rows per push"));
    }
}

/// The Rust API's row-streamed output (`Denoiser::denoise` with `Cut::Stripes`) of PMRID on `frame`
/// (the real strip's CFA, levels and ISO 3200) with stripes of `width` packed pixels.
fn streamed_reference(frame: &Frame, width: usize) -> Frame {
    use rawnr_core::bayer::FrameLayout;
    use rawnr_engine::{denoiser::Denoiser, denoiser::StripeOptions, graph::Engine};
    let model = AlignedModel::load(&model_path());
    let d = Denoiser::new(Engine::new(
        rawnr_core::format::Model::parse(model.bytes()).unwrap(),
    ));
    let layout = FrameLayout::new(frame.width, frame.height, CfaPhase::Grbg);
    let opts = StripeOptions {
        width,
        ..StripeOptions::for_model(d.engine().model())
    };
    let mut out = vec![0u16; frame.data.len()];
    d.denoise(
        &frame.data,
        &layout,
        &mut out,
        &layout,
        &real_levels(),
        d.default_noise(3200.0).unwrap(),
        &DenoiseOptions::stripes(opts, 2),
    )
    .unwrap();
    Frame {
        width: frame.width,
        height: frame.height,
        data: out,
    }
}

#[test]
fn stream_isp_matches_the_rust_streamed_frame_on_real_raw() {
    let dir = work_dir("stream_isp");
    let exe = build_example("stream_isp", &dir, Build::Plain);
    // 512x304 crop (GRBG: packed 257x152), stripes of 64: 5 stripes; two frames through the same
    // streams, one thread and two (each its part of the stripes), steady and jittered pushes.
    let (input, crop) = real_crop(&dir, 1024, 0, 512, 304);
    let want = streamed_reference(&crop, 64);
    for (threads, rows, jitter) in [("1", "16", false), ("2", "11", true), ("3", "64", false)] {
        let out = dir.join(format!("out_{threads}.pgm"));
        let mut cmd = Command::new(&exe);
        cmd.arg(model_path())
            .arg(&input)
            .arg(&out)
            .args(REAL_OPTS)
            .args([
                "--stripe-width",
                "64",
                "--threads",
                threads,
                "--rows",
                rows,
                "--frames",
                "2",
            ]);
        if jitter {
            cmd.arg("--jitter");
        }
        let log = run_ok(&mut cmd);
        let text = String::from_utf8_lossy(&log.stderr);
        eprintln!("{text}");
        assert!(text.contains("of 5 stripes"), "{text}");
        assert_same(&out, &want, &format!("stream_isp, {threads} threads"));
    }
}

/// Runs the three programs (built as `build`, each prefixed with `wrapper`) on small inputs
/// and checks their outputs against the Rust API; `tiny` runs test_errors with the tiny model.
fn run_all_small(name: &str, build: Build, wrapper: &[&str], tiny: bool) {
    let check = if wrapper.is_empty() {
        assert_same
    } else {
        assert_same_or_close
    };
    let dir = work_dir(name);
    let exes: Vec<PathBuf> = ["test_errors", "denoise_file", "stripe_isp", "stream_isp"]
        .iter()
        .map(|n| build_example(n, &dir, build))
        .collect();
    let run = |exe: &Path, args: &[&std::ffi::OsStr]| {
        let mut cmd = match wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(args).env("TMPDIR", &dir).env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:exitcode=23",
        );
        let out = run_ok(&mut cmd);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !err.contains("ERROR: AddressSanitizer") && !err.contains("ERROR: LeakSanitizer"),
            "{err}"
        );
        if !wrapper.is_empty() {
            assert!(err.contains("ERROR SUMMARY: 0 errors"), "{err}");
        }
        err
    };
    let model = model_path();
    let errors_model = if tiny {
        tiny_model_file(&dir)
    } else {
        model.clone()
    };
    run(&exes[0], &[arg(&errors_model)]);
    // 62x64 crop (packed 31x32): one tile.
    let (input, crop) = real_crop(&dir, 1000, 100, 62, 64);
    let out = dir.join("file.pgm");
    let mut args = vec![arg(&model), arg(&input), arg(&out)];
    args.extend(REAL_OPTS.iter().map(std::ffi::OsStr::new));
    args.push("--load".as_ref());
    run(&exes[1], &args);
    check(
        &out,
        &reference(&crop, 256, None),
        "denoise_file --load, 62x64",
    );
    // 62x128 crop, tile 32 and halo 0: two bands, the window slides; varying pushes.
    let (input, crop) = real_crop(&dir, 1000, 100, 62, 128);
    let out = dir.join("stripe.pgm");
    let mut args = vec![arg(&model), arg(&input), arg(&out)];
    args.extend(REAL_OPTS.iter().map(std::ffi::OsStr::new));
    args.extend(
        [
            "--tile", "32", "--halo", "0", "--rows", "9", "--jitter", "--frames", "2",
        ]
        .iter()
        .map(std::ffi::OsStr::new),
    );
    let log = run(&exes[2], &args);
    assert!(log.contains("2 bands of 64 rows"), "{log}");
    check(&out, &reference(&crop, 32, Some(0)), "stripe_isp, 62x128");
    // The same crop row-streamed (one stripe: the crop is narrower than PMRID's size
    // multiple of stripes), varying pushes.
    let out = dir.join("stream.pgm");
    let mut args = vec![arg(&model), arg(&input), arg(&out)];
    args.extend(REAL_OPTS.iter().map(std::ffi::OsStr::new));
    args.extend(
        ["--rows", "9", "--jitter", "--frames", "2"]
            .iter()
            .map(std::ffi::OsStr::new),
    );
    run(&exes[3], &args);
    check(&out, &streamed_reference(&crop, 512), "stream_isp, 62x128");
}

#[test]
fn c_examples_are_clean_under_address_sanitizer() {
    run_all_small("asan", Build::Asan, &[], false);
}

#[test]
fn c_examples_are_clean_under_valgrind() {
    let found = Command::new("valgrind").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "valgrind is needed by this test (apt-get install valgrind)"
    );
    run_all_small(
        "valgrind",
        Build::Plain,
        &[
            "valgrind",
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect,possible",
        ],
        true,
    );
}

#[test]
fn denoise_file_runs_the_int8_models_noise_band() {
    use rawnr_engine::{denoiser::Denoiser, graph::Engine};
    let dir = work_dir("denoise_file_int8");
    let exe = build_example("denoise_file", &dir, Build::Plain);
    let (crop, frame) = real_crop(&dir, 320, 64, 256, 128);
    let out = dir.join("out.pgm");
    let int8 = repo_root().join("models/pmrid-int8.rnm");
    let log = run_ok(
        Command::new(&exe)
            .arg(&int8)
            .arg(&crop)
            .arg(&out)
            .args(REAL_OPTS),
    );
    let log = String::from_utf8_lossy(&log.stderr);
    // The C library picks the band of the configured noise, as the Rust API does.
    let m = AlignedModel::load(&int8);
    let model = rawnr_core::format::Model::parse(m.bytes()).unwrap();
    let d = Denoiser::new(Engine::new(model));
    let band = d
        .noise_band(&d.default_noise(3200.0).unwrap().into())
        .unwrap();
    assert!(band > 0 && model.noise_bands() > 1);
    let says = format!("noise band {band} of {}", model.noise_bands());
    assert!(log.contains(&says), "{log}");
    let want = reference_with(&int8, &frame, 256, None);
    assert_same(&out, &want, "denoise_file, int8 with noise bands");
}

#[test]
fn python_binding_matches_the_rust_api() {
    // The shared library beside the static one (`cargo build -p rawnr-capi --lib` makes both).
    let lib = static_lib().with_extension("so");
    assert!(lib.exists(), "{} missing", lib.display());
    let dir = work_dir("python");
    let (crop, frame) = real_crop(&dir, 320, 64, 256, 128);
    let model = model_path();
    let want = reference(&frame, 256, None);
    let want_path = dir.join("want.u16");
    let bytes: Vec<u8> = want.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&want_path, bytes).unwrap();
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("bindings/python/test_rawnr.py"))
            .arg(&model)
            .arg(&crop)
            .arg(&want_path)
            .env("RAWNR_LIB", &lib),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(text.contains("checks passed"), "{text}");
}

#[test]
fn denoise_file_in_parts_on_threads_matches_the_rust_api() {
    let dir = work_dir("denoise_file_threads");
    let exe = build_example("denoise_file", &dir, Build::Plain);
    let (crop, frame) = real_crop(&dir, 0, 0, 1024, 304);
    for threads in ["2", "3"] {
        let out = dir.join(format!("out{threads}.pgm"));
        // Tile 64 packed pixels: three tile rows over 304 raw rows.
        let log = run_ok(
            Command::new(&exe)
                .arg(model_path())
                .arg(&crop)
                .arg(&out)
                .args(REAL_OPTS)
                .args(["--tile", "64", "--threads", threads, "--pad", "3"]),
        );
        let log = String::from_utf8_lossy(&log.stderr);
        assert!(log.contains(&format!("{threads} threads")), "{log}");
        assert_same(
            &out,
            &reference(&frame, 64, None),
            &format!("denoise_file --threads {threads}"),
        );
    }
}
