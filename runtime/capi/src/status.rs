//! Status codes, the panic guard of every entry point, and version queries.

use core::ffi::c_char;

use rawnr_core::Error;

/// Major version of this header (`rawnr_version_number() >> 16` at run time).
pub const RAWNR_VERSION_MAJOR: u32 = 0;
/// Minor version of this header.
pub const RAWNR_VERSION_MINOR: u32 = 1;
/// Patch version of this header.
pub const RAWNR_VERSION_PATCH: u32 = 0;

/// Result of every rawnr call. `RAWNR_OK` is 0; every error is positive and names what the
/// caller got wrong. A call that fails changes nothing the caller can observe (outputs
/// untouched, handles unchanged), except where its documentation says otherwise.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rawnr_status {
    /// Success.
    RAWNR_OK = 0,
    /// A required pointer argument is NULL.
    RAWNR_ERR_NULL = 1,
    /// A caller buffer (frame, rows, scratch, storage) is smaller than the call needs; the
    /// matching `*_size` query gives the size.
    RAWNR_ERR_BUFFER_TOO_SMALL = 2,
    /// A row stride is odd (strides are in bytes, pixels are 16-bit) or smaller than a row.
    RAWNR_ERR_BAD_STRIDE = 3,
    /// The model bytes are not a valid `.rnm` model (truncated, corrupt, wrong version or a
    /// graph this build cannot run).
    RAWNR_ERR_BAD_MODEL = 4,
    /// The frame description is invalid: size below 2x2, unknown CFA code, black level not
    /// below the white level, white level above 65535.
    RAWNR_ERR_BAD_FRAME = 5,
    /// The noise parameters are invalid (k <= 0 or not finite, sigma2 < 0, ISO <= 0).
    RAWNR_ERR_BAD_NOISE = 6,
    /// A pointer is not aligned as required: model bytes to 4 bytes, pixels to 2 bytes.
    RAWNR_ERR_MISALIGNED = 7,
    /// Sizes disagree: more rows pushed than the frame has left, or a denoiser that was
    /// re-initialised for another geometry under a stripe made from it.
    RAWNR_ERR_SIZE_MISMATCH = 8,
    /// The handle was not made by the matching `*_init` / `*_new` call, or was freed.
    RAWNR_ERR_BAD_HANDLE = 9,
    /// Input, output or scratch buffers overlap.
    RAWNR_ERR_OVERLAP = 10,
    /// Another argument is out of range (e.g. `rows_per_push` 0, a path that is not valid).
    RAWNR_ERR_BAD_ARGUMENT = 11,
    /// A model file could not be opened or mapped.
    RAWNR_ERR_IO = 12,
    /// The call needs the `std` build (model files, allocating constructors) or a
    /// little-endian target.
    RAWNR_ERR_UNSUPPORTED = 13,
    /// rawnr panicked (a bug); the panic was caught at the boundary. Handles used by the call
    /// must be re-initialised.
    RAWNR_ERR_PANIC = 14,
}

pub use rawnr_status::*;

/// The status of a core error.
pub(crate) fn status_of(e: Error) -> rawnr_status {
    match e {
        Error::Truncated { .. }
        | Error::BadMagic
        | Error::UnsupportedVersion { .. }
        | Error::BadHeader(_)
        | Error::ChecksumMismatch { .. }
        | Error::BadTensor { .. }
        | Error::UnsupportedDtype { .. }
        | Error::UnknownOp { .. }
        | Error::BadNode { .. }
        | Error::BadInfo(_)
        | Error::ShapeMismatch { .. }
        | Error::ScratchTooLarge { .. } => RAWNR_ERR_BAD_MODEL,
        Error::Misaligned => RAWNR_ERR_MISALIGNED,
        Error::BigEndianTarget => RAWNR_ERR_UNSUPPORTED,
        Error::BadFrame(_) | Error::Overflow => RAWNR_ERR_BAD_FRAME,
        Error::BufferTooSmall { .. } => RAWNR_ERR_BUFFER_TOO_SMALL,
        Error::BadNoise(_) => RAWNR_ERR_BAD_NOISE,
    }
}

/// Result type of the entry points' bodies.
pub(crate) type Res<T = ()> = Result<T, rawnr_status>;

/// Runs an entry point's body: in `std` builds a panic becomes `RAWNR_ERR_PANIC` instead of
/// crossing the C boundary.
pub(crate) fn guard(body: impl FnOnce() -> Res) -> rawnr_status {
    #[cfg(feature = "std")]
    let result = std::panic::catch_unwind(core::panic::AssertUnwindSafe(body))
        .unwrap_or(Err(RAWNR_ERR_PANIC));
    #[cfg(not(feature = "std"))]
    let result = body();
    match result {
        Ok(()) => RAWNR_OK,
        Err(s) => s,
    }
}

/// [`guard`] for entry points without a status (the `*_free` functions): a panic is dropped.
pub(crate) fn guard_void(body: impl FnOnce()) {
    let _ = guard(|| {
        body();
        Ok(())
    });
}

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0u32;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}

const VERSION_NUMBER: u32 = (parse_u32(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
    | (parse_u32(env!("CARGO_PKG_VERSION_MINOR")) << 8)
    | parse_u32(env!("CARGO_PKG_VERSION_PATCH"));

/// The library version as a NUL-terminated string ("0.1.0"); static storage, never freed.
///
/// Thread-safety: safe to call from any thread at any time.
#[no_mangle]
pub extern "C" fn rawnr_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The library version as a number, `(major << 16) | (minor << 8) | patch`; compare with
/// `RAWNR_VERSION_MAJOR` etc. to check that the header matches the library.
///
/// Thread-safety: safe to call from any thread at any time.
#[no_mangle]
pub extern "C" fn rawnr_version_number() -> u32 {
    VERSION_NUMBER
}

/// A short English description of a status code (any value; unknown codes give
/// "unknown status"). Static storage, never freed.
///
/// Thread-safety: safe to call from any thread at any time.
#[no_mangle]
pub extern "C" fn rawnr_status_string(status: i32) -> *const c_char {
    let s: &'static str = match status {
        0 => "ok\0",
        1 => "a required pointer is NULL\0",
        2 => "buffer too small\0",
        3 => "bad row stride (odd, or smaller than a row)\0",
        4 => "invalid or corrupt model\0",
        5 => "invalid frame description\0",
        6 => "invalid noise parameters\0",
        7 => "misaligned pointer (model bytes need 4, pixels 2)\0",
        8 => "sizes do not match\0",
        9 => "invalid handle\0",
        10 => "buffers overlap\0",
        11 => "invalid argument\0",
        12 => "model file could not be read\0",
        13 => "unsupported in this build\0",
        14 => "internal error (panic caught)\0",
        _ => "unknown status\0",
    };
    s.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn header_version_constants_match_the_package() {
        assert_eq!(
            RAWNR_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            RAWNR_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            RAWNR_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
        assert_eq!(
            rawnr_version_number(),
            (RAWNR_VERSION_MAJOR << 16) | (RAWNR_VERSION_MINOR << 8) | RAWNR_VERSION_PATCH
        );
    }

    #[test]
    fn panics_become_a_status() {
        assert_eq!(guard(|| panic!("boom")), RAWNR_ERR_PANIC);
        assert_eq!(guard(|| Err(RAWNR_ERR_NULL)), RAWNR_ERR_NULL);
        assert_eq!(guard(|| Ok(())), RAWNR_OK);
        guard_void(|| panic!("boom in free"));
    }

    #[test]
    fn every_status_has_a_string() {
        for s in 0..=14 {
            let p = rawnr_status_string(s);
            let text = unsafe { core::ffi::CStr::from_ptr(p) }.to_str().unwrap();
            assert_ne!(text, "unknown status", "{s}");
        }
        let p = rawnr_status_string(-3);
        let text = unsafe { core::ffi::CStr::from_ptr(p) }.to_str().unwrap();
        assert_eq!(text, "unknown status");
    }
}
