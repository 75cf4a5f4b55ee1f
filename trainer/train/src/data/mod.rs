//! Training pairs made on the fly: a clean packed patch (from a real frame, a dead-leaves frame or
//! a real noisy/clean pair), Poisson-Gaussian noise from the profile at a random ISO, and the
//! k-sigma mapping the runtime applies before the network.

pub mod crop;
pub mod frames;
pub mod loader;
pub mod noise;
pub mod validation;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use crop::{Augment, Window};
pub use frames::{DataSources, PairFrame};
pub use loader::Loader;
pub use noise::Conditioning;
pub use validation::{ValidationCase, ValidationSet};

/// A batch of training pairs in the network's input domain, NCHW with C = 4 (R, Gr, Gb, B).
#[derive(Debug, Clone)]
pub struct Batch {
    /// Patches.
    pub n: usize,
    /// Patch side (packed pixels).
    pub size: usize,
    /// Noisy network inputs, `n * 4 * size * size`.
    pub noisy: Vec<f32>,
    /// Clean targets in the same domain.
    pub clean: Vec<f32>,
    /// ISO of each patch.
    pub iso: Vec<f32>,
}

/// Makes batch number `index` of a run: deterministic for a given seed and index, whichever
/// thread makes it.
pub fn make_batch(
    sources: &DataSources,
    cond: &Conditioning,
    cfg: &crate::config::DataConfig,
    seed: u64,
    index: u64,
) -> Batch {
    let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let (n, p) = (cfg.batch, cfg.patch);
    let plane = 4 * p * p;
    let mut b = Batch {
        n,
        size: p,
        noisy: Vec::with_capacity(n * plane),
        clean: Vec::with_capacity(n * plane),
        iso: Vec::with_capacity(n),
    };
    for _ in 0..n {
        let aug = Augment::random(&mut rng);
        let use_pair = !sources.pairs.is_empty()
            && (sources.clean.is_empty() || rng.random::<f32>() < cfg.pairs_fraction);
        if use_pair {
            let pair = &sources.pairs[rng.random_range(0..sources.pairs.len())];
            let w = Window::random(&pair.clean, p, aug, &mut rng);
            let clean = w.pack(&pair.clean);
            let noisy = cond.clip(w.pack(&pair.noisy));
            let noise = pair.noise;
            b.noisy.extend(cond.map(&noisy, p, &noise));
            b.clean.extend(cond.map(&clean, p, &noise));
            b.iso.push(pair.iso);
        } else {
            let frame = &sources.clean[rng.random_range(0..sources.clean.len())];
            let w = Window::random(frame, p, aug, &mut rng);
            let clean = w.pack(frame);
            let (iso, noise) = cond.draw(&mut rng);
            let noisy = cond.clip(noise::add_noise(&clean, p, &noise, &mut rng));
            b.noisy.extend(cond.map(&noisy, p, &noise));
            b.clean.extend(cond.map(&clean, p, &noise));
            b.iso.push(iso);
        }
    }
    b
}
