//! Shared helpers of the rawnr-calib integration tests: a simulated calibration shoot
//! written as DNGs, and running the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal};
use rawnr_core::bayer::{CfaPhase, Levels};
use rawnr_io::dng::{self, Compression, DngFrame, FrameSpec};

/// The IMX766 calibration (HuiiJi/AISP YAML): k(ISO) linear, read variance quadratic,
/// normalised by 1023 - black.
pub const K_SHOT: [f64; 2] = [2.4598681725217965e-06, 0.007517507661309485];
/// Read-noise variance curve, highest power first.
pub const B_READ: [f64; 3] = [
    -4.5082530907305884e-11,
    3.858157436949619e-07,
    -5.107429651507006e-05,
];
/// ISOs of the simulated shoot (those of the YAML).
pub const ISOS: [u32; 5] = [200, 500, 1000, 2500, 6400];
/// 10-bit sensor levels.
pub const BLACK: f64 = 64.0;
/// White level.
pub const WHITE: f64 = 1023.0;
/// Frame side (a 4 x 4 chart of flat patches).
pub const SIDE: usize = 1024;
/// Patch side.
pub const PATCH: usize = 256;
/// Patch levels (normalised, green): black patch to a nearly white one that clips.
pub const LEVELS: [f64; 16] = [
    0.0, 0.003, 0.006, 0.01, 0.015, 0.02, 0.03, 0.045, 0.06, 0.08, 0.11, 0.15, 0.22, 0.35, 0.55,
    0.97,
];
/// Channel gains R, Gr, Gb, B (the target is not neutral for the sensor).
pub const GAINS: [f64; 4] = [0.7, 1.0, 1.0, 0.85];
/// CFA phase of the simulated sensor.
pub const CFA: CfaPhase = CfaPhase::Grbg;

/// `(k, sigma2)` of the truth at `iso` (normalised).
pub fn truth(iso: u32) -> (f64, f64) {
    let i = iso as f64;
    (
        K_SHOT[0] * i + K_SHOT[1],
        (B_READ[0] * i + B_READ[1]) * i + B_READ[2],
    )
}

/// Read-noise variance the simulated data really have: sigma2 plus rounding to integers
/// (1/12 DN^2).
pub fn truth_sigma2_with_rounding(iso: u32) -> f64 {
    let r = WHITE - BLACK;
    truth(iso).1 + 1.0 / (12.0 * r * r)
}

/// A hot pixel: position, offset (DN) and extra temporal noise (DN rms).
#[derive(Debug, Clone, Copy)]
pub struct Hot {
    /// Column.
    pub x: usize,
    /// Row.
    pub y: usize,
    /// Offset above black, DN.
    pub offset: f64,
    /// Temporal noise, DN rms.
    pub std: f64,
}

/// Sensor defects and extra noise of a simulation.
#[derive(Debug, Clone, Default)]
pub struct Defects {
    /// Temporal row noise as a fraction of the read-noise standard deviation.
    pub row_rel: f64,
    /// Hot pixels.
    pub hot: Vec<Hot>,
}

/// Random hot pixels away from each other.
pub fn hot_pixels(rng: &mut StdRng, n: usize) -> Vec<Hot> {
    let mut v: Vec<Hot> = Vec::new();
    while v.len() < n {
        let (x, y) = (rng.random_range(0..SIDE), rng.random_range(0..SIDE));
        if v.iter().all(|h| h.x.abs_diff(x) + h.y.abs_diff(y) > 8) {
            v.push(Hot {
                x,
                y,
                offset: rng.random_range(300.0..600.0),
                std: 30.0,
            });
        }
    }
    v.sort_by_key(|h| (h.y, h.x));
    v
}

fn channel_at(x: usize, y: usize) -> usize {
    CFA.channels()[(y % 2) * 2 + x % 2]
}

/// One frame: `y = black + R (k Poisson(x / k) + N(0, sigma2)) + row offset`, rounded and
/// clipped to [0, white]; `dark` frames have x = 0 everywhere.
pub fn simulate(rng: &mut StdRng, iso: u32, dark: bool, d: &Defects) -> Vec<u16> {
    let (k, s2) = truth(iso);
    let r = WHITE - BLACK;
    let sd = s2.sqrt();
    // One Poisson sampler per (patch, channel).
    let mut pois: Vec<Option<Poisson<f64>>> = Vec::new();
    for lvl in LEVELS {
        for g in GAINS {
            let lam = lvl * g / k;
            pois.push((lam > 0.0).then(|| Poisson::new(lam).expect("valid lambda")));
        }
    }
    let mut out = vec![0u16; SIDE * SIDE];
    for y in 0..SIDE {
        let row_off = if d.row_rel > 0.0 {
            d.row_rel * sd * r * rng.sample::<f64, _>(StandardNormal)
        } else {
            0.0
        };
        for x in 0..SIDE {
            let c = channel_at(x, y);
            let patch = (y / PATCH) * (SIDE / PATCH) + x / PATCH;
            let shot = match (&pois[patch * 4 + c], dark) {
                (Some(p), false) => k * p.sample(rng),
                _ => 0.0,
            };
            let n: f64 = rng.sample(StandardNormal);
            let v = BLACK + r * (shot + sd * n) + row_off;
            out[y * SIDE + x] = v.round().clamp(0.0, WHITE) as u16;
        }
    }
    for h in &d.hot {
        let n: f64 = rng.sample(StandardNormal);
        let i = h.y * SIDE + h.x;
        out[i] = (out[i] as f64 + h.offset + h.std * n)
            .round()
            .clamp(0.0, WHITE) as u16;
    }
    out
}

/// The DNG template (a real Canon DNG from the repository's fixtures).
pub fn template() -> DngFrame {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tinydng/colorchart_crop.dng");
    dng::read(&p).expect("template DNG")
}

/// Writes `data` as a DNG of the simulated sensor.
pub fn write_dng(
    t: &DngFrame,
    path: &Path,
    w: usize,
    h: usize,
    iso: Option<u32>,
    exposure_s: f64,
    data: Vec<u16>,
) {
    let spec = FrameSpec {
        width: w,
        height: h,
        cfa: CFA,
        levels: Levels::uniform(BLACK as f32, WHITE as f32),
        iso,
        exposure_s: Some(exposure_s),
        make: "Sony".into(),
        model: "IMX766 simulated".into(),
    };
    let f = t.synthetic(&spec, data.clone()).expect("synthetic frame");
    dng::write(path, &f, &data, None, "rawnr-calib test", Compression::None).expect("write DNG");
}

/// A fresh empty folder for one test.
pub fn workdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("calib-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A simulated shoot: `frames` flats per ISO (one exposure each) and, at every ISO,
/// `darks` dark frames (same exposure). Returns (flat paths, dark sets).
pub fn shoot(
    dir: &Path,
    seed: u64,
    frames: usize,
    darks: usize,
    d: &Defects,
) -> (Vec<PathBuf>, Vec<Vec<PathBuf>>) {
    let t = template();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut flats = Vec::new();
    let mut sets = Vec::new();
    for iso in ISOS {
        for f in 0..frames {
            let p = dir.join(format!("flat_iso{iso}_{f}.dng"));
            let data = simulate(&mut rng, iso, false, d);
            write_dng(&t, &p, SIDE, SIDE, Some(iso), 0.01, data);
            flats.push(p);
        }
        let mut set = Vec::new();
        for f in 0..darks {
            let p = dir.join(format!("dark_iso{iso}_{f}.dng"));
            let data = simulate(&mut rng, iso, true, d);
            write_dng(&t, &p, SIDE, SIDE, Some(iso), 0.01, data);
            set.push(p);
        }
        if !set.is_empty() {
            sets.push(set);
        }
    }
    (flats, sets)
}

/// A file of the shared real data (`<repo>/../shared/data`).
pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel)
}

/// Runs the binary.
pub fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rawnr-calib"))
        .args(args)
        .output()
        .expect("run rawnr-calib")
}

/// Runs the binary with string arguments.
pub fn run_s<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let a: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_ref()).collect();
    run(&a)
}

/// Asserts success and returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "rawnr-calib failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a clean failure: exit code 1, one error line on stderr containing every part of
/// `needles`, no panic. Returns the line.
pub fn fails(o: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected exit 1, got {:?}: {err}",
        o.status
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "`{}` lacks `{n}`", lines[0]);
    }
    lines[0].to_string()
}
