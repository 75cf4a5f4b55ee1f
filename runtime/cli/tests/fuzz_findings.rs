//! Regression tests for the hostile inputs of the first fuzzing trial
//! (`../shared/data/fuzz-findings/`, see its README): each must end in a one-line error, exit
//! code 1 and no output, quickly and without a large allocation (or, for valid models that were
//! slow to plan, run in time).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn findings(part: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/fuzz-findings")
        .join(part)
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/halide/bayer_small.pgm")
}

/// Runs the CLI into a fresh folder; returns (exit code, stderr) and checks no output was left.
fn run(name: &str, args: &[&std::ffi::OsStr], out_name: &str) -> (Option<i32>, String) {
    let d = std::env::temp_dir().join(format!("rawnr-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let out = d.join(out_name);
    let t = Instant::now();
    let st = Command::new(env!("CARGO_BIN_EXE_denoise-raw"))
        .args(args)
        .arg(&out)
        .output()
        .unwrap();
    // Not a timing assertion on speed: a guard against the hangs and multi-GB allocations these
    // files caused (each now fails in milliseconds).
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "{name}: took {:?}",
        t.elapsed()
    );
    assert!(!out.exists(), "{name}: output written");
    let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
    assert!(left.is_empty(), "{name}: left {} files", left.len());
    (
        st.status.code(),
        String::from_utf8_lossy(&st.stderr).into_owned(),
    )
}

fn expect_error(name: &str, args: &[&std::ffi::OsStr], out_name: &str, needle: &str) {
    let (code, err) = run(name, args, out_name);
    assert_eq!(code, Some(1), "{name}: exit {code:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
    assert!(
        err.contains(needle),
        "{name}: {err:?} does not say {needle:?}"
    );
}

#[test]
fn hostile_dngs_are_rejected_before_the_decoder_allocates() {
    for (file, needle) in [
        ("oom-17GB-ljpeg-sof-65535x65535.dng", "claims 65535x65535"),
        ("alloc-8.6GB-tilewidth-65535.dng", "tile width 65535"),
        ("oom-20GB-non-dng-mef-100000x100000.tif", "not a DNG"),
        ("oom-80GB-non-dng-mef-200000x200000.tif", "not a DNG"),
    ] {
        let p = findings("dng_read").join(file);
        expect_error(
            file,
            &[p.as_os_str(), "--iso".as_ref(), "800".as_ref()],
            "o.dng",
            needle,
        );
    }
    // rawler panics (found by fuzzing, caught by the decoder guard before): now rejected by
    // rawnr's own check of the Bayer IFD before rawler reads it.
    let dir = findings("dng_read/caught-panics");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let (code, err) = run(
            &name,
            &[p.as_os_str(), "--iso".as_ref(), "800".as_ref()],
            "o.dng",
        );
        assert_eq!(code, Some(1), "{name}: exit {code:?}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            err.contains("(CFA data)"),
            "{name}: not rawnr's own check: {err}"
        );
        n += 1;
    }
    assert!(n >= 6, "{n} files in {}", dir.display());
}

#[test]
fn absurd_noise_profiles_are_errors() {
    for file in ["zero-output-k-1e-45.json", "zero-output-sigma2-3e38.json"] {
        let p = findings("noise_profile").join(file);
        let f = fixture();
        let args = [
            f.as_os_str(),
            "--cfa".as_ref(),
            "grbg".as_ref(),
            "--iso".as_ref(),
            "800".as_ref(),
            "--noise-profile".as_ref(),
            p.as_os_str(),
        ];
        expect_error(file, &args, "o.pgm", "normalised units");
    }
}

/// Arguments denoising the PGM fixture with `model` at a fixed noise level, then `extra`.
fn model_args(model: &Path, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = vec![fixture().into(), "--cfa".into(), "grbg".into()];
    for s in ["--noise-k", "1e-3", "--noise-sigma2", "1e-6", "--model"] {
        a.push(s.into());
    }
    a.push(model.into());
    a.extend(extra.iter().map(|s| s.into()));
    a
}

fn os(args: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    args.iter().map(|a| a.as_os_str()).collect()
}

#[test]
fn a_tensor_whose_element_count_overflows_is_rejected() {
    let m = findings("model_parse").join("overflow-panic-debug-elements-2pow64.rnm");
    let args = model_args(&m, &[]);
    expect_error("elements", &os(&args), "o.pgm", "invalid tensor 0");
}

#[test]
fn a_model_whose_plan_cannot_be_allocated_is_an_error() {
    // Parses; unused concat nodes and size multiple 1024 make its plan ask for over 100 GiB on
    // a small frame (the CLI aborted on the allocation).
    let m = findings("model_parse").join("abort-110GB-dead-concat-size-multiple-1024.rnm");
    for layout in ["tiles", "stripes"] {
        let args = model_args(&m, &["--layout", layout]);
        expect_error(layout, &os(&args), "o.pgm", "working memory");
    }
}

#[test]
fn models_with_many_live_values_plan_in_time() {
    // 501 and 1001 nodes whose values stay alive: the planner's placement was cubic (16 s and
    // 140 s with tiles); now a sort and a sweep per value, and the CLI bisects the tile size.
    // The 1001-node model needs over 48 MiB (the default --scratch-mib) even with 64-pixel
    // tiles: that is refused before any allocation; 256 MiB runs it.
    let d = std::env::temp_dir().join(format!("rawnr-fuzz-plan-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    for file in [
        "hang-16s-tiles-501-nodes.rnm",
        "hang-140s-tiles-1001-nodes.rnm",
    ] {
        let m = findings("model_parse").join(file);
        let t = Instant::now();
        let mut args = model_args(
            &m,
            &[
                "--layout",
                "tiles",
                "--overwrite",
                "-q",
                "--scratch-mib",
                "256",
            ],
        );
        args.insert(1, d.join("o.pgm").into());
        let st = Command::new(env!("CARGO_BIN_EXE_denoise-raw"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        // A guard against the hang, not a speed assertion (about 0.3 s here for 1001 nodes).
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{file}: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn a_model_over_the_scratch_budget_at_the_smallest_tile_is_refused() {
    // 1001 nodes whose values stay alive: over 48 MiB for two threads even with 64-pixel
    // tiles. The CLI refuses it before allocating (it used to run over the budget).
    let m = findings("model_parse").join("hang-140s-tiles-1001-nodes.rnm");
    let args = model_args(&m, &["--layout", "tiles", "--threads", "2"]);
    expect_error("1001 nodes", &os(&args), "o.pgm", "--scratch-mib 48");
}
