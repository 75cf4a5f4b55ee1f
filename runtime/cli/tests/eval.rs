//! `denoise-raw eval`: the quality suite runs end to end on a synthetic frame and its table
//! holds the numbers it should.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn eval_scores_models_on_dead_leaves_and_writes_crops() {
    let dir = std::env::temp_dir().join(format!("rawnr-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let models = format!(
        "{},{}",
        root().join("models/pmrid.rnm").display(),
        root().join("models/pmrid-f16.rnm").display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_denoise-raw"))
        .args([
            "eval",
            "--dead-leaves",
            "1",
            "--crop",
            "192x128",
            "--iso",
            "1600,6400",
        ])
        .args(["--model", &models, "--crops"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("| dead-leaves-0"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    for r in &rows {
        // | frame | profile | ISO | noisy | f32 | f16 | f16 - f32 |
        let psnr = |cell: &str| -> f64 { cell.split('/').next().unwrap().trim().parse().unwrap() };
        let (noisy, f32, f16) = (psnr(r[4]), psnr(r[5]), psnr(r[6]));
        let delta: f64 = r[7].parse().unwrap();
        // At ISO 6400 PMRID gains about 3 dB on dead leaves (little at 1600: hard synthetic
        // edges, low noise).
        if r[3] == "6400" {
            assert!(f32 > noisy + 1.5, "ISO {}: {noisy} -> {f32} dB", r[3]);
        }
        assert!((f16 - f32 - delta).abs() < 0.011, "{r:?}");
        assert!(
            delta.abs() <= 0.02,
            "f16 differs from f32 by {delta} dB: {r:?}"
        );
    }
    for iso in ["1600", "6400"] {
        let png = dir.join(format!("dead-leaves-0-model-iso{iso}.png"));
        assert!(
            std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000),
            "{}",
            png.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_needs_frames_and_rejects_bad_options() {
    for (args, needle) in [
        (vec!["eval"], "--frame"),
        (
            vec!["eval", "--dead-leaves", "1", "--crop", "10x10"],
            "--crop",
        ),
        (vec!["eval", "--dead-leaves", "1", "--iso=-5"], "ISO"),
        (
            vec![
                "eval",
                "--dead-leaves",
                "1",
                "--profile",
                "/nonexistent.json",
            ],
            "nonexistent",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_denoise-raw"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
