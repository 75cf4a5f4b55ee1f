//! End-to-end tests of the `denoise-raw` binary: the README's quick-start run, and bad input
//! that must end in a one-line error, a non-zero exit and no output file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_denoise-raw"))
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/halide/bayer_small.pgm")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rawnr-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read_pgm16(p: &Path) -> (usize, usize, Vec<u16>) {
    let b = std::fs::read(p).unwrap();
    let text = String::from_utf8_lossy(&b[..20]).to_string();
    let mut it = text.split_whitespace();
    assert_eq!(it.next(), Some("P5"));
    let w: usize = it.next().unwrap().parse().unwrap();
    let h: usize = it.next().unwrap().parse().unwrap();
    let data = &b[b.len() - 2 * w * h..];
    (
        w,
        h,
        data.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect(),
    )
}

#[test]
fn quick_start_denoises_the_sample_and_writes_a_preview() {
    let d = tmpdir("quick");
    let out = d.join("out.pgm");
    let png = d.join("out.png");
    let st = bin()
        .args([
            fixture().to_str().unwrap(),
            out.to_str().unwrap(),
            "--cfa",
            "grbg",
            "--black",
            "25",
            "--white",
            "1023",
            "--iso",
            "3200",
        ])
        .args(["--preview", png.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let (w, h, data) = read_pgm16(&out);
    let (w0, h0, input) = read_pgm16(&fixture());
    assert_eq!((w, h), (w0, h0));
    // Denoised: changed, but close to the input (a real image, not noise or zeros).
    let changed = data.iter().zip(&input).filter(|(a, b)| a != b).count();
    assert!(changed > data.len() / 4, "only {changed} pixels changed");
    let mean_abs: f64 = data
        .iter()
        .zip(&input)
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / data.len() as f64;
    assert!(
        mean_abs < 20.0,
        "mean change {mean_abs} DN is not a denoising"
    );
    assert!(data.iter().all(|&v| v <= 1023));
    let png_bytes = std::fs::read(&png).unwrap();
    assert_eq!(&png_bytes[1..4], b"PNG");
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // Running again without --overwrite is refused and leaves the output intact.
    let again = bin()
        .args([fixture().to_str().unwrap(), out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(read_pgm16(&out).2, data);
}

#[test]
fn strength_zero_returns_the_input() {
    let d = tmpdir("strength");
    let out = d.join("out.pgm");
    let st = bin()
        .args([
            fixture().to_str().unwrap(),
            out.to_str().unwrap(),
            "--cfa",
            "grbg",
            "--black",
            "25",
            "--white",
            "1023",
            "--strength",
            "0",
            "--iso",
            "800",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(st.status.success());
    assert!(st.stdout.is_empty(), "--quiet printed output");
    assert_eq!(read_pgm16(&out).2, read_pgm16(&fixture()).2);
}

fn expect_error(args: &[&str], out: &Path, needle: &str) {
    let st = bin().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success(), "{args:?} succeeded");
    assert!(
        err.contains(needle),
        "{args:?}: error {err:?} does not mention {needle:?}"
    );
    assert_eq!(
        err.trim().lines().count(),
        1,
        "{args:?}: error is not one line: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "{args:?} left an output file");
}

#[test]
fn bad_input_is_a_one_line_error_without_output() {
    let d = tmpdir("bad");
    let out = d.join("out.pgm");
    let o = out.to_str().unwrap();
    let trunc = d.join("trunc.pgm");
    let bytes = std::fs::read(fixture()).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let notpgm = d.join("not.pgm");
    std::fs::write(&notpgm, b"hello world").unwrap();
    let huge = d.join("huge.pgm");
    std::fs::write(&huge, b"P5\n99999 99999\n65535\n\x00\x00").unwrap();
    let badmodel = d.join("bad.rnm");
    std::fs::write(&badmodel, b"RAWNRMDL garbage").unwrap();
    expect_error(&[trunc.to_str().unwrap(), o], &out, "trunc.pgm");
    expect_error(
        &[notpgm.to_str().unwrap(), o],
        &out,
        "not a DNG or binary PGM",
    );
    expect_error(&[huge.to_str().unwrap(), o], &out, "absurd dimensions");
    expect_error(
        &[d.join("missing.pgm").to_str().unwrap(), o],
        &out,
        "missing.pgm",
    );
    expect_error(
        &[
            fixture().to_str().unwrap(),
            o,
            "--model",
            badmodel.to_str().unwrap(),
        ],
        &out,
        "bad.rnm",
    );
    expect_error(
        &[fixture().to_str().unwrap(), o, "--cfa", "xyzw"],
        &out,
        "--cfa",
    );
    expect_error(
        &[
            fixture().to_str().unwrap(),
            o,
            "--black",
            "2000",
            "--white",
            "1023",
        ],
        &out,
        "black level",
    );
    expect_error(&[fixture().to_str().unwrap(), o, "--iso=-5"], &out, "ISO");
    expect_error(
        &[
            fixture().to_str().unwrap(),
            fixture().to_str().unwrap(),
            "--overwrite",
        ],
        &out,
        "input",
    );
    let missing_dir = d.join("no/such/dir/out.pgm");
    expect_error(
        &[
            fixture().to_str().unwrap(),
            missing_dir.to_str().unwrap(),
            "--iso",
            "800",
        ],
        &missing_dir,
        "out.pgm",
    );
}

#[test]
fn noise_profile_file_with_channels_is_used_per_channel() {
    let d = tmpdir("profile");
    let pooled = r#""format": "rawnr-noise-profile", "version": 1, "k": [1.0e-6, 2.0e-3], "sigma2": [0.0, 1.0e-8, 1.0e-5]"#;
    let with_channels = format!(
        r#"{{ {pooled}, "channels": {{ "r": {{ "k": [2.0e-6, 3.0e-3], "sigma2": [0.0, 2.0e-8, 2.0e-5] }},
            "g": {{ "k": [1.0e-6, 2.0e-3], "sigma2": [0.0, 1.0e-8, 1.0e-5] }},
            "b": {{ "k": [3.0e-6, 4.0e-3], "sigma2": [0.0, 3.0e-8, 3.0e-5] }} }} }}"#
    );
    let (pa, pb) = (d.join("pooled.json"), d.join("channels.json"));
    std::fs::write(&pa, format!("{{ {pooled} }}")).unwrap();
    std::fs::write(&pb, with_channels).unwrap();
    let mut outs = Vec::new();
    for (name, prof) in [("a.pgm", &pa), ("b.pgm", &pb)] {
        let out = d.join(name);
        let st = bin()
            .arg(fixture())
            .arg(&out)
            .args([
                "--cfa",
                "grbg",
                "--black",
                "25",
                "--white",
                "1023",
                "--iso",
                "1600",
                "-q",
                "--noise-profile",
            ])
            .arg(prof)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        outs.push(read_pgm16(&out).2);
    }
    assert!(outs[0] != outs[1], "per-channel curves made no difference");
    let bad = d.join("bad.json");
    std::fs::write(
        &bad,
        r#"{ "format": "something-else", "k": [0, 0], "sigma2": [0, 0, 0] }"#,
    )
    .unwrap();
    let out = d.join("c.pgm");
    expect_error(
        &[
            fixture().to_str().unwrap(),
            out.to_str().unwrap(),
            "--iso",
            "100",
            "--noise-profile",
            bad.to_str().unwrap(),
        ],
        &out,
        "bad.json",
    );
}

/// `bench --profile` times the nodes of the layout that ran: a streamed stripe (with calls and
/// rows per call) or a square tile; every op class of PMRID shows up and the shares add up.
/// The body rows of the Markdown table in `text` whose header starts with `header`, as trimmed
/// cells (cell 0 is the empty text before the first `|`).
fn table(text: &str, header: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

#[test]
fn bench_profile_follows_the_layout() {
    for layout in ["stripes", "tiles"] {
        let out = bin()
            .args([
                "bench",
                "--layout",
                layout,
                "--width",
                "256",
                "--height",
                "256",
                "--runs",
                "1",
                "--threads",
                "1",
                "--profile-nodes",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let streamed = text.contains("one streamed");
        // The per-node table: network order from conv0 (4 input channels), and its times add
        // up to the class table's total.
        let nodes = table(&text, "| node");
        assert!(nodes.len() > 20, "{text}");
        assert_eq!(nodes[0][1], "0", "{text}");
        assert!(nodes[0][2].starts_with("dense f32 3x3"), "{text}");
        assert!(nodes[0][3].starts_with("4x"), "{text}");
        let index = |r: &Vec<String>| r[1].parse::<usize>().unwrap();
        assert!(
            nodes.windows(2).all(|p| index(&p[0]) < index(&p[1])),
            "{text}"
        );
        let node_ms: f64 = nodes.iter().map(|r| r[5].parse::<f64>().unwrap()).sum();
        let rows = table(&text, "| op class");
        let total_ms: f64 = rows
            .iter()
            .find(|r| r[1] == "total")
            .map(|r| r[2].parse().unwrap())
            .unwrap();
        assert!(
            (node_ms - total_ms).abs() <= 0.01 * nodes.len() as f64 + 0.01,
            "nodes {node_ms} ms, total {total_ms} ms: {text}"
        );
        assert_eq!(streamed, layout == "stripes", "{text}");
        assert!(
            rows.iter().any(|r| r[1].starts_with("pointwise f32")),
            "{text}"
        );
        assert!(
            rows.iter().any(|r| r[1].contains("depthwise f32 5x5")),
            "{text}"
        );
        let share: f64 = rows
            .iter()
            .filter(|r| r[1] != "total")
            .map(|r| r[3].trim_end_matches('%').parse::<f64>().unwrap())
            .sum();
        assert!(
            (share - 100.0).abs() < 0.5,
            "shares add up to {share}: {text}"
        );
        if streamed {
            // Calls and rows per call for every class.
            for r in rows.iter().filter(|r| r[1] != "total") {
                assert!(r[6].parse::<usize>().unwrap() > 0, "{text}");
                assert!(r[7].parse::<f64>().unwrap() >= 1.0, "{text}");
            }
        }
    }
}

#[test]
fn scratch_budget_shrinks_the_tile_and_the_stripes() {
    let row = |layout: &str, budget: &str| {
        let out = bin()
            .args([
                "bench",
                "--layout",
                layout,
                "--width",
                "1280",
                "--height",
                "1280",
                "--runs",
                "1",
                "--threads",
                "2",
                "--no-header",
                "--scratch-mib",
                budget,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let cells: Vec<String> = text
            .lines()
            .last()
            .unwrap()
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        // "192/64" for tiles, "stripe 320/64 step 8" for stripes.
        let size: usize = cells[5]
            .trim_start_matches("stripe ")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let scratch: f64 = cells[10].parse().unwrap();
        (size, scratch)
    };
    let (free_tile, free_scratch) = row("tiles", "0");
    let (tile, scratch) = row("tiles", "24");
    assert_eq!(free_tile, 256);
    assert!(tile < free_tile, "budget did not shrink the tile ({tile})");
    assert!(
        scratch <= 24.0 && free_scratch > 24.0,
        "{scratch} / {free_scratch} MiB"
    );
    // Stripes: one per thread without a budget (640 packed columns / 2), narrower within one.
    let (free_stripe, free_scratch) = row("stripes", "0");
    let (stripe, scratch) = row("stripes", "30");
    assert_eq!(free_stripe, 320);
    assert!(
        stripe < free_stripe,
        "budget did not narrow the stripes ({stripe})"
    );
    assert!(
        scratch <= 30.0 && free_scratch > 30.0,
        "{scratch} / {free_scratch} MiB"
    );
}

/// Row-streamed stripes and square tiles, both with a halo covering PMRID's receptive field,
/// write the same frame (each equals one pass over the whole frame); with the model's halo,
/// the narrower stripes of a small budget differ from them only at stripe seams, slightly.
#[test]
fn streamed_stripes_equal_tiles_at_the_receptive_field() {
    let d = tmpdir("layouts");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/pmrid-int8.rnm");
    let run = |name: &str, extra: &[&str]| {
        let out = d.join(name);
        let mut args = vec![
            fixture().to_str().unwrap().to_string(),
            out.to_str().unwrap().to_string(),
            "--model".into(),
            model.to_str().unwrap().to_string(),
            "--cfa".into(),
            "grbg".into(),
            "--black".into(),
            "25".into(),
            "--white".into(),
            "1023".into(),
            "--iso".into(),
            "1600".into(),
            "--threads".into(),
            "2".into(),
            "-q".into(),
            "--overwrite".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let st = bin().args(&args).output().unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        read_pgm16(&out).2
    };
    let stripes = run("stripes.pgm", &["--layout", "stripes", "--halo", "544"]);
    let tiles = run(
        "tiles.pgm",
        &["--layout", "tiles", "--halo", "544", "--scratch-mib", "0"],
    );
    assert_eq!(stripes, tiles, "exact stripes and exact tiles differ");
    let input = read_pgm16(&fixture()).2;
    assert!(stripes.iter().zip(&input).filter(|(a, b)| a != b).count() > input.len() / 2);
    // Narrow stripes (a small budget) with the model's halo: close to the exact frame.
    let narrow = run("narrow.pgm", &["--layout", "stripes", "--scratch-mib", "6"]);
    let max = narrow
        .iter()
        .zip(&stripes)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    eprintln!("narrow stripes vs exact: max {max} DN");
    assert!(max <= 8, "stripe seams differ by {max} DN");
}

#[test]
fn every_output_is_checked_before_any_is_written() {
    let d = tmpdir("outputs");
    let out = d.join("out.pgm");
    let o = out.to_str().unwrap();
    let f = fixture();
    let pgm = |extra: &[&str]| {
        let mut v = vec![
            f.to_str().unwrap().to_string(),
            o.to_string(),
            "--cfa".into(),
            "grbg".into(),
            "--iso".into(),
            "800".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>, needle: &str| {
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        expect_error(&a, &out, needle);
    };
    // A preview that cannot be written stops the run before the output is written.
    let nodir = d.join("nosuchdir/p.png");
    run(
        pgm(&["--preview", nodir.to_str().unwrap()]),
        "does not exist",
    );
    run(pgm(&["--preview", o]), "would overwrite");
    let jpg = d.join("p.jpg");
    run(pgm(&["--preview", jpg.to_str().unwrap()]), ".png");
    assert!(!jpg.exists());
    // The output's name says what is written.
    let png_out = d.join("out.png");
    let dng = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/tinydng/colorchart_crop.dng");
    for (input, needle) in [(&f, "name the output .pgm"), (&dng, "--preview")] {
        let args = [
            input.to_str().unwrap(),
            png_out.to_str().unwrap(),
            "--iso",
            "800",
        ];
        expect_error(&args, &png_out, needle);
    }
    // Instruction-set levels: unknown or unsupported ones are errors, not fallbacks.
    run(pgm(&["--isa", "bogus"]), "--isa bogus");
    let st = bin()
        .args(pgm(&[]))
        .env("RAWNR_ISA", "sse9")
        .output()
        .unwrap();
    assert!(!st.status.success());
    assert!(String::from_utf8_lossy(&st.stderr).contains("RAWNR_ISA sse9"));
    assert!(!out.exists());
    // The generic level runs.
    let st = bin()
        .args(pgm(&["--isa", "generic", "-q"]))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(out.exists());
}

#[test]
fn help_shows_required_arguments_and_examples() {
    let st = bin().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(st.status.success());
    assert!(text.contains("<INPUT> <OUTPUT>"), "{text}");
    assert!(text.contains("Examples:"), "{text}");
    // bench takes no noise options (it runs at the model's ISO 1600 noise).
    let st = bin().args(["bench", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(st.status.success());
    for unused in ["--iso", "--noise-k", "--noise-profile", "--preview"] {
        assert!(!text.contains(unused), "bench --help lists {unused}");
    }
    assert!(text.contains("--isa"), "{text}");
    // No arguments at all: a usage error naming what is missing.
    let st = bin().output().unwrap();
    assert!(!st.status.success());
    assert!(String::from_utf8_lossy(&st.stderr).contains("<INPUT>"));
}

#[test]
fn preview_is_labelled() {
    let d = tmpdir("label");
    let (out, png) = (d.join("out.pgm"), d.join("cmp.png"));
    let st = bin()
        .arg(fixture())
        .arg(&out)
        .args([
            "--cfa", "grbg", "--black", "25", "--white", "1023", "--iso", "3200",
        ])
        .arg("--preview")
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let (_, ph, _) = read_pgm16(&fixture());
    // A label band above the crops: black with white text over each half.
    let band = h - (ph / 2).min(512);
    assert!(band >= 7, "no label band ({w}x{h})");
    let px = |x: usize, y: usize| &buf[(y * w + x) * 3..(y * w + x) * 3 + 3];
    let white_in =
        |x0: usize, x1: usize| (0..band).any(|y| (x0..x1).any(|x| px(x, y) == [255, 255, 255]));
    assert!(white_in(0, w / 2), "left label missing");
    assert!(white_in(w / 2, w), "right label missing");
    assert!((0..w).any(|x| px(x, 0) == [0, 0, 0]));
}

#[test]
fn auto_layout_streams_f32_only_with_ring_aware_kernels() {
    // The generic kernels have no ring-aware depthwise kernel: f32 runs in tiles (stripes
    // took 1.6-1.7x as long as tiles on AVX2 without one), int8 in stripes (twice as fast as
    // tiles there). The AVX2 kernels have one: f32 streams (0.5x the time of tiles).
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let mut cases = vec![
        ("pmrid.rnm", "generic", false),
        ("pmrid-int8.rnm", "generic", true),
    ];
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        cases.push(("pmrid.rnm", "avx2", true));
    }
    for (model, isa, streamed) in cases {
        let out = bin()
            .args(["bench", "--isa", isa, "--width", "128", "--height", "128"])
            .args(["--runs", "1", "--threads", "1", "--no-header", "--model"])
            .arg(models.join(model))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            text.contains("| stripe "),
            streamed,
            "{model} at {isa}: {text}"
        );
    }
}
