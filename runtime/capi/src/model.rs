//! Model handles: a validated `.rnm` model used in place (zero-copy).

use core::ffi::{c_char, c_void};
use core::mem::size_of;

use rawnr_core::format::{Model, NoiseChannels, NoiseConditioning, Precision};
use rawnr_engine::denoiser::Denoiser;
use rawnr_engine::graph::Engine;

use crate::mem::{Carver, HeapBlock};
use crate::status::*;

/// Bytes of caller storage `rawnr_model_init` needs for a model handle (any alignment): size
/// static arrays with it.
pub const RAWNR_MODEL_STORAGE_SIZE: usize = 512;

/// `rawnr_model_info.precision`: every weight and activation in f32.
pub const RAWNR_PRECISION_F32: u32 = 0;
/// `rawnr_model_info.precision`: f16 weights (widened at run time), f32 activations.
pub const RAWNR_PRECISION_F16: u32 = 1;
/// `rawnr_model_info.precision`: int8 weights and u8 activations (W8A8; some layers may stay
/// f32; results depend on the tile size by up to a few DN, unlike f32's rounding).
pub const RAWNR_PRECISION_INT8: u32 = 2;

/// A validated model (opaque). Made by `rawnr_model_init` (caller storage), `rawnr_model_load`
/// or `rawnr_model_open` (heap, `std` builds); read-only afterwards.
pub struct rawnr_model {
    _opaque: [u8; 0],
}

/// What `rawnr_model_get_info` reports.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rawnr_model_info {
    /// Model name, NUL-terminated UTF-8.
    pub name: [c_char; 40],
    /// Packed (half-resolution) tile sizes and halos are rounded up to a multiple of this.
    pub size_multiple: u32,
    /// Halo the model asks for, in packed pixels (`rawnr_config.halo < 0` uses it).
    pub halo: u32,
    /// One-sided receptive field in packed pixels: a halo at least this large makes tiled
    /// output bit-identical to one whole-frame pass.
    pub receptive_field: u32,
    /// Graph nodes.
    pub n_nodes: u32,
    /// Graph values (activations, input included); plan tables grow with it.
    pub n_values: u32,
    /// 0: the network is blind to the noise level; 1: k-sigma conditioning (PMRID).
    pub noise_conditioning: u32,
    /// ISO whose noise a k-sigma network was trained on (0 when blind).
    pub anchor_iso: f32,
    /// Default noise profile, `k(ISO) = k[0] * ISO + k[1]` (normalised units).
    pub default_k: [f32; 2],
    /// Default noise profile, `sigma2(ISO) = s[0] * ISO^2 + s[1] * ISO + s[2]`.
    pub default_sigma2: [f32; 3],
    /// Input convention: 1 when samples below the black level are raised to it before the
    /// network (the library does this; a caller feeding the network itself must too).
    pub clip_below_black: u32,
    /// Input convention: how per-channel noise parameters are applied, 0 one k-sigma
    /// transform per plane, 1 one transform from the parameters averaged over R, Gr, Gb, B.
    pub noise_channels: u32,
    /// Noise bands: sets of int8 activation ranges, each for a range of noise levels; a
    /// denoiser uses the one of its frame's noise (`rawnr_denoiser_info.noise_band`). 1 for
    /// f32, f16 and single-band int8 models.
    pub noise_bands: u32,
    /// Weight and activation precision: `RAWNR_PRECISION_*`.
    pub precision: u32,
    /// Multiply-accumulates per megapixel of raw frame (measured on a 1024x1024 frame, one
    /// tile, so without halo overlap); 0 in builds without `std`.
    pub macs_per_megapixel: u64,
}

const MODEL_MAGIC: u32 = 0x4d4e_5252; // "RRNM"

#[repr(C)]
pub(crate) struct ModelHandle {
    magic: u32,
    heap: HeapBlock,
    pub(crate) denoiser: Denoiser<'static>,
    #[cfg(feature = "std")]
    file: Option<rawnr_engine::file::ModelFile>,
}

const _: () = assert!(
    size_of::<ModelHandle>() + crate::mem::ALIGN - 1 <= RAWNR_MODEL_STORAGE_SIZE,
    "RAWNR_MODEL_STORAGE_SIZE is too small for the model handle"
);

/// The handle behind `model`, checked.
///
/// # Safety
/// `model` is NULL or points to readable memory of a handle's size.
pub(crate) unsafe fn model_ref<'a>(model: *const rawnr_model) -> Res<&'a ModelHandle> {
    Ok(&*crate::mem::handle(
        model.cast::<ModelHandle>(),
        MODEL_MAGIC,
    )?)
}

/// Parses `data[..len]` in place: NULL, alignment, then the model checks.
///
/// # Safety
/// `data` is NULL or readable for `len` bytes, and stays valid and unchanged while any handle
/// made from it is in use.
unsafe fn parse(data: *const c_void, len: usize) -> Res<Model<'static>> {
    if data.is_null() {
        return Err(RAWNR_ERR_NULL);
    }
    if !(data as usize).is_multiple_of(4) {
        return Err(RAWNR_ERR_MISALIGNED);
    }
    if len == 0 {
        return Err(RAWNR_ERR_BAD_MODEL);
    }
    let bytes = core::slice::from_raw_parts(data.cast::<u8>(), len);
    Model::parse(bytes).map_err(status_of)
}

/// Writes a handle into `storage` (checked size) and returns it.
///
/// # Safety
/// `storage` is writable for `storage_size` bytes.
unsafe fn place(
    storage: *mut c_void,
    storage_size: usize,
    model: Model<'static>,
    heap: HeapBlock,
) -> Res<*mut ModelHandle> {
    if storage.is_null() {
        return Err(RAWNR_ERR_NULL);
    }
    // The documented size (the handle and its alignment slack fit in it: checked at compile
    // time above), not the handle's own, so a caller's size never works by accident.
    if storage_size < RAWNR_MODEL_STORAGE_SIZE {
        return Err(RAWNR_ERR_BUFFER_TOO_SMALL);
    }
    let h = Carver::new(storage, storage_size)
        .take(size_of::<ModelHandle>())
        .cast::<ModelHandle>();
    h.write(ModelHandle {
        magic: MODEL_MAGIC,
        heap,
        denoiser: Denoiser::new(Engine::new(model)),
        #[cfg(feature = "std")]
        file: None,
    });
    Ok(h)
}

unsafe fn set_out<T>(out: *mut *mut T, value: *mut T) {
    if !out.is_null() {
        *out = value;
    }
}

/// Validates a model in caller memory and makes its handle in caller storage; allocates
/// nothing and copies nothing (the weights are used in place).
///
/// - `storage`, `storage_size`: memory for the handle, at least `RAWNR_MODEL_STORAGE_SIZE`
///   bytes, any alignment; it must stay valid, and must not be moved, while the handle is used.
/// - `data`, `len`: the `.rnm` file contents, 4-byte aligned (`RAWNR_ERR_MISALIGNED`
///   otherwise). Not copied: the caller keeps them alive and unchanged while the model or
///   anything made from it is in use.
/// - `out`: receives the handle (NULL on failure).
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_MISALIGNED`, `RAWNR_ERR_BAD_MODEL` (truncated,
/// corrupt: the checksum covers every byte), `RAWNR_ERR_BUFFER_TOO_SMALL` (storage).
///
/// Thread-safety: may run concurrently with any call that does not use the same storage.
///
/// # Safety
/// Pointers must be NULL or valid for the sizes given.
#[no_mangle]
pub unsafe extern "C" fn rawnr_model_init(
    storage: *mut c_void,
    storage_size: usize,
    data: *const c_void,
    len: usize,
    out: *mut *mut rawnr_model,
) -> rawnr_status {
    guard(|| {
        set_out(out, core::ptr::null_mut());
        if out.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let model = parse(data, len)?;
        let h = place(storage, storage_size, model, HeapBlock::CALLER)?;
        *out = h.cast();
        Ok(())
    })
}

/// `std` builds: like `rawnr_model_init`, with the handle allocated on the heap (release it
/// with `rawnr_model_free`). The model bytes are still used in place: keep `data` alive and
/// 4-byte aligned. Other builds: `RAWNR_ERR_UNSUPPORTED`.
///
/// Thread-safety: may run concurrently with any call.
///
/// # Safety
/// Pointers must be NULL or valid for the sizes given.
#[no_mangle]
pub unsafe extern "C" fn rawnr_model_load(
    data: *const c_void,
    len: usize,
    out: *mut *mut rawnr_model,
) -> rawnr_status {
    guard(|| {
        set_out(out, core::ptr::null_mut());
        if out.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let model = parse(data, len)?;
        #[cfg(feature = "std")]
        {
            let heap = HeapBlock::alloc(RAWNR_MODEL_STORAGE_SIZE)?;
            match place(heap.base.cast(), heap.size, model, heap) {
                Ok(h) => {
                    *out = h.cast();
                    Ok(())
                }
                Err(e) => {
                    heap.release();
                    Err(e)
                }
            }
        }
        #[cfg(not(feature = "std"))]
        {
            let _ = model;
            Err(RAWNR_ERR_UNSUPPORTED)
        }
    })
}

/// `std` builds: opens a `.rnm` file by path (NUL-terminated; bytes as given on Unix, UTF-8
/// elsewhere), maps it read-only (page-aligned, so the weights are used in place) and
/// validates it. The handle owns the mapping; release it with `rawnr_model_free`.
/// Other builds: `RAWNR_ERR_UNSUPPORTED`.
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_IO` (missing or unreadable file),
/// `RAWNR_ERR_BAD_MODEL`, `RAWNR_ERR_BAD_ARGUMENT` (path not valid on this platform).
///
/// Thread-safety: may run concurrently with any call.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn rawnr_model_open(
    path: *const c_char,
    out: *mut *mut rawnr_model,
) -> rawnr_status {
    guard(|| {
        set_out(out, core::ptr::null_mut());
        if out.is_null() || path.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        #[cfg(feature = "std")]
        {
            use rawnr_engine::file::{LoadError, ModelFile};
            let c = core::ffi::CStr::from_ptr(path);
            #[cfg(unix)]
            let p = {
                use std::os::unix::ffi::OsStrExt;
                std::path::Path::new(std::ffi::OsStr::from_bytes(c.to_bytes()))
            };
            #[cfg(not(unix))]
            let p = std::path::Path::new(c.to_str().map_err(|_| RAWNR_ERR_BAD_ARGUMENT)?);
            let file = ModelFile::open(p).map_err(|e| match e {
                LoadError::Io(_) => RAWNR_ERR_IO,
                LoadError::Model(e) => status_of(e),
            })?;
            // The mapping lives in the handle (its address does not change when the
            // `ModelFile` moves), so the model may borrow it for the handle's lifetime.
            let model: Model<'static> =
                core::mem::transmute::<Model<'_>, Model<'static>>(file.model());
            let heap = HeapBlock::alloc(RAWNR_MODEL_STORAGE_SIZE)?;
            match place(heap.base.cast(), heap.size, model, heap) {
                Ok(h) => {
                    (*h).file = Some(file);
                    *out = h.cast();
                    Ok(())
                }
                Err(e) => {
                    heap.release();
                    Err(e)
                }
            }
        }
        #[cfg(not(feature = "std"))]
        Err(RAWNR_ERR_UNSUPPORTED)
    })
}

/// Releases a model handle: frees what `rawnr_model_load` / `rawnr_model_open` allocated
/// (and unmaps the file); for a handle in caller storage (`rawnr_model_init`) it only marks
/// the handle invalid. NULL and invalid handles are ignored. Denoisers made from the model
/// must not be used afterwards.
///
/// Thread-safety: no other call may use the handle during or after this one.
///
/// # Safety
/// `model` must be NULL or a handle that is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rawnr_model_free(model: *mut rawnr_model) {
    guard_void(|| {
        if model_ref(model).is_err() {
            return;
        }
        let h = model.cast::<ModelHandle>();
        (*h).magic = 0;
        let heap = (*h).heap;
        #[cfg(feature = "std")]
        drop((*h).file.take());
        heap.release();
    })
}

/// Describes a model (name, tiling facts, default noise profile).
///
/// Errors: `RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`.
///
/// Thread-safety: may run concurrently with any call except `rawnr_model_free` of the same
/// handle.
///
/// # Safety
/// Pointers must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn rawnr_model_get_info(
    model: *const rawnr_model,
    info: *mut rawnr_model_info,
) -> rawnr_status {
    guard(|| {
        let h = model_ref(model)?;
        if info.is_null() {
            return Err(RAWNR_ERR_NULL);
        }
        let m = h.denoiser.engine().model();
        let i = m.info();
        let mut name = [0 as c_char; 40];
        for (d, &s) in name.iter_mut().zip(i.name_str().as_bytes().iter().take(39)) {
            *d = s as c_char;
        }
        let (conditioning, anchor_iso) = match i.noise {
            NoiseConditioning::None => (0, 0.0),
            NoiseConditioning::KSigma { anchor_iso } => (1, anchor_iso),
        };
        info.write(rawnr_model_info {
            name,
            size_multiple: i.size_multiple,
            halo: i.halo,
            receptive_field: i.receptive_field,
            n_nodes: m.n_nodes() as u32,
            n_values: m.n_values() as u32,
            noise_conditioning: conditioning,
            anchor_iso,
            default_k: i.default_noise.k,
            default_sigma2: i.default_noise.sigma2,
            clip_below_black: u32::from(i.input.clip_below_black),
            noise_channels: match i.input.noise_channels {
                NoiseChannels::PerPlane => 0,
                NoiseChannels::Pooled => 1,
            },
            noise_bands: m.noise_bands() as u32,
            precision: precision(m),
            macs_per_megapixel: macs_per_megapixel(h.denoiser.engine()),
        });
        Ok(())
    })
}

/// The `RAWNR_PRECISION_*` of a model.
fn precision(m: &Model<'_>) -> u32 {
    match m.precision() {
        Precision::F32 => RAWNR_PRECISION_F32,
        Precision::F16Weights => RAWNR_PRECISION_F16,
        Precision::Int8 => RAWNR_PRECISION_INT8,
    }
}

/// MACs per megapixel: the graph's MACs on a 1024x1024 raw frame (512x512 packed).
#[cfg(feature = "std")]
fn macs_per_megapixel(e: &Engine<'_>) -> u64 {
    let mut shapes = std::vec![rawnr_engine::graph::Shape::default(); e.model().n_values()];
    match e.infer_shapes(512, 512, &mut shapes) {
        Ok(()) => (e.macs(&shapes) as f64 / (1024.0 * 1024.0 / 1e6)).round() as u64,
        Err(_) => 0,
    }
}

#[cfg(not(feature = "std"))]
fn macs_per_megapixel(_: &Engine<'_>) -> u64 {
    0
}
