//! `denoise-raw`: denoises a raw Bayer frame with a rawnr model on the CPU.
//!
//! ```text
//! denoise-raw in.pgm out.pgm --cfa grbg --black 25 --white 1023 --iso 3200 --preview cmp.png
//! denoise-raw bench --width 3472 --height 4624 --runs 3
//! ```

mod bench;
mod model;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::noise::NoiseParams;
use rawnr_engine::graph::Engine;
use rawnr_engine::tiling::{Denoiser, TileOptions};
use rawnr_io::{pgm, preview};

/// Errors of the command line tool; each message names the file or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// File input or output failed.
    #[error(transparent)]
    Io(#[from] rawnr_io::IoError),
    /// The model file is missing or invalid.
    #[error("{path}: {reason}")]
    Model {
        /// Model path.
        path: String,
        /// Cause.
        reason: String,
    },
    /// The runtime rejected the frame or parameters.
    #[error("{context}: {source}")]
    Runtime {
        /// What was being done.
        context: String,
        /// Cause.
        source: rawnr_core::Error,
    },
    /// Options are inconsistent.
    #[error("{0}")]
    Usage(String),
}

#[derive(Parser)]
#[command(
    name = "denoise-raw",
    version,
    about = "Denoise raw Bayer frames with a rawnr CNN on the CPU"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Measure latency, throughput and memory on a synthetic frame.
    Bench(bench::BenchArgs),
}

/// Model, noise and tiling options shared by denoising and benchmarking.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// Model file (.rnm); default: the built-in PMRID model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// ISO of the frame (selects the noise level from the model's default profile).
    #[arg(long, default_value_t = 1600.0)]
    pub iso: f32,
    /// Shot-noise gain k in normalised units (overrides the ISO profile; needs --noise-sigma2).
    #[arg(long, requires = "noise_sigma2")]
    pub noise_k: Option<f32>,
    /// Read-noise variance in normalised units (with --noise-k).
    #[arg(long, requires = "noise_k")]
    pub noise_sigma2: Option<f32>,
    /// Tile size in packed (half-resolution) pixels.
    #[arg(long, default_value_t = 256)]
    pub tile: usize,
    /// Tile halo in packed pixels (default: the model's).
    #[arg(long)]
    pub halo: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl EngineArgs {
    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
    fn noise(&self, d: &Denoiser<'_>) -> Result<NoiseParams, CliError> {
        let rt = |source| CliError::Runtime {
            context: "noise parameters".into(),
            source,
        };
        match (self.noise_k, self.noise_sigma2) {
            (Some(k), Some(sigma2)) => NoiseParams { k, sigma2 }.validate().map_err(rt),
            _ => d.default_noise(self.iso).map_err(rt),
        }
    }
    fn tiles(&self) -> TileOptions {
        TileOptions {
            tile: self.tile.max(1),
            halo: self.halo,
        }
    }
}

#[derive(Args)]
struct RunArgs {
    /// Input raw frame (binary PGM, 16-bit big-endian or 8-bit).
    input: Option<PathBuf>,
    /// Output raw frame (PGM, 16-bit).
    output: Option<PathBuf>,
    /// CFA phase of the top-left 2x2 block: rggb, bggr, grbg or gbrg.
    #[arg(long, default_value = "rggb")]
    cfa: String,
    /// Black level: one value, or four for R,Gr,Gb,B.
    #[arg(long, default_value = "0", value_delimiter = ',')]
    black: Vec<f32>,
    /// White level (default: the PGM's maxval).
    #[arg(long)]
    white: Option<f32>,
    /// Blend with the input: 1 = fully denoised, 0 = unchanged.
    #[arg(long, default_value_t = 1.0)]
    strength: f32,
    /// Write a before/after PNG crop here.
    #[arg(long)]
    preview: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    overwrite: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

fn levels(black: &[f32], white: f32) -> Result<Levels, CliError> {
    let black = match black {
        [b] => [*b; 4],
        [r, gr, gb, b] => [*r, *gr, *gb, *b],
        _ => {
            return Err(CliError::Usage(
                "--black takes one value or four (R,Gr,Gb,B)".into(),
            ))
        }
    };
    let l = Levels { black, white };
    l.validate().map_err(|source| CliError::Runtime {
        context: "levels".into(),
        source,
    })?;
    Ok(l)
}

fn check_paths(input: &Path, output: &Path, overwrite: bool) -> Result<(), CliError> {
    let same = match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same || input == output {
        return Err(CliError::Usage(format!(
            "{}: refusing to overwrite the input",
            output.display()
        )));
    }
    if output.exists() && !overwrite {
        return Err(CliError::Usage(format!(
            "{}: exists (pass --overwrite to replace it)",
            output.display()
        )));
    }
    Ok(())
}

fn run(args: RunArgs) -> Result<(), CliError> {
    let (Some(input), Some(output)) = (args.input.as_deref(), args.output.as_deref()) else {
        return Err(CliError::Usage(
            "usage: denoise-raw <INPUT> <OUTPUT> [OPTIONS] (or denoise-raw bench); see --help"
                .into(),
        ));
    };
    if !(0.0..=1.0).contains(&args.strength) {
        return Err(CliError::Usage("--strength must be in 0..1".into()));
    }
    let cfa = CfaPhase::parse(&args.cfa).ok_or_else(|| {
        CliError::Usage(format!(
            "--cfa {}: expected rggb, bggr, grbg or gbrg",
            args.cfa
        ))
    })?;
    check_paths(input, output, args.overwrite)?;
    let frame = pgm::read(input)?;
    let levels = levels(&args.black, args.white.unwrap_or(frame.maxval as f32))?;
    let layout = FrameLayout::new(frame.width, frame.height, cfa);
    layout
        .validate(frame.data.len())
        .map_err(|source| CliError::Runtime {
            context: input.display().to_string(),
            source,
        })?;

    let model_store = model::load(args.engine.model.as_deref())?;
    let model = model_store.model();
    let denoiser = Denoiser::new(Engine::new(model));
    let noise = args.engine.noise(&denoiser)?;
    let threads = args.engine.threads();
    let start = Instant::now();
    let mut out = vec![0u16; frame.data.len()];
    denoiser
        .denoise(
            &frame.data,
            &layout,
            &mut out,
            &layout,
            &levels,
            noise,
            &args.engine.tiles(),
            threads,
        )
        .map_err(|source| CliError::Runtime {
            context: input.display().to_string(),
            source,
        })?;
    if args.strength < 1.0 {
        let s = args.strength;
        for (o, &i) in out.iter_mut().zip(&frame.data) {
            *o = (s * *o as f32 + (1.0 - s) * i as f32 + 0.5) as u16;
        }
    }
    let elapsed = start.elapsed();
    pgm::write(
        output,
        &pgm::Pgm {
            data: out.clone(),
            ..frame.clone()
        },
    )?;
    if let Some(p) = &args.preview {
        write_preview(p, &frame.data, &out, &layout, &levels)?;
    }
    if !args.quiet {
        println!(
            "{} -> {}: {}x{} {}, model {}, ISO {} (k {:.3e}, sigma^2 {:.3e}), {} threads, {:.2} s",
            input.display(),
            output.display(),
            frame.width,
            frame.height,
            cfa.name(),
            model.info().name_str(),
            args.engine.iso,
            noise.k,
            noise.sigma2,
            threads,
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// Before (left) and after (right) crops of the frame centre, up to 512x512 preview pixels each.
fn write_preview(
    path: &Path,
    before: &[u16],
    after: &[u16],
    layout: &FrameLayout,
    levels: &Levels,
) -> Result<(), CliError> {
    let gains = preview::auto_gains(before, layout, levels);
    let (w, h, a) = preview::render(before, layout, levels, gains);
    let (_, _, b) = preview::render(after, layout, levels, gains);
    let (cw, ch) = (w.min(512), h.min(512));
    let (x0, y0) = ((w - cw) / 2, (h - ch) / 2);
    let gap = 4;
    let out_w = 2 * cw + gap;
    let mut img = vec![255u8; out_w * ch * 3];
    for y in 0..ch {
        let src = ((y0 + y) * w + x0) * 3;
        let dst = y * out_w * 3;
        img[dst..dst + cw * 3].copy_from_slice(&a[src..src + cw * 3]);
        let dst2 = dst + (cw + gap) * 3;
        img[dst2..dst2 + cw * 3].copy_from_slice(&b[src..src + cw * 3]);
    }
    preview::write_png(path, out_w, ch, &img)?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Bench(b)) => bench::run(b),
        None => run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("denoise-raw: {e}");
            ExitCode::FAILURE
        }
    }
}
