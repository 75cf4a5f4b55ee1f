//! Caller memory: carving aligned pieces out of byte buffers, checking frame buffers, and the
//! heap blocks behind the `std` build's allocating constructors.

use core::ffi::c_void;
use core::mem::{align_of, size_of};

use rawnr_core::bayer::FrameLayout;

use crate::status::*;

/// Alignment of every piece carved from caller memory (enough for every type rawnr stores and
/// for 128-bit SIMD loads of the scratch arena).
pub(crate) const ALIGN: usize = 16;

fn round_up(x: usize) -> Option<usize> {
    x.checked_add(ALIGN - 1).map(|v| v & !(ALIGN - 1))
}

/// Bytes of `n` values of `T`, or `None` on overflow.
pub(crate) fn bytes_of<T>(n: usize) -> Option<usize> {
    const { assert!(align_of::<T>() <= ALIGN) };
    n.checked_mul(size_of::<T>())
}

/// Bytes a buffer needs to hold pieces of the given sizes, each aligned to [`ALIGN`], whatever
/// the buffer's own alignment.
pub(crate) fn total_size(pieces: &[Option<usize>]) -> Option<usize> {
    pieces
        .iter()
        .try_fold(ALIGN - 1, |acc, p| acc.checked_add(round_up((*p)?)?))
}

/// Hands out consecutive aligned pieces of a caller buffer whose size was checked against
/// [`total_size`] of the same pieces.
pub(crate) struct Carver {
    base: *mut u8,
    offset: usize,
    len: usize,
}

impl Carver {
    /// Starts at the first aligned byte of `ptr[..len]`.
    pub(crate) fn new(ptr: *mut c_void, len: usize) -> Self {
        let base = ptr.cast::<u8>();
        Carver {
            base,
            offset: base.align_offset(ALIGN),
            len,
        }
    }

    /// The next piece of `bytes` bytes.
    ///
    /// # Safety
    /// The buffer must hold [`total_size`] of all pieces taken.
    pub(crate) unsafe fn take(&mut self, bytes: usize) -> *mut u8 {
        let p = self.base.add(self.offset);
        self.offset += round_up(bytes).unwrap_or(usize::MAX);
        debug_assert!(self.offset <= self.len);
        p
    }
}

/// A frame buffer handed over by the caller, checked against a frame geometry.
pub(crate) struct FrameBuf {
    /// Address of the first pixel.
    pub addr: usize,
    /// Pixels the frame spans (`(height - 1) * stride + width`).
    pub elems: usize,
    /// Stride in pixels.
    pub stride: usize,
}

impl FrameBuf {
    /// Bytes the frame spans.
    pub(crate) fn bytes(&self) -> usize {
        self.elems * 2
    }
}

/// Checks a buffer of `rows` rows of `layout.width` pixels with a stride of `stride_bytes`:
/// NULL, alignment, stride and size, in that order.
pub(crate) fn frame_buf(
    ptr: *const u16,
    size_bytes: usize,
    stride_bytes: usize,
    width: usize,
    rows: usize,
) -> Res<FrameBuf> {
    if ptr.is_null() {
        return Err(RAWNR_ERR_NULL);
    }
    if !(ptr as usize).is_multiple_of(2) {
        return Err(RAWNR_ERR_MISALIGNED);
    }
    if !stride_bytes.is_multiple_of(2) || stride_bytes / 2 < width {
        return Err(RAWNR_ERR_BAD_STRIDE);
    }
    let stride = stride_bytes / 2;
    let elems = if rows == 0 {
        0
    } else {
        (rows - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(width))
            .ok_or(RAWNR_ERR_BUFFER_TOO_SMALL)?
    };
    if size_bytes / 2 < elems {
        return Err(RAWNR_ERR_BUFFER_TOO_SMALL);
    }
    Ok(FrameBuf {
        addr: ptr as usize,
        elems,
        stride,
    })
}

/// The output of a line-buffer push that finishes `count` rows of `width` pixels, checked as
/// [`frame_buf`] does (NULL is allowed when the push finishes no row: a dangling pointer and an
/// empty buffer stand for it), then checked not to overlap the push's input `inb` nor its
/// output any of `storage` (the handles' memory, address and size), nor the input the first
/// of them. Returns the output pointer and its checked buffer.
pub(crate) fn push_output(
    output: *mut u16,
    output_size: usize,
    output_stride: usize,
    width: usize,
    count: usize,
    inb: &FrameBuf,
    storage: [(usize, usize); 2],
) -> Res<(*mut u16, FrameBuf)> {
    let (output, output_size, output_stride) = match (output.is_null(), count) {
        (false, _) => (output, output_size, output_stride),
        (true, 0) => (core::ptr::NonNull::dangling().as_ptr(), 0, 2 * width),
        (true, _) => return Err(RAWNR_ERR_NULL),
    };
    let outb = frame_buf(output, output_size, output_stride, width, count)?;
    let [(s0, sn), (d0, dn)] = storage;
    if overlaps(inb.addr, inb.bytes(), outb.addr, outb.bytes())
        || overlaps(s0, sn, outb.addr, outb.bytes())
        || overlaps(s0, sn, inb.addr, inb.bytes())
        || overlaps(d0, dn, outb.addr, outb.bytes())
    {
        return Err(RAWNR_ERR_OVERLAP);
    }
    Ok((output, outb))
}

/// `p` as a handle of type `T`, whose first field is its `u32` magic number: NULL,
/// alignment and magic checked (`RAWNR_ERR_NULL`, `RAWNR_ERR_BAD_HANDLE`).
///
/// # Safety
/// `p` is NULL or points to readable memory of a `T`'s size.
pub(crate) unsafe fn handle<T>(p: *const T, magic: u32) -> Res<*mut T> {
    if p.is_null() {
        return Err(RAWNR_ERR_NULL);
    }
    if !(p as usize).is_multiple_of(core::mem::align_of::<T>()) || *p.cast::<u32>() != magic {
        return Err(RAWNR_ERR_BAD_HANDLE);
    }
    Ok(p.cast_mut())
}

/// The layout of a checked frame buffer.
pub(crate) fn with_stride(layout: &FrameLayout, buf: &FrameBuf) -> FrameLayout {
    FrameLayout {
        stride: buf.stride,
        ..*layout
    }
}

/// True when the byte ranges `[a, a + a_len)` and `[b, b + b_len)` share a byte.
pub(crate) fn overlaps(a: usize, a_len: usize, b: usize, b_len: usize) -> bool {
    a_len > 0 && b_len > 0 && a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

/// Where a handle's memory came from: the caller (`*_init`) or the heap (`*_new`, `std` only).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "std"), allow(dead_code))] // always `CALLER` without std
pub(crate) struct HeapBlock {
    /// Start of the heap allocation, or NULL for caller memory.
    pub base: *mut u8,
    /// Its size in bytes.
    pub size: usize,
}

impl HeapBlock {
    /// Caller memory.
    pub(crate) const CALLER: HeapBlock = HeapBlock {
        base: core::ptr::null_mut(),
        size: 0,
    };

    /// Allocates `size` zeroed bytes aligned to [`ALIGN`].
    #[cfg(feature = "std")]
    pub(crate) fn alloc(size: usize) -> Res<HeapBlock> {
        let layout = std::alloc::Layout::from_size_align(size.max(1), ALIGN)
            .map_err(|_| RAWNR_ERR_BUFFER_TOO_SMALL)?;
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        if base.is_null() {
            return Err(RAWNR_ERR_BUFFER_TOO_SMALL);
        }
        Ok(HeapBlock {
            base,
            size: size.max(1),
        })
    }

    /// Releases a block from [`HeapBlock::alloc`]; does nothing for caller memory.
    ///
    /// # Safety
    /// `self` came from [`HeapBlock::alloc`] (or is [`HeapBlock::CALLER`]) and is released once.
    pub(crate) unsafe fn release(self) {
        #[cfg(feature = "std")]
        if !self.base.is_null() {
            if let Ok(layout) = std::alloc::Layout::from_size_align(self.size, ALIGN) {
                std::alloc::dealloc(self.base, layout);
            }
        }
        #[cfg(not(feature = "std"))]
        let _ = self; // nothing is ever allocated without std
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carving_stays_inside_the_checked_size() {
        let pieces = [Some(3), Some(100), Some(0), Some(17)];
        let total = total_size(&pieces).unwrap();
        let mut buf = [0u8; 256];
        for start in 0..ALIGN {
            let region = &mut buf[start..start + total];
            let (lo, hi) = (region.as_ptr() as usize, region.as_ptr() as usize + total);
            let mut c = Carver::new(region.as_mut_ptr().cast(), total);
            for p in pieces {
                let n = p.unwrap();
                let ptr = unsafe { c.take(n) } as usize;
                assert!(ptr.is_multiple_of(ALIGN) && ptr >= lo && ptr + n <= hi);
            }
        }
        assert_eq!(total_size(&[Some(usize::MAX)]), None);
        assert_eq!(total_size(&[None]), None);
    }

    #[test]
    fn frame_buffers_are_checked_in_order() {
        let px = [0u16; 64];
        let p = px.as_ptr();
        assert_eq!(
            frame_buf(core::ptr::null(), 128, 16, 8, 8).err(),
            Some(RAWNR_ERR_NULL)
        );
        let odd = (p as usize + 1) as *const u16;
        assert_eq!(
            frame_buf(odd, 100, 16, 8, 4).err(),
            Some(RAWNR_ERR_MISALIGNED)
        );
        assert_eq!(
            frame_buf(p, 128, 17, 8, 4).err(),
            Some(RAWNR_ERR_BAD_STRIDE)
        );
        assert_eq!(
            frame_buf(p, 128, 14, 8, 4).err(),
            Some(RAWNR_ERR_BAD_STRIDE)
        );
        assert_eq!(
            frame_buf(p, 127, 16, 8, 8).err(),
            Some(RAWNR_ERR_BUFFER_TOO_SMALL)
        );
        // The last row needs only its pixels, not a whole stride.
        let b = frame_buf(p, 2 * (7 * 10 + 8), 20, 8, 8).unwrap();
        assert_eq!((b.elems, b.stride), (78, 10));
        assert!(overlaps(0, 10, 9, 1) && !overlaps(0, 10, 10, 5) && !overlaps(0, 0, 0, 5));
    }
}
