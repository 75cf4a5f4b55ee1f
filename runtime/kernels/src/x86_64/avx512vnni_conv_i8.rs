//! Quantized dense convolution (one group, stride 1, any kernel and zero padding; PMRID's
//! `conv0` 3x3 4->16 and `out1` 3x3 16->4), AVX-512 VNNI.
//!
//! The reduction runs over `(ic, ky, kx)` in the weight layout's order, so each output
//! channel's weights are one contiguous row of `K = in_c * k_h * k_w` bytes, exactly what the
//! pointwise register tile of [`super::avx512vnni_conv1x1_i8`] reads. Per tile of up to 64
//! pixels of one output row, the `K` im2col rows (each a shifted input row; padding and
//! columns outside the input filled with the input zero point) are interleaved into the same
//! packed layout. Padding taps then contribute `w * zp`, which the start value
//! `bias - zp * sum(w)` cancels, as the reference skips them.

use core::arch::x86_64::*;

use super::avx512vnni_conv1x1_i8::{corrections, interleave4, mask64, tile_row, Packed, Res};
use super::avx512vnni_conv1x1_i8::{MAX_K, OC_CHUNK, TILE};
use super::qout_i8::{probe, Dst, Stage};
use crate::quant::{QConvParams, QOutput};
use crate::ConvShape;

/// Packs the im2col rows of output pixels `ox0..ox0 + n` (n <= 64) of output row `oy`.
#[inline(always)]
unsafe fn pack(
    s: &ConvShape,
    input: *const u8,
    zp: u8,
    oy: usize,
    ox0: usize,
    n: usize,
    buf: *mut u8,
) {
    let k = s.in_c * s.k_h * s.k_w;
    let zpv = _mm512_set1_epi8(zp as i8);
    let valid = mask64(n);
    let mut r = [zpv; 4];
    for i in 0..k.div_ceil(4) * 4 {
        let v = if i < k {
            let (ic, t) = (i / (s.k_h * s.k_w), i % (s.k_h * s.k_w));
            let (ky, kx) = (t / s.k_w, t % s.k_w);
            let iy = (oy + ky) as isize - s.pad[0] as isize;
            if iy < 0 || iy >= s.in_h as isize {
                zpv
            } else {
                // Lane j reads column ox0 + j + kx - pad_left when inside the row.
                let c0 = (ox0 + kx) as isize - s.pad[1] as isize;
                let lo = (-c0).clamp(0, 64) as usize;
                let hi = (s.in_w as isize - c0).clamp(0, 64) as usize;
                let m = valid & mask64(hi) & !mask64(lo);
                let row = input.wrapping_add((ic * s.in_h + iy as usize) * s.in_w);
                // Masked-off lanes are not accessed (fault suppression).
                _mm512_mask_loadu_epi8(zpv, m, row.wrapping_offset(c0) as *const _)
            }
        } else {
            _mm512_setzero_si512()
        };
        r[i % 4] = v;
        if i % 4 == 3 {
            interleave4(r, buf.add(i / 4 * 4 * TILE));
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], mut out: QOutput<'_>) {
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    let k = s.in_c * s.k_h * s.k_w;
    let zp = p.in_zero_point as u8;
    let pr = probe(&out);
    let dst = Dst::of(&mut out);
    let mut buf = Packed([0; MAX_K * TILE]);
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
                pack(s, input.as_ptr(), zp, oy, ox0, n, buf.0.as_mut_ptr());
                tile_row(
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
                    Res::None,
                );
                ox0 += n;
            }
        }
        oc0 += n_oc;
    }
}

/// Quantized dense convolution (`qconv`), AVX-512 VNNI kernel for one group, stride 1, any
/// kernel and padding, `in_c * k_h * k_w <= 512`, input zero point in 0..=255; anything else
/// (or a CPU without AVX-512 VNNI/BW) runs [`crate::generic_i8::qconv2d`]. Same results as the
/// reference, bit for bit.
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
        && crate::has_avx512vnni();
    if !ok {
        return crate::generic_i8::qconv2d(s, p, input, out);
    }
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    p.check_operands("qconv", s, oh * ow, input.len(), out.len());
    // SAFETY: buffer sizes checked above; input loads are masked to the columns inside their
    // row (masked-off lanes are not accessed), weight reads stay in the `out_c * k` bytes,
    // stores are masked to the tile's pixels; avx512f/bw/vnni are present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out)
    }
}
