//! Interop: profiles from the IMX766 YAML, darktable and DNG NoiseProfile tags, and the tag
//! written back into a DNG (read back by rawnr-io).

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rawnr_calib::fitting::{fit_poly, Weighting};
use rawnr_calib::import::parse_sensor_yaml;
use rawnr_calib::Profile;

#[test]
fn imx766_yaml_keeps_its_curves_and_variances() {
    let dir = workdir("imx766");
    let out = dir.join("imx766.json");
    let plot = dir.join("imx766.png");
    let yaml = shared("HuiiJi_AISP/sensor_profile_IMX766.yaml");
    ok(&run_s(&[
        "import".as_ref(),
        "--yaml".as_ref(),
        yaml.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--plot".as_ref(),
        plot.as_os_str(),
    ]));
    let p = Profile::read(&out).expect("profile");
    // (JSON numbers read back to within an ulp.)
    let close = |a: f64, b: f64| ((a - b) / b).abs() < 1e-14;
    assert!(
        p.noise.k.iter().zip(K_SHOT).all(|(&a, b)| close(a, b)),
        "{:?}",
        p.noise.k
    );
    assert!(
        p.noise.sigma2.iter().zip(B_READ).all(|(&a, b)| close(a, b)),
        "{:?}",
        p.noise.sigma2
    );
    assert_eq!(p.noise.white, Some(1023.0));
    assert_eq!(p.points.len(), 5);
    // ISO 1000: read_noise is the variance itself (not squared).
    let pt = &p.points[2];
    assert_eq!(pt.iso, 1000.0);
    assert!(close(pt.g.k, 0.014647829864891899) && close(pt.g.sigma2, 0.0003745931709694413));
    // A plain least-squares refit of the file's points gives the file's curves: the same
    // polynomial fit numpy.polyfit made.
    let text = std::fs::read_to_string(&yaml).expect("yaml");
    let y = parse_sensor_yaml(&text, &yaml).expect("parse");
    let isos: Vec<f64> = y.points.iter().map(|p| p.0).collect();
    let k = fit_poly(
        &isos,
        &y.points.iter().map(|p| p.1).collect::<Vec<_>>(),
        1,
        Weighting::Uniform,
    )
    .expect("fit");
    let r = fit_poly(
        &isos,
        &y.points.iter().map(|p| p.2).collect::<Vec<_>>(),
        2,
        Weighting::Uniform,
    )
    .expect("fit");
    for (a, b) in k.iter().zip(K_SHOT).chain(r.iter().zip(B_READ)) {
        assert!(((a - b) / b).abs() < 1e-9, "{a} vs {b}");
    }
    assert!(std::fs::read(&plot).expect("plot").starts_with(b"\x89PNG"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn darktable_camera_imports_per_channel() {
    let dir = workdir("darktable");
    let out = dir.join("op6.json");
    let dt = shared("darktable/noiseprofiles.json");
    ok(&run_s(&[
        "import".as_ref(),
        "--darktable".as_ref(),
        dt.as_os_str(),
        "--maker".as_ref(),
        "oneplus".as_ref(),
        "--model".as_ref(),
        "ONEPLUS A6003".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]));
    let p = Profile::read(&out).expect("profile");
    assert_eq!(p.noise.sensor, "OnePlus ONEPLUS A6003");
    assert_eq!(p.points.len(), 7);
    let iso100 = &p.points[0];
    assert_eq!(iso100.iso, 100.0);
    assert!((iso100.r.k / 1.68690377957501e-05 - 1.0).abs() < 1e-14);
    assert!((iso100.b.sigma2 / 3.56168148499628e-08 - 1.0).abs() < 1e-14);
    // The curves follow the points (k grows about linearly with ISO on this phone).
    assert!(p.fit.k_rms_residual < 0.1, "{}", p.fit.k_rms_residual);
    let ch = p.noise.channels.expect("channels");
    let (kg, _) = ch.g.at(800.0);
    assert!(((kg - 4.22001034313641e-05) / 4.22001034313641e-05).abs() < 0.05);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tag_writes_the_noise_profile_and_import_reads_it_back() {
    let dir = workdir("tag");
    let prof = dir.join("imx766.json");
    ok(&run_s(&[
        "import".as_ref(),
        "--yaml".as_ref(),
        shared("HuiiJi_AISP/sensor_profile_IMX766.yaml").as_os_str(),
        "-o".as_ref(),
        prof.as_os_str(),
    ]));
    let p = Profile::read(&prof).expect("profile");
    let t = template();
    let mut rng = StdRng::seed_from_u64(5);
    let full = simulate(&mut rng, 800, false, &Defects::default());
    let (w, h) = (160, 120);
    let data: Vec<u16> = (0..h)
        .flat_map(|y| full[y * SIDE..y * SIDE + w].to_vec())
        .collect();
    let input = dir.join("in.dng");
    write_dng(&t, &input, w, h, Some(800), 0.01, data.clone());
    let tagged = dir.join("tagged.dng");
    let s = ok(&run_s(&[
        "tag".as_ref(),
        input.as_os_str(),
        tagged.as_os_str(),
        "--profile".as_ref(),
        prof.as_os_str(),
    ]));
    assert!(s.contains("NoiseProfile at ISO 800"), "{s}");
    let back = rawnr_io::dng::read(&tagged).expect("read tagged");
    let want = p.noise.dng_pairs(800.0).expect("pairs");
    assert_eq!(want.len(), 3);
    assert_eq!(back.noise_profile.as_deref(), Some(&want[..]));
    assert_eq!(back.data, data);
    assert_eq!(back.iso, Some(800));
    let (k, s2) = p.noise.pooled().at(800.0);
    assert!(((want[1].0 - k) / k).abs() < 1e-6 && ((want[1].1 - s2) / s2).abs() < 1e-5);
    // --iso picks another ISO; the output needs --overwrite now.
    fails(
        &run_s(&[
            "tag".as_ref(),
            input.as_os_str(),
            tagged.as_os_str(),
            "--profile".as_ref(),
            prof.as_os_str(),
        ]),
        &["tagged.dng", "--overwrite"],
    );
    ok(&run_s(&[
        "tag".as_ref(),
        input.as_os_str(),
        tagged.as_os_str(),
        "--profile".as_ref(),
        prof.as_os_str(),
        "--iso".as_ref(),
        "3200".as_ref(),
        "--overwrite".as_ref(),
    ]));
    let back = rawnr_io::dng::read(&tagged).expect("read tagged");
    assert_eq!(
        back.noise_profile,
        Some(p.noise.dng_pairs(3200.0).expect("pairs"))
    );
    // Import the tag back: one ISO, so constants (and a note saying so).
    let imported = dir.join("from_dng.json");
    ok(&run_s(&[
        "import".as_ref(),
        "--dng".as_ref(),
        tagged.as_os_str(),
        "--iso".as_ref(),
        "3200".as_ref(),
        "-o".as_ref(),
        imported.as_os_str(),
    ]));
    let q = Profile::read(&imported).expect("profile");
    assert_eq!(q.points.len(), 1);
    // The file's EXIF ISO (800) wins over --iso, which only fills in a missing ISO.
    assert_eq!(q.points[0].iso, 800.0);
    let pairs = p.noise.dng_pairs(3200.0).expect("pairs");
    let close = |a: f64, b: f64| ((a - b) / b).abs() < 1e-14;
    assert!(close(q.points[0].r.k, pairs[0].0) && close(q.points[0].r.sigma2, pairs[0].1));
    assert!(close(q.points[0].b.k, pairs[2].0) && close(q.points[0].b.sigma2, pairs[2].1));
    assert!(
        q.fit.notes.iter().any(|n| n.contains("single ISO")),
        "{:?}",
        q.fit.notes
    );
    assert_eq!(q.noise.black, Some([BLACK; 4]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn profile_keeps_the_fields_denoise_raw_reads() {
    // denoise-raw reads {"format", "version", "k": [f32; 2], "sigma2": [f32; 3]} and ignores
    // the rest: check the written JSON has exactly those at the top level.
    let dir = workdir("cli-format");
    let out = dir.join("p.json");
    ok(&run_s(&[
        "import".as_ref(),
        "--yaml".as_ref(),
        shared("HuiiJi_AISP/sensor_profile_IMX766.yaml").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
    assert_eq!(v["format"], "rawnr-noise-profile");
    assert_eq!(v["version"], 1);
    assert_eq!(v["k"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["sigma2"].as_array().map(Vec::len), Some(3));
    assert!(v["k"][0].is_f64() && v["sigma2"][2].is_f64());
    let _ = std::fs::remove_dir_all(&dir);
}
