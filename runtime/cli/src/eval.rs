//! `denoise-raw eval`: the quality suite. Clean raw frames get synthetic Poisson-Gaussian
//! noise from sensor noise profiles at several ISOs (`rawnr_quality`), every model denoises
//! the same noisy frames with those profiles' parameters, and PSNR / SSIM over the normalised
//! Bayer frame go to a markdown table (and optionally PNG crops: noisy, each model, clean).

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use rand::SeedableRng;
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::{InputConvention, NoiseChannels};
use rawnr_core::noise::ChannelNoise;
use rawnr_engine::denoiser::Denoiser;
use rawnr_engine::graph::Engine;
use rawnr_io::profile::NoiseProfile;
use rawnr_quality::{psnr, ssim_bayer, CleanFrame};

use crate::{
    model, read_frame, run_backend, write_panels, CliError, DetailArgs, EngineArgs, PgmArgs,
};

/// `denoise-raw eval` options.
#[derive(Args)]
pub struct EvalArgs {
    /// Clean raw frames (DNG, or PGM described by --cfa/--black/--white); repeat or
    /// comma-separate.
    #[arg(
        long = "frame",
        value_delimiter = ',',
        required_unless_present = "dead_leaves"
    )]
    frames: Vec<PathBuf>,
    /// Also score this many synthetic dead-leaves frames (14-bit, RGGB; the --crop size, else
    /// 1024x768), made from --seed.
    #[arg(long, default_value_t = 0)]
    dead_leaves: usize,
    /// Centre crop of each frame, WIDTHxHEIGHT raw pixels (block-aligned), to keep runs short.
    #[arg(long)]
    crop: Option<String>,
    /// Noise profiles (rawnr-calib JSON) whose noise is synthesised; `model` is the first
    /// model's own profile. Default: `model`.
    #[arg(long = "profile", value_delimiter = ',')]
    profiles: Vec<String>,
    /// ISOs.
    #[arg(long, value_delimiter = ',', default_value = "800,1600,3200,6400")]
    iso: Vec<f32>,
    /// Seed of the synthetic noise (the same noisy frames for every model).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Clip samples below black before the network: as the model declares, or forced.
    #[arg(long, value_enum, default_value_t = Choice::Auto)]
    clip: Choice,
    /// Per-channel noise: as the model declares, one pooled transform, or one per plane.
    #[arg(long, value_enum, default_value_t = ChannelsChoice::Auto)]
    noise_channels: ChannelsChoice,
    /// Write PNG crops (noisy, each model, clean) for every frame, profile and ISO here.
    #[arg(long)]
    crops: Option<PathBuf>,
    #[command(flatten)]
    pgm: PgmArgs,
    #[command(flatten)]
    detail: DetailArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `--clip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Choice {
    /// As the model declares.
    Auto,
    /// Forced on.
    Yes,
    /// Forced off.
    No,
}

/// `--noise-channels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChannelsChoice {
    /// As the model declares.
    Auto,
    /// One transform from the parameters averaged over the channels.
    Pooled,
    /// One transform per plane.
    PerPlane,
}

impl EvalArgs {
    /// The convention to run a model with `declared` under.
    fn convention(&self, declared: InputConvention) -> InputConvention {
        InputConvention {
            clip_below_black: match self.clip {
                Choice::Auto => declared.clip_below_black,
                Choice::Yes => true,
                Choice::No => false,
            },
            noise_channels: match self.noise_channels {
                ChannelsChoice::Auto => declared.noise_channels,
                ChannelsChoice::Pooled => NoiseChannels::Pooled,
                ChannelsChoice::PerPlane => NoiseChannels::PerPlane,
            },
        }
    }
}

/// Where the noise of a table row comes from.
enum Source {
    /// The first model's default curves.
    Model,
    /// A profile file.
    File(String, Box<NoiseProfile>),
}

impl Source {
    fn name(&self) -> &str {
        match self {
            Source::Model => "model",
            Source::File(n, _) => n,
        }
    }
}

/// One model's scores on one noisy frame.
struct Score {
    psnr: f64,
    ssim: Option<f64>,
}

fn score(clean: &CleanFrame, raw: &[u16]) -> Score {
    let x = clean.normalise(raw);
    Score {
        psnr: psnr(&clean.data, &x, 1.0),
        ssim: ssim_bayer(&clean.data, &x, clean.layout.width, clean.layout.height),
    }
}

fn fmt(s: &Score) -> String {
    match s.ssim {
        Some(v) => format!("{:.2} / {:.4}", s.psnr, v),
        None => format!("{:.2} / -", s.psnr),
    }
}

/// The frame's region to score: the whole active area, or a block-aligned centre crop.
fn region(layout: &FrameLayout, crop: Option<(usize, usize)>) -> (usize, usize, usize, usize) {
    let (w, h) = (layout.width & !1, layout.height & !1);
    match crop {
        Some((cw, ch)) => {
            let (cw, ch) = (cw.min(w) & !1, ch.min(h) & !1);
            (((w - cw) / 2) & !1, ((h - ch) / 2) & !1, cw, ch)
        }
        None => (0, 0, w, h),
    }
}

fn parse_crop(s: &str) -> Result<(usize, usize), CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--crop {s}: expected WIDTHxHEIGHT, each at least 24"
        ))
    };
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h) = (
        w.parse::<usize>().map_err(|_| bad())?,
        h.parse::<usize>().map_err(|_| bad())?,
    );
    if w < 24 || h < 24 {
        return Err(bad());
    }
    Ok((w, h))
}

/// Runs the suite and prints the table.
pub fn run(a: EvalArgs) -> Result<(), CliError> {
    a.engine.apply_isa()?;
    let crop = a.crop.as_deref().map(parse_crop).transpose()?;
    if a.iso.iter().any(|&i| !(i.is_finite() && i > 0.0)) {
        return Err(CliError::Usage("--iso: ISOs must be positive".into()));
    }
    let mut frames = Vec::new();
    for path in &a.frames {
        let f = read_frame(path, &a.pgm)?;
        let clean = CleanFrame::from_raw(
            &f.data[f.offset..],
            &f.layout,
            &f.levels,
            region(&f.layout, crop),
        );
        frames.push((file_name(path), clean));
    }
    let (lw, lh) = crop.unwrap_or((1024, 768));
    for i in 0..a.dead_leaves {
        let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed.wrapping_add(1000 + i as u64));
        let levels = Levels::uniform(512.0, 16383.0);
        let clean = CleanFrame::dead_leaves(lw & !1, lh & !1, CfaPhase::Rggb, levels, &mut rng);
        frames.push((format!("dead-leaves-{i}"), clean));
    }
    let profiles: Vec<Source> = if a.profiles.is_empty() {
        vec![Source::Model]
    } else {
        a.profiles
            .iter()
            .map(|p| {
                if p == "model" {
                    Ok(Source::Model)
                } else {
                    let prof = NoiseProfile::read(Path::new(p))?;
                    Ok(Source::File(file_name(Path::new(p)), Box::new(prof)))
                }
            })
            .collect::<Result<_, CliError>>()?
    };
    let paths: Vec<Option<PathBuf>> = if a.engine.model.is_empty() {
        vec![None]
    } else {
        a.engine.model.iter().cloned().map(Some).collect()
    };
    let stores = paths
        .iter()
        .map(|p| model::load(p.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.as_deref().map_or("built-in".into(), file_name))
        .collect();
    let denoisers: Vec<Denoiser<'_>> = stores
        .iter()
        .map(|s| {
            let m = s.model();
            let input = a.convention(m.info().input);
            Denoiser::new(Engine::new(m).with_fusion(!a.engine.no_fusion))
                .with_input_convention(input)
        })
        .collect();
    let conv = denoisers[0].input_convention();
    println!(
        "rawnr eval: seed {}, clip below black {}, noise channels {:?}, detail restoration {}; PSNR (dB) / SSIM over the normalised Bayer frame\n",
        a.seed,
        if conv.clip_below_black { "yes" } else { "no" },
        conv.noise_channels,
        if a.detail.no_detail_restore { "off" } else { "on" }
    );
    let mut head = String::from("| frame | profile | ISO | noisy |");
    let mut rule = String::from("|---|---|---|---|");
    for (i, n) in names.iter().enumerate() {
        head += &format!(" {n} |");
        rule += "---|";
        if i > 0 {
            head += &format!(" {n} - {} (dB) |", names[0]);
            rule += "---|";
        }
    }
    println!("{head}\n{rule}");
    let mut deltas = vec![Vec::new(); names.len()];
    for (fi, (fname, clean)) in frames.iter().enumerate() {
        for (pi, src) in profiles.iter().enumerate() {
            for &iso in &a.iso {
                let noise: ChannelNoise = match src {
                    Source::Model => denoisers[0].default_noise(iso).map(Into::into),
                    Source::File(_, p) => p.channel_noise_at(iso),
                }
                .map_err(|e| {
                    CliError::Usage(format!("profile {} at ISO {iso}: {e}", src.name()))
                })?;
                let seed =
                    a.seed ^ ((fi as u64) << 40) ^ ((pi as u64) << 32) ^ iso.to_bits() as u64;
                let noisy = clean.noisy_raw(&noise, &mut rand::rngs::StdRng::seed_from_u64(seed));
                let mut row = format!(
                    "| {fname} | {} | {iso} | {} |",
                    src.name(),
                    fmt(&score(clean, &noisy))
                );
                let mut outs: Vec<Vec<u16>> = Vec::new();
                let mut first_psnr = 0.0;
                for (mi, d) in denoisers.iter().enumerate() {
                    let mut out = vec![0u16; noisy.len()];
                    run_backend(
                        &a.engine,
                        d,
                        &noisy,
                        &clean.layout,
                        &mut out,
                        &clean.levels,
                        noise,
                        &|_, _| {},
                    )?;
                    a.detail
                        .apply(&noisy, &mut out, &clean.layout, &clean.levels, &noise)?;
                    let s = score(clean, &out);
                    row += &format!(" {} |", fmt(&s));
                    if mi == 0 {
                        first_psnr = s.psnr;
                    } else {
                        deltas[mi].push(s.psnr - first_psnr);
                        row += &format!(" {:+.3} |", s.psnr - first_psnr);
                    }
                    outs.push(out);
                }
                println!("{row}");
                if let Some(dir) = &a.crops {
                    write_crops(dir, fname, src.name(), iso, clean, &noisy, &outs, &names)?;
                }
            }
        }
    }
    for (mi, d) in deltas.iter().enumerate().skip(1) {
        if let (Some(lo), Some(hi)) = (
            d.iter().copied().reduce(f64::min),
            d.iter().copied().reduce(f64::max),
        ) {
            println!(
                "\n{} - {}: {:+.3} to {:+.3} dB (mean {:+.3})",
                names[mi],
                names[0],
                lo,
                hi,
                d.iter().sum::<f64>() / d.len() as f64
            );
        }
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The clean frame as raw samples.
fn clean_raw(clean: &CleanFrame) -> Vec<u16> {
    let ch = clean.layout.cfa.channels();
    let w = clean.layout.width;
    clean
        .data
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = ch[((i / w) % 2) * 2 + (i % w) % 2];
            let b = clean.levels.black[c];
            (b + x as f32 * (clean.levels.white - b)).round() as u16
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn write_crops(
    dir: &Path,
    frame: &str,
    profile: &str,
    iso: f32,
    clean: &CleanFrame,
    noisy: &[u16],
    outs: &[Vec<u16>],
    names: &[String],
) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| rawnr_io::IoError::Os {
        path: dir.display().to_string(),
        source,
    })?;
    let clean_raw = clean_raw(clean);
    let mut frames: Vec<&[u16]> = vec![noisy];
    frames.extend(outs.iter().map(|o| o.as_slice()));
    frames.push(&clean_raw);
    let mut labels = vec![format!("noisy ISO {iso}")];
    labels.extend(names.iter().cloned());
    labels.push("clean".into());
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let stem = |s: &str| s.rsplit_once('.').map_or(s, |(a, _)| a).to_string();
    let path = dir.join(format!("{}-{}-iso{iso}.png", stem(frame), stem(profile)));
    write_panels(&path, &frames, &labels, &clean.layout, &clean.levels)
}
