//! Human-readable summaries of profiles and dark reports (`rawnr-calib show`).

use std::fmt::Write;

use crate::darks::DarkReport;
use crate::profile::{ChannelPoint, Curve, Profile};

fn curve(c: &Curve) -> String {
    format!(
        "k(ISO) = {:.6e} ISO + {:.6e}; sigma2(ISO) = {:.6e} ISO^2 + {:.6e} ISO + {:.6e}",
        c.k[0], c.k[1], c.sigma2[0], c.sigma2[1], c.sigma2[2]
    )
}

fn se(v: Option<f64>) -> String {
    v.map_or(String::new(), |s| format!(" +-{s:.1e}"))
}

fn point_line(out: &mut String, name: &str, p: &ChannelPoint) {
    let _ = writeln!(
        out,
        "    {name:<3} k = {:.5e}{:<10} sigma2 = {:.5e}{:<10} curve residual k {:+.2}%, sigma2 {:+.2}%{}",
        p.k,
        se(p.k_se),
        p.sigma2,
        se(p.sigma2_se),
        100.0 * p.k_curve_residual,
        100.0 * p.sigma2_curve_residual,
        if p.cells > 0 {
            format!(
                "; {} cells ({} rejected), chi2/dof {:.2}",
                p.cells,
                p.rejected,
                p.chi2_dof.unwrap_or(f64::NAN)
            )
        } else {
            String::new()
        }
    );
}

/// Describes a profile.
pub fn describe(p: &Profile) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} v{} ({})",
        p.noise.format, p.noise.version, p.noise.units
    );
    let _ = writeln!(
        out,
        "sensor: {}   source: {}",
        p.noise.sensor, p.noise.source
    );
    if let (Some(b), Some(w)) = (p.noise.black, p.noise.white) {
        let _ = writeln!(
            out,
            "levels: black R {} Gr {} Gb {} B {}, white {}",
            b[0], b[1], b[2], b[3], w
        );
    } else if let Some(w) = p.noise.white {
        let _ = writeln!(out, "levels: white {w}");
    }
    if let Some(c) = &p.noise.cfa {
        let _ = writeln!(out, "cfa: {c}");
    }
    let _ = writeln!(out, "pooled: {}", curve(&p.noise.pooled()));
    if let Some(c) = &p.noise.channels {
        let _ = writeln!(out, "R:      {}", curve(&c.r));
        let _ = writeln!(out, "G:      {}", curve(&c.g));
        let _ = writeln!(out, "B:      {}", curve(&c.b));
    }
    let f = &p.fit;
    let _ = writeln!(
        out,
        "fit: k degree {}, sigma2 degree {}, weights {}; rms curve residual k {:.2}%, sigma2 {:.2}%",
        f.k_degree,
        f.sigma2_degree,
        f.iso_weighting,
        100.0 * f.k_rms_residual,
        100.0 * f.sigma2_rms_residual
    );
    if !f.estimator.is_empty() {
        let _ = writeln!(out, "estimator: {}", f.estimator);
    }
    for pt in &p.points {
        let _ = writeln!(
            out,
            "ISO {}{}:",
            pt.iso,
            if pt.frames > 0 {
                format!(" ({} frames)", pt.frames)
            } else {
                String::new()
            }
        );
        point_line(&mut out, "all", &pt.all);
        point_line(&mut out, "R", &pt.r);
        point_line(&mut out, "G", &pt.g);
        point_line(&mut out, "B", &pt.b);
        if let Some(r) = pt.row_noise_var {
            let _ = writeln!(
                out,
                "    row noise variance (excluded from sigma2): R {:.3e} G {:.3e} B {:.3e}",
                r[0], r[1], r[2]
            );
        }
    }
    for n in &f.notes {
        let _ = writeln!(out, "note: {n}");
    }
    for d in &p.darks {
        out.push_str(&describe_darks(d));
    }
    out
}

/// Describes a dark-frame report.
pub fn describe_darks(d: &DarkReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "darks: {} frames, ISO {}, exposure {}, {}x{}, white {}",
        d.files.len(),
        d.iso.map_or("?".into(), |i| i.to_string()),
        d.exposure_s.map_or("?".into(), |e| format!("{e} s")),
        d.size[0],
        d.size[1],
        d.white
    );
    for c in &d.channels {
        let _ = writeln!(
            out,
            "  {:<2} black {:.3} (file {}), read var {:.4} DN^2 = {:.4e} normalised (temporal incl. lines {:.4}); rows std {:.3} temporal {:.3} excess {:.3} DN; cols std {:.3} temporal {:.3} excess {:.3} DN; hot {}",
            c.channel,
            c.black_dn,
            c.file_black_dn,
            c.read_var_dn2,
            c.read_var,
            c.temporal_var_dn2,
            c.row.std_dn,
            c.row.temporal_std_dn,
            c.row.excess_std_dn,
            c.col.std_dn,
            c.col.temporal_std_dn,
            c.col.excess_std_dn,
            c.hot_pixels
        );
    }
    let shown: Vec<String> = d
        .hot_positions
        .iter()
        .take(20)
        .map(|p| format!("({},{})", p[0], p[1]))
        .collect();
    let _ = writeln!(
        out,
        "  hot pixels (> {} robust sigma): {}{}{}",
        d.hot_sigma,
        d.hot_count,
        if shown.is_empty() { "" } else { " at x,y " },
        shown.join(" ")
    );
    if d.hot_count > shown.len() && !shown.is_empty() {
        let _ = writeln!(out, "  ... {} more in the JSON", d.hot_count - shown.len());
    }
    for n in &d.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    out
}
