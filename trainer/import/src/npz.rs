//! Minimal reader for numpy `.npz` archives of float32 arrays (`np.savez`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::ImportError;

/// A float32 array.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Dimensions, C order.
    pub shape: Vec<usize>,
    /// Elements.
    pub data: Vec<f32>,
}

/// Upper bound on one array (guards hostile archives): 256 Mi elements.
const MAX_ELEMENTS: usize = 1 << 28;

/// Reads every array of an `.npz` file, keyed by name without the `.npy` suffix.
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, Array>, ImportError> {
    let p = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ImportError::Io {
        path: p.clone(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| ImportError::Archive {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| ImportError::Archive {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let name = entry.name().trim_end_matches(".npy").to_string();
        if entry.size() > (MAX_ELEMENTS * 4 + 4096) as u64 {
            return Err(ImportError::Npy {
                name,
                reason: "array too large".into(),
            });
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| ImportError::Archive {
                path: p.clone(),
                reason: e.to_string(),
            })?;
        let array = parse_npy(&name, &bytes)?;
        out.insert(name, array);
    }
    Ok(out)
}

/// Parses one `.npy` file holding a little-endian float32 array in C order.
pub fn parse_npy(name: &str, b: &[u8]) -> Result<Array, ImportError> {
    let err = |reason: &str| ImportError::Npy {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(err("not an .npy file"));
    }
    let (header_len, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10usize),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        _ => return Err(err("unsupported .npy version")),
    };
    let data_start = start
        .checked_add(header_len)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| err("truncated header"))?;
    let header =
        std::str::from_utf8(&b[start..data_start]).map_err(|_| err("header is not text"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(err(
            "only little-endian float32 ('<f4') arrays are supported",
        ));
    }
    if !header.contains("'fortran_order': False") {
        return Err(err("only C-order arrays are supported"));
    }
    let shape_start =
        header.find("'shape': (").ok_or_else(|| err("no shape"))? + "'shape': (".len();
    let shape_end = header[shape_start..]
        .find(')')
        .ok_or_else(|| err("bad shape"))?
        + shape_start;
    let shape: Vec<usize> = header[shape_start..shape_end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| err("bad shape")))
        .collect::<Result<_, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| err("array too large"))?;
    let body = &b[data_start..];
    if body.len() != n * 4 {
        return Err(err("data length does not match the shape"));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Array { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[f32]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        for x in data {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b
    }

    #[test]
    fn parses_float32_and_rejects_others() {
        let b = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            &[1., 2., 3., 4., 5., 6.],
        );
        let a = parse_npy("x", &b).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data[5], 6.0);
        let b1 = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }",
            &[1.0],
        );
        assert!(parse_npy("x", &b1).is_err());
        let b2 = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
            &[1.0, 2.0],
        );
        assert!(parse_npy("x", &b2).is_err());
        assert!(parse_npy("x", &b[..20]).is_err());
        assert!(parse_npy("x", b"garbage").is_err());
    }
}
