//! Corrupt, truncated or hostile model files give typed errors, never a panic or a huge
//! allocation; memory does not grow with the frame size.

use rand::{Rng, SeedableRng};
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::crc32::crc32;
use rawnr_core::format::{header, Model, HEADER_LEN};
use rawnr_core::Error;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, TileOptions};
use rawnr_engine::graph::Engine;
use rawnr_tests::*;

fn parse(bytes: &[u8]) -> Result<(), Error> {
    let words = aligned(bytes);
    Model::parse(as_bytes(&words, bytes.len())).map(|_| ())
}

/// Rewrites the checksum so a deliberate edit reaches the structural checks.
fn reseal(bytes: &mut [u8]) {
    let c = crc32(&bytes[HEADER_LEN..]);
    bytes[header::CRC..header::CRC + 4].copy_from_slice(&c.to_le_bytes());
}

fn small_model() -> Vec<u8> {
    random_model(&mut rand::rngs::StdRng::seed_from_u64(11))
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = small_model();
    assert!(parse(&bytes).is_ok());
    for len in 0..bytes.len() {
        assert!(
            parse(&bytes[..len]).is_err(),
            "truncated to {len} bytes was accepted"
        );
    }
    assert!(matches!(parse(&bytes[..10]), Err(Error::Truncated { .. })));
}

#[test]
fn checksum_catches_every_single_byte_flip() {
    let bytes = small_model();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        let at = rng.random_range(HEADER_LEN..b.len());
        b[at] ^= 1 << rng.random_range(0..8);
        assert!(
            matches!(parse(&b), Err(Error::ChecksumMismatch { .. })),
            "flip at {at} not detected"
        );
    }
}

#[test]
fn header_errors_are_typed() {
    let bytes = small_model();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert_eq!(parse(&b), Err(Error::BadMagic));
    let mut b = bytes.clone();
    b[header::VERSION] = 9;
    assert_eq!(
        parse(&b),
        Err(Error::UnsupportedVersion {
            found: 9,
            supported: rawnr_core::format::FORMAT_VERSION
        })
    );
    let mut b = bytes.clone();
    b.extend_from_slice(&[0; 8]);
    assert!(matches!(parse(&b), Err(Error::BadHeader(_))));
    // A misaligned buffer cannot be used zero-copy.
    let words = aligned(&[&[0u8][..], &bytes].concat());
    let shifted = &as_bytes(&words, bytes.len() + 1)[1..];
    assert_eq!(Model::parse(shifted).err(), Some(Error::Misaligned));
}

#[test]
fn hostile_but_checksummed_edits_never_panic() {
    // Random edits of the tables with a valid checksum: the structural validation must reject
    // or accept each one without panicking, and an accepted one must still run.
    let bytes = small_model();
    let m = {
        let w = aligned(&bytes);
        let m = Model::parse(as_bytes(&w, bytes.len())).unwrap();
        (m.n_values(), m.n_nodes())
    };
    let tables_end = 64 + 256 + m.0 * 16 + 64 * 200; // generous: covers all tables
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let mut rejected = 0;
    for i in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(8..tables_end.min(b.len()));
            b[at] = if i % 3 == 0 { 0xFF } else { rng.random() };
        }
        reseal(&mut b);
        let words = aligned(&b);
        match Model::parse(as_bytes(&words, b.len())) {
            Err(_) => rejected += 1,
            Ok(model) => {
                // Whatever passed validation must run (or fail with an error) on a small frame.
                let d = Denoiser::new(Engine::new(model));
                let layout = FrameLayout::new(20, 14, CfaPhase::Rggb);
                let input = vec![1000u16; 20 * 14];
                let mut out = vec![0u16; 20 * 14];
                let noise = rawnr_core::noise::NoiseParams {
                    k: 1e-3,
                    sigma2: 1e-6,
                };
                let opts = TileOptions {
                    tile: 8,
                    halo: Some(64),
                };
                let _ = d.denoise(
                    &input,
                    &layout,
                    &mut out,
                    &layout,
                    &Levels::uniform(0.0, 4095.0),
                    noise,
                    &DenoiseOptions::tiles(opts, 1),
                );
            }
        }
    }
    // Edits of names and weights are legitimately accepted; edits of structure are not.
    println!("{rejected} of 3000 hostile edits rejected, none panicked");
    assert!(
        rejected > 100,
        "only {rejected} of 3000 hostile edits rejected"
    );
}

#[test]
fn scratch_memory_does_not_grow_with_the_frame() {
    let bytes = std::fs::read(repo_root().join("models/pmrid.rnm")).unwrap();
    let words = aligned(&bytes);
    let d = Denoiser::new(Engine::new(
        Model::parse(as_bytes(&words, bytes.len())).unwrap(),
    ));
    let levels = Levels::uniform(64.0, 1023.0);
    let noise = d.default_noise(1600.0).unwrap();
    let opts = TileOptions::default();
    let scratch = |w: usize, h: usize| {
        d.prepare(
            &FrameLayout::new(w, h, CfaPhase::Rggb),
            &levels,
            noise,
            &opts,
        )
        .unwrap()
        .scratch_len()
    };
    let benchmark = scratch(3472, 4624);
    assert_eq!(benchmark, scratch(1600, 1200));
    assert_eq!(benchmark, scratch(8000, 6000));
    println!(
        "PMRID scratch per worker at tile 256: {:.1} MiB",
        benchmark as f64 * 4.0 / (1 << 20) as f64
    );
    // Bounded: far below one frame of f32 planes (3472x4624 x 4 bytes = 61 MiB).
    assert!(benchmark * 4 < 128 << 20);
}

/// The input convention (clip below black, noise channels) round-trips through the file;
/// files without it read as the legacy convention, and unknown codes are refused.
#[test]
fn input_convention_round_trips_and_unknown_codes_are_errors() {
    use rawnr_core::format::{info, InputConvention, NoiseChannels};
    let words = aligned(&small_model());
    let legacy = Model::parse(as_bytes(&words, small_model().len())).unwrap();
    assert_eq!(legacy.info().input, InputConvention::LEGACY);
    let pmrid = std::fs::read(repo_root().join("models/pmrid.rnm")).unwrap();
    let words = aligned(&pmrid);
    let m = Model::parse(as_bytes(&words, pmrid.len())).unwrap();
    assert_eq!(
        m.info().input,
        InputConvention {
            clip_below_black: true,
            noise_channels: NoiseChannels::Pooled
        },
        "PMRID declares what it was trained with"
    );
    for (field, value) in [(info::CLIP_BELOW_BLACK, 2u32), (info::NOISE_CHANNELS, 7)] {
        let mut b = small_model();
        let at = HEADER_LEN + field;
        b[at..at + 4].copy_from_slice(&value.to_le_bytes());
        reseal(&mut b);
        assert!(
            matches!(parse(&b), Err(Error::BadInfo(_))),
            "code {value} at info offset {field} accepted"
        );
    }
}
