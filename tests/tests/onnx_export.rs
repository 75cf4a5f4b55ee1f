//! ONNX export: every exported model passes `onnx.checker` (full check), and ONNX Runtime
//! computes what the native engine computes: PMRID within 1e-4 of full scale in fp32, random
//! models covering every op, fp16 within a bounded error. Needs python3 with onnx and
//! onnxruntime (`.ci/test` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use rawnr_core::format::Model;
use rawnr_engine::graph::Engine;
use rawnr_onnx::{export, Precision};
use rawnr_tests::*;

fn tool(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(repo_root().join("tests/python/onnx_tool.py"))
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "onnx_tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rawnr-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn write_f32(path: &Path, data: &[f32]) {
    std::fs::write(
        path,
        data.iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Native output and ONNX Runtime output of `bytes` (a .rnm) exported at `precision`.
fn both(
    bytes: &[u8],
    precision: Precision,
    h: usize,
    w: usize,
    input: &[f32],
    name: &str,
) -> (Vec<f32>, Vec<f32>) {
    let words = aligned(bytes);
    let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
    let onnx = export(&m, precision).unwrap();
    let path = tmp(&format!("{name}.onnx"));
    std::fs::write(&path, &onnx).unwrap();
    let check = tool(&["check", path.to_str().unwrap()]);
    assert!(check.contains("\"opset\": [17]"), "{check}");
    let e = Engine::new(m);
    let plan = e.plan(h, w).unwrap();
    let mut scratch = vec![0f32; plan.scratch_len];
    scratch[plan.range(0, &plan.shapes[0])].copy_from_slice(input);
    e.run(&plan, &plan.shapes, &mut scratch).unwrap();
    let ov = m.info().output_value as usize;
    let native = scratch[plan.range(ov, &plan.shapes[ov])].to_vec();
    let (i, o) = (tmp(&format!("{name}.in")), tmp(&format!("{name}.out")));
    write_f32(&i, input);
    tool(&[
        "run",
        path.to_str().unwrap(),
        i.to_str().unwrap(),
        o.to_str().unwrap(),
        &h.to_string(),
        &w.to_string(),
    ]);
    (native, read_f32(&o))
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn pmrid_fp32_and_fp16_match_the_native_engine() {
    let bytes = std::fs::read(repo_root().join("models/pmrid.rnm")).unwrap();
    let (h, w) = (96, 160);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    // Network input range: normalised signal times the input scale 256.
    let input: Vec<f32> = (0..4 * h * w)
        .map(|_| rng.random_range(0.0..200.0))
        .collect();
    let (native, ort32) = both(&bytes, Precision::F32, h, w, &input, "pmrid32");
    let full_scale = 256.0;
    let d32 = max_abs(&native, &ort32);
    println!(
        "PMRID fp32: max |native - ORT| = {d32:.3e} ({:.2e} of full scale)",
        d32 / full_scale
    );
    assert!(d32 <= 1e-4 * full_scale, "fp32 parity {d32}");
    let (_, ort16) = both(&bytes, Precision::F16, h, w, &input, "pmrid16");
    let d16 = max_abs(&native, &ort16);
    let mean16 = native
        .iter()
        .zip(&ort16)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / native.len() as f32;
    println!(
        "PMRID fp16: max |native - ORT| = {d16:.3e}, mean {mean16:.3e} ({:.2e} of full scale)",
        d16 / full_scale
    );
    assert!(
        d16 <= 2e-3 * full_scale && mean16 <= 1e-4 * full_scale,
        "fp16 error {d16} / {mean16}"
    );
}

#[test]
fn exported_fp32_pmrid_equals_the_independent_reference_onnx() {
    // The shared reference ONNX was built from the .npz by a separate script: our export of the
    // imported model must compute the same function.
    let bytes = std::fs::read(repo_root().join("models/pmrid.rnm")).unwrap();
    let words = aligned(&bytes);
    let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
    let ours = tmp("ours.onnx");
    std::fs::write(&ours, export(&m, Precision::F32).unwrap()).unwrap();
    let (h, w) = (64, 96);
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let input: Vec<f32> = (0..4 * h * w)
        .map(|_| rng.random_range(0.0..250.0))
        .collect();
    let i = tmp("ref.in");
    write_f32(&i, &input);
    let (a, b) = (tmp("ours.out"), tmp("ref.out"));
    let reference = shared_data().join("PMRID/pmrid_reference.onnx");
    tool(&[
        "run",
        ours.to_str().unwrap(),
        i.to_str().unwrap(),
        a.to_str().unwrap(),
        &h.to_string(),
        &w.to_string(),
    ]);
    tool(&[
        "run",
        reference.to_str().unwrap(),
        i.to_str().unwrap(),
        b.to_str().unwrap(),
        &h.to_string(),
        &w.to_string(),
    ]);
    let d = max_abs(&read_f32(&a), &read_f32(&b));
    assert!(
        d <= 1e-3,
        "exported PMRID differs from the reference ONNX by {d}"
    );
}

#[test]
fn random_models_with_every_op_export_exactly() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for case in 0..4 {
        let bytes = random_model(&mut rng);
        let words = aligned(&bytes);
        let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
        let mult = m.info().size_multiple as usize;
        let (h, w) = (
            mult * rng.random_range(2..10),
            mult * rng.random_range(2..10),
        );
        let input: Vec<f32> = (0..4 * h * w)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let (native, ort) = both(&bytes, Precision::F32, h, w, &input, &format!("rand{case}"));
        let scale = native.iter().fold(0f32, |a, x| a.max(x.abs()));
        let d = max_abs(&native, &ort);
        assert!(
            d <= 1e-4 * scale.max(1.0),
            "case {case}: {d} at scale {scale}"
        );
    }
}
