//! A structural check of a TIFF/DNG file before it reaches the decoder: every IFD in the
//! chains it links (IFD0 and its successors, SubIFDs, EXIF and GPS IFDs) lies in the file,
//! every entry has a known type, and every value's `count x size` bytes lie in the file.
//! rawler allocates what an entry's count says before reading it; a hostile count would ask
//! for gigabytes and abort the process. After this check no allocation can exceed the file.

/// Most IFDs followed (a DNG has a handful).
const MAX_IFDS: usize = 64;
/// Most entries in one IFD.
const MAX_ENTRIES: usize = 4096;

const SUB_IFDS: u16 = 330;
const EXIF_IFD: u16 = 34665;
const GPS_IFD: u16 = 34853;

fn type_size(t: u16) -> Option<u64> {
    Some(match t {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => return None,
    })
}

/// Checks the structure; `Err` says what is wrong.
pub fn check(b: &[u8]) -> Result<(), String> {
    let le = match b.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return Err("not a TIFF/DNG file".into()),
    };
    let len = b.len() as u64;
    let u16_at = |o: u64| -> Option<u16> {
        let s = b.get(o as usize..o as usize + 2)?;
        Some(if le {
            u16::from_le_bytes([s[0], s[1]])
        } else {
            u16::from_be_bytes([s[0], s[1]])
        })
    };
    let u32_at = |o: u64| -> Option<u32> {
        let s = b.get(o as usize..o as usize + 4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let first = u32_at(4).ok_or("truncated header")? as u64;
    let mut pending = vec![first];
    let mut seen = Vec::new();
    while let Some(off) = pending.pop() {
        if off == 0 {
            continue;
        }
        if seen.contains(&off) {
            return Err(format!("IFD at {off} is linked twice (loop)"));
        }
        seen.push(off);
        if seen.len() > MAX_IFDS {
            return Err("too many IFDs".into());
        }
        let n = u16_at(off).ok_or(format!("IFD at {off} outside the file"))? as u64;
        if n as usize > MAX_ENTRIES {
            return Err(format!("IFD at {off} has {n} entries"));
        }
        let end = off + 2 + 12 * n + 4;
        if end > len {
            return Err(format!("IFD at {off} runs past the end of the file"));
        }
        for e in 0..n {
            let at = off + 2 + 12 * e;
            let (tag, typ) = (u16_at(at).unwrap_or(0), u16_at(at + 2).unwrap_or(0));
            let count = u32_at(at + 4).unwrap_or(0) as u64;
            let size = type_size(typ).ok_or(format!("tag {tag}: unknown type {typ}"))?;
            let bytes = count
                .checked_mul(size)
                .ok_or(format!("tag {tag}: absurd count {count}"))?;
            let value_at = if bytes <= 4 {
                at + 8
            } else {
                u32_at(at + 8).unwrap_or(u32::MAX) as u64
            };
            if value_at.checked_add(bytes).is_none_or(|e| e > len) {
                return Err(format!("tag {tag}: {count} values outside the file"));
            }
            if matches!(tag, SUB_IFDS | EXIF_IFD | GPS_IFD) && (typ == 4 || typ == 13) {
                for i in 0..count.min(MAX_IFDS as u64) {
                    pending.push(u32_at(value_at + 4 * i).unwrap_or(0) as u64);
                }
            }
        }
        pending.push(u32_at(off + 2 + 12 * n).unwrap_or(0) as u64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    fn tiff(entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
        let mut b = b"II*\0\x08\0\0\0".to_vec();
        b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, typ, count, value) in entries {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&typ.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&[0u8; 64]);
        b
    }

    #[test]
    fn accepts_sane_and_rejects_hostile_structures() {
        assert!(check(&tiff(&[(256, 3, 1, 640), (273, 4, 2, 30)])).is_ok());
        assert!(
            check(&tiff(&[(273, 4, 1_000_000_000, 30)])).is_err(),
            "huge count"
        );
        assert!(check(&tiff(&[(273, 99, 1, 0)])).is_err(), "unknown type");
        assert!(
            check(&tiff(&[(330, 4, 1, 8)])).is_err(),
            "SubIFD loop to itself"
        );
        assert!(
            check(&tiff(&[(330, 4, 1, 100_000)])).is_err(),
            "SubIFD outside the file"
        );
        assert!(
            check(b"II*\0\xff\xff\xff\x00").is_err(),
            "IFD0 outside the file"
        );
        assert!(check(b"P5 not tiff").is_err());
    }
}
