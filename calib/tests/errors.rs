//! Bad input ends with one clear error line naming the file and the reason, exit code 1,
//! never a panic.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

const W: usize = 128;

/// Small flat frames: level `x` everywhere, with noise.
fn frame(dir: &Path, name: &str, iso: Option<u32>, x: f64, w: usize, exposure: f64) -> PathBuf {
    let t = template();
    let mut rng = StdRng::seed_from_u64(name.len() as u64);
    let full = simulate(&mut rng, iso.unwrap_or(800), x == 0.0, &Defects::default());
    let mut data = Vec::with_capacity(w * w);
    for y in 0..w {
        data.extend_from_slice(&full[y * SIDE + 300..y * SIDE + 300 + w]);
    }
    if x >= 1.0 {
        data.iter_mut().for_each(|v| *v = WHITE as u16);
    }
    let p = dir.join(name);
    write_dng(&t, &p, w, w, iso, exposure, data);
    p
}

#[test]
fn dark_sets_need_two_frames_one_iso_one_size() {
    let dir = workdir("err-darks");
    let a = frame(&dir, "a.dng", Some(800), 0.0, W, 0.01);
    let b = frame(&dir, "b.dng", Some(1600), 0.0, W, 0.01);
    let c = frame(&dir, "c.dng", Some(800), 0.0, 96, 0.01);
    let d = frame(&dir, "d.dng", Some(800), 0.0, W, 0.02);
    let e = frame(&dir, "e.dng", Some(800), 0.0, W, 0.01);
    fails(
        &run_s(&["darks".as_ref(), a.as_os_str()]),
        &["a.dng", "at least 2"],
    );
    fails(
        &run_s(&["darks".as_ref(), a.as_os_str(), b.as_os_str()]),
        &["b.dng", "mixed ISOs"],
    );
    fails(
        &run_s(&["darks".as_ref(), a.as_os_str(), c.as_os_str()]),
        &["c.dng", "size"],
    );
    fails(
        &run_s(&["darks".as_ref(), a.as_os_str(), d.as_os_str()]),
        &["d.dng", "mixed exposures"],
    );
    // The same rules inside `fit`.
    let o = dir.join("p.json");
    fails(
        &run_s(&[
            "fit".as_ref(),
            "-q".as_ref(),
            "--flats".as_ref(),
            a.as_os_str(),
            "--darks".as_ref(),
            a.as_os_str(),
            b.as_os_str(),
            "-o".as_ref(),
            o.as_os_str(),
        ]),
        &["b.dng", "mixed ISOs"],
    );
    let out = ok(&run_s(&["darks".as_ref(), a.as_os_str(), e.as_os_str()]));
    assert!(out.contains("hot pixels"), "{out}");
    assert!(!o.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flat_sets_reject_saturation_mixed_sizes_and_missing_iso() {
    let dir = workdir("err-flats");
    let f1 = frame(&dir, "f1.dng", Some(800), 0.3, W, 0.01);
    let f2 = frame(&dir, "f2.dng", Some(800), 0.3, W, 0.01);
    let sat = frame(&dir, "sat.dng", Some(800), 1.0, W, 0.01);
    let small = frame(&dir, "small.dng", Some(800), 0.3, 96, 0.01);
    let no_iso = frame(&dir, "noiso.dng", None, 0.3, W, 0.01);
    let o = dir.join("p.json");
    let fit = |files: &[&Path]| {
        let mut a: Vec<&std::ffi::OsStr> = vec!["fit".as_ref(), "-q".as_ref(), "--flats".as_ref()];
        a.extend(files.iter().map(|p| p.as_os_str()));
        a.extend(["-o".as_ref(), o.as_os_str()]);
        run(&a)
    };
    fails(&fit(&[&f1, &sat]), &["sat.dng", "saturated"]);
    fails(&fit(&[&f1, &small]), &["small.dng", "size"]);
    fails(&fit(&[&f1, &no_iso]), &["noiso.dng", "no ISO"]);
    // One level only: no line to fit.
    fails(
        &fit(&[&f1, &f2]),
        &["ISO 800", "fewer than two usable flat levels"],
    );
    // Missing and non-raw files.
    let missing = dir.join("missing.dng");
    fails(&fit(&[&f1, &missing]), &["missing.dng"]);
    let junk = dir.join("junk.dng");
    std::fs::write(&junk, b"this is not a raw file at all").expect("write");
    fails(&fit(&[&junk]), &["junk.dng", "not a DNG"]);
    // A PGM needs its CFA and levels.
    let pgm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/halide");
    if let Some(p) = std::fs::read_dir(&pgm).ok().and_then(|mut d| {
        d.find_map(|e| {
            e.ok()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pgm"))
        })
    }) {
        fails(
            &run_s(&["estimate".as_ref(), p.as_os_str()]),
            &[".pgm", "--cfa"],
        );
    }
    // Bad options.
    fails(
        &run_s(&[
            "fit", "-q", "--flats", "x.dng", "--roi", "1,2,3", "-o", "y.json",
        ]),
        &["--roi 1,2,3"],
    );
    fails(
        &run_s(&[
            "fit".as_ref(),
            "-q".as_ref(),
            "--flats".as_ref(),
            f1.as_os_str(),
            f2.as_os_str(),
            "--roi".as_ref(),
            "0,0,4000,8".as_ref(),
            "-o".as_ref(),
            o.as_os_str(),
        ]),
        &["f1.dng", "outside"],
    );
    assert!(!o.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn profiles_and_tagging_refuse_bad_input() {
    let dir = workdir("err-tag");
    let f = frame(&dir, "f.dng", Some(800), 0.3, W, 0.01);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"format\": \"rawnr-noise-profile\", \"version\": 7, \"k\": [0, 1], \"sigma2\": [0, 0, 1]}").expect("write");
    fails(
        &run_s(&["show".as_ref(), bad.as_os_str()]),
        &["bad.json", "version 7"],
    );
    let notjson = dir.join("notjson.json");
    std::fs::write(&notjson, "not json").expect("write");
    fails(
        &run_s(&["show".as_ref(), notjson.as_os_str()]),
        &["notjson.json", "not a noise profile"],
    );
    let good = dir.join("good.json");
    ok(&run_s(&[
        "import".as_ref(),
        "--yaml".as_ref(),
        shared("HuiiJi_AISP/sensor_profile_IMX766.yaml").as_os_str(),
        "-o".as_ref(),
        good.as_os_str(),
    ]));
    // Existing output without --overwrite, output = input, bad profile, no ISO.
    fails(
        &run_s(&[
            "import".as_ref(),
            "--yaml".as_ref(),
            "x.yaml".as_ref(),
            "-o".as_ref(),
            good.as_os_str(),
        ]),
        &["good.json", "--overwrite"],
    );
    let same = dir.join(".").join("f.dng");
    fails(
        &run_s(&[
            "tag".as_ref(),
            f.as_os_str(),
            same.as_os_str(),
            "--profile".as_ref(),
            good.as_os_str(),
            "--overwrite".as_ref(),
        ]),
        &["f.dng", "output is the input"],
    );
    let out = dir.join("out.dng");
    fails(
        &run_s(&[
            "tag".as_ref(),
            f.as_os_str(),
            out.as_os_str(),
            "--profile".as_ref(),
            bad.as_os_str(),
        ]),
        &["bad.json"],
    );
    let no_iso = frame(&dir, "noiso.dng", None, 0.3, W, 0.01);
    fails(
        &run_s(&[
            "tag".as_ref(),
            no_iso.as_os_str(),
            out.as_os_str(),
            "--profile".as_ref(),
            good.as_os_str(),
        ]),
        &["noiso.dng", "--iso"],
    );
    assert!(!out.exists());
    // Unknown darktable camera: the error lists what exists.
    let dt = shared("darktable/noiseprofiles.json");
    fails(
        &run_s(&[
            "import".as_ref(),
            "--darktable".as_ref(),
            dt.as_os_str(),
            "--maker".as_ref(),
            "OnePlus".as_ref(),
            "--model".as_ref(),
            "Nope".as_ref(),
            "-o".as_ref(),
            "x.json".as_ref(),
        ]),
        &["noiseprofiles.json", "\"Nope\"", "ONEPLUS A6003"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
