//! Binary PGM (P5) raw frames: 8-bit or 16-bit big-endian samples, the format of the Halide
//! sample strips.

use std::path::Path;

use crate::atomic::write_atomic;
use crate::IoError;

/// Largest accepted frame side (guards hostile headers).
pub const MAX_SIDE: usize = 1 << 16;

/// A grayscale frame read from a PGM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pgm {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Declared maximum sample value.
    pub maxval: u16,
    /// Samples, row-major.
    pub data: Vec<u16>,
}

fn format_err(path: &Path, reason: &str) -> IoError {
    IoError::Format {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Parses P5 PGM bytes (`path` only names the file in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Pgm, IoError> {
    let mut pos = 0;
    let mut fields = [0usize; 3];
    if bytes.len() < 2 || &bytes[..2] != b"P5" {
        return Err(format_err(path, "not a binary PGM (P5) file"));
    }
    pos += 2;
    for f in &mut fields {
        loop {
            match bytes.get(pos) {
                Some(b'#') => {
                    while bytes.get(pos).is_some_and(|&c| c != b'\n') {
                        pos += 1;
                    }
                }
                Some(c) if c.is_ascii_whitespace() => pos += 1,
                Some(_) => break,
                None => return Err(format_err(path, "truncated header")),
            }
        }
        let start = pos;
        while bytes.get(pos).is_some_and(|c| c.is_ascii_digit()) {
            pos += 1;
        }
        if start == pos || pos - start > 9 {
            return Err(format_err(path, "bad header number"));
        }
        *f = std::str::from_utf8(&bytes[start..pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format_err(path, "bad header number"))?;
    }
    // Exactly one whitespace byte separates the header from the samples.
    if !bytes.get(pos).is_some_and(|c| c.is_ascii_whitespace()) {
        return Err(format_err(path, "missing whitespace after header"));
    }
    pos += 1;
    let [width, height, maxval] = fields;
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format_err(path, "absurd dimensions"));
    }
    if maxval == 0 || maxval > 65535 {
        return Err(format_err(path, "maxval must be 1..65535"));
    }
    let bps = if maxval < 256 { 1 } else { 2 };
    let n = width * height;
    let body = &bytes[pos..];
    if body.len() < n * bps {
        return Err(format_err(
            path,
            &format!("truncated: {} sample bytes, needs {}", body.len(), n * bps),
        ));
    }
    let data = if bps == 1 {
        body[..n].iter().map(|&b| b as u16).collect()
    } else {
        body[..2 * n]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    };
    Ok(Pgm {
        width,
        height,
        maxval: maxval as u16,
        data,
    })
}

/// Reads a P5 PGM file.
pub fn read(path: &Path) -> Result<Pgm, IoError> {
    let bytes = std::fs::read(path).map_err(|source| IoError::Os {
        path: path.display().to_string(),
        source,
    })?;
    parse(&bytes, path)
}

/// Writes a 16-bit P5 PGM atomically.
pub fn write(path: &Path, pgm: &Pgm) -> Result<(), IoError> {
    if pgm.data.len() != pgm.width * pgm.height {
        return Err(format_err(
            path,
            "sample count does not match the dimensions",
        ));
    }
    let maxval = pgm.maxval.max(256);
    write_atomic(path, |w| {
        write!(w, "P5\n{} {}\n{}\n", pgm.width, pgm.height, maxval)?;
        let mut buf = Vec::with_capacity(pgm.data.len() * 2);
        for &v in &pgm.data {
            buf.extend_from_slice(&v.min(maxval).to_be_bytes());
        }
        w.write_all(&buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_reject() {
        let p = Path::new("x.pgm");
        let ok = b"P5\n# comment\n2 1\n1023\n\x00\x01\x03\xff";
        let pgm = parse(ok, p).unwrap();
        assert_eq!((pgm.width, pgm.height, pgm.maxval), (2, 1, 1023));
        assert_eq!(pgm.data, vec![1, 1023]);
        assert!(parse(b"P6\n2 1\n255\n\x00\x00", p).is_err());
        assert!(parse(b"P5\n2 1\n1023\n\x00", p).is_err());
        assert!(parse(b"P5\n99999999 99999999\n1023\n", p).is_err());
        assert!(parse(b"P5\n2", p).is_err());
        assert!(parse(b"", p).is_err());
    }
}
