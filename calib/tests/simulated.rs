//! Correctness of the calibration on a simulated shoot whose truth is known: the IMX766
//! profile, Poisson-Gaussian noise drawn exactly, written as DNGs and fitted by the binary.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rawnr_calib::profile::{ChannelPoint, Profile};

/// Flat frames per ISO.
const FRAMES: usize = 6;
/// Dark frames per ISO.
const DARKS: usize = 4;
/// Seed of a test's simulation; `CALIB_SEED` shifts every seed (to rerun with other noise).
fn seed(base: u64) -> u64 {
    base + std::env::var("CALIB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Removes a test's folder unless `CALIB_KEEP` is set (to look at the DNGs and plots).
fn cleanup(dir: &Path) {
    if std::env::var_os("CALIB_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Fitted k and sigma2 must be within this relative error of the truth.
const TOL: f64 = 0.03;

fn rel(a: f64, b: f64) -> f64 {
    (a - b) / b
}

/// Checks every ISO point and curve of `p` against the truth; returns the worst errors.
fn check_profile(p: &Profile, label: &str) -> (f64, f64) {
    assert_eq!(p.points.len(), ISOS.len());
    let (mut wk, mut ws) = (0.0f64, 0.0f64);
    let ch = p.noise.channels.expect("channel curves");
    for (pt, iso) in p.points.iter().zip(ISOS) {
        assert_eq!(pt.iso, iso as f64);
        let (k, _) = truth(iso);
        let s2 = truth_sigma2_with_rounding(iso);
        let named: [(&str, &ChannelPoint); 4] =
            [("all", &pt.all), ("R", &pt.r), ("G", &pt.g), ("B", &pt.b)];
        let mut line = format!("{label} ISO {iso:>4}:");
        for (name, c) in named {
            let (ek, es) = (rel(c.k, k), rel(c.sigma2, s2));
            line += &format!(" {name} k {:+.2}% s2 {:+.2}%", 100.0 * ek, 100.0 * es);
            assert!(ek.abs() <= TOL && es.abs() <= TOL, "{line}: beyond 3%");
            wk = wk.max(ek.abs());
            ws = ws.max(es.abs());
        }
        for (name, curve) in [
            ("curve", p.noise.pooled()),
            ("R curve", ch.r),
            ("G curve", ch.g),
            ("B curve", ch.b),
        ] {
            let (kc, sc) = curve.at(iso as f64);
            let (ek, es) = (rel(kc, k), rel(sc, s2));
            if name == "curve" {
                line += &format!(" | curve k {:+.2}% s2 {:+.2}%", 100.0 * ek, 100.0 * es);
            }
            assert!(
                ek.abs() <= TOL && es.abs() <= TOL,
                "{line}: {name} beyond 3% ({ek} {es})"
            );
            wk = wk.max(ek.abs());
            ws = ws.max(es.abs());
        }
        eprintln!("{line}");
    }
    (wk, ws)
}

/// `--roi` rectangles: the middle 192 x 192 of every patch.
fn rois() -> Vec<String> {
    let n = SIDE / PATCH;
    (0..n * n)
        .map(|i| format!("{},{},192,192", (i % n) * PATCH + 32, (i / n) * PATCH + 32))
        .collect()
}

fn fit(dir: &Path, flats: &[PathBuf], darks: &[Vec<PathBuf>]) -> Profile {
    fit_with(dir, flats, darks, &[], "auto")
}

/// Runs `fit` (with `extra` options) and reads the profile back.
fn fit_with(
    dir: &Path,
    flats: &[PathBuf],
    darks: &[Vec<PathBuf>],
    rois: &[String],
    name: &str,
) -> Profile {
    let out = dir.join(format!("{name}.json"));
    let plot = dir.join(format!("{name}.png"));
    let mut args: Vec<&std::ffi::OsStr> = vec!["fit".as_ref(), "-q".as_ref(), "--flats".as_ref()];
    args.extend(flats.iter().map(|p| p.as_os_str()));
    for set in darks {
        args.push("--darks".as_ref());
        args.extend(set.iter().map(|p| p.as_os_str()));
    }
    for r in rois {
        args.extend([
            std::ffi::OsStr::new("--roi"),
            std::ffi::OsStr::new(r.as_str()),
        ]);
    }
    args.extend([
        "-o".as_ref(),
        out.as_os_str(),
        "--plot".as_ref(),
        plot.as_os_str(),
    ]);
    let stdout = ok(&run(&args));
    assert!(stdout.contains("ISO 6400"), "{stdout}");
    let png = std::fs::read(&plot).expect("plot written");
    assert!(png.starts_with(b"\x89PNG"));
    Profile::read(&out).expect("profile reads back")
}

/// Checks black level and read noise of every dark set; returns the worst read-noise error.
fn check_darks(p: &Profile, label: &str, row_rel: f64) -> f64 {
    assert_eq!(p.darks.len(), ISOS.len());
    let r = WHITE - BLACK;
    let mut worst = 0.0f64;
    for (d, iso) in p.darks.iter().zip(ISOS) {
        assert_eq!(d.iso, Some(iso));
        let s2_dn = truth_sigma2_with_rounding(iso) * r * r;
        // The black level's standard error: pixel noise and row offsets averaged over the
        // frames and rows of a channel.
        let n = (d.files.len() * SIDE / 2) as f64;
        let black_tol =
            5.0 * ((s2_dn / (n * SIDE as f64 / 2.0)) + row_rel * row_rel * s2_dn / n).sqrt();
        let mut line = format!("{label} darks ISO {iso:>4}:");
        for c in &d.channels {
            let e = rel(c.read_var_dn2, s2_dn);
            line += &format!(
                " {} black {:.3} read var {:+.2}%",
                c.channel,
                c.black_dn,
                100.0 * e
            );
            assert!(
                (c.black_dn - BLACK).abs() < black_tol,
                "{line}: black beyond {black_tol:.3}"
            );
            assert!(e.abs() < TOL, "{line}");
            worst = worst.max(e.abs());
        }
        eprintln!("{line}");
    }
    worst
}

#[test]
fn clean_shoot_recovers_the_imx766_profile_within_3_percent() {
    let dir = workdir("clean");
    let (flats, darks) = shoot(&dir, seed(7), FRAMES, DARKS, &Defects::default());
    let p = fit(&dir, &flats, &darks);
    let (wk, ws) = check_profile(&p, "clean");
    let wd = check_darks(&p, "clean", 0.0);
    eprintln!(
        "clean: worst |error| k {:.2}%, sigma2 {:.2}%, dark read variance {:.2}%",
        100.0 * wk,
        100.0 * ws,
        100.0 * wd
    );
    for d in &p.darks {
        assert_eq!(d.hot_count, 0);
        for c in &d.channels {
            assert!(c.row.excess_std_dn < 0.2 * c.read_var_dn2.sqrt(), "{c:?}");
        }
    }
    // No row noise in the flats either.
    for (pt, iso) in p.points.iter().zip(ISOS) {
        let got = pt.row_noise_var.expect("row noise measured");
        assert!(
            got.iter().all(|g| g.abs() < 0.02 * truth(iso).1),
            "ISO {iso}: {got:?}"
        );
    }
    // The saturated patch is rejected, not fitted: no cell near the white level.
    for pt in &p.points {
        for c in [&pt.r, &pt.g, &pt.b] {
            assert!(
                c.samples.iter().all(|s| s[0] < 0.9),
                "ISO {}: a clipped cell was kept",
                pt.iso
            );
        }
    }
    // The same shoot through --roi rectangles (one per patch, inside its borders).
    let roi_p = fit_with(&dir, &flats, &darks, &rois(), "roi");
    let (wk, ws) = check_profile(&roi_p, "clean --roi");
    eprintln!(
        "clean --roi: worst |error| k {:.2}%, sigma2 {:.2}%",
        100.0 * wk,
        100.0 * ws
    );
    // `show` reads it back.
    let o = run_s(&[
        "show".as_ref(),
        dir.join("auto.json").as_os_str(),
        "--iso".as_ref(),
        "800".as_ref(),
    ]);
    let s = ok(&o);
    assert!(s.contains("at ISO 800: pooled k"), "{s}");
    cleanup(&dir);
}

#[test]
fn row_noise_and_hot_pixels_are_reported_and_excluded() {
    let dir = workdir("defects");
    let mut rng = StdRng::seed_from_u64(99);
    let hot = hot_pixels(&mut rng, 12);
    // Row noise std 0.3 x the read noise (9% of its variance): row offsets also enter the
    // cells' mean levels, which only more frames average out, so much stronger row noise
    // would need a bigger shoot for 3% at ISO 200.
    let d = Defects {
        row_rel: 0.3,
        hot: hot.clone(),
    };
    let (flats, darks) = shoot(&dir, seed(11), FRAMES, DARKS, &d);
    let p = fit(&dir, &flats, &darks);
    let (wk, ws) = check_profile(&p, "defects");
    let wd = check_darks(&p, "defects", d.row_rel);
    eprintln!(
        "defects: worst |error| k {:.2}%, sigma2 {:.2}%, dark read variance {:.2}%",
        100.0 * wk,
        100.0 * ws,
        100.0 * wd
    );
    let want: Vec<[usize; 2]> = hot.iter().map(|h| [h.x, h.y]).collect();
    let r = WHITE - BLACK;
    for (rep, iso) in p.darks.iter().zip(ISOS) {
        assert_eq!(rep.hot_count, hot.len(), "ISO {iso}");
        assert_eq!(rep.hot_positions, want, "ISO {iso}");
        // Row noise in the darks (DN).
        let row_dn = d.row_rel * truth(iso).1.sqrt() * r;
        let mut line = format!("defects darks ISO {iso:>4}: row noise truth {row_dn:.2} DN:");
        for c in &rep.channels {
            let e = rel(c.row.excess_std_dn, row_dn);
            line += &format!(" {} {:+.1}%", c.channel, 100.0 * e);
            assert!(e.abs() < 0.1, "{line}");
            assert!(c.col.excess_std_dn < 0.3 * row_dn, "{c:?}");
        }
        eprintln!("{line}");
    }
    // Row noise in the flats at every ISO (normalised variance), excluded from sigma2.
    for (pt, iso) in p.points.iter().zip(ISOS) {
        let want = d.row_rel * d.row_rel * truth(iso).1;
        let got = pt.row_noise_var.expect("row noise measured");
        eprintln!(
            "defects flats ISO {iso:>4}: row noise variance R {:+.1}% G {:+.1}% B {:+.1}%",
            100.0 * rel(got[0], want),
            100.0 * rel(got[1], want),
            100.0 * rel(got[2], want)
        );
        for g in got {
            // A cross-check: the flats see row offsets under much larger shot noise.
            assert!(
                rel(g, want).abs() < 0.25,
                "ISO {iso}: row noise {g} vs {want}"
            );
        }
    }
    cleanup(&dir);
}

#[test]
fn single_frames_per_iso_use_the_spatial_estimator() {
    // One frame per ISO: the variance comes from each cell alone (row and column means
    // removed), and cells that straddle patch borders must fail the flatness test. The
    // simulation has no fixed-pattern noise, so the result is unbiased here, with a sixth of
    // the data: 5%.
    let dir = workdir("single");
    let (flats, darks) = shoot(&dir, seed(23), 1, DARKS, &Defects::default());
    let out = dir.join("single.json");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "fit".as_ref(),
        "--cell".as_ref(),
        "88".as_ref(),
        "--flats".as_ref(),
    ];
    args.extend(flats.iter().map(|p| p.as_os_str()));
    for set in &darks {
        args.push("--darks".as_ref());
        args.extend(set.iter().map(|p| p.as_os_str()));
    }
    args.extend(["-o".as_ref(), out.as_os_str()]);
    let o = run(&args);
    ok(&o);
    let log = String::from_utf8_lossy(&o.stderr);
    let not_flat: usize = log
        .lines()
        .filter_map(|l| l.split(" clipped, ").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(
        not_flat > 20,
        "cells across patch borders must be rejected: {log}"
    );
    let p = Profile::read(&out).expect("profile");
    assert!(p.fit.notes.iter().any(|n| n.contains("single frame")));
    for (pt, iso) in p.points.iter().zip(ISOS) {
        let (k, _) = truth(iso);
        let s2 = truth_sigma2_with_rounding(iso);
        let (ek, es) = (rel(pt.all.k, k), rel(pt.all.sigma2, s2));
        eprintln!(
            "single frame ISO {iso:>4}: k {:+.2}% s2 {:+.2}%",
            100.0 * ek,
            100.0 * es
        );
        assert!(ek.abs() < 0.05 && es.abs() < 0.05, "ISO {iso}: {ek} {es}");
    }
    cleanup(&dir);
}
