//! A structural check of a TIFF/DNG file before it reaches the decoder: every IFD in the
//! chains it links (IFD0 and its successors, SubIFDs, EXIF and GPS IFDs) lies in the file,
//! every entry has a known type, and every value's `count x size` bytes lie in the file.
//! rawler allocates what an entry's count says before reading it; a hostile count would ask
//! for gigabytes and abort the process. After this check no allocation can exceed the file.
//! It also requires a DNG (a `DNGVersion` tag in IFD0: other TIFF-based raw formats would reach
//! rawler's other decoders, whose sizes rawnr does not check), tiles no larger than their image
//! padded to 16 (or 1024), and lossless-JPEG tiles or strips whose frame header claims no more
//! samples than the tile holds (rawler allocates what a tile or its header says).

/// Most IFDs followed (a DNG has a handful).
const MAX_IFDS: usize = 64;
/// Most entries in one IFD.
const MAX_ENTRIES: usize = 4096;

const IMAGE_WIDTH: u16 = 256;
const IMAGE_LENGTH: u16 = 257;
const TILE_WIDTH: u16 = 322;
const TILE_LENGTH: u16 = 323;
const DNG_VERSION: u16 = 50706;
const COMPRESSION: u16 = 259;
const STRIP_OFFSETS: u16 = 273;
const SAMPLES_PER_PIXEL: u16 = 277;
const ROWS_PER_STRIP: u16 = 278;
const STRIP_BYTE_COUNTS: u16 = 279;
const TILE_OFFSETS: u16 = 324;
const TILE_BYTE_COUNTS: u16 = 325;
/// Tiles may exceed their image (padded to 16) up to this size: writers use 256x256 tiles on
/// small images too.
const MAX_TILE_PAD: u64 = 1024;
const BITS_PER_SAMPLE: u16 = 258;
const PHOTOMETRIC: u16 = 262;
const CFA_REPEAT_PATTERN_DIM: u16 = 33421;
const CFA_PATTERN: u16 = 33422;
const BLACK_LEVEL_REPEAT_DIM: u16 = 50713;
const BLACK_LEVEL: u16 = 50714;
const WHITE_LEVEL: u16 = 50717;
const ACTIVE_AREA: u16 = 50829;
/// PhotometricInterpretation of Bayer (CFA) data.
const PHOTOMETRIC_CFA: u64 = 32803;
/// Most lossless-JPEG tiles or strips whose headers are checked in one IFD.
const MAX_SEGMENTS: u64 = 1 << 20;
/// Fewest bits of image data per pixel of a lossless-JPEG Bayer image (every sample has a
/// Huffman code of at least one bit); uncompressed data has BitsPerSample bits per pixel.
pub const MIN_DATA_BITS_PER_PIXEL: u64 = 1;
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
    let mut is_dng = false;
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
        // This IFD's entries: (tag, type, count, value offset).
        let mut fields: Vec<(u16, u16, u64, u64)> = Vec::new();
        for e in 0..n {
            let at = off + 2 + 12 * e;
            let (tag, typ) = (u16_at(at).unwrap_or(0), u16_at(at + 2).unwrap_or(0));
            let count = u32_at(at + 4).unwrap_or(0) as u64;
            if off == first && tag == DNG_VERSION {
                is_dng = true;
            }
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
            fields.push((tag, typ, count, value_at));
        }
        // Value `i` of an integer (BYTE, SHORT or LONG) field.
        let value = |tag: u16, i: u64| -> Option<u64> {
            let &(_, typ, count, at) = fields.iter().find(|f| f.0 == tag)?;
            if i >= count {
                return None;
            }
            match typ {
                1 => b.get((at + i) as usize).map(|&x| u64::from(x)),
                3 => u16_at(at + 2 * i).map(u64::from),
                4 => u32_at(at + 4 * i).map(u64::from),
                _ => None,
            }
        };
        let count = |tag: u16| fields.iter().find(|f| f.0 == tag).map(|f| f.2);
        if value(PHOTOMETRIC, 0) == Some(PHOTOMETRIC_CFA) {
            check_cfa_ifd(off, len, &value, &count)?;
        }
        let (w, h) = (value(IMAGE_WIDTH, 0), value(IMAGE_LENGTH, 0));
        let (tw, th) = (value(TILE_WIDTH, 0), value(TILE_LENGTH, 0));
        if let (Some(w), Some(h)) = (w, h) {
            for (tile, image, what) in [(tw, w, "width"), (th, h, "length")] {
                if tile.is_some_and(|t| t == 0 || t > image.next_multiple_of(16).max(MAX_TILE_PAD))
                {
                    return Err(format!(
                        "IFD at {off}: tile {what} {} for an image {what} of {image}",
                        tile.unwrap_or(0)
                    ));
                }
            }
        }
        // Lossless JPEG tiles or strips: each one's SOF may not claim more samples than the
        // tile (or strip) holds, with slack for odd encoders; rawler allocates what it claims.
        if value(COMPRESSION, 0) == Some(7) {
            let (w, h) = (w.unwrap_or(0), h.unwrap_or(0));
            let spp = value(SAMPLES_PER_PIXEL, 0).unwrap_or(1).max(1);
            let (offsets, counts, seg_w, seg_h) = match (tw, th) {
                (Some(tw), Some(th)) => (TILE_OFFSETS, TILE_BYTE_COUNTS, tw, th),
                _ => (
                    STRIP_OFFSETS,
                    STRIP_BYTE_COUNTS,
                    w,
                    value(ROWS_PER_STRIP, 0).unwrap_or(h).min(h),
                ),
            };
            let limit = seg_w
                .saturating_mul(seg_h)
                .saturating_mul(spp)
                .saturating_mul(4);
            let n_segs = count(offsets).unwrap_or(0).min(MAX_SEGMENTS);
            for i in 0..n_segs {
                let (Some(at), Some(n)) = (value(offsets, i), value(counts, i)) else {
                    break;
                };
                let Some(seg) = b.get(at as usize..at.saturating_add(n).min(len) as usize) else {
                    continue;
                };
                if let Some((sof_h, sof_w, comps)) = ljpeg_sof(seg) {
                    let claimed = sof_h * sof_w * comps;
                    if claimed > limit {
                        return Err(format!(
                            "IFD at {off}: lossless JPEG segment {i} claims {sof_w}x{sof_h}x{comps} \
                             samples for a {seg_w}x{seg_h} segment"
                        ));
                    }
                }
            }
        }
        pending.push(u32_at(off + 2 + 12 * n).unwrap_or(0) as u64);
    }
    if !is_dng {
        return Err("not a DNG (no DNGVersion tag in IFD0); rawnr reads DNG raw files".into());
    }
    Ok(())
}

/// The Bayer IFD's own tags, checked before rawler reads them (it asserts or divides on bad
/// values: each check below is one of its panics found by fuzzing, or its neighbour): one
/// sample per pixel of 1..=16 bits, a 2x2 CFA of R, G, B (codes 0..=2), a black-level pattern
/// of at most 2x2 with one value per position, one white level, an active area inside the
/// image; and image data that lies in the file and can hold the image (see
/// [`MIN_DATA_BITS_PER_PIXEL`]).
fn check_cfa_ifd(
    off: u64,
    file_len: u64,
    value: &dyn Fn(u16, u64) -> Option<u64>,
    count: &dyn Fn(u16) -> Option<u64>,
) -> Result<(), String> {
    let bad = |what: String| Err(format!("IFD at {off} (CFA data): {what}"));
    if count(SAMPLES_PER_PIXEL).is_some_and(|c| c != 1)
        || value(SAMPLES_PER_PIXEL, 0).unwrap_or(1) != 1
    {
        return bad("not one sample per pixel".into());
    }
    for tag in [
        IMAGE_WIDTH,
        IMAGE_LENGTH,
        TILE_WIDTH,
        TILE_LENGTH,
        COMPRESSION,
        WHITE_LEVEL,
    ] {
        if count(tag).is_some_and(|c| c != 1) {
            return bad(format!(
                "tag {tag} has {} values, not one",
                count(tag).unwrap_or(0)
            ));
        }
    }
    let bits = value(BITS_PER_SAMPLE, 0).unwrap_or(16);
    if count(BITS_PER_SAMPLE).is_some_and(|c| c != 1) || !(1..=16).contains(&bits) {
        return bad(format!("BitsPerSample {bits} (1..=16 supported)"));
    }
    if !matches!(value(COMPRESSION, 0), None | Some(1) | Some(7)) {
        return bad(format!(
            "compression {} (uncompressed and lossless JPEG supported)",
            value(COMPRESSION, 0).unwrap_or(0)
        ));
    }
    let dims = (
        value(CFA_REPEAT_PATTERN_DIM, 0),
        value(CFA_REPEAT_PATTERN_DIM, 1),
    );
    if count(CFA_REPEAT_PATTERN_DIM).is_some() && dims != (Some(2), Some(2)) {
        return bad(format!(
            "not a Bayer DNG: CFA pattern {}x{} (2x2 supported)",
            dims.0.unwrap_or(0),
            dims.1.unwrap_or(0)
        ));
    }
    if let Some(n) = count(CFA_PATTERN) {
        if n != 4 || (0..4).any(|i| value(CFA_PATTERN, i).is_none_or(|c| c > 2)) {
            return bad("CFA pattern not four colours among R, G, B".into());
        }
    }
    let (rows, cols) = (
        value(BLACK_LEVEL_REPEAT_DIM, 0).unwrap_or(1),
        value(BLACK_LEVEL_REPEAT_DIM, 1).unwrap_or(1),
    );
    if !(1..=2).contains(&rows) || !(1..=2).contains(&cols) {
        return bad(format!("black level pattern {rows}x{cols} (at most 2x2)"));
    }
    if count(BLACK_LEVEL).is_some_and(|c| c != rows * cols) {
        return bad(format!(
            "{} black levels for a {rows}x{cols} pattern",
            count(BLACK_LEVEL).unwrap_or(0)
        ));
    }
    if let (Some(w), Some(h)) = (value(IMAGE_WIDTH, 0), value(IMAGE_LENGTH, 0)) {
        // The image data: every strip or tile in the file, and together at least the bytes
        // the image needs at its compression, so the decoder's frame (2 bytes a pixel) is at
        // most 16 bytes per byte of image data in the file (lossless JPEG: 1 bit a pixel).
        let (offsets, counts) = if count(TILE_OFFSETS).is_some() {
            (TILE_OFFSETS, TILE_BYTE_COUNTS)
        } else {
            (STRIP_OFFSETS, STRIP_BYTE_COUNTS)
        };
        let n = count(offsets).unwrap_or(0);
        if count(counts) != Some(n) || n == 0 || n > MAX_SEGMENTS {
            return bad(format!(
                "{n} data segments with {} byte counts",
                count(counts).unwrap_or(0)
            ));
        }
        let mut data = 0u64;
        for i in 0..n {
            let (Some(at), Some(bytes)) = (value(offsets, i), value(counts, i)) else {
                return bad(format!("data segment {i} unreadable"));
            };
            if at.checked_add(bytes).is_none_or(|end| end > file_len) {
                return bad(format!(
                    "data segment {i} ({bytes} bytes at {at}) outside the {file_len}-byte file"
                ));
            }
            data += bytes;
        }
        let bits_per_pixel = match value(COMPRESSION, 0) {
            Some(7) => MIN_DATA_BITS_PER_PIXEL,
            _ => bits,
        };
        let needed = w.saturating_mul(h).saturating_mul(bits_per_pixel) / 8;
        if data < needed {
            return bad(format!(
                "{data} bytes of image data cannot hold {w}x{h} pixels (at least {needed})"
            ));
        }
        if count(ACTIVE_AREA).is_some() {
            let a: [Option<u64>; 4] = core::array::from_fn(|i| value(ACTIVE_AREA, i as u64));
            let ok = matches!(a, [Some(t), Some(l), Some(bo), Some(r)]
                if t < bo && l < r && bo <= h && r <= w);
            if !ok || count(ACTIVE_AREA) != Some(4) {
                let a = a.map(|x| x.unwrap_or(0));
                return bad(format!(
                    "active area (top, left, bottom, right) {a:?} outside the {w}x{h} image"
                ));
            }
        }
    }
    Ok(())
}

/// The frame header (SOF) of a JPEG stream: `(height, width, components)`, or `None` when none
/// comes before the scan (the decoder then rejects the stream itself).
fn ljpeg_sof(seg: &[u8]) -> Option<(u64, u64, u64)> {
    if seg.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut at = 2;
    loop {
        // Skip fill bytes up to the marker code.
        while *seg.get(at)? == 0xff && *seg.get(at + 1)? == 0xff {
            at += 1;
        }
        if *seg.get(at)? != 0xff {
            return None;
        }
        let marker = *seg.get(at + 1)?;
        let len = u16::from_be_bytes([*seg.get(at + 2)?, *seg.get(at + 3)?]) as usize;
        match marker {
            // SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC).
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                let h = u16::from_be_bytes([*seg.get(at + 5)?, *seg.get(at + 6)?]) as u64;
                let w = u16::from_be_bytes([*seg.get(at + 7)?, *seg.get(at + 8)?]) as u64;
                return Some((h, w, *seg.get(at + 9)? as u64));
            }
            0xda => return None,
            _ => at += 2 + len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    /// A little-endian TIFF with one IFD of `entries` (tag, type, count, value), a DNGVersion
    /// 1.4 tag first unless `dng` is false, padded with zeros to 4096 bytes.
    fn tiff_of(entries: &[(u16, u16, u32, u32)], dng: bool) -> Vec<u8> {
        let mut all = Vec::new();
        if dng {
            all.push((50706, 1, 4, 0x0000_0401));
        }
        all.extend_from_slice(entries);
        let mut b = b"II*\0\x08\0\0\0".to_vec();
        b.extend_from_slice(&(all.len() as u16).to_le_bytes());
        for &(tag, typ, count, value) in &all {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&typ.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        b.resize(4096, 0);
        b
    }

    fn tiff(entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
        tiff_of(entries, true)
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

    #[test]
    fn bayer_ifd_tags_are_checked() {
        // A 32x24 Bayer IFD of 16-bit samples in one strip plus `extra` entries (an entry of
        // `extra` replaces the default one of its tag).
        let cfa = |extra: &[(u16, u16, u32, u32)]| {
            let mut e: Vec<(u16, u16, u32, u32)> = vec![
                (256, 3, 1, 32),
                (257, 3, 1, 24),
                (262, 3, 1, 32803),
                (273, 4, 1, 2048),
                (279, 4, 1, 32 * 24 * 2),
            ];
            e.retain(|d| extra.iter().all(|x| x.0 != d.0));
            e.extend_from_slice(extra);
            e.sort_by_key(|x| x.0);
            check(&tiff(&e))
        };
        assert!(cfa(&[]).is_ok());
        // Lossless JPEG needs one bit a pixel: 96 bytes for 32x24.
        assert!(cfa(&[(259, 3, 1, 7), (279, 4, 1, 96)]).is_ok());
        assert!(cfa(&[(259, 3, 1, 7), (279, 4, 1, 95)]).is_err());
        assert!(cfa(&[
            (258, 3, 1, 14),
            (33421, 3, 2, 0x0002_0002),
            (33422, 1, 4, 0x0201_0100)
        ])
        .is_ok());
        assert!(
            cfa(&[(50829, 3, 4, 0)]).is_err(),
            "active area (read from the header bytes) not inside the image"
        );
        for (case, entries) in [
            ("SamplesPerPixel 65535", vec![(277, 3, 1, 65535)]),
            ("BitsPerSample 0", vec![(258, 3, 1, 0)]),
            ("BitsPerSample 32", vec![(258, 3, 1, 32)]),
            ("CFARepeatPatternDim 0", vec![(33421, 3, 2, 0)]),
            ("CFARepeatPatternDim 255", vec![(33421, 3, 2, 0x00ff_00ff)]),
            ("CFAPattern code 64", vec![(33422, 1, 4, 0x0201_0140)]),
            (
                "BlackLevelRepeatDim 65535",
                vec![(50713, 3, 2, 0xffff_ffff)],
            ),
            ("3 black levels for 1x1", vec![(50714, 3, 3, 0)]),
            ("lossy JPEG", vec![(259, 3, 1, 34892)]),
            (
                "100000x100000 in 4 KB",
                vec![(256, 4, 1, 100_000), (257, 4, 1, 100_000)],
            ),
            ("strip past the end", vec![(273, 4, 1, 3000)]),
            ("no image data", vec![(279, 4, 1, 0)]),
            (
                "65535 tiles",
                vec![(322, 3, 1, 16), (323, 3, 1, 16), (324, 4, 65535, 8)],
            ),
            ("offsets without counts", vec![(279, 4, 2, 8)]),
        ] {
            assert!(cfa(&entries).is_err(), "{case} accepted");
        }
    }

    #[test]
    fn only_dngs_with_sane_tiles_pass() {
        // A TIFF without DNGVersion would reach rawler's other decoders (fuzz finding: a
        // 192-byte "MEF" asked for 20-80 GB).
        let plain = tiff_of(&[(256, 3, 1, 640), (271, 2, 4, 0x0046_454d)], false);
        assert!(check(&plain).unwrap_err().contains("DNGVersion"));
        // Tiles up to the image padded to 16; TileWidth 65535 asked rawler for 8.6 GB.
        let tiled = |tw: u32, th: u32| {
            tiff(&[
                (256, 3, 1, 640),
                (257, 3, 1, 480),
                (322, 3, 1, tw),
                (323, 4, 1, th),
            ])
        };
        assert!(check(&tiled(256, 256)).is_ok());
        assert!(check(&tiled(640, 480)).is_ok());
        assert!(check(&tiled(1040, 480)).is_err());
        assert!(
            check(&tiled(1024, 480)).is_ok(),
            "256-style tiles on small images"
        );
        // An image of 630 columns may have tiles of 640 (its width padded to 16).
        assert!(check(&tiff(&[
            (256, 3, 1, 630),
            (257, 3, 1, 480),
            (322, 3, 1, 640)
        ]))
        .is_ok());
        assert!(check(&tiled(65535, 256))
            .unwrap_err()
            .contains("tile width"));
        assert!(check(&tiled(256, 100_000))
            .unwrap_err()
            .contains("tile length"));
        assert!(check(&tiled(0, 256)).is_err());
    }
}
