//! `--backend ort`: the same tiled pipeline through ONNX Runtime (CPU EP here) gives the native
//! result to within rounding; a provider that cannot register is an error naming it; the bench
//! prints the same table for both backends. Needs `pip install onnxruntime==1.32.0`
//! (`.ci/test` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_denoise-raw"))
}

fn pgm_samples(p: &Path) -> Vec<u16> {
    let b = std::fs::read(p).unwrap();
    let text = String::from_utf8_lossy(&b[..24]).to_string();
    let mut it = text.split_whitespace();
    it.next();
    let w: usize = it.next().unwrap().parse().unwrap();
    let h: usize = it.next().unwrap().parse().unwrap();
    b[b.len() - 2 * w * h..]
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn ort_backend_matches_native_within_rounding() {
    let d = std::env::temp_dir().join(format!("rawnr-ort-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let input = root().join("../shared/data/Halide/bayer_2592_200.pgm");
    let mut outs = Vec::new();
    for backend in ["native", "ort"] {
        let out = d.join(format!("{backend}.pgm"));
        let st = bin()
            .arg(&input)
            .arg(&out)
            .args([
                "--cfa",
                "grbg",
                "--black",
                "25",
                "--white",
                "1023",
                "--iso",
                "3200",
                "--backend",
                backend,
                "--overwrite",
            ])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        outs.push(pgm_samples(&out));
    }
    let (a, b) = (&outs[0], &outs[1]);
    let max = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
    let n = a.iter().zip(b).filter(|(x, y)| x != y).count();
    println!(
        "native vs ORT: max {max} DN, {n} of {} samples differ",
        a.len()
    );
    assert!(max <= 1, "native and ORT differ by {max} DN");
    assert!(n * 1000 < a.len(), "{n} samples differ");
    let input_samples = pgm_samples(&input);
    assert!(
        a.iter().zip(&input_samples).filter(|(x, y)| x != y).count() > a.len() / 4,
        "nothing denoised"
    );
}

#[test]
fn unavailable_execution_provider_is_an_error_naming_it() {
    let d = std::env::temp_dir().join(format!("rawnr-ort-ep-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let out = d.join("out.dng");
    for ep in ["cuda", "tensorrt", "qnn"] {
        let st = bin()
            .arg(root().join("tests/fixtures/tinydng/colorchart_crop.dng"))
            .arg(&out)
            .args(["--iso", "800", "--backend", "ort", "--ep", ep])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&st.stderr);
        assert!(
            !st.status.success(),
            "--ep {ep} succeeded on a machine without it"
        );
        assert!(err.contains(ep), "error does not name {ep}: {err}");
        assert!(!out.exists());
    }
}

#[test]
fn bench_prints_the_same_table_for_both_backends() {
    for backend in ["native", "ort"] {
        let st = bin()
            .args([
                "bench",
                "--width",
                "320",
                "--height",
                "256",
                "--runs",
                "1",
                "--backend",
                backend,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&st.stdout);
        assert!(
            st.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let row = text.lines().last().unwrap();
        assert_eq!(row.matches('|').count(), 13, "{row}");
        assert!(row.contains("320x256"), "{row}");
    }
}
