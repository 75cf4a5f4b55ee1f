//! `rawnr-quantize`: post-training quantization of an f32 `.rnm` model to int8 (W8A8,
//! calibrated on noisy raw frames) and/or f16 weights.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rand::SeedableRng;
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::Model;
use rawnr_engine::file::ModelFile;
use rawnr_engine::tiling::TileOptions;
use rawnr_quality::CleanFrame;
use rawnr_quant::{calibrate_frame, quantize_int8, to_f16, Calibration, QuantOptions, RangeMethod};

/// Quantize an f32 rawnr model: int8 (per-channel weights, u8 activations calibrated on raw
/// frames with synthetic Poisson-Gaussian noise at the given ISOs) and/or f16 weights.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// f32 model to quantize.
    #[arg(long)]
    model: PathBuf,
    /// Write the int8 model here.
    #[arg(long)]
    int8: Option<PathBuf>,
    /// Write the f16-weight model here.
    #[arg(long)]
    f16: Option<PathBuf>,
    /// Calibration raw frame (DNG, or 16-bit PGM with --pgm-*), treated as clean; repeatable.
    #[arg(long)]
    calib: Vec<PathBuf>,
    /// CFA phase of PGM inputs.
    #[arg(long, default_value = "rggb")]
    pgm_cfa: String,
    /// Black level of PGM inputs.
    #[arg(long, default_value_t = 0.0)]
    pgm_black: f32,
    /// White level of PGM inputs.
    #[arg(long, default_value_t = 65535.0)]
    pgm_white: f32,
    /// ISOs at which noise from the model's default profile is added (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [800.0f32, 1600.0, 3200.0, 6400.0])]
    iso: Vec<f32>,
    /// Noise profiles (rawnr-calib JSON) whose noise at each ISO is added instead of the
    /// model's own (pooled parameters; comma-separated or repeated; `model` is the model's).
    #[arg(long, value_delimiter = ',')]
    noise_profile: Vec<String>,
    /// Range statistic: "minmax", "mean" (mean over tiles of each tile's extremes), "mse"
    /// (least squared error over a second pass's histograms) or "mse-or-mean" (their union).
    #[arg(long, default_value = "minmax")]
    range: String,
    /// Nodes to keep in f32 (indices, comma-separated; e.g. 0 for a first convolution).
    #[arg(long, value_delimiter = ',')]
    keep_f32: Vec<usize>,
    /// Seed of the synthetic noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tile size used for calibration (packed pixels).
    #[arg(long, default_value_t = 256)]
    tile: usize,
}

fn load_frame(path: &std::path::Path, args: &Args) -> Result<CleanFrame, String> {
    let is_pgm = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pgm"));
    if is_pgm {
        let pgm = rawnr_io::pgm::read(path).map_err(|e| e.to_string())?;
        let cfa = CfaPhase::parse(&args.pgm_cfa).ok_or("--pgm-cfa: rggb, bggr, grbg or gbrg")?;
        let layout = FrameLayout::new(pgm.width, pgm.height, cfa);
        let levels = Levels::uniform(args.pgm_black, args.pgm_white);
        levels.validate().map_err(|e| e.to_string())?;
        Ok(CleanFrame::from_raw(
            &pgm.data,
            &layout,
            &levels,
            (0, 0, pgm.width, pgm.height),
        ))
    } else {
        let f = rawnr_io::dng::read(path).map_err(|e| e.to_string())?;
        let (offset, layout) = f.active_region();
        Ok(CleanFrame::from_raw(
            &f.data[offset..],
            &layout,
            &f.levels,
            (0, 0, layout.width, layout.height),
        ))
    }
}

fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    rawnr_io::atomic::write_atomic(path, |w| w.write_all(bytes)).map_err(|e| e.to_string())?;
    println!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

fn run(args: &Args) -> Result<(), String> {
    let file =
        ModelFile::open(&args.model).map_err(|e| format!("{}: {e}", args.model.display()))?;
    let model: Model<'_> = file.model();
    if let Some(out) = &args.f16 {
        write(out, &to_f16(&model).map_err(|e| e.to_string())?)?;
    }
    let Some(out) = &args.int8 else {
        return Ok(());
    };
    if args.calib.is_empty() {
        return Err("--int8 needs at least one --calib frame".into());
    }
    let method = match args.range.as_str() {
        "minmax" => RangeMethod::MinMax,
        "mean" => RangeMethod::MeanTileMinMax,
        "mse" => RangeMethod::Mse,
        "mse-or-mean" => RangeMethod::MseOrMean,
        _ => return Err("--range: minmax, mean, mse or mse-or-mean".into()),
    };
    let mut cal = Calibration::new(model.n_values());
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let opts = TileOptions {
        tile: args.tile,
        ..TileOptions::default()
    };
    let profiles: Vec<Option<rawnr_io::profile::NoiseProfile>> = if args.noise_profile.is_empty() {
        vec![None]
    } else {
        args.noise_profile
            .iter()
            .map(|p| match p.as_str() {
                "model" => Ok(None),
                _ => rawnr_io::profile::NoiseProfile::read(std::path::Path::new(p))
                    .map(Some)
                    .map_err(|e| e.to_string()),
            })
            .collect::<Result<_, String>>()?
    };
    // Noisy frames in a fixed order (file, profile, then ISO), so a seed gives one model.
    let mut frames = Vec::new();
    let mut noisy = Vec::new();
    for (f, path) in args.calib.iter().enumerate() {
        let frame = load_frame(path, args).map_err(|e| format!("{}: {e}", path.display()))?;
        for p in &profiles {
            for &iso in &args.iso {
                let noise = match p {
                    None => model.info().default_noise.at(iso),
                    Some(p) => p.channel_noise_at(iso).map(|n| n.pooled()),
                }
                .map_err(|e| format!("noise at ISO {iso}: {e}"))?;
                noisy.push((f, iso, noise, frame.noisy_raw(&noise.into(), &mut rng)));
            }
        }
        frames.push(frame);
    }
    // Histogram-based ranges need a second pass over the same frames.
    let passes = if matches!(method, RangeMethod::Mse | RangeMethod::MseOrMean) {
        2
    } else {
        1
    };
    for pass in 0..passes {
        if pass == 1 {
            cal.begin_histograms();
        }
        for (f, iso, noise, data) in &noisy {
            let (frame, path) = (&frames[*f], &args.calib[*f]);
            calibrate_frame(
                model,
                data,
                &frame.layout,
                &frame.levels,
                *noise,
                &opts,
                &mut cal,
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
            println!(
                "pass {}: calibrated on {} at ISO {iso} ({} tiles so far)",
                pass + 1,
                path.display(),
                cal.tiles()
            );
        }
    }
    let qopts = QuantOptions {
        range: method,
        keep_f32: args.keep_f32.clone(),
    };
    write(
        out,
        &quantize_int8(&model, &cal, &qopts).map_err(|e| e.to_string())?,
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rawnr-quantize: {e}");
            ExitCode::FAILURE
        }
    }
}
