//! Clean frames (real raw and synthetic dead leaves) and real noisy/clean pairs, read once at
//! the start of a run.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rawnr_core::bayer::{CfaPhase, Levels};
use rawnr_core::noise::ChannelNoise;
use rawnr_quality::CleanFrame;

use super::{Conditioning, Window};
use crate::config::{DataConfig, PgmLevels};
use crate::TrainError;

/// Seed offset of the training dead-leaves frames (validation frames use their own).
const DEAD_LEAVES_SEED: u64 = 0xdead_1eaf;

/// A real noisy capture and its clean reference, aligned, with the noise of its ISO.
#[derive(Debug, Clone)]
pub struct PairFrame {
    /// The noisy capture, normalised.
    pub noisy: CleanFrame,
    /// The clean reference, normalised.
    pub clean: CleanFrame,
    /// ISO of the noisy capture.
    pub iso: f32,
    /// The profile's noise at that ISO (selects the k-sigma map).
    pub noise: ChannelNoise,
}

/// Everything patches are cut from.
#[derive(Debug, Clone, Default)]
pub struct DataSources {
    /// Clean frames: real ones first, then dead leaves.
    pub clean: Vec<CleanFrame>,
    /// Real pairs.
    pub pairs: Vec<PairFrame>,
}

/// The `.dng` and `.pgm` files of `path` (a folder, sorted by name, or one file).
pub fn raw_files(path: &Path) -> Result<Vec<PathBuf>, TrainError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| TrainError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("dng") || e.eq_ignore_ascii_case("pgm"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads a DNG (its active area) or a PGM (with `pgm`'s CFA and levels) as a normalised frame.
pub fn read_clean(path: &Path, pgm: &PgmLevels) -> Result<CleanFrame, TrainError> {
    let err = |e: &dyn std::fmt::Display| TrainError::Input(format!("{}: {e}", path.display()));
    let cfa =
        CfaPhase::parse(&pgm.cfa).ok_or_else(|| err(&"data.pgm.cfa: rggb, bggr, grbg or gbrg"))?;
    let levels = Levels::uniform(pgm.black, pgm.white);
    CleanFrame::read(path, cfa, &levels).map_err(|e| err(&e))
}

/// Dead-leaves frames `first..first + n` of `size x size` (seeded per frame), made on up to
/// `threads` threads.
pub fn dead_leaves(
    seed: u64,
    first: usize,
    n: usize,
    size: usize,
    threads: usize,
) -> Vec<CleanFrame> {
    let make = |i: usize| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ DEAD_LEAVES_SEED ^ (i as u64) << 20);
        CleanFrame::dead_leaves(
            size,
            size,
            CfaPhase::Rggb,
            Levels::uniform(0.0, 65535.0),
            &mut rng,
        )
    };
    let threads = threads.clamp(1, n.max(1));
    let mut out: Vec<Option<CleanFrame>> = vec![None; n];
    std::thread::scope(|s| {
        for (t, chunk) in out.chunks_mut(n.div_ceil(threads).max(1)).enumerate() {
            let make = &make;
            let base = first + t * n.div_ceil(threads);
            s.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    *slot = Some(make(base + j));
                }
            });
        }
    });
    out.into_iter().map(|f| f.expect("made")).collect()
}

fn check_size(f: &CleanFrame, side: usize, what: &Path) -> Result<(), TrainError> {
    if f.layout.width < side || f.layout.height < side {
        return Err(TrainError::Input(format!(
            "{}: {}x{} is smaller than the {side}x{side} crop window",
            what.display(),
            f.layout.width,
            f.layout.height
        )));
    }
    Ok(())
}

impl DataSources {
    /// Reads the clean frames and pairs of `cfg` and makes its dead-leaves frames.
    pub fn load(cfg: &DataConfig, cond: &Conditioning) -> Result<DataSources, TrainError> {
        let side = Window::side(cfg.patch);
        let mut clean = Vec::new();
        for dir in &cfg.clean {
            let files = raw_files(dir)?;
            if files.is_empty() {
                return Err(TrainError::Input(format!(
                    "{}: no .dng or .pgm files",
                    dir.display()
                )));
            }
            for f in files {
                let frame = read_clean(&f, &cfg.pgm)?;
                check_size(&frame, side, &f)?;
                clean.push(frame);
            }
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        clean.extend(dead_leaves(
            cfg.seed,
            0,
            cfg.dead_leaves,
            cfg.dead_leaves_size,
            threads,
        ));
        let mut pairs = Vec::new();
        if let Some(p) = &cfg.pairs {
            for noisy_path in raw_files(&p.noisy)? {
                let name = noisy_path.file_name().ok_or_else(|| {
                    TrainError::Input(format!("{}: not a file", noisy_path.display()))
                })?;
                let clean_path = p.clean.join(name);
                let f = rawnr_io::dng::read(&noisy_path)
                    .map_err(|e| TrainError::Input(format!("{}: {e}", noisy_path.display())))?;
                let iso = f.iso.ok_or_else(|| {
                    TrainError::Input(format!("{}: no ISO tag", noisy_path.display()))
                })? as f32;
                let noisy = read_clean(&noisy_path, &cfg.pgm)?;
                let clean_frame = read_clean(&clean_path, &cfg.pgm)?;
                if noisy.layout != clean_frame.layout {
                    return Err(TrainError::Input(format!(
                        "{}: geometry differs from {}",
                        clean_path.display(),
                        noisy_path.display()
                    )));
                }
                check_size(&noisy, side, &noisy_path)?;
                let noise = cond
                    .profile
                    .channel_noise_at(iso)
                    .map_err(|e| TrainError::Input(format!("{}: {e}", noisy_path.display())))?;
                pairs.push(PairFrame {
                    noisy,
                    clean: clean_frame,
                    iso,
                    noise,
                });
            }
            if pairs.is_empty() {
                return Err(TrainError::Input(format!(
                    "{}: no pairs",
                    p.noisy.display()
                )));
            }
        }
        Ok(DataSources { clean, pairs })
    }
}
