//! Writing a profile into a DNG's NoiseProfile tag.

use std::path::{Path, PathBuf};

use rawnr_io::dng::{self, Compression};

use crate::error::CalibError;
use crate::profile::{check_output, Profile};

/// The Software tag of tagged DNGs.
pub const SOFTWARE: &str = "rawnr-calib";

fn absolute(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?,
    };
    Some(parent.join(p.file_name()?))
}

/// Copies `input` to `output` with the NoiseProfile tag set from `profile` at `iso` (or
/// the file's ISO): R, G, B pairs when the profile has channel curves, else one pair.
/// The output is written atomically; it must differ from the input and needs
/// `overwrite` if it exists. Returns the ISO and the pairs written.
pub fn tag(
    input: &Path,
    output: &Path,
    profile: &Path,
    iso: Option<u32>,
    overwrite: bool,
) -> Result<(u32, Vec<(f64, f64)>), CalibError> {
    match (absolute(input), absolute(output)) {
        (Some(a), Some(b)) if a == b => {
            return Err(CalibError::input(
                output,
                "the output is the input: refusing to overwrite it",
            ))
        }
        _ => {}
    }
    check_output(output, overwrite)?;
    let prof = Profile::read(profile)?;
    let frame = dng::read(input)?;
    let iso = iso
        .or(frame.iso)
        .ok_or_else(|| CalibError::input(input, "no ISO in the file: pass --iso"))?;
    let pairs = prof
        .noise
        .dng_pairs(iso as f32)
        .map_err(|e| CalibError::input(profile, format!("at ISO {iso}: {e}")))?;
    dng::write(
        output,
        &frame,
        &frame.data,
        Some(&pairs),
        SOFTWARE,
        Compression::None,
    )?;
    Ok((iso, pairs))
}
