//! `denoise-raw`: denoises a raw Bayer frame with a rawnr model on the CPU.
//!
//! ```text
//! denoise-raw in.dng out.dng [--iso 3200] [--preview cmp.png]
//! denoise-raw in.pgm out.pgm --cfa grbg --black 25 --white 1023 --iso 3200
//! denoise-raw bench --width 3472 --height 4624 --runs 3
//! ```

mod bench;
mod eval;
mod model;
#[cfg(feature = "ort")]
mod ort_backend;
mod residual;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::noise::{ChannelNoise, NoiseParams};
use rawnr_engine::denoiser::{Cut, DenoiseOptions, Denoiser, StripeOptions, TileOptions};
use rawnr_engine::graph::Engine;
use rawnr_io::profile::NoiseProfile;
use rawnr_io::{dng, pgm, preview};

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
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

/// Shown after `--help`.
const EXAMPLES: &str = "Examples:
  denoise-raw in.dng out.dng                      noise level from the file (NoiseProfile tag or ISO)
  denoise-raw in.dng out.dng --iso 3200 --preview cmp.png
  denoise-raw in.dng out.dng --model models/pmrid-int8.rnm --noise-profile sensor.json
  denoise-raw in.pgm out.pgm --cfa grbg --black 64 --white 1023 --iso 1600
  denoise-raw bench --model models/pmrid-int8.rnm --threads 2
  denoise-raw eval --frame chart.dng --profile imx766.json --model models/pmrid.rnm,models/pmrid-int8.rnm";

#[derive(Subcommand)]
enum Command {
    /// Measure latency, throughput and memory on a synthetic frame.
    Bench(bench::BenchArgs),
    /// Score models on clean frames with synthetic sensor noise (PSNR, SSIM, markdown table).
    Eval(eval::EvalArgs),
}

/// How the native backend cuts a frame (`--layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// Stripes where the model streams, tiles otherwise.
    Auto,
    /// Square tiles with a halo on all sides.
    Tiles,
    /// Row-streamed stripes (a halo on their sides only).
    Stripes,
}

/// Which implementation runs the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// rawnr's own runtime.
    Native,
    /// ONNX Runtime (`--ep` picks the execution provider).
    Ort,
}

/// Denoises `input` into `output` with the backend chosen in `args`.
#[allow(clippy::too_many_arguments)]
pub fn run_backend(
    args: &EngineArgs,
    denoiser: &Denoiser<'_>,
    input: &[u16],
    layout: &FrameLayout,
    output: &mut [u16],
    levels: &Levels,
    noise: ChannelNoise,
    on_band: &(dyn Fn(usize, usize) + Sync),
) -> Result<(), CliError> {
    let rt = |source| CliError::Runtime {
        context: "denoising".into(),
        source,
    };
    let threads = args.threads();
    match args.backend {
        Backend::Native => {
            let opts = DenoiseOptions {
                cut: args.cut(denoiser, layout, threads)?,
                threads,
                progress: Some(on_band),
            };
            denoiser
                .denoise(input, layout, output, layout, levels, noise, &opts)
                .map_err(rt)
        }
        #[cfg(feature = "ort")]
        Backend::Ort => {
            let fp = denoiser
                .prepare(layout, levels, noise, &args.tiles(denoiser, threads)?)
                .map_err(rt)?;
            // The frame's noise band of a banded int8 model, exported as one QDQ graph.
            let band = denoiser
                .engine()
                .model()
                .at_noise_band(fp.noise_band())
                .map_err(rt)?;
            let mut net = ort_backend::OrtNet::new(
                &band,
                threads,
                args.ep,
                args.qdq_weights,
            )?;
            denoiser
                .denoise_via(
                    &fp,
                    input,
                    layout,
                    output,
                    layout,
                    |i, h, w, o| net.run(i, h, w, o),
                    on_band,
                )
                .map_err(|e| match e {
                    rawnr_engine::denoiser::ViaError::Runtime(source) => rt(source),
                    rawnr_engine::denoiser::ViaError::Backend(e) => {
                        CliError::Usage(format!("ONNX Runtime: {e}"))
                    }
                })
        }
        #[cfg(not(feature = "ort"))]
        Backend::Ort => Err(CliError::Usage(
            "--backend ort: this build has no ONNX Runtime backend; build with `--features ort` (cargo run --features ort -p rawnr-cli --bin denoise-raw -- ...)".into(),
        )),
    }
}

/// Model, noise and tiling options shared by denoising and benchmarking.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// Model file (.rnm); default: the built-in PMRID model. `eval` takes several
    /// (comma-separated or repeated), denoising and `bench` one.
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<PathBuf>,
    /// Inference backend: the native runtime, or ONNX Runtime on the model's ONNX export.
    #[arg(long, value_enum, default_value_t = Backend::Native)]
    pub backend: Backend,
    /// ONNX Runtime execution provider (with --backend ort).
    #[cfg(feature = "ort")]
    #[arg(long, value_enum, default_value_t = ort_backend::Ep::Cpu)]
    pub ep: ort_backend::Ep,
    /// With --backend ort and an int8 model: how the QDQ graph stores weights. `auto`: on the
    /// CPU EP int8 where the CPU has VNNI (exact and fastest there), else uint8 with zero point
    /// 128 (exact on every CPU: int8 saturates on x86 without VNNI); int8 on accelerators. `u8`
    /// or `s8` to choose (both dequantize to the same weights).
    #[cfg(feature = "ort")]
    #[arg(long, value_enum, default_value_t = ort_backend::QdqWeightsArg::Auto)]
    pub qdq_weights: ort_backend::QdqWeightsArg,
    /// Tile size in packed (half-resolution) pixels.
    #[arg(long, default_value_t = 256)]
    pub tile: usize,
    /// Tile halo in packed pixels (default: the model's).
    #[arg(long)]
    pub halo: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Scratch memory budget of all workers together, in MiB: the tile shrinks (by the
    /// model's size multiple, down to 64) until threads x scratch fits; 0 = no limit.
    #[arg(long, default_value_t = 48)]
    pub scratch_mib: usize,
    /// Run every node over the whole tile (no depthwise + pointwise + add fusion).
    #[arg(long)]
    pub no_fusion: bool,
    /// Native backend: how the frame is cut. `stripes`: row-streamed stripes, every network
    /// value a ring of rows and each stripe run top to bottom, so no row is computed twice and
    /// only the stripes' sides have a halo (results equal one pass over the frame's height);
    /// `tiles`: square tiles with a halo on all sides; `auto`: stripes where the model streams
    /// (every op of PMRID does) and streams fast on this CPU's kernels (f32 needs ring-aware
    /// depthwise kernels: AVX-512 or AVX2), tiles otherwise. The stripe width or tile size comes from
    /// `--scratch-mib`.
    #[arg(long, value_enum, default_value_t = Layout::Auto)]
    pub layout: Layout,
    /// Row streaming: input rows per step; the rings hold a few steps (default: 4 for int8
    /// models, whose rings then stay nearer the cores' caches; 8 otherwise).
    #[arg(long)]
    pub stream_step: Option<usize>,
    /// Row streaming: fewest rows a node computes per call (default: 2 for int8 models, whose
    /// rings are a quarter of f32's, so deeper calls cost little memory; 1 otherwise).
    #[arg(long)]
    pub stream_min_rows: Option<usize>,
    /// Native kernels: the highest instruction-set level to use (generic, avx2, avx512,
    /// avx512vnni; generic, neon, dotprod on AArch64), to run a smaller CPU's kernels here;
    /// default: the environment's RAWNR_ISA, else all this CPU has.
    #[arg(long)]
    pub isa: Option<String>,
}

impl EngineArgs {
    /// The one `--model` of a run or benchmark (`None`: the built-in model).
    pub fn single_model(&self) -> Result<Option<&Path>, CliError> {
        match self.model.as_slice() {
            [] => Ok(None),
            [m] => Ok(Some(m)),
            _ => Err(CliError::Usage(
                "--model: one model here (denoise-raw eval compares several)".into(),
            )),
        }
    }

    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }

    /// Applies `--isa` (else checks `RAWNR_ISA`) before any kernel set is chosen: an unknown
    /// level or one this CPU lacks is an error, not a silent fallback.
    pub fn apply_isa(&self) -> Result<(), CliError> {
        use rawnr_kernels::Isa;
        let (what, value) = match (&self.isa, std::env::var("RAWNR_ISA")) {
            (Some(v), _) => ("--isa", v.clone()),
            (None, Ok(v)) => ("RAWNR_ISA", v),
            (None, Err(_)) => return Ok(()),
        };
        let level =
            Isa::check_name(&value).map_err(|e| CliError::Usage(format!("{what} {value}: {e}")))?;
        Isa::force(level).map_err(|e| CliError::Usage(format!("{what} {value}: {e}")))
    }
}

/// How noisy the input is (denoising only; `bench` runs at the model's ISO 1600 noise).
#[derive(Args, Clone)]
pub struct NoiseArgs {
    /// ISO (overrides the file's; selects the noise level from the noise profile).
    #[arg(long)]
    pub iso: Option<f32>,
    /// Noise profile file (JSON curves k(ISO), sigma^2(ISO); see `docs/cli.md`).
    #[arg(long)]
    pub noise_profile: Option<PathBuf>,
    /// Shot-noise gain k in normalised units (overrides the ISO profile; needs --noise-sigma2).
    #[arg(long, requires = "noise_sigma2")]
    pub noise_k: Option<f32>,
    /// Read-noise variance in normalised units (with --noise-k).
    #[arg(long, requires = "noise_k")]
    pub noise_sigma2: Option<f32>,
}

impl NoiseArgs {
    /// The noise level, in this order: explicit `--noise-k/--noise-sigma2`; `--noise-profile`
    /// at the ISO; with an explicit `--iso`, the model's profile at it; the file's NoiseProfile
    /// tag; the model's profile at the file's ISO. Returns the parameters and where they came from.
    fn noise(
        &self,
        d: &Denoiser<'_>,
        file_iso: Option<f32>,
        tag: Option<ChannelNoise>,
    ) -> Result<(ChannelNoise, String), CliError> {
        let rt = |source| CliError::Runtime {
            context: "noise parameters".into(),
            source,
        };
        let iso = self.iso.or(file_iso);
        if let (Some(k), Some(sigma2)) = (self.noise_k, self.noise_sigma2) {
            return Ok((
                NoiseParams { k, sigma2 }.validate().map_err(rt)?.into(),
                "--noise-k/--noise-sigma2".into(),
            ));
        }
        if let Some(p) = &self.noise_profile {
            let iso = iso.ok_or_else(|| {
                CliError::Usage("the ISO is unknown: pass --iso with --noise-profile".into())
            })?;
            return Ok((
                NoiseProfile::read(p)?
                    .channel_noise_at(iso)
                    .map_err(|e| CliError::Usage(format!("{}: at ISO {iso}: {e}", p.display())))?,
                format!("{} at ISO {iso}", p.display()),
            ));
        }
        if let (None, Some(t)) = (self.iso, tag) {
            return Ok((
                t.validate().map_err(rt)?,
                "the file's NoiseProfile tag".into(),
            ));
        }
        let iso = iso.ok_or_else(|| {
            CliError::Usage("the ISO is unknown: pass --iso (or --noise-k/--noise-sigma2)".into())
        })?;
        Ok((
            d.default_noise(iso).map_err(rt)?.into(),
            format!("the model's profile at ISO {iso}"),
        ))
    }
}

/// Whether row-streamed stripes beat tiles for this model on the kernels in use (what
/// `--layout auto` follows). int8 stripes beat int8 tiles on every level measured (AVX-512
/// VNNI and AVX2); f32 stripes need ring-aware depthwise kernels (`depthwise_strided`:
/// AVX-512 and AVX2): without them every streamed depthwise call runs channel by channel
/// (f32 stripes took 1.7x the time of tiles on an AVX2-only CPU before the AVX2 kernel; with
/// it, 0.5x at `--isa avx2` on a Xeon).
fn streams_fast(d: &Denoiser<'_>) -> bool {
    let e = d.engine();
    e.model().is_int8() || e.kernels().depthwise_strided.is_some()
}

impl EngineArgs {
    /// Stripe options for row streaming (`None` when `--layout` picks tiles, or, with `auto`,
    /// for a model that does not stream; an error for `stripes` then): the fewest equal stripes, a multiple of `threads`, for which
    /// `threads` workers' scratch fits `--scratch-mib` (down to 64 packed columns).
    pub fn stripes(
        &self,
        d: &Denoiser<'_>,
        layout: &FrameLayout,
        threads: usize,
    ) -> Result<Option<StripeOptions>, CliError> {
        if self.layout == Layout::Stripes && !d.engine().can_stream() {
            return Err(CliError::Usage(
                "--layout stripes: this model cannot be streamed by rows (a transposed \
                 convolution whose kernel differs from its stride, or over 1024 nodes)"
                    .into(),
            ));
        }
        if self.layout == Layout::Tiles
            || !d.engine().can_stream()
            || (self.layout == Layout::Auto && !streams_fast(d))
        {
            return Ok(None);
        }
        let m = d.engine().model().info().size_multiple.max(1) as usize;
        let budget = self.scratch_mib.saturating_mul(1 << 20);
        // Step and rows per call: the engine's defaults for this model unless given.
        let defaults = StripeOptions::for_model(d.engine().model());
        let opts = |width: usize| StripeOptions {
            width,
            halo: self.halo,
            step: self.stream_step.unwrap_or(defaults.step).max(1),
            min_rows: self.stream_min_rows.unwrap_or(defaults.min_rows).max(1),
        };
        let fits = |width: usize| {
            budget == 0
                || d.prepare_streamed(layout, &opts(width))
                    .is_ok_and(|(_, p)| (p.scratch_len * 4).saturating_mul(threads) <= budget)
        };
        // The fewest stripes, a multiple of the thread count (so no thread idles at the end),
        // whose width fits; 64 columns at the least.
        let threads = threads.max(1);
        let mut stripes = threads;
        loop {
            let width = layout
                .packed_width()
                .div_ceil(stripes)
                .next_multiple_of(m)
                .max(64usize.next_multiple_of(m));
            if fits(width) {
                return Ok(Some(opts(width)));
            }
            if width <= 64usize.next_multiple_of(m) {
                return Err(
                    self.over_budget(&format!("stripes {width} packed columns wide"), threads)
                );
            }
            stripes += threads;
        }
    }

    /// The cut a native run takes: [`EngineArgs::stripes`] where they apply, else
    /// [`EngineArgs::tiles`].
    pub fn cut(
        &self,
        d: &Denoiser<'_>,
        layout: &FrameLayout,
        threads: usize,
    ) -> Result<Cut, CliError> {
        Ok(match self.stripes(d, layout, threads)? {
            Some(s) => Cut::Stripes(s),
            None => Cut::Tiles(self.tiles(d, threads)?),
        })
    }

    /// Tile options: `--tile`, shrunk until `threads` workers' scratch fits `--scratch-mib`;
    /// an error when even a 64-pixel tile does not (nothing is allocated before).
    fn tiles(&self, d: &Denoiser<'_>, threads: usize) -> Result<TileOptions, CliError> {
        let info = d.engine().model().info();
        let m = info.size_multiple.max(1) as usize;
        let halo = self.halo.unwrap_or(info.halo as usize).next_multiple_of(m);
        let budget = self.scratch_mib.saturating_mul(1 << 20);
        let fits = |tile: usize| {
            let region = tile.next_multiple_of(m) + 2 * halo;
            d.engine()
                .scratch_size(region, region)
                .is_ok_and(|s| s.saturating_mul(threads) <= budget)
        };
        let mut tile = self.tile.max(1);
        if budget > 0 && tile > 64 && !fits(tile) {
            // The largest of tile - j m (down to 64) that fits, by bisection on j: scratch grows
            // with the tile, and each probe plans the whole graph.
            let at = |j: usize| tile.saturating_sub(j * m).max(64);
            let (mut fail, mut ok) = (0, (tile - 64).div_ceil(m));
            while ok - fail > 1 {
                let mid = (fail + ok) / 2;
                if fits(at(mid)) {
                    ok = mid;
                } else {
                    fail = mid;
                }
            }
            tile = at(ok);
        }
        if budget > 0 && !fits(tile) {
            return Err(self.over_budget(&format!("{tile}-pixel tiles"), threads));
        }
        Ok(TileOptions {
            tile,
            halo: self.halo,
        })
    }

    /// The error for a model whose smallest tile or stripe needs more working memory than
    /// `--scratch-mib`.
    fn over_budget(&self, what: &str, threads: usize) -> CliError {
        CliError::Usage(format!(
            "the model needs more working memory than --scratch-mib {} allows for {threads} \
             thread(s) even with {what}; raise --scratch-mib (0: no limit) or lower --threads",
            self.scratch_mib
        ))
    }
}

/// Storage of the output DNG's CFA samples.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DngCompression {
    /// Uncompressed (every reader).
    None,
    /// Lossless JPEG tiles (smaller).
    Lossless,
}

/// Detail restoration after the network (`rawnr_engine::detail`).
#[derive(Args, Clone)]
pub struct DetailArgs {
    /// Keep the network's output as it is. By default, where the residual (input minus output)
    /// holds more energy than the noise explains, the output takes part of the input back:
    /// detail the network removed (measured on PMRID: up to +12.7 dB at low noise, at most 0.06
    /// dB lost elsewhere; docs/quality.md).
    #[arg(long)]
    pub no_detail_restore: bool,
}

impl DetailArgs {
    /// Restores detail in `out` (denoised from `noisy` with `noise`) unless turned off.
    pub fn apply(
        &self,
        noisy: &[u16],
        out: &mut [u16],
        layout: &FrameLayout,
        levels: &Levels,
        noise: &ChannelNoise,
    ) -> Result<(), CliError> {
        if self.no_detail_restore {
            return Ok(());
        }
        rawnr_engine::detail::restore_alloc(
            &rawnr_engine::detail::DetailRestore::default(),
            noisy,
            out,
            layout,
            levels,
            noise,
        )
        .map_err(|source| CliError::Runtime {
            context: "detail restoration".into(),
            source,
        })
    }
}

/// What a PGM file does not say: its CFA phase and levels.
#[derive(Args, Clone)]
pub struct PgmArgs {
    /// PGM input: CFA phase of the top-left 2x2 block (rggb, bggr, grbg or gbrg).
    #[arg(long, default_value = "rggb")]
    pub cfa: String,
    /// PGM input: black level, one value or four for R,Gr,Gb,B.
    #[arg(long, default_value = "0", value_delimiter = ',')]
    pub black: Vec<f32>,
    /// PGM input: white level (default: the PGM's maxval).
    #[arg(long)]
    pub white: Option<f32>,
}

#[derive(Args)]
struct RunArgs {
    /// Input raw frame: a Bayer DNG, or a binary PGM (16-bit big-endian or 8-bit) with --cfa.
    #[arg(required = true)]
    input: Option<PathBuf>,
    /// Output file: a .dng for DNG input, a .pgm for PGM input (never the input itself).
    #[arg(required = true)]
    output: Option<PathBuf>,
    #[command(flatten)]
    pgm: PgmArgs,
    #[command(flatten)]
    detail: DetailArgs,
    /// Blend with the input: 1 = fully denoised, 0 = unchanged.
    #[arg(long, default_value_t = 1.0)]
    strength: f32,
    /// DNG output: store CFA samples uncompressed (none) or as lossless JPEG tiles (lossless).
    #[arg(long, value_enum, default_value_t = DngCompression::None)]
    compression: DngCompression,
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
    noise: NoiseArgs,
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

/// Checks that `output` can be written before any work is done, so an error leaves nothing
/// behind: not the input (nor another output), not existing unless `overwrite`, and its folder
/// exists and takes new files (a probe file is created and removed).
fn check_output(
    what: &str,
    input: &Path,
    output: &Path,
    others: &[&Path],
    overwrite: bool,
) -> Result<(), CliError> {
    let same = |a: &Path, b: &Path| {
        a == b
            || match (a.canonicalize(), b.canonicalize()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
    };
    if same(input, output) {
        return Err(CliError::Usage(format!(
            "{}: refusing to overwrite the input",
            output.display()
        )));
    }
    if let Some(o) = others.iter().find(|o| same(o, output)) {
        return Err(CliError::Usage(format!(
            "{}: the {what} would overwrite {}",
            output.display(),
            o.display()
        )));
    }
    if output.is_dir() {
        return Err(CliError::Usage(format!(
            "{}: is a folder; give the {what} a file name",
            output.display()
        )));
    }
    if output.exists() && !overwrite {
        return Err(CliError::Usage(format!(
            "{}: exists (pass --overwrite to replace it)",
            output.display()
        )));
    }
    let folder = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(CliError::Usage(format!(
            "{}: the folder {} does not exist (create it first)",
            output.display(),
            folder.display()
        )));
    }
    let probe = folder.join(format!(".rawnr-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(CliError::Usage(format!(
            "{}: cannot write in the folder {}: {e}",
            output.display(),
            folder.display()
        ))),
    }
}

/// The output's extension must say what is written: `.dng` for a DNG input, `.pgm` for a PGM
/// input (a picture is what `--preview` writes).
fn check_output_kind(output: &Path, dng: bool) -> Result<(), CliError> {
    let want = if dng { "dng" } else { "pgm" };
    let ext = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if ext.as_deref() == Some(want) {
        return Ok(());
    }
    let hint = match ext.as_deref() {
        Some("png" | "jpg" | "jpeg" | "tif" | "tiff") => {
            " (for a picture of the result, add --preview FILE.png)"
        }
        _ => "",
    };
    Err(CliError::Usage(format!(
        "{}: a {} input is written as a {}; name the output .{want}{hint}",
        output.display(),
        want.to_ascii_uppercase(),
        want.to_ascii_uppercase()
    )))
}

/// A frame to denoise: samples, the region to denoise and its description.
pub struct Frame {
    /// Samples (a DNG's whole raw image, or the PGM).
    pub data: Vec<u16>,
    /// Offset of the region's first sample in `data`.
    pub offset: usize,
    /// The region (stride: the row length of `data`).
    pub layout: FrameLayout,
    /// Black and white levels.
    pub levels: Levels,
    /// ISO from the file.
    pub iso: Option<f32>,
    /// Noise from the file's NoiseProfile tag.
    pub tag_noise: Option<ChannelNoise>,
    /// The DNG, to write the output with its metadata.
    dng: Option<dng::DngFrame>,
}

/// Reads a DNG (its active area) or a PGM (described by `args`).
pub fn read_frame(input: &Path, args: &PgmArgs) -> Result<Frame, CliError> {
    let mut head = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(input).map_err(|source| rawnr_io::IoError::Os {
            path: input.display().to_string(),
            source,
        })?;
        let n = f.read(&mut head).map_err(|source| rawnr_io::IoError::Os {
            path: input.display().to_string(),
            source,
        })?;
        if n < 2 {
            return Err(rawnr_io::IoError::Format {
                path: input.display().to_string(),
                reason: "empty or truncated file".into(),
            }
            .into());
        }
    }
    if head.starts_with(b"P5") {
        let cfa = CfaPhase::parse(&args.cfa).ok_or_else(|| {
            CliError::Usage(format!(
                "--cfa {}: expected rggb, bggr, grbg or gbrg",
                args.cfa
            ))
        })?;
        let pgm = pgm::read(input)?;
        let levels = levels(&args.black, args.white.unwrap_or(pgm.maxval as f32))?;
        let layout = FrameLayout::new(pgm.width, pgm.height, cfa);
        layout
            .validate(pgm.data.len())
            .map_err(|source| CliError::Runtime {
                context: input.display().to_string(),
                source,
            })?;
        return Ok(Frame {
            data: pgm.data,
            offset: 0,
            layout,
            levels,
            iso: None,
            tag_noise: None,
            dng: None,
        });
    }
    if !(head.starts_with(b"II*\0") || head.starts_with(b"MM\0*")) {
        return Err(rawnr_io::IoError::Format {
            path: input.display().to_string(),
            reason: "not a DNG or binary PGM (P5) raw file".into(),
        }
        .into());
    }
    let mut d = dng::read(input)?;
    let (offset, layout) = d.active_region();
    // DNG NoiseProfile: one (S, O) pair for all planes, or one per CFA plane colour (R, G, B);
    // S = k and O = sigma^2 in the same normalised units.
    let pair = |&(s, o): &(f64, f64)| NoiseParams {
        k: s as f32,
        sigma2: o as f32,
    };
    let tag_noise = d.noise_profile.as_ref().map(|np| match np.as_slice() {
        [r, g, b] => ChannelNoise::from_rgb([pair(r), pair(g), pair(b)]),
        _ => {
            let n = np.len() as f64;
            let (s, o) = np
                .iter()
                .fold((0.0, 0.0), |a, &(s, o)| (a.0 + s / n, a.1 + o / n));
            ChannelNoise::from(pair(&(s, o)))
        }
    });
    Ok(Frame {
        data: core::mem::take(&mut d.data),
        offset,
        layout,
        levels: d.levels,
        iso: d.iso.map(|i| i as f32),
        tag_noise,
        dng: Some(d),
    })
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
    if !input.is_file() {
        return Err(CliError::Usage(format!(
            "{}: {}",
            input.display(),
            if input.exists() {
                "not a file"
            } else {
                "no such file"
            }
        )));
    }
    args.engine.apply_isa()?;
    // Every output is checked before any is written: an error leaves nothing behind.
    check_output("output", input, output, &[], args.overwrite)?;
    if let Some(p) = &args.preview {
        check_output("preview", input, p, &[output], args.overwrite)?;
        if !p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            return Err(CliError::Usage(format!(
                "{}: the preview is a PNG; name it .png",
                p.display()
            )));
        }
    }
    let frame = read_frame(input, &args.pgm)?;
    check_output_kind(output, frame.dng.is_some())?;

    let model_store = model::load(args.engine.single_model()?)?;
    let model = model_store.model();
    let denoiser = Denoiser::new(Engine::new(model).with_fusion(!args.engine.no_fusion));
    let (noise, noise_source) = args.noise.noise(&denoiser, frame.iso, frame.tag_noise)?;
    let threads = args.engine.threads();
    let start = Instant::now();
    let mut out = frame.data.clone();
    let layout = frame.layout;
    let progress =
        (!args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} denoising [{bar:40}] {pos}/{len} tile rows {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
    let on_band = |done: usize, total: usize| {
        if let Some(b) = &progress {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    run_backend(
        &args.engine,
        &denoiser,
        &frame.data[frame.offset..],
        &layout,
        &mut out[frame.offset..],
        &frame.levels,
        noise,
        &on_band,
    )
    .map_err(|e| match e {
        CliError::Runtime { source, .. } => CliError::Runtime {
            context: input.display().to_string(),
            source,
        },
        other => other,
    })?;
    if let Some(b) = &progress {
        b.finish_and_clear();
    }
    args.detail.apply(
        &frame.data[frame.offset..],
        &mut out[frame.offset..],
        &layout,
        &frame.levels,
        &noise,
    )?;
    if args.strength < 1.0 {
        let s = args.strength;
        for (o, &i) in out.iter_mut().zip(&frame.data) {
            *o = (s * *o as f32 + (1.0 - s) * i as f32 + 0.5) as u16;
        }
    }
    let elapsed = start.elapsed();
    let ratio =
        residual::variance_ratio(&frame.data[frame.offset..], &out[frame.offset..], &layout);
    match &frame.dng {
        Some(d) => {
            // Remaining noise: one pair, or one per plane colour (R, G, B) when they differ.
            let [r, gr, _, b] = noise.0;
            let scaled = |p: NoiseParams| (p.k as f64 * ratio, p.sigma2 as f64 * ratio);
            let remaining: Vec<(f64, f64)> = if noise.0.iter().all(|p| *p == r) {
                vec![scaled(r)]
            } else {
                vec![scaled(r), scaled(gr), scaled(b)]
            };
            let software = concat!("rawnr denoise-raw ", env!("CARGO_PKG_VERSION"));
            let c = match args.compression {
                DngCompression::None => dng::Compression::None,
                DngCompression::Lossless => dng::Compression::Lossless,
            };
            dng::write(output, d, &out, Some(remaining.as_slice()), software, c)?;
        }
        None => {
            let (w, h) = (layout.width, layout.height);
            pgm::write(
                output,
                &pgm::Pgm {
                    width: w,
                    height: h,
                    maxval: out
                        .iter()
                        .copied()
                        .max()
                        .unwrap_or(0)
                        .max(frame.levels.white as u16),
                    data: out.clone(),
                },
            )?;
        }
    }
    if let Some(p) = &args.preview {
        let iso = args.noise.iso.or(frame.iso);
        let noisy = match iso {
            Some(iso) => format!("noisy, ISO {iso}"),
            None => "noisy".to_string(),
        };
        let denoised = format!("denoised, {}", model.info().name_str());
        write_panels(
            p,
            &[&frame.data[frame.offset..], &out[frame.offset..]],
            &[&noisy, &denoised],
            &layout,
            &frame.levels,
        )?;
    }
    if !args.quiet {
        let bands = match model.noise_bands() {
            1 => String::new(),
            n => format!(
                " (noise band {} of {n})",
                denoiser
                    .noise_band(&noise)
                    .map_err(|source| CliError::Runtime {
                        context: input.display().to_string(),
                        source,
                    })?
            ),
        };
        println!(
            "{} -> {}: {}x{} {}, model {}{bands}, noise (green) k {:.3e} sigma^2 {:.3e} from {}, remaining noise variance ~{:.2}%, {} threads, {:.2} s",
            input.display(),
            output.display(),
            layout.width,
            layout.height,
            layout.cfa.name(),
            model.info().name_str(),
            noise.0[1].k,
            noise.0[1].sigma2,
            noise_source,
            100.0 * ratio,
            threads,
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// Before (left) and after (right) crops of the frame centre, up to 512x512 preview pixels each,
/// under a black band that labels them (`labels`: left, right).
/// Writes centre crops (at most 512x512 preview pixels) of `frames`, side by side, each under
/// its label, rendered with the white balance of the first.
pub fn write_panels(
    path: &Path,
    frames: &[&[u16]],
    labels: &[&str],
    layout: &FrameLayout,
    levels: &Levels,
) -> Result<(), CliError> {
    let gains = preview::auto_gains(frames[0], layout, levels);
    let rendered: Vec<(usize, usize, Vec<u8>)> = frames
        .iter()
        .map(|f| preview::render(f, layout, levels, gains))
        .collect();
    let (w, h) = (rendered[0].0, rendered[0].1);
    let (cw, ch) = (w.min(512), h.min(512));
    let (x0, y0) = ((w - cw) / 2, (h - ch) / 2);
    let gap = 4;
    let n = frames.len();
    let out_w = n * cw + (n - 1) * gap;
    // Label band: glyphs at scale 2 where every label fits over its crop, else 1.
    let fit = |scale: usize| {
        labels
            .iter()
            .all(|l| preview::text_width(l, scale) + 4 * scale <= cw)
    };
    let scale = if fit(2) { 2 } else { 1 };
    let band = (preview::GLYPH_HEIGHT + 4) * scale;
    let out_h = band + ch;
    let mut img = vec![255u8; out_w * out_h * 3];
    img[..out_w * band * 3].fill(0);
    for (i, label) in labels.iter().enumerate() {
        // As much of the label as fits over its crop.
        let fits = label
            .char_indices()
            .map(|(at, c)| at + c.len_utf8())
            .take_while(|&end| preview::text_width(&label[..end], scale) + 4 * scale <= cw)
            .last()
            .unwrap_or(0);
        preview::draw_text(
            &mut img,
            out_w,
            (i * (cw + gap) + 2 * scale, 2 * scale),
            &label[..fits],
            scale,
            [255, 255, 255],
        );
    }
    for y in 0..ch {
        let src = ((y0 + y) * w + x0) * 3;
        for (i, r) in rendered.iter().enumerate() {
            let dst = ((band + y) * out_w + i * (cw + gap)) * 3;
            img[dst..dst + cw * 3].copy_from_slice(&r.2[src..src + cw * 3]);
        }
    }
    preview::write_png(path, out_w, out_h, &img)?;
    Ok(())
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`bench | head`) would panic; the
    // default action ends the process quietly, as for any Unix tool.
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Bench(b)) => bench::run(b),
        Some(Command::Eval(e)) => eval::run(e),
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
