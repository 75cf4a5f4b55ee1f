//! Real data: the read noise of the Halide raw strips (10-bit, GRBG, black 25, white 1023)
//! estimated from their darkest flat regions.

mod common;

use common::*;

fn estimate(path: &std::path::Path) -> serde_json::Value {
    let s = ok(&run_s(&[
        "estimate".as_ref(),
        path.as_os_str(),
        "--cfa".as_ref(),
        "grbg".as_ref(),
        "--black".as_ref(),
        "25".as_ref(),
        "--white".as_ref(),
        "1023".as_ref(),
        "--json".as_ref(),
    ]));
    serde_json::from_str(&s).expect("estimate JSON")
}

#[test]
fn halide_strips_give_consistent_plausible_read_noise() {
    let a = shared("Halide/bayer_2592_304.pgm");
    let b = shared("Halide/bayer_2592_200.pgm");
    // The 200-row strip is the first 200 rows of the 304-row one: also check the 104 rows
    // they do not share, an independent piece of the scene.
    let dir = workdir("halide");
    let full = rawnr_io::pgm::read(&a).expect("read strip");
    let w = full.width;
    let rest = rawnr_io::pgm::Pgm {
        width: w,
        height: full.height - 200,
        maxval: full.maxval,
        data: full.data[200 * w..].to_vec(),
    };
    let c = dir.join("rows_200_304.pgm");
    rawnr_io::pgm::write(&c, &rest).expect("write crop");
    let mut stds = Vec::new();
    for p in [&a, &b, &c] {
        let e = estimate(p);
        let std = e["read_std_dn"].as_f64().expect("read_std_dn");
        let used = e["used_cells"].as_u64().expect("used_cells");
        eprintln!(
            "{}: read noise {std:.3} DN rms from {used} dark flat cells (mean level {:.4}, k {:.2e})",
            p.display(),
            e["mean_level"].as_f64().unwrap_or(f64::NAN),
            e["k"].as_f64().unwrap_or(f64::NAN)
        );
        // A 10-bit phone-class sensor: a few DN of read noise.
        assert!((1.5..5.0).contains(&std), "{std}");
        assert!(used >= 50, "{used}");
        stds.push(std);
    }
    assert!((stds[0] / stds[1] - 1.0).abs() < 0.1, "{stds:?}");
    assert!((stds[2] / stds[1] - 1.0).abs() < 0.3, "{stds:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
