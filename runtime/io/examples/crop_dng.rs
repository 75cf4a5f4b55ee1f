//! Crops a Bayer DNG (used to make the repository's sample fixture):
//! `cargo run -p rawnr-io --example crop_dng -- IN.dng OUT.dng X Y W H` (X, Y even).

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 7 {
        return Err("usage: crop_dng IN.dng OUT.dng X Y W H".into());
    }
    let n = |i: usize| a[i].parse::<usize>();
    let mut f = rawnr_io::dng::read(Path::new(&a[1]))?;
    f.crop_even(n(3)?, n(4)?, n(5)?, n(6)?)?;
    let data = f.data.clone();
    rawnr_io::dng::write(
        Path::new(&a[2]),
        &f,
        &data,
        None,
        "rawnr crop_dng",
        rawnr_io::dng::Compression::None,
    )?;
    Ok(())
}
