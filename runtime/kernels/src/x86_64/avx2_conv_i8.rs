//! Quantized dense convolution (one group, stride 1, any kernel and zero padding; PMRID's
//! `conv0` 3x3 4->16 and `out1` 3x3 16->4), AVX2 (for CPUs without AVX-512 VNNI).
//!
//! The reduction runs over `(ic, ky, kx)` in the weight layout's order, so each output
//! channel's weights are one contiguous row of `K = in_c * k_h * k_w` bytes, which the
//! register tiles of [`super::avx2_conv1x1_i8`] (`vpmaddwd` on `i16` pairs) consume. Per tile of
//! up to 16 pixels of one output row, the `K` im2col rows (shifted input rows; padding and
//! columns outside the input filled with the input zero point) are widened and interleaved in
//! pairs into the same packed layout. Padding taps then contribute `w * zp`, which the start
//! value `bias - zp * sum(w)` cancels, as the reference skips them.

use core::arch::x86_64::*;

use super::avx2_conv1x1_i8::{corrections, tiles, Packed, Weights, MAX_K, OC_CHUNK, TILE};
use super::qout_i8::{probe, Dst, Stage};
use crate::quant::{QConvParams, QOutput};
use crate::ConvShape;

/// Im2col row `i` (`ic, ky, kx`) for output pixels `ox0..ox0 + 16` of output row `oy`: 16
/// bytes, the zero point outside the input.
#[inline(always)]
unsafe fn im2col_row(
    s: &ConvShape,
    input: &[u8],
    zp: u8,
    i: usize,
    oy: usize,
    ox0: usize,
) -> __m128i {
    let kk = s.k_h * s.k_w;
    let (ic, t) = (i / kk, i % kk);
    let (ky, kx) = (t / s.k_w, t % s.k_w);
    let iy = (oy + ky) as isize - s.pad[0] as isize;
    if iy < 0 || iy >= s.in_h as isize {
        return _mm_set1_epi8(zp as i8);
    }
    let row = &input[(ic * s.in_h + iy as usize) * s.in_w..][..s.in_w];
    let c = (ox0 + kx) as isize - s.pad[1] as isize;
    if c >= 0 && c + 16 <= s.in_w as isize {
        _mm_loadu_si128(row.as_ptr().add(c as usize) as *const __m128i)
    } else {
        border(row, c, zp)
    }
}

/// 16 bytes of `row` from column `c` (which reaches past an end), `zp` outside.
#[inline(never)]
fn border(row: &[u8], c: isize, zp: u8) -> __m128i {
    let mut t = [zp; 16];
    let lo = c.max(0);
    let hi = (c + 16).min(row.len() as isize);
    if lo < hi {
        t[(lo - c) as usize..(hi - c) as usize].copy_from_slice(&row[lo as usize..hi as usize]);
    }
    // SAFETY: `t` is 16 readable bytes; unaligned loads are allowed.
    #[allow(unsafe_code)]
    unsafe {
        _mm_loadu_si128(t.as_ptr() as *const __m128i)
    }
}

/// Packs the im2col rows of output pixels `ox0..` (16 of them) of output row `oy`.
#[inline(always)]
unsafe fn pack(s: &ConvShape, input: &[u8], zp: u8, oy: usize, ox0: usize, buf: *mut i16) {
    let k = s.in_c * s.k_h * s.k_w;
    for q in 0..k.div_ceil(2) {
        let a = im2col_row(s, input, zp, 2 * q, oy, ox0);
        let b = if 2 * q + 1 < k {
            im2col_row(s, input, zp, 2 * q + 1, oy, ox0)
        } else {
            _mm_setzero_si128()
        };
        let out = buf.add(q * TILE * 2) as *mut __m256i;
        _mm256_store_si256(out, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b)));
        _mm256_store_si256(out.add(1), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b)));
    }
}

#[target_feature(enable = "avx2")]
unsafe fn run(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], mut out: QOutput<'_>) {
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    let k = s.in_c * s.k_h * s.k_w;
    let zp = p.in_zero_point as u8;
    let pr = probe(&out);
    let dst = Dst::of(&mut out);
    let mut buf = Packed([0; MAX_K * TILE]);
    let mut wbuf = Weights([0; 4 * MAX_K]);
    let mut corr = [0i32; OC_CHUNK];
    let mut stages = [Stage::new(p, &pr, 0); OC_CHUNK];
    let mut oc0 = 0;
    while oc0 < s.out_c {
        let n_oc = (s.out_c - oc0).min(OC_CHUNK);
        corrections(p, k, oc0, n_oc, &mut corr);
        for (j, st) in stages.iter_mut().enumerate().take(n_oc) {
            *st = Stage::new(p, &pr, oc0 + j);
        }
        for oy in 0..oh {
            let mut ox0 = 0;
            while ox0 < ow {
                let n = (ow - ox0).min(TILE);
                pack(s, input, zp, oy, ox0, buf.0.as_mut_ptr());
                tiles(
                    buf.0.as_ptr(),
                    p.weight.as_ptr().add(oc0 * k),
                    k,
                    &corr,
                    &stages,
                    dst,
                    oh * ow,
                    oc0 * oh * ow + oy * ow + ox0,
                    n,
                    n_oc,
                    &mut wbuf,
                );
                ox0 += n;
            }
        }
        oc0 += n_oc;
    }
}

/// Quantized dense convolution (`qconv`), AVX2 kernel for one group, stride 1, any kernel and
/// padding, `in_c * k_h * k_w <= 512`, input zero point in 0..=255; anything else (or a CPU
/// without AVX2) runs [`crate::generic_i8::qconv2d`]. Same results as the reference, bit for
/// bit.
pub fn conv(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    let k = s.in_c * s.k_h * s.k_w;
    let ok = s.groups == 1
        && s.stride_h == 1
        && s.stride_w == 1
        && (1..=MAX_K).contains(&k)
        && s.out_c > 0
        && s.in_h > 0
        && s.in_w > 0
        && (0..=255).contains(&p.in_zero_point)
        && s.conv_out().is_some()
        && crate::has_avx2();
    if !ok {
        return crate::generic_i8::qconv2d(s, p, input, out);
    }
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    p.check_operands("qconv", s, oh * ow, input.len(), out.len());
    // SAFETY: buffer sizes checked above; im2col loads read 16 bytes only where the whole span
    // lies inside the row (else a bounds-checked copy), weight reads stay in the `out_c * k`
    // bytes, stores cover exactly the tile's pixels; avx2 is present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out)
    }
}
