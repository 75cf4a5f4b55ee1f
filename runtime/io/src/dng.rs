//! DNG in and out through `rawler` (LGPL-2.1, kept out of the runtime crates).
//!
//! [`read`] decodes a Bayer DNG (strips or tiles, uncompressed or lossless JPEG) and gathers
//! what denoising needs: the CFA data, the active area, the CFA phase there, per-channel black
//! levels, the white level, ISO, exposure and the NoiseProfile tag. [`write`] writes a DNG with
//! new CFA data and every piece of metadata the input had (make, model, EXIF including ISO and
//! exposure, black/white levels, CFA, colour matrices, AsShotNeutral, orientation, opcode lists,
//! forward matrices, NoiseProfile), with NoiseProfile replaced when a new one is given.

use std::io::Cursor;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use rawler::cfa::CFAColor;
use rawler::decoders::{Decoder, RawDecodeParams, RawMetadata, WellKnownIFD};
use rawler::dng::writer::DngWriter;
use rawler::dng::{CropMode, DngCompression, DngPhotometricConversion, DNG_VERSION_V1_4};
use rawler::formats::tiff::{Value, IFD};
use rawler::rawimage::RawPhotometricInterpretation;
use rawler::rawsource::RawSource;
use rawler::tags::{DngTag, ExifTag, TiffCommonTag};
use rawler::{RawImage, RawImageData};
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};

use crate::atomic::write_atomic;
use crate::IoError;

/// Largest accepted frame, in pixels (a 400 MP sensor): guards against hostile headers.
pub const MAX_PIXELS: usize = rawnr_core::bayer::FrameLayout::MAX_PIXELS;
/// Largest accepted frame side, in pixels.
const MAX_SIDE: usize = rawnr_core::bayer::FrameLayout::MAX_SIDE;
/// Largest accepted input file (2 GiB).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// A decoded Bayer DNG and the metadata needed to denoise and re-write it.
pub struct DngFrame {
    /// All CFA samples of the stored image (`width * height`, row-major), masked areas included.
    pub data: Vec<u16>,
    /// Stored image width.
    pub width: usize,
    /// Stored image height.
    pub height: usize,
    /// Active area `(x, y, width, height)`: the part that holds image, and is denoised.
    pub active: (usize, usize, usize, usize),
    /// CFA phase at the active area's top-left corner.
    pub cfa: CfaPhase,
    /// Black levels per canonical channel (R, Gr, Gb, B) and white level.
    pub levels: Levels,
    /// ISO from EXIF (ISOSpeedRatings, ISOSpeed or RecommendedExposureIndex).
    pub iso: Option<u32>,
    /// Exposure time in seconds.
    pub exposure_s: Option<f64>,
    /// NoiseProfile tag: `(S, O)` pairs, one for all planes or one per plane.
    pub noise_profile: Option<Vec<(f64, f64)>>,
    /// Camera make.
    pub make: String,
    /// Camera model.
    pub model: String,
    /// rawler's image description; its samples are moved to `data` (never a second copy).
    raw: RawImage,
    metadata: RawMetadata,
    raw_tags: Option<Rc<IFD>>,
    root_tags: Option<Rc<IFD>>,
    tiff_root: Option<Rc<IFD>>,
}

fn fmt_err(path: &Path, reason: impl Into<String>) -> IoError {
    IoError::Format {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn os_err(path: &Path) -> impl Fn(std::io::Error) -> IoError + '_ {
    move |source| IoError::Os {
        path: path.display().to_string(),
        source,
    }
}

/// Runs `f`, turning a panic inside the decoder into an error (rawler asserts on some
/// malformed files).
fn guarded<T>(
    path: &Path,
    what: &str,
    f: impl FnOnce() -> Result<T, IoError>,
) -> Result<T, IoError> {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(prev);
    r.unwrap_or_else(|_| Err(fmt_err(path, format!("malformed file ({what} failed)"))))
}

fn entry_u32(ifd: &IFD, tag: TiffCommonTag) -> Option<u32> {
    ifd.get_entry(tag).map(|e| e.force_u32(0))
}

/// Reads a Bayer DNG.
pub fn read(path: &Path) -> Result<DngFrame, IoError> {
    let meta = std::fs::metadata(path).map_err(os_err(path))?;
    if !meta.is_file() {
        return Err(fmt_err(path, "not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(fmt_err(path, "file larger than 2 GiB"));
    }
    let bytes = std::fs::read(path).map_err(os_err(path))?;
    parse(bytes, path)
}

/// Reads a Bayer DNG from its bytes (`path` names it in errors): the structural check, then
/// rawler behind the panic guard. What [`read`] does after reading the file; the fuzz target
/// `dng_read` drives it.
pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<DngFrame, IoError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fmt_err(path, "file larger than 2 GiB"));
    }
    if bytes.len() < 8 || !(bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*")) {
        return Err(fmt_err(path, "not a DNG (no TIFF header)"));
    }
    crate::tiff_check::check(&bytes)
        .map_err(|r| fmt_err(path, format!("malformed DNG structure: {r}")))?;
    let source = RawSource::new_from_shared_vec(Arc::new(bytes)).with_path(path);
    guarded(path, "decoding", || decode(path, &source))
}

fn decode(path: &Path, source: &RawSource) -> Result<DngFrame, IoError> {
    let decoder: Box<dyn Decoder> = rawler::get_decoder(source)
        .map_err(|e| fmt_err(path, format!("not a readable raw file: {e}")))?;
    let rd = |e: rawler::RawlerError| fmt_err(path, e.to_string());
    // Check the declared size before any pixel buffer is allocated.
    if let Some(raw_ifd) = decoder.ifd(WellKnownIFD::Raw).map_err(rd)? {
        let w = entry_u32(&raw_ifd, TiffCommonTag::ImageWidth).unwrap_or(0) as usize;
        let h = entry_u32(&raw_ifd, TiffCommonTag::ImageLength).unwrap_or(0) as usize;
        if w == 0 || h == 0 || w.saturating_mul(h) > MAX_PIXELS || w > MAX_SIDE || h > MAX_SIDE {
            return Err(fmt_err(path, format!("absurd dimensions {w}x{h}")));
        }
        match entry_u32(&raw_ifd, TiffCommonTag::PhotometricInt) {
            Some(32803) | None => {}
            Some(34892) => {
                return Err(fmt_err(
                    path,
                    "not a Bayer DNG: LinearRaw (already demosaiced) data",
                ))
            }
            Some(p) => {
                return Err(fmt_err(
                    path,
                    format!("not a Bayer DNG: photometric interpretation {p}"),
                ))
            }
        }
        // Lossless JPEG rarely compresses raw data 4:1; allow 8:1 on 16-bit samples before
        // calling the declared size a lie (this bounds the pixel buffer by the file size).
        let bytes_needed = (w * h) as u64 * 2 / 8;
        if bytes_needed > source.buf().len() as u64 {
            return Err(fmt_err(
                path,
                format!(
                    "dimensions {w}x{h} do not fit a {} byte file",
                    source.buf().len()
                ),
            ));
        }
    }
    let params = RawDecodeParams { image_index: 0 };
    let mut raw = decoder.raw_image(source, &params, false).map_err(rd)?;
    let metadata = decoder.raw_metadata(source, &params).map_err(rd)?;
    let config = match &raw.photometric {
        RawPhotometricInterpretation::Cfa(c) if raw.cpp == 1 => c.clone(),
        RawPhotometricInterpretation::LinearRaw => {
            return Err(fmt_err(
                path,
                "not a Bayer DNG: LinearRaw (already demosaiced) data",
            ))
        }
        _ => return Err(fmt_err(path, "not a Bayer DNG: no CFA data")),
    };
    // The samples move to `DngFrame::data`; `raw` keeps only the metadata (no second copy).
    let data = match core::mem::replace(&mut raw.data, RawImageData::Integer(Vec::new())) {
        RawImageData::Integer(d) => d,
        RawImageData::Float(_) => {
            return Err(fmt_err(path, "floating-point CFA data is not supported"))
        }
    };
    let (width, height) = (raw.width, raw.height);
    if data.len() != width * height {
        return Err(fmt_err(
            path,
            "decoded sample count does not match the dimensions",
        ));
    }
    let full = rawler::imgop::Rect::new(
        rawler::imgop::Point::new(0, 0),
        rawler::imgop::Dim2::new(width, height),
    );
    let area = raw.active_area.unwrap_or(full);
    let active = (area.p.x, area.p.y, area.d.w, area.d.h);
    if active.0 + active.2 > width || active.1 + active.3 > height || active.2 < 2 || active.3 < 2 {
        return Err(fmt_err(path, "active area outside the image"));
    }
    // The CFA phase at the active area origin, from the 2x2 pattern.
    let cfa_pat = &config.cfa;
    let mut name = String::new();
    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let c = cfa_pat.cfa_color_at(active.1 + dy, active.0 + dx);
        name.push(match c {
            CFAColor::RED => 'r',
            CFAColor::GREEN => 'g',
            CFAColor::BLUE => 'b',
            _ => '?',
        });
    }
    let bayer = cfa_pat.width == 2 && cfa_pat.height == 2;
    let cfa = CfaPhase::parse(&name).filter(|_| bayer).ok_or_else(|| {
        fmt_err(
            path,
            format!(
                "not a Bayer DNG: CFA pattern {} ({}x{})",
                cfa_pat.name, cfa_pat.width, cfa_pat.height
            ),
        )
    })?;
    // Black level per canonical channel, from the repeat pattern at each channel's position.
    let bl = &raw.blacklevel;
    let mut black = [0f32; 4];
    for (c, b) in black.iter_mut().enumerate() {
        let (dy, dx) = cfa.offset_of(c);
        let (y, x) = (active.1 + dy, active.0 + dx);
        let idx = ((y % bl.height.max(1)) * bl.width.max(1) + x % bl.width.max(1)) * bl.cpp.max(1);
        *b = bl
            .levels
            .get(idx)
            .or(bl.levels.first())
            .map_or(0.0, |r| r.as_f32());
    }
    let white = raw
        .whitelevel
        .0
        .first()
        .copied()
        .unwrap_or(65535)
        .min(65535) as f32;
    let levels = Levels { black, white };
    levels
        .validate()
        .map_err(|e| fmt_err(path, e.to_string()))?;

    let exif = &metadata.exif;
    let iso = exif
        .iso_speed_ratings
        .map(u32::from)
        .or(exif.iso_speed)
        .or(exif.recommended_exposure_index)
        .filter(|&i| i > 0);
    let exposure_s = exif.exposure_time.map(|r| r.n as f64 / r.d.max(1) as f64);
    let raw_tags = decoder.ifd(WellKnownIFD::VirtualDngRawTags).map_err(rd)?;
    let root_tags = decoder.ifd(WellKnownIFD::VirtualDngRootTags).map_err(rd)?;
    let tiff_root = decoder.ifd(WellKnownIFD::Root).map_err(rd)?;
    let noise_profile = raw_tags
        .as_ref()
        .and_then(|ifd| ifd.get_entry(DngTag::NoiseProfile))
        .and_then(|e| match &e.value {
            Value::Double(v) if v.len() >= 2 && v.len() % 2 == 0 => {
                Some(v.chunks_exact(2).map(|p| (p[0], p[1])).collect::<Vec<_>>())
            }
            _ => None,
        });
    Ok(DngFrame {
        data,
        width,
        height,
        active,
        cfa,
        levels,
        iso,
        exposure_s,
        noise_profile,
        make: raw.clean_make.clone(),
        model: raw.clean_model.clone(),
        raw,
        metadata,
        raw_tags,
        root_tags,
        tiff_root,
    })
}

/// Size, CFA phase, levels and exposure of a frame made by [`DngFrame::synthetic`].
#[derive(Debug, Clone)]
pub struct FrameSpec {
    /// Width in samples.
    pub width: usize,
    /// Height in samples.
    pub height: usize,
    /// CFA phase at the top-left corner.
    pub cfa: CfaPhase,
    /// Black levels per canonical channel (R, Gr, Gb, B; stored to 1/1000) and white level.
    pub levels: Levels,
    /// ISO (EXIF).
    pub iso: Option<u32>,
    /// Exposure time in seconds (EXIF, stored to 1 us).
    pub exposure_s: Option<f64>,
    /// Camera make.
    pub make: String,
    /// Camera model.
    pub model: String,
}

/// How CFA samples are stored in a written DNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed strips: readable by every DNG reader.
    None,
    /// Lossless JPEG tiles (about half the size). rawler's encoder reads back in rawler, but
    /// LibRaw misreads some of its files (e.g. a 512x96 12-bit frame in our tests), so it is
    /// not the default.
    Lossless,
}

/// Writes `frame` as a DNG at `path` (atomically) with CFA samples `data` (`width * height`,
/// the size of `frame.data`; `frame.data` itself is not read, so a caller may have taken it) and, if given, a new NoiseProfile. `software` goes into the Software tag.
pub fn write(
    path: &Path,
    frame: &DngFrame,
    data: &[u16],
    noise_profile: Option<&[(f64, f64)]>,
    software: &str,
    compression: Compression,
) -> Result<(), IoError> {
    if data.len() != frame.width * frame.height {
        return Err(fmt_err(path, "sample count differs from the input frame"));
    }
    let mut raw = frame.raw.clone();
    raw.data = RawImageData::Integer(data.to_vec());
    let mut buf = Cursor::new(Vec::with_capacity(data.len() * 2 + 65536));
    let encode = |buf: &mut Cursor<Vec<u8>>| -> Result<(), rawler::dng::writer::DngError> {
        let mut dng = DngWriter::new(buf, DNG_VERSION_V1_4)?;
        let mut sub = dng.subframe_on_root(0);
        let c = match compression {
            Compression::None => DngCompression::Uncompressed,
            Compression::Lossless => DngCompression::Lossless,
        };
        sub.raw_image(
            &raw,
            CropMode::Best,
            c,
            DngPhotometricConversion::Original,
            1,
        )?;
        if let Some(tags) = &frame.raw_tags {
            sub.ifd_mut().copy(tags.value_iter());
        }
        if let Some(np) = noise_profile {
            let flat: Vec<f64> = np.iter().flat_map(|&(s, o)| [s, o]).collect();
            sub.ifd_mut()
                .add_tag(DngTag::NoiseProfile, Value::Double(flat));
        }
        sub.finalize()?;
        dng.load_base_tags(&raw)?;
        dng.load_metadata(&frame.metadata)?;
        if !dng.root_ifd().contains(ExifTag::Orientation) {
            dng.root_ifd_mut()
                .add_tag(ExifTag::Orientation, raw.orientation.to_u16());
        }
        if let Some(tags) = &frame.root_tags {
            dng.root_ifd_mut().copy(tags.value_iter());
        }
        if let Some(root) = &frame.tiff_root {
            // Keep these root tags exactly as the input had them (rawler re-derives some of them
            // from parsed values: cleaned make/model strings, colour matrices rounded to 1e-4).
            let verbatim = [
                TiffCommonTag::Make as u16,
                TiffCommonTag::Model as u16,
                DngTag::UniqueCameraModel as u16,
                DngTag::LocalizedCameraModel as u16,
                DngTag::ColorMatrix1 as u16,
                DngTag::ColorMatrix2 as u16,
                DngTag::ColorMatrix3 as u16,
                DngTag::CalibrationIlluminant1 as u16,
                DngTag::CalibrationIlluminant2 as u16,
                DngTag::CalibrationIlluminant3 as u16,
                DngTag::AsShotNeutral as u16,
                DngTag::AsShotWhiteXY as u16,
                DngTag::BaselineExposure as u16,
                DngTag::BaselineNoise as u16,
                DngTag::BaselineSharpness as u16,
                DngTag::LinearResponseLimit as u16,
                DngTag::CameraSerialNumber as u16,
                ExifTag::Orientation as u16,
                TiffCommonTag::XResolution as u16,
                TiffCommonTag::YResolution as u16,
                TiffCommonTag::ResolutionUnit as u16,
            ];
            dng.root_ifd_mut()
                .copy_with_override(root.value_iter().filter(|(t, _)| verbatim.contains(t)));
        }
        dng.root_ifd_mut()
            .add_tag(TiffCommonTag::Software, software);
        dng.close()
    };
    guarded(path, "encoding", || {
        encode(&mut buf).map_err(|e| fmt_err(path, format!("DNG encoding failed: {e}")))
    })?;
    let bytes = buf.into_inner();
    write_atomic(path, |w| w.write_all(&bytes))
}

impl DngFrame {
    /// The active area as a region of `data`: the index of its first sample and its layout
    /// (stride: the stored image width).
    pub fn active_region(&self) -> (usize, FrameLayout) {
        let (x, y, w, h) = self.active;
        let layout = FrameLayout {
            width: w,
            height: h,
            stride: self.width,
            cfa: self.cfa,
        };
        (y * self.width + x, layout)
    }

    /// Crops the frame to the rectangle `(x, y, w, h)` of the stored image; `x` and `y` must be
    /// even so the CFA phase and black-level pattern keep their alignment. The crop becomes the
    /// whole image (no masked areas).
    pub fn crop_even(&mut self, x: usize, y: usize, w: usize, h: usize) -> Result<(), IoError> {
        let bad = |r: &str| IoError::Format {
            path: "crop".into(),
            reason: r.into(),
        };
        if !x.is_multiple_of(2)
            || !y.is_multiple_of(2)
            || w < 2
            || h < 2
            || x + w > self.width
            || y + h > self.height
        {
            return Err(bad("crop must start at even coordinates inside the image"));
        }
        let mut data = Vec::with_capacity(w * h);
        for row in y..y + h {
            data.extend_from_slice(&self.data[row * self.width + x..row * self.width + x + w]);
        }
        let cfa_at = self.cfa_phase_at(x, y);
        self.data = data;
        self.width = w;
        self.height = h;
        self.active = (0, 0, w, h);
        self.cfa = cfa_at;
        self.raw.width = w;
        self.raw.height = h;
        self.raw.active_area = None;
        self.raw.crop_area = None;
        self.raw.blackareas.clear();
        Ok(())
    }

    /// A new frame with this frame's colour metadata (matrices, illuminants, white balance)
    /// and everything else from `spec`: size, CFA phase, levels, ISO, exposure, make and
    /// model, and CFA samples `data` (`width * height`, row-major). The whole image is active,
    /// with no masked areas, opcode lists or NoiseProfile. For synthetic frames (calibration
    /// simulations, tests) written with [`write`].
    pub fn synthetic(&self, spec: &FrameSpec, data: Vec<u16>) -> Result<DngFrame, IoError> {
        let bad = |r: String| IoError::Format {
            path: "synthetic frame".into(),
            reason: r,
        };
        let (w, h) = (spec.width, spec.height);
        if w < 2 || h < 2 || w > MAX_SIDE || h > MAX_SIDE || w.saturating_mul(h) > MAX_PIXELS {
            return Err(bad(format!("absurd dimensions {w}x{h}")));
        }
        if data.len() != w * h {
            return Err(bad(format!("{} samples for a {w}x{h} frame", data.len())));
        }
        spec.levels.validate().map_err(|e| bad(e.to_string()))?;
        let mut raw = self.raw.clone();
        raw.width = w;
        raw.height = h;
        raw.active_area = None;
        raw.crop_area = None;
        raw.blackareas.clear();
        raw.bps = 16;
        let colors = match &raw.photometric {
            RawPhotometricInterpretation::Cfa(c) => c.colors.clone(),
            _ => return Err(bad("the template is not a CFA frame".into())),
        };
        let cfa = rawler::cfa::CFA::new(&spec.cfa.name().to_ascii_uppercase());
        raw.camera.cfa = cfa.clone();
        raw.photometric =
            RawPhotometricInterpretation::Cfa(rawler::rawimage::CFAConfig::new(&cfa, &colors));
        let rational = |b: f32| {
            if b.fract() == 0.0 {
                rawler::formats::tiff::Rational::new(b as u32, 1)
            } else {
                rawler::formats::tiff::Rational::new((b * 1000.0).round() as u32, 1000)
            }
        };
        let pattern: Vec<_> = spec
            .cfa
            .channels()
            .iter()
            .map(|&c| rational(spec.levels.black[c]))
            .collect();
        raw.blacklevel = rawler::rawimage::BlackLevel::new(&pattern, 2, 2, 1);
        raw.whitelevel = rawler::rawimage::WhiteLevel::new(vec![spec.levels.white as u32]);
        raw.make = spec.make.clone();
        raw.model = spec.model.clone();
        raw.clean_make = spec.make.clone();
        raw.clean_model = spec.model.clone();
        let mut metadata = self.metadata.clone();
        metadata.make = spec.make.clone();
        metadata.model = spec.model.clone();
        let exif = &mut metadata.exif;
        exif.iso_speed_ratings = spec.iso.and_then(|i| u16::try_from(i).ok());
        exif.iso_speed = spec.iso.filter(|&i| i > u16::MAX as u32);
        exif.recommended_exposure_index = None;
        exif.exposure_time = spec
            .exposure_s
            .filter(|t| t.is_finite() && *t > 0.0 && *t < 4000.0)
            .map(|t| rawler::formats::tiff::Rational::new((t * 1e6).round() as u32, 1_000_000));
        Ok(DngFrame {
            data,
            width: w,
            height: h,
            active: (0, 0, w, h),
            cfa: spec.cfa,
            levels: spec.levels,
            iso: spec.iso,
            exposure_s: spec.exposure_s,
            noise_profile: None,
            make: spec.make.clone(),
            model: spec.model.clone(),
            raw,
            metadata,
            raw_tags: None,
            root_tags: self.root_tags.clone(),
            tiff_root: None,
        })
    }

    /// CFA phase at stored-image position `(x, y)` given the phase at the active origin.
    fn cfa_phase_at(&self, x: usize, y: usize) -> CfaPhase {
        let (ax, ay) = (self.active.0, self.active.1);
        let mut ch = self.cfa.channels();
        if (x + ax) % 2 == 1 {
            ch = [ch[1], ch[0], ch[3], ch[2]];
        }
        if (y + ay) % 2 == 1 {
            ch = [ch[2], ch[3], ch[0], ch[1]];
        }
        CfaPhase::ALL
            .into_iter()
            .find(|p| p.channels() == ch)
            .unwrap_or(self.cfa)
    }
}
