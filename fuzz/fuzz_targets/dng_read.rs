//! The DNG read path exactly as `denoise-raw` takes it: the structural pre-check, then rawler
//! behind the panic guard, then the frame extraction (`rawnr_io::dng::parse`). Any input must
//! end in `Ok` or a typed error: no crash, no abort on an allocation, no hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rawnr_io::dng::parse(data.to_vec(), std::path::Path::new("fuzz.dng"));
});
