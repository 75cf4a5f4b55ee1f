//! `rawnr-quantize`: post-training quantization of an f32 `.rnm` model to int8 (W8A8,
//! calibrated on noisy raw frames) and/or f16 weights.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rawnr_core::bayer::{CfaPhase, Levels};
use rawnr_core::format::Model;
use rawnr_engine::denoiser::TileOptions;
use rawnr_engine::file::ModelFile;
use rawnr_quality::CleanFrame;
use rawnr_quant::bands::{
    calibrate_bands, calibration_dead_leaves, noise_cases, BandEdges, DEAD_LEAVES_SEED,
};
use rawnr_quant::{quantize_int8_banded, to_f16, QuantOptions, RangeMethod};

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
    /// Synthetic dead-leaves calibration frames (1024x768, 14-bit, seeds 2000, 2001, ...;
    /// `denoise-raw eval --dead-leaves` uses others) added to the --calib frames.
    #[arg(long, default_value_t = 0)]
    calib_dead_leaves: usize,
    /// Noise bands: the least noise-transform gain (k_anchor / k) of bands 1, 2, ...
    /// (comma-separated, increasing; band 0 takes the gains below the first). Each band is
    /// calibrated on the noisy frames whose gain falls in it and gets its own activation
    /// ranges and biases; the runtime picks the band from each frame's noise.
    #[arg(long, value_delimiter = ',')]
    noise_bands: Vec<f32>,
    /// A noise level of gain g also calibrates the bands meeting g / F ..= g * F (1: only
    /// its own band).
    #[arg(long, default_value_t = 1.0)]
    band_overlap: f32,
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
    #[arg(long, value_delimiter = ',', default_value = "model")]
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
    let cfa = CfaPhase::parse(&args.pgm_cfa).ok_or("--pgm-cfa: rggb, bggr, grbg or gbrg")?;
    let levels = Levels::uniform(args.pgm_black, args.pgm_white);
    CleanFrame::read(path, cfa, &levels).map_err(|e| e.to_string())
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
    if args.calib.is_empty() && args.calib_dead_leaves == 0 {
        return Err("--int8 needs --calib frames or --calib-dead-leaves".into());
    }
    let method = match args.range.as_str() {
        "minmax" => RangeMethod::MinMax,
        "mean" => RangeMethod::MeanTileMinMax,
        "mse" => RangeMethod::Mse,
        "mse-or-mean" => RangeMethod::MseOrMean,
        _ => return Err("--range: minmax, mean, mse or mse-or-mean".into()),
    };
    let edges = BandEdges::new(&args.noise_bands, args.band_overlap).map_err(|e| e.to_string())?;
    let opts = TileOptions {
        tile: args.tile,
        ..TileOptions::default()
    };
    let profiles: Vec<Option<rawnr_io::profile::NoiseProfile>> = args
        .noise_profile
        .iter()
        .map(|p| match p.as_str() {
            "model" => Ok(None),
            _ => rawnr_io::profile::NoiseProfile::read(std::path::Path::new(p))
                .map(Some)
                .map_err(|e| e.to_string()),
        })
        .collect::<Result<_, String>>()?;
    // Noise levels profile-major, then ISO (the order of the cases, so a seed gives one model).
    let mut levels = Vec::new();
    let mut level_names = Vec::new();
    for (p, name) in profiles.iter().zip(&args.noise_profile) {
        for &iso in &args.iso {
            let noise = match p {
                None => model.info().default_noise.at(iso),
                Some(p) => p.channel_noise_at(iso).map(|n| n.pooled()),
            }
            .map_err(|e| format!("noise at ISO {iso}: {e}"))?;
            levels.push(noise);
            level_names.push(format!("{name} ISO {iso}"));
        }
    }
    let mut names = Vec::new();
    let mut frames = Vec::new();
    for path in &args.calib {
        let frame = load_frame(path, args).map_err(|e| format!("{}: {e}", path.display()))?;
        names.push(path.display().to_string());
        frames.push(frame);
    }
    for i in 0..args.calib_dead_leaves {
        names.push(format!(
            "dead-leaves (seed {})",
            DEAD_LEAVES_SEED + i as u64
        ));
        frames.push(calibration_dead_leaves(i));
    }
    let cases = noise_cases(model, frames.len(), &levels, &edges).map_err(|e| e.to_string())?;
    let bands = calibrate_bands(
        model,
        &frames,
        &cases,
        &edges,
        method,
        &opts,
        args.seed,
        |_| true,
        |pass, c| {
            println!(
                "pass {}: calibrated on {} at {} (gain {:.4}, bands {:?})",
                pass + 1,
                names[c.frame],
                level_names[c.level],
                c.gain,
                c.bands
            )
        },
    )
    .map_err(|e| e.to_string())?;
    let qopts = QuantOptions {
        range: method,
        keep_f32: args.keep_f32.clone(),
    };
    write(
        out,
        &quantize_int8_banded(&model, &bands, &qopts).map_err(|e| e.to_string())?,
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
