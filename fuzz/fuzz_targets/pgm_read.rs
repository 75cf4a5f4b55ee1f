//! The PGM raw-frame reader (`rawnr_io::pgm::parse`): `Ok` or a typed error for any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rawnr_io::pgm::parse(data, std::path::Path::new("fuzz.pgm"));
});
