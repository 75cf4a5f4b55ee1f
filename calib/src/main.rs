//! `rawnr-calib`: sensor noise calibration (see `calib/README.md`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use rawnr_calib::calibrate::{self, CalibrateOptions, DEFAULT_CELL, DEFAULT_HOT_SIGMA};
use rawnr_calib::estimate::{self, EstimateOptions};
use rawnr_calib::frame::{Frame, PgmOptions, Rect};
use rawnr_calib::{darks, import, plot, report, tag, CalibError, Profile};
use rawnr_core::bayer::CfaPhase;

#[derive(Parser)]
#[command(
    name = "rawnr-calib",
    version,
    about = "Sensor noise calibration: dark and flat frames to a Poisson-Gaussian noise profile"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fit a noise profile from flat frames at several ISOs (and optional dark frames).
    Fit(FitArgs),
    /// Analyse a set of dark frames: black levels, read noise, row/column noise, hot pixels.
    Darks(DarksArgs),
    /// Print a profile (and optionally plot it).
    Show(ShowArgs),
    /// Make a profile from DNG NoiseProfile tags, darktable's noiseprofiles.json or the IMX766 YAML.
    Import(ImportArgs),
    /// Copy a DNG with its NoiseProfile tag set from a profile.
    Tag(TagArgs),
    /// Estimate the read noise of one ordinary picture from its darkest flat regions.
    Estimate(EstimateArgs),
}

/// Levels for PGM inputs.
#[derive(Args, Clone)]
struct PgmArgs {
    /// CFA phase of PGM inputs (rggb, bggr, grbg, gbrg).
    #[arg(long)]
    cfa: Option<String>,
    /// Black level of PGM inputs: B or R,Gr,Gb,B.
    #[arg(long)]
    black: Option<String>,
    /// White level of PGM inputs.
    #[arg(long)]
    white: Option<f32>,
}

impl PgmArgs {
    fn parse(&self) -> Result<PgmOptions, CalibError> {
        let cfa = match &self.cfa {
            Some(s) => Some(CfaPhase::parse(s).ok_or_else(|| {
                CalibError::Usage(format!("--cfa {s}: expected rggb, bggr, grbg or gbrg"))
            })?),
            None => None,
        };
        let black = match &self.black {
            Some(s) => {
                let v: Vec<f32> = s
                    .split(',')
                    .map(|p| p.trim().parse::<f32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        CalibError::Usage(format!("--black {s}: expected B or R,Gr,Gb,B"))
                    })?;
                match v[..] {
                    [b] => Some([b; 4]),
                    [r, gr, gb, b] => Some([r, gr, gb, b]),
                    _ => {
                        return Err(CalibError::Usage(format!(
                            "--black {s}: expected B or R,Gr,Gb,B"
                        )))
                    }
                }
            }
            None => None,
        };
        Ok(PgmOptions {
            cfa,
            black,
            white: self.white,
        })
    }
}

#[derive(Args)]
struct FitArgs {
    /// Flat (gray target) frames: several ISOs, several frames per ISO and exposure.
    #[arg(long, num_args = 1.., required = true)]
    flats: Vec<PathBuf>,
    /// Dark frames of one set (same ISO and exposure, lens covered, 2+ frames); repeat
    /// --darks for sets at other ISOs. A set at a flat ISO anchors that ISO's read noise.
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    darks: Vec<PathBuf>,
    /// Analyse only this rectangle x,y,w,h of the active area (repeatable; one cell each).
    #[arg(long)]
    roi: Vec<String>,
    /// Cell side in raw pixels for automatic cells (even).
    #[arg(long, default_value_t = DEFAULT_CELL)]
    cell: usize,
    /// Sensor name in the profile (default: the files' make and model).
    #[arg(long)]
    sensor: Option<String>,
    /// ISO of files that carry none.
    #[arg(long)]
    iso: Option<u32>,
    #[command(flatten)]
    pgm: PgmArgs,
    /// Hot-pixel threshold in robust standard deviations.
    #[arg(long, default_value_t = DEFAULT_HOT_SIGMA)]
    hot_sigma: f64,
    /// Normalise with the black levels measured in the darks instead of the files'.
    #[arg(long)]
    black_from_darks: bool,
    /// Output profile (JSON).
    #[arg(short, long)]
    output: PathBuf,
    /// Also draw the mean-variance plot.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Replace existing outputs.
    #[arg(long)]
    overwrite: bool,
    /// No progress lines.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct DarksArgs {
    /// Dark frames.
    #[arg(required = true)]
    frames: Vec<PathBuf>,
    /// Hot-pixel threshold in robust standard deviations.
    #[arg(long, default_value_t = DEFAULT_HOT_SIGMA)]
    hot_sigma: f64,
    /// ISO of files that carry none.
    #[arg(long)]
    iso: Option<u32>,
    #[command(flatten)]
    pgm: PgmArgs,
    /// Also write the report as JSON.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Replace an existing output.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Args)]
struct ShowArgs {
    /// Profile (JSON).
    profile: PathBuf,
    /// Draw the mean-variance plot into this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Also print the parameters at this ISO.
    #[arg(long)]
    iso: Option<f32>,
    /// Replace an existing plot.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Args)]
struct ImportArgs {
    /// DNGs whose NoiseProfile tags to import (one or several ISOs).
    #[arg(long, num_args = 1.., conflicts_with_all = ["darktable", "yaml"])]
    dng: Vec<PathBuf>,
    /// darktable's noiseprofiles.json (with --maker and --model).
    #[arg(long, requires_all = ["maker", "model"], conflicts_with = "yaml")]
    darktable: Option<PathBuf>,
    /// Camera maker in noiseprofiles.json.
    #[arg(long)]
    maker: Option<String>,
    /// Camera model in noiseprofiles.json.
    #[arg(long)]
    model: Option<String>,
    /// HuiiJi/AISP sensor YAML (e.g. sensor_profile_IMX766.yaml).
    #[arg(long)]
    yaml: Option<PathBuf>,
    /// Sensor name in the profile.
    #[arg(long)]
    sensor: Option<String>,
    /// ISO of DNGs that carry none.
    #[arg(long)]
    iso: Option<u32>,
    /// Output profile (JSON).
    #[arg(short, long)]
    output: PathBuf,
    /// Also draw the plot.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Replace existing outputs.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Args)]
struct TagArgs {
    /// Input DNG.
    input: PathBuf,
    /// Output DNG (must differ from the input).
    output: PathBuf,
    /// Profile (JSON).
    #[arg(long)]
    profile: PathBuf,
    /// ISO to evaluate the profile at (default: the file's).
    #[arg(long)]
    iso: Option<u32>,
    /// Replace an existing output.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Args)]
struct EstimateArgs {
    /// A DNG or PGM picture.
    image: PathBuf,
    #[command(flatten)]
    pgm: PgmArgs,
    /// Cell side in samples per colour plane.
    #[arg(long, default_value_t = 6)]
    cell: usize,
    /// Brightest normalised cell mean used.
    #[arg(long, default_value_t = 0.03)]
    max_level: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `println!` through [`out`].
macro_rules! outln {
    ($($t:tt)*) => {
        out(&format!("{}\n", format_args!($($t)*)))
    };
}

/// Prints to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

fn write_plot(p: &Profile, path: &Option<PathBuf>, overwrite: bool) -> Result<(), CalibError> {
    if let Some(path) = path {
        plot::write(p, path, overwrite)?;
        outln!("plot: {}", path.display());
    }
    Ok(())
}

fn check_outputs(paths: &[&Path], overwrite: bool) -> Result<(), CalibError> {
    for p in paths {
        rawnr_calib::profile::check_output(p, overwrite)?;
    }
    Ok(())
}

fn fit(a: FitArgs, dark_sets: Vec<Vec<PathBuf>>) -> Result<(), CalibError> {
    let rois = a
        .roi
        .iter()
        .map(|s| Rect::parse(s))
        .collect::<Result<_, _>>()?;
    let mut outs = vec![a.output.as_path()];
    outs.extend(a.plot.as_deref());
    check_outputs(&outs, a.overwrite)?;
    let opts = CalibrateOptions {
        flats: a.flats,
        darks: dark_sets,
        rois,
        cell: a.cell,
        sensor: a.sensor,
        iso: a.iso,
        pgm: a.pgm.parse()?,
        hot_sigma: a.hot_sigma,
        black_from_darks: a.black_from_darks,
    };
    let quiet = a.quiet;
    let prof = calibrate::calibrate(&opts, &mut |l| {
        if !quiet {
            eprintln!("{l}");
        }
    })?;
    prof.write(&a.output, a.overwrite)?;
    out(&report::describe(&prof));
    outln!("profile: {}", a.output.display());
    write_plot(&prof, &a.plot, a.overwrite)
}

fn darks_cmd(a: DarksArgs) -> Result<(), CalibError> {
    if let Some(o) = &a.output {
        check_outputs(&[o], a.overwrite)?;
    }
    let pgm = a.pgm.parse()?;
    let frames: Vec<Frame> = a
        .frames
        .iter()
        .map(|p| Frame::load(p, &pgm, a.iso))
        .collect::<Result<_, _>>()?;
    let r = darks::analyse(&frames, a.hot_sigma)?;
    out(&report::describe_darks(&r));
    if let Some(o) = &a.output {
        let text = serde_json::to_string_pretty(&r)
            .map_err(|e| CalibError::input(o, format!("cannot encode the report: {e}")))?;
        rawnr_io::atomic::write_atomic(o, |w| w.write_all(text.as_bytes()))?;
        outln!("report: {}", o.display());
    }
    Ok(())
}

fn show(a: ShowArgs) -> Result<(), CalibError> {
    let p = Profile::read(&a.profile)?;
    out(&report::describe(&p));
    if let Some(iso) = a.iso {
        let bad = |e: rawnr_core::Error| CalibError::Usage(format!("--iso {iso}: {e}"));
        let all = p.noise.at(iso).map_err(bad)?;
        let rgb = p.noise.rgb_curves().at(iso).map_err(bad)?;
        outln!(
            "at ISO {iso}: pooled k = {:.5e}, sigma2 = {:.5e}; R ({:.5e}, {:.5e}) G ({:.5e}, {:.5e}) B ({:.5e}, {:.5e})",
            all.k, all.sigma2, rgb[0].k, rgb[0].sigma2, rgb[1].k, rgb[1].sigma2, rgb[2].k, rgb[2].sigma2
        );
    }
    write_plot(&p, &a.plot, a.overwrite)
}

fn import_cmd(a: ImportArgs) -> Result<(), CalibError> {
    let mut outs = vec![a.output.as_path()];
    outs.extend(a.plot.as_deref());
    check_outputs(&outs, a.overwrite)?;
    let mut p = if !a.dng.is_empty() {
        import::from_dngs(&a.dng, a.iso)?
    } else if let Some(dt) = &a.darktable {
        let (Some(maker), Some(model)) = (&a.maker, &a.model) else {
            return Err(CalibError::Usage(
                "--darktable needs --maker and --model".into(),
            ));
        };
        import::from_darktable(dt, maker, model)?
    } else if let Some(y) = &a.yaml {
        import::from_sensor_yaml(y, a.sensor.as_deref().unwrap_or("Sony IMX766"))?
    } else {
        return Err(CalibError::Usage(
            "import needs --dng, --darktable or --yaml".into(),
        ));
    };
    if let Some(s) = a.sensor {
        p.noise.sensor = s;
    }
    p.write(&a.output, a.overwrite)?;
    out(&report::describe(&p));
    outln!("profile: {}", a.output.display());
    write_plot(&p, &a.plot, a.overwrite)
}

fn tag_cmd(a: TagArgs) -> Result<(), CalibError> {
    let (iso, pairs) = tag::tag(&a.input, &a.output, &a.profile, a.iso, a.overwrite)?;
    let s: Vec<String> = pairs
        .iter()
        .map(|(s, o)| format!("({s:.6e}, {o:.6e})"))
        .collect();
    outln!(
        "{}: NoiseProfile at ISO {iso}: {}",
        a.output.display(),
        s.join(" ")
    );
    Ok(())
}

fn estimate_cmd(a: EstimateArgs) -> Result<(), CalibError> {
    let f = Frame::load(&a.image, &a.pgm.parse()?, None)?;
    let e = estimate::estimate(
        &f,
        EstimateOptions {
            cell: a.cell,
            max_level: a.max_level,
            ..Default::default()
        },
    )?;
    if a.json {
        let text = serde_json::to_string_pretty(&e)
            .map_err(|err| CalibError::Fit(format!("cannot encode the estimate: {err}")))?;
        outln!("{text}");
    } else {
        outln!(
            "{}: read noise {:.3} DN rms (sigma2 = {:.4e} normalised) from {} dark flat cells of {} dark, {} examined; mean level {:.4}, k = {:.3e}",
            e.file, e.read_std_dn, e.sigma2, e.used_cells, e.dark_cells, e.cells, e.mean_level, e.k
        );
    }
    Ok(())
}

/// The `--darks` occurrences of `fit`: one set each.
fn dark_sets(m: &clap::ArgMatches) -> Vec<Vec<PathBuf>> {
    m.subcommand_matches("fit")
        .and_then(|f| f.get_occurrences::<PathBuf>("darks"))
        .map(|occ| occ.map(|o| o.cloned().collect()).collect())
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let r = match cli.cmd {
        Cmd::Fit(a) => fit(a, dark_sets(&matches)),
        Cmd::Darks(a) => darks_cmd(a),
        Cmd::Show(a) => show(a),
        Cmd::Import(a) => import_cmd(a),
        Cmd::Tag(a) => tag_cmd(a),
        Cmd::Estimate(a) => estimate_cmd(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rawnr-calib: error: {e}");
            ExitCode::FAILURE
        }
    }
}
