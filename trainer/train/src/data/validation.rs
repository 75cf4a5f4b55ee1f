//! The fixed held-out set: centre crops of validation frames and dead-leaves frames of their own
//! seeds, each at every validation ISO with seeded noise.

use rand::SeedableRng;
use rawnr_core::noise::ChannelNoise;

use super::{frames, noise, Conditioning, Window};
use crate::config::{DataConfig, ValidationConfig};
use crate::TrainError;

/// First dead-leaves index of validation frames (training uses 0..data.dead_leaves).
const VALIDATION_DEAD_LEAVES: usize = 1 << 20;

/// One validation crop at one ISO.
#[derive(Debug, Clone)]
pub struct ValidationCase {
    /// Source frame.
    pub name: String,
    /// ISO.
    pub iso: f32,
    /// Noise at that ISO.
    pub noise: ChannelNoise,
    /// Noisy input in the network domain (4 planes of `size * size`).
    pub input: Vec<f32>,
    /// Clean crop, normalised.
    pub clean: Vec<f32>,
}

/// The held-out set.
#[derive(Debug, Clone)]
pub struct ValidationSet {
    /// Crop side in packed pixels.
    pub size: usize,
    /// Cases, grouped by source then ISO.
    pub cases: Vec<ValidationCase>,
}

impl ValidationSet {
    /// Builds the set of `v` with the data settings of `data` (PGM levels, dead-leaves size).
    pub fn build(
        v: &ValidationConfig,
        data: &DataConfig,
        cond: &Conditioning,
    ) -> Result<ValidationSet, TrainError> {
        let side = Window::side(v.size);
        let mut sources = Vec::new();
        for path in &v.frames {
            for f in frames::raw_files(path)? {
                let frame = frames::read_clean(&f, &data.pgm)?;
                if frame.layout.width < side || frame.layout.height < side {
                    return Err(TrainError::Input(format!(
                        "{}: smaller than the {side}x{side} validation crop",
                        f.display()
                    )));
                }
                let name = f
                    .file_name()
                    .map_or("frame".into(), |n| n.to_string_lossy().into_owned());
                sources.push((name, frame));
            }
        }
        let leaves = frames::dead_leaves(
            data.seed,
            VALIDATION_DEAD_LEAVES,
            v.dead_leaves,
            side.max(256),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        );
        sources.extend(
            leaves
                .into_iter()
                .enumerate()
                .map(|(i, f)| (format!("dead-leaves-{i}"), f)),
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(v.seed);
        let mut cases = Vec::new();
        for (name, frame) in &sources {
            let clean = Window::centre(frame, v.size).pack(frame);
            for &iso in &v.isos {
                let n = cond.noise_at(iso).map_err(|e| {
                    TrainError::Config(format!("run.validation.isos: ISO {iso}: {e}"))
                })?;
                let noisy = cond.clip(noise::add_noise(&clean, v.size, &n, &mut rng));
                cases.push(ValidationCase {
                    name: name.clone(),
                    iso,
                    noise: n,
                    input: cond.map(&noisy, v.size, &n),
                    clean: clean.clone(),
                });
            }
        }
        Ok(ValidationSet {
            size: v.size,
            cases,
        })
    }
}
