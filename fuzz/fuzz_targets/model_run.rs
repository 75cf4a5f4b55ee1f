//! A `.rnm` model file: parse and validate it, and if it parses, plan and run it on a tiny
//! frame in tiles and in streamed stripes (a model that parses must never crash the engine).
//! The input's header gets its length and CRC-32 fixed up first, so the fuzzer explores the
//! tables rather than the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::{header, Model, HEADER_LEN};
use rawnr_core::noise::NoiseParams;
use rawnr_engine::graph::Engine;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, StripeOptions, TileOptions};

fuzz_target!(|data: &[u8]| {
    // 4-byte aligned copy (models parse in place).
    let mut words = vec![0u32; data.len().div_ceil(4)];
    let bytes: &mut [u8] = &mut bytemuck_words(&mut words)[..data.len()];
    bytes.copy_from_slice(data);
    if bytes.len() >= HEADER_LEN {
        let len = bytes.len() as u64;
        bytes[header::FILE_LEN..header::FILE_LEN + 8].copy_from_slice(&len.to_le_bytes());
        let crc = rawnr_core::crc32::crc32(&bytes[HEADER_LEN..]);
        bytes[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(model) = Model::parse(bytes) else {
        return;
    };
    let d = Denoiser::new(Engine::new(model));
    let layout = FrameLayout::new(20, 14, CfaPhase::Grbg);
    let levels = Levels::uniform(64.0, 1023.0);
    let noise = NoiseParams {
        k: 1e-3,
        sigma2: 1e-6,
    };
    let input: Vec<u16> = (0..20 * 14).map(|i| 64 + (i * 37 % 900) as u16).collect();
    let mut out = vec![0u16; input.len()];
    let tiles = TileOptions {
        tile: 16,
        halo: Some(8),
    };
    // The caller bounds the working memory it allocates (the CLI: --scratch-mib, then an error
    // where the allocator refuses): run only plans within this harness's bound, as libFuzzer
    // counts any allocation over its limit as a crash. Planning itself must stay small.
    let fits = |floats: usize| floats <= MAX_SCRATCH_FLOATS;
    if d.prepare(&layout, &levels, noise, &tiles)
        .is_ok_and(|fp| fits(fp.scratch_len()))
    {
        let _ = d.denoise(&input, &layout, &mut out, &layout, &levels, noise, &DenoiseOptions::tiles(tiles, 1));
    }
    let mut so = StripeOptions::for_model(d.engine().model());
    so.width = 16;
    so.halo = Some(8);
    if d.engine().can_stream()
        && d.prepare_streamed(&layout, &so)
            .is_ok_and(|(_, p)| fits(p.scratch_len))
    {
        let _ = d.denoise(&input, &layout, &mut out, &layout, &levels, noise, &DenoiseOptions::stripes(so, 1));
    }
});

/// Most f32 scratch elements a run may allocate here (256 MiB).
const MAX_SCRATCH_FLOATS: usize = 64 << 20;

/// The words as bytes (no dependency on bytemuck for one cast).
fn bytemuck_words(words: &mut [u32]) -> &mut [u8] {
    let n = words.len() * 4;
    // SAFETY: u32 has no padding and any byte pattern is a valid u8; the length is in bounds.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), n) }
}
