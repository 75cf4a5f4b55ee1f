//! Profiles from elsewhere: DNG NoiseProfile tags, darktable's `noiseprofiles.json`, and
//! the IMX766 calibration YAML of HuiiJi/AISP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::calibrate::fit_all_curves;
use crate::error::CalibError;
use crate::fitting::{fit_poly, Weighting};
use crate::frame::{Frame, PgmOptions};
use crate::profile::{
    ChannelPoint, Curve, IsoPoint, NoiseProfile, Profile, FORMAT, UNITS, VERSION,
};

/// Per-ISO R, G, B parameters `(k, sigma2)`.
type RgbPoints = BTreeMap<u64, Vec<[(f64, f64); 3]>>;

fn iso_key(iso: f64) -> u64 {
    (iso * 1000.0).round() as u64
}

/// Builds a profile from per-ISO R, G, B parameters (duplicates averaged; the pooled
/// channel is `(R + 2 G + B) / 4`, the Bayer mix) with curves fitted over ISO.
fn from_points(
    points: &RgbPoints,
    sensor: String,
    source: &str,
    notes: Vec<String>,
) -> Result<Profile, CalibError> {
    let mut pts = Vec::new();
    for (&key, entries) in points {
        let n = entries.len() as f64;
        let avg: [(f64, f64); 3] = std::array::from_fn(|c| {
            (
                entries.iter().map(|e| e[c].0).sum::<f64>() / n,
                entries.iter().map(|e| e[c].1).sum::<f64>() / n,
            )
        });
        let all = (
            (avg[0].0 + 2.0 * avg[1].0 + avg[2].0) / 4.0,
            (avg[0].1 + 2.0 * avg[1].1 + avg[2].1) / 4.0,
        );
        pts.push(IsoPoint {
            iso: key as f64 / 1000.0,
            all: ChannelPoint::bare(all.0, all.1),
            r: ChannelPoint::bare(avg[0].0, avg[0].1),
            g: ChannelPoint::bare(avg[1].0, avg[1].1),
            b: ChannelPoint::bare(avg[2].0, avg[2].1),
            frames: 0,
            row_noise_var: None,
        });
    }
    for p in &pts {
        if !(p.all.k.is_finite() && p.all.k > 0.0 && p.all.sigma2.is_finite()) {
            return Err(CalibError::Fit(format!(
                "{source}: ISO {}: k = {}, sigma2 = {}: not a usable noise model",
                p.iso, p.all.k, p.all.sigma2
            )));
        }
    }
    let (pooled, channels, mut fit) = fit_all_curves(&mut pts, Weighting::Relative)?;
    fit.estimator = format!("imported from {source}");
    fit.notes.splice(0..0, notes);
    Ok(Profile {
        noise: NoiseProfile {
            format: FORMAT.into(),
            version: VERSION,
            sensor,
            source: source.into(),
            units: UNITS.into(),
            k: pooled.k,
            sigma2: pooled.sigma2,
            channels: Some(channels),
            black: None,
            white: None,
            cfa: None,
        },
        fit,
        points: pts,
        darks: Vec::new(),
    })
}

/// Imports the NoiseProfile tags of DNGs (one or several ISOs; one pair for all planes or
/// R, G, B pairs). `iso` is the ISO of files that carry none.
pub fn from_dngs(paths: &[PathBuf], iso: Option<u32>) -> Result<Profile, CalibError> {
    let mut points = RgbPoints::new();
    let mut first: Option<Frame> = None;
    for p in paths {
        let f = Frame::load(p, &PgmOptions::default(), iso)?;
        let np = f
            .noise_profile
            .clone()
            .ok_or_else(|| CalibError::input(p, "no NoiseProfile tag"))?;
        let rgb = match np[..] {
            [a] => [a, a, a],
            [r, g, b] => [r, g, b],
            _ => {
                return Err(CalibError::input(
                    p,
                    format!(
                        "NoiseProfile has {} pairs; expected 1 or 3 (R, G, B)",
                        np.len()
                    ),
                ))
            }
        };
        let iso = f
            .iso
            .ok_or_else(|| CalibError::input(p, "no ISO in the file: pass --iso"))?;
        points.entry(iso_key(iso as f64)).or_default().push(rgb);
        if first.is_none() {
            first = Some(Frame {
                data: Vec::new(),
                ..f
            });
        }
    }
    let Some(f) = first else {
        return Err(CalibError::Usage("no DNG given (--dng)".into()));
    };
    let mut prof = from_points(
        &points,
        f.sensor.clone(),
        "dng",
        vec!["DNG NoiseProfile (S, O) pairs imported as k = S, sigma2 = O".into()],
    )?;
    prof.noise.black = Some(f.levels.black.map(|b| b as f64));
    prof.noise.white = Some(f.levels.white as f64);
    prof.noise.cfa = Some(f.cfa.name().into());
    Ok(prof)
}

fn json_err(path: &Path, what: impl Into<String>) -> CalibError {
    CalibError::input(path, what)
}

/// Imports one camera of darktable's `noiseprofiles.json` (`maker` and `model` matched
/// without regard to case). Its `a`, `b` per ISO are `var = a x + b` for R, G, B with `x`
/// in [0, 1].
pub fn from_darktable(path: &Path, maker: &str, model: &str) -> Result<Profile, CalibError> {
    let text = std::fs::read_to_string(path).map_err(|e| CalibError::input(path, e.to_string()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| json_err(path, format!("not JSON: {e}")))?;
    let makers = v
        .get("noiseprofiles")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            json_err(
                path,
                "no \"noiseprofiles\" list: not a darktable noiseprofiles.json",
            )
        })?;
    let name_of =
        |m: &Value, key: &str| m.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let mk = makers
        .iter()
        .find(|m| name_of(m, "maker").eq_ignore_ascii_case(maker))
        .ok_or_else(|| {
            let names: Vec<String> = makers.iter().map(|m| name_of(m, "maker")).collect();
            json_err(
                path,
                format!("maker \"{maker}\" not found; makers: {}", names.join(", ")),
            )
        })?;
    let models = mk
        .get("models")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let md = models
        .iter()
        .find(|m| name_of(m, "model").eq_ignore_ascii_case(model))
        .ok_or_else(|| {
            let names: Vec<String> = models.iter().map(|m| name_of(m, "model")).collect();
            json_err(
                path,
                format!(
                    "model \"{model}\" of {maker} not found; models: {}",
                    names.join(", ")
                ),
            )
        })?;
    let profiles = md
        .get("profiles")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut points = RgbPoints::new();
    for p in profiles {
        let iso = p.get("iso").and_then(Value::as_f64);
        let arr = |key: &str| -> Option<[f64; 3]> {
            let a = p.get(key)?.as_array()?;
            match a[..] {
                [ref r, ref g, ref b] => Some([r.as_f64()?, g.as_f64()?, b.as_f64()?]),
                _ => None,
            }
        };
        let (Some(iso), Some(a), Some(b)) = (iso, arr("a"), arr("b")) else {
            return Err(json_err(
                path,
                format!("{maker} {model}: a profile lacks iso, a[3] or b[3]: {p}"),
            ));
        };
        if iso > 0.0 {
            points
                .entry(iso_key(iso))
                .or_default()
                .push(std::array::from_fn(|c| (a[c], b[c])));
        }
    }
    if points.is_empty() {
        return Err(json_err(path, format!("{maker} {model}: no profiles")));
    }
    let mut notes = vec![format!(
        "darktable {}: var = a x + b per R, G, B (x in [0, 1]) imported as k = a, sigma2 = b; comment: {}",
        path.display(),
        name_of(md, "comment")
    )];
    let neg: Vec<String> = points
        .iter()
        .filter(|(_, e)| e.iter().any(|rgb| rgb.iter().any(|p| p.1 < 0.0)))
        .map(|(k, _)| (*k as f64 / 1000.0).to_string())
        .collect();
    if !neg.is_empty() {
        notes.push(format!(
            "negative b (read-noise variance) at ISO {}",
            neg.join(", ")
        ));
    }
    let sensor = format!("{} {}", name_of(mk, "maker"), name_of(md, "model"));
    from_points(&points, sensor, "darktable", notes)
}

/// The content of an IMX766-style YAML: per-ISO `(iso, shot_noise, read_noise)` and the
/// file's own curves, when present.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorYaml {
    /// `(ISO, shot-noise k, read-noise variance)`.
    pub points: Vec<(f64, f64, f64)>,
    /// `k_shot`: slope, intercept.
    pub k_shot: Option<[f64; 2]>,
    /// `b_read`: quadratic coefficients, highest power first.
    pub b_read: Option<[f64; 3]>,
}

fn floats(path: &Path, line: usize, s: &str) -> Result<Vec<f64>, CalibError> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| CalibError::input(path, format!("line {line}: expected [numbers]")))?;
    inner
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| CalibError::input(path, format!("line {line}: {e}")))
}

/// Parses the YAML written by HuiiJi/AISP's `utils/noise_profile.py` (the subset it uses:
/// `ISO_<n>: {shot_noise: S, read_noise: R}`, `k_shot: [a, b]`, `b_read: [a, b, c]`).
pub fn parse_sensor_yaml(text: &str, path: &Path) -> Result<SensorYaml, CalibError> {
    let mut out = SensorYaml {
        points: Vec::new(),
        k_shot: None,
        b_read: None,
    };
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let Some((key, rest)) = l.split_once(':') else {
            return Err(CalibError::input(
                path,
                format!("line {line}: expected key: value"),
            ));
        };
        let key = key.trim();
        if let Some(iso) = key.strip_prefix("ISO_") {
            let iso: f64 = iso
                .parse()
                .map_err(|_| CalibError::input(path, format!("line {line}: bad ISO in {key}")))?;
            let inner = rest
                .trim()
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .ok_or_else(|| {
                    CalibError::input(
                        path,
                        format!("line {line}: expected {{shot_noise: .., read_noise: ..}}"),
                    )
                })?;
            let (mut shot, mut read) = (None, None);
            for kv in inner.split(',') {
                let (k, v) = kv.split_once(':').ok_or_else(|| {
                    CalibError::input(path, format!("line {line}: bad entry {kv}"))
                })?;
                let v: f64 = v.trim().parse().map_err(|_| {
                    CalibError::input(path, format!("line {line}: bad number {}", v.trim()))
                })?;
                match k.trim() {
                    "shot_noise" => shot = Some(v),
                    "read_noise" => read = Some(v),
                    _ => {}
                }
            }
            let (Some(s), Some(r)) = (shot, read) else {
                return Err(CalibError::input(
                    path,
                    format!("line {line}: needs shot_noise and read_noise"),
                ));
            };
            if !(s.is_finite() && s > 0.0 && r.is_finite()) {
                return Err(CalibError::input(
                    path,
                    format!("line {line}: shot_noise must be positive"),
                ));
            }
            out.points.push((iso, s, r));
        } else if key == "k_shot" {
            let v = floats(path, line, rest)?;
            out.k_shot = Some(v.try_into().map_err(|_| {
                CalibError::input(path, format!("line {line}: k_shot needs 2 numbers"))
            })?);
        } else if key == "b_read" {
            let v = floats(path, line, rest)?;
            out.b_read = Some(v.try_into().map_err(|_| {
                CalibError::input(path, format!("line {line}: b_read needs 3 numbers"))
            })?);
        }
    }
    if out.points.is_empty() {
        return Err(CalibError::input(
            path,
            "no ISO_<n> entries: not a sensor noise YAML",
        ));
    }
    Ok(out)
}

/// Imports the IMX766 YAML (HuiiJi/AISP): `read_noise` is a variance, units are
/// `max(raw - black, 0) / (1023 - black)`, the same for every channel. The file's own
/// curves (`k_shot`, `b_read`) are kept when present; the notes give how far a plain
/// least-squares refit of its points is from them.
pub fn from_sensor_yaml(path: &Path, sensor: &str) -> Result<Profile, CalibError> {
    let text = std::fs::read_to_string(path).map_err(|e| CalibError::input(path, e.to_string()))?;
    let y = parse_sensor_yaml(&text, path)?;
    let mut points = RgbPoints::new();
    for &(iso, k, r) in &y.points {
        points.entry(iso_key(iso)).or_default().push([(k, r); 3]);
    }
    let mut notes = vec![format!(
        "{}: read_noise is a variance; units max(raw - black, 0) / (1023 - black) with black the mean of dark frames (not given)",
        path.display()
    )];
    let mut prof = from_points(&points, sensor.to_string(), "imx766-yaml", Vec::new())?;
    if let (Some(ks), Some(br)) = (y.k_shot, y.b_read) {
        let isos: Vec<f64> = y.points.iter().map(|p| p.0).collect();
        let kv: Vec<f64> = y.points.iter().map(|p| p.1).collect();
        let rv: Vec<f64> = y.points.iter().map(|p| p.2).collect();
        let kdeg = 1.min(isos.len() - 1);
        let rdeg = 2.min(isos.len() - 1);
        if let (Some(k), Some(r)) = (
            fit_poly(&isos, &kv, kdeg, Weighting::Uniform),
            fit_poly(&isos, &rv, rdeg, Weighting::Uniform),
        ) {
            let rel = |a: &[f64], b: &[f64]| {
                a.iter()
                    .rev()
                    .zip(b.iter().rev())
                    .map(|(x, y)| ((x - y) / y).abs())
                    .fold(0.0f64, f64::max)
            };
            notes.push(format!(
                "curves are the file's k_shot and b_read (numpy.polyfit, unweighted); a plain least-squares refit of its points differs by at most {:.1e} (k) and {:.1e} (read) relative",
                rel(&k, &ks),
                rel(&r, &br)
            ));
        }
        let c = Curve { k: ks, sigma2: br };
        prof.noise.k = c.k;
        prof.noise.sigma2 = c.sigma2;
        prof.noise.channels = Some(crate::profile::ChannelCurves { r: c, g: c, b: c });
        prof.fit.k_degree = 1;
        prof.fit.sigma2_degree = 2;
        prof.fit.iso_weighting = "uniform (the file's numpy.polyfit)".into();
        let (mut rk, mut rs) = (0.0, 0.0);
        for p in &mut prof.points {
            let (kc, sc) = c.at(p.iso);
            for cp in [&mut p.all, &mut p.r, &mut p.g, &mut p.b] {
                cp.k_curve_residual = (kc - cp.k) / cp.k;
                cp.sigma2_curve_residual =
                    (sc - cp.sigma2) / cp.sigma2.abs().max(f64::MIN_POSITIVE);
            }
            rk += p.all.k_curve_residual.powi(2);
            rs += p.all.sigma2_curve_residual.powi(2);
        }
        let n = prof.points.len() as f64;
        prof.fit.k_rms_residual = (rk / n).sqrt();
        prof.fit.sigma2_rms_residual = (rs / n).sqrt();
        // The refit's notes (fallbacks) no longer apply.
        prof.fit.notes.clear();
    }
    prof.fit.notes.splice(0..0, notes);
    prof.noise.white = Some(1023.0);
    Ok(prof)
}
