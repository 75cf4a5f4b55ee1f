//! The noise-profile reader (`rawnr_io::profile::NoiseProfile::parse`), then the parameters
//! at a few ISOs as `denoise-raw --noise-profile` takes them: `Ok` or a typed error for any
//! input, and parameters that pass the checks are finite and in the documented range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnr_core::noise::NoiseParams;
use rawnr_io::profile::NoiseProfile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = NoiseProfile::parse(text) else {
        return;
    };
    for iso in [50.0f32, 100.0, 1600.0, 12800.0, 409600.0] {
        if let Ok(n) = p.channel_noise_at(iso) {
            for c in n.0 {
                let (lo, hi) = NoiseParams::K_RANGE;
                assert!((lo..=hi).contains(&c.k), "k {} at ISO {iso}", c.k);
                assert!(
                    (0.0..=NoiseParams::SIGMA2_MAX).contains(&c.sigma2),
                    "sigma2 {} at ISO {iso}",
                    c.sigma2
                );
            }
        }
        let _ = p.at(iso);
        let _ = p.dng_pairs(iso);
    }
});
