//! Quantized pointwise (1x1, stride 1, dense) convolution, AVX-512 VNNI (`vpdpbusd`: 4 `u8 x
//! i8` products summed into each `i32` lane, exact and wrapping like the reference).
//!
//! The reduction (input channels) runs 4 bytes per `i32` lane, so the CHW input is
//! transposed tile by tile (64 pixels) into a stack buffer `[in_c / 4][64 pixels][4 channels]`
//! (missing channels of the last group are zero, and so are their weights). The weights are
//! used in place: 4 consecutive input channels of one output channel are one broadcast dword
//! of the `[out_c, in_c]` layout. The input enters as raw codes, so each output channel
//! starts from `bias - zp * sum(w)` (wrapping, which equals the reference's
//! `bias + sum w * (x - zp)` modulo 2^32). A register tile is 6 output channels by 4 vectors
//! of 16 pixels (24 accumulators).
//!
//! The packing and the register tile are shared with the dense convolution
//! ([`super::avx512vnni_conv_i8`]), which feeds them im2col rows instead of channels.
//!
//! [`conv1x1_strided`] (streamed runs) can add a residual in the output stage, the add that
//! alone reads the convolution's output ([`QResidual`]): f32 outputs `act(y + r)`, `u8` ones
//! the quantized add of the convolution's code and the residual's in exact 32-bit arithmetic
//! ([`super::avx512_eltwise`]'s `qadd16`), each as the unfused nodes compute it.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::act512;
use super::avx512_eltwise::{qadd16, QAdd16, QAdd32};
use super::qout_i8::{pack64_raw, probe, requant16, requant64_high, store16, v16};
use super::qout_i8::{requant16_high, Dst, Stage};
use crate::quant::{QAddParams, QConvParams, QOutput, QResidual};
use crate::{Act, ConvShape};

/// Pixels per tile (the packed buffer's row length).
pub(crate) const TILE: usize = 64;
/// Largest reduction length (channels, or im2col rows) held in the packed buffer.
pub(crate) const MAX_K: usize = 512;
const _: () = assert!(MAX_K == crate::QCONV1X1_STRIDED_MAX_IN_C);
/// Output channels whose stages are prepared at once.
pub(crate) const OC_CHUNK: usize = 128;
/// Output channels of a register tile.
const MR: usize = 6;

/// The packed tile: `[k / 4][TILE][4]` bytes.
#[repr(C, align(64))]
pub(crate) struct Packed(pub(crate) [u8; MAX_K * TILE]);

/// Interleaves 4 rows of 64 pixels into 4 vectors of 16 pixels x 4 bytes, stored at `dst`
/// (256 bytes, in pixel order).
#[inline(always)]
pub(crate) unsafe fn interleave4(r: [__m512i; 4], dst: *mut u8) {
    // Within each 128-bit lane l: bytes of pixels 16l.. of rows 0,1 then 2,3.
    let t0 = _mm512_unpacklo_epi8(r[0], r[1]);
    let t1 = _mm512_unpackhi_epi8(r[0], r[1]);
    let t2 = _mm512_unpacklo_epi8(r[2], r[3]);
    let t3 = _mm512_unpackhi_epi8(r[2], r[3]);
    let a = _mm512_unpacklo_epi16(t0, t2); // lane l: pixels 16l + 0..4
    let b = _mm512_unpackhi_epi16(t0, t2); // 16l + 4..8
    let c = _mm512_unpacklo_epi16(t1, t3); // 16l + 8..12
    let d = _mm512_unpackhi_epi16(t1, t3); // 16l + 12..16
                                           // 4x4 transpose of 128-bit lanes: output l = [a.l, b.l, c.l, d.l].
    let ab_lo = _mm512_shuffle_i32x4::<0b01_00_01_00>(a, b);
    let ab_hi = _mm512_shuffle_i32x4::<0b11_10_11_10>(a, b);
    let cd_lo = _mm512_shuffle_i32x4::<0b01_00_01_00>(c, d);
    let cd_hi = _mm512_shuffle_i32x4::<0b11_10_11_10>(c, d);
    let o = dst as *mut __m512i;
    _mm512_store_si512(o, _mm512_shuffle_i32x4::<0b10_00_10_00>(ab_lo, cd_lo));
    _mm512_store_si512(
        o.add(1),
        _mm512_shuffle_i32x4::<0b11_01_11_01>(ab_lo, cd_lo),
    );
    _mm512_store_si512(
        o.add(2),
        _mm512_shuffle_i32x4::<0b10_00_10_00>(ab_hi, cd_hi),
    );
    _mm512_store_si512(
        o.add(3),
        _mm512_shuffle_i32x4::<0b11_01_11_01>(ab_hi, cd_hi),
    );
}

/// Mask of the first `n` (0..=64) bytes.
#[inline(always)]
pub(crate) fn mask64(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Mask of the first `n` (0..=16) lanes.
#[inline(always)]
pub(crate) fn mask16(n: usize) -> u16 {
    if n >= 16 {
        0xFFFF
    } else {
        ((1u32 << n) - 1) as u16
    }
}

/// A residual added in the output stage ([`QResidual`] as raw pointers, at the element of the
/// register tile's first channel and pixel).
#[derive(Clone, Copy)]
pub(crate) enum Res {
    /// No residual.
    None,
    /// `f32` residual, channel planes `stride` apart, and the add's activation.
    F32(*const f32, usize, Act),
    /// `u8` residual, channel planes `stride` apart, and the add (the convolution's output
    /// first; one per call, pointed to: the tiles pass `Res` by value).
    U8(*const u8, usize, *const ResAdd),
}

/// The add of a `u8` residual and its vector constants where [`QAdd32`] covers it.
pub(crate) struct ResAdd {
    add: QAddParams,
    c: Option<QAdd16>,
}

impl Res {
    /// The residual `ch` channels and `px` pixels further.
    #[inline(always)]
    pub(crate) fn offset(self, ch: usize, px: usize) -> Res {
        match self {
            Res::None => Res::None,
            Res::F32(p, st, a) => Res::F32(p.wrapping_add(ch * st + px), st, a),
            Res::U8(p, st, a) => Res::U8(p.wrapping_add(ch * st + px), st, a),
        }
    }
}

/// Packs pixels `p0..p0 + n` (n <= 64) of all `in_c` channels of a CHW input with `pixels`
/// per plane; bytes past `n` and channels past `in_c` are zero.
#[inline(always)]
pub(crate) unsafe fn pack(
    input: *const u8,
    in_c: usize,
    pixels: usize,
    p0: usize,
    n: usize,
    buf: *mut u8,
) {
    let m = mask64(n);
    for q in 0..in_c.div_ceil(4) {
        let mut r = [_mm512_setzero_si512(); 4];
        for (i, r) in r.iter_mut().enumerate() {
            let c = 4 * q + i;
            if c < in_c {
                // Masked-off bytes are not accessed (fault suppression).
                *r = _mm512_maskz_loadu_epi8(m, input.wrapping_add(c * pixels + p0) as *const _);
            }
        }
        interleave4(r, buf.add(q * 4 * TILE));
    }
}

/// `bias - zp * sum(w)` of each output channel in `oc0..oc0 + n` (weight rows of length `k`,
/// stride `k`).
#[inline(always)]
pub(crate) unsafe fn corrections(
    p: &QConvParams<'_>,
    k: usize,
    oc0: usize,
    n: usize,
    corr: &mut [i32; OC_CHUNK],
) {
    let ones = _mm512_set1_epi8(1);
    for j in 0..n {
        let oc = oc0 + j;
        let row = p.weight.as_ptr().add(oc * k);
        let mut s = _mm512_setzero_si512();
        let mut i = 0;
        while i < k {
            let w = _mm512_maskz_loadu_epi8(mask64(k - i), row.add(i) as *const _);
            s = _mm512_dpbusd_epi32(s, ones, w);
            i += 64;
        }
        let sum = _mm512_reduce_add_epi32(s);
        corr[j] = p
            .bias_of(oc)
            .wrapping_sub(p.in_zero_point.wrapping_mul(sum));
    }
}

/// The last `k % 4` weights of a row of `k`, zero-padded to a dword.
#[inline(always)]
pub(crate) unsafe fn tail_dword(row: *const i8, k: usize) -> i32 {
    let base = k - k % 4;
    let mut d = 0u32;
    for i in 0..k % 4 {
        d |= (*row.add(base + i) as u8 as u32) << (8 * i);
    }
    d as i32
}

/// One register tile: output channels `oc0..oc0 + M` (weight rows of `k` bytes) by `N` vectors
/// of 16 packed pixels (`n` valid pixels in all), finished into `dst` at element
/// `oc * plane + at` of each channel.
#[inline(always)]
pub(crate) unsafe fn tile<const M: usize, const N: usize>(
    buf: *const u8,
    w: *const i8,
    k: usize,
    corr: &[i32],
    stages: &[Stage],
    dst: Dst,
    plane: usize,
    at: usize,
    n: usize,
    res: Res,
) {
    let mut tail = [0i32; M];
    if !k.is_multiple_of(4) {
        for j in 0..M {
            tail[j] = tail_dword(w.add(j * k), k);
        }
    }
    let mut acc = [[_mm512_setzero_si512(); N]; M];
    for j in 0..M {
        let c = _mm512_set1_epi32(corr[j]);
        for v in 0..N {
            acc[j][v] = c;
        }
    }
    let quads = k.div_ceil(4);
    let full = k / 4;
    for q in 0..quads {
        let mut x = [_mm512_setzero_si512(); N];
        for v in 0..N {
            x[v] = _mm512_load_si512(buf.add(q * 4 * TILE + v * 64) as *const _);
        }
        for j in 0..M {
            let d = if q < full {
                (w.add(j * k + 4 * q) as *const i32).read_unaligned()
            } else {
                tail[j]
            };
            let wv = _mm512_set1_epi32(d);
            for v in 0..N {
                acc[j][v] = _mm512_dpbusd_epi32(acc[j][v], x[v], wv);
            }
        }
    }
    // Explicit stores (constant indices) keep `acc` in registers during the reduction; the
    // finishing code indexes the copy.
    let mut spill = Spill([_mm512_setzero_si512(); 24]);
    for j in 0..M {
        for v in 0..N {
            _mm512_store_si512(spill.0.as_mut_ptr().add(j * N + v), acc[j][v]);
        }
    }
    finish(&spill.0[..M * N], N, stages, dst, plane, at, n, res);
}

/// Accumulators of a register tile, in memory for the finishing code.
#[repr(C, align(64))]
struct Spill([__m512i; 24]);

/// Finishes a register tile's accumulators (`acc[j * nv + v]`: channel `j`, vector `v`),
/// adding the residual `res` (at the tile's first channel and pixel) where there is one.
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn finish(
    acc: &[__m512i],
    nv: usize,
    stages: &[Stage],
    dst: Dst,
    plane: usize,
    at: usize,
    n: usize,
    res: Res,
) {
    for j in 0..acc.len() / nv {
        let s = &stages[j];
        let vs = v16(s);
        let a = &acc[j * nv..][..nv];
        let o = j * plane + at;
        match (res.offset(j, 0), dst) {
            (Res::None, Dst::U8(p)) if s.high && nv == 4 => {
                // A whole channel row of the tile: one 64-byte store.
                let b = requant64_high(&vs, [a[0], a[1], a[2], a[3]]);
                _mm512_mask_storeu_epi8(p.wrapping_add(o) as *mut _, mask64(n), b);
            }
            (Res::None, _) => {
                for (v, &a) in a.iter().enumerate() {
                    let left = n.saturating_sub(16 * v);
                    store16(s, &vs, dst, o + 16 * v, a, mask16(left));
                }
            }
            (Res::F32(r, _, add_act), Dst::F32(p, act)) => {
                for (v, &a) in a.iter().enumerate() {
                    let m = mask16(n.saturating_sub(16 * v));
                    // As the unfused nodes: the convolution's f32 output, then the add.
                    let y = act512(_mm512_mul_ps(_mm512_cvtepi32_ps(a), vs.scale), act);
                    // Masked-off lanes are not accessed (fault suppression).
                    let x = _mm512_maskz_loadu_ps(m, r.wrapping_add(16 * v));
                    let y = act512(_mm512_add_ps(y, x), add_act);
                    _mm512_mask_storeu_ps(p.wrapping_add(o + 16 * v), m, y);
                }
            }
            (Res::U8(r, _, ra), Dst::U8(p)) => match (&(*ra).c, s.fast) {
                (Some(c), true) => {
                    // The convolution's codes (clamped to lo..=255 as stored unfused), then
                    // the add with the residual's codes.
                    let code = |v: usize, a: __m512i| {
                        let y = if s.high {
                            let lo = _mm512_set1_epi32(s.st.lo);
                            _mm512_max_epi32(requant16_high(&vs, a), lo)
                        } else {
                            requant16(s, &vs, a)
                        };
                        let y = _mm512_min_epi32(y, _mm512_set1_epi32(255));
                        let m = mask16(n.saturating_sub(16 * v)) as u64;
                        // Masked-off bytes are not accessed (fault suppression).
                        let x = _mm512_maskz_loadu_epi8(m, r.wrapping_add(16 * v) as *const _);
                        qadd16(c, y, _mm512_cvtepu8_epi32(_mm512_castsi512_si128(x)))
                    };
                    if nv == 4 {
                        // A whole channel row of the tile: one 64-byte store.
                        let q = [code(0, a[0]), code(1, a[1]), code(2, a[2]), code(3, a[3])];
                        let b = pack64_raw(q);
                        _mm512_mask_storeu_epi8(p.wrapping_add(o) as *mut _, mask64(n), b);
                    } else {
                        for (v, &a) in a.iter().enumerate() {
                            let m = mask16(n.saturating_sub(16 * v));
                            let y = code(v, a);
                            let at = p.wrapping_add(o + 16 * v) as *mut _;
                            _mm512_mask_cvtusepi32_storeu_epi8(at, m, y);
                        }
                    }
                }
                _ => {
                    // Scalar: the reference's arithmetic per element.
                    let add = &(*ra).add;
                    for (v, &a) in a.iter().enumerate() {
                        let mut lanes = [0i32; 16];
                        _mm512_storeu_si512(lanes.as_mut_ptr() as *mut _, a);
                        let valid = n.saturating_sub(16 * v);
                        for (i, &x) in lanes.iter().enumerate().take(valid) {
                            let e = 16 * v + i;
                            *p.add(o + e) = add.apply(s.st.u8(x), *r.add(e));
                        }
                    }
                }
            },
            // A residual of the other type than the output: refused by `conv1x1_strided`.
            (Res::F32(..), Dst::U8(_)) | (Res::U8(..), Dst::F32(..)) => {}
        }
    }
}

/// All output channels of `oc0..oc0 + n_oc` over one packed tile of `n` pixels: register tiles
/// of up to 6 channels by `ceil(n / 16)` vectors.
#[inline(always)]
pub(crate) unsafe fn tile_row(
    buf: *const u8,
    w: *const i8,
    k: usize,
    corr: &[i32],
    stages: &[Stage],
    dst: Dst,
    plane: usize,
    at: usize,
    n: usize,
    n_oc: usize,
    res: Res,
) {
    macro_rules! go {
        ($m:literal, $j:expr) => {{
            let j = $j;
            let (wj, cj, sj) = (w.add(j * k), &corr[j..], &stages[j..]);
            let (at, rj) = (j * plane + at, res.offset(j, 0));
            match n.div_ceil(16) {
                1 => tile::<$m, 1>(buf, wj, k, cj, sj, dst, plane, at, n, rj),
                2 => tile::<$m, 2>(buf, wj, k, cj, sj, dst, plane, at, n, rj),
                3 => tile::<$m, 3>(buf, wj, k, cj, sj, dst, plane, at, n, rj),
                _ => tile::<$m, 4>(buf, wj, k, cj, sj, dst, plane, at, n, rj),
            }
        }};
    }
    let mut j = 0;
    while j + MR <= n_oc {
        go!(6, j);
        j += MR;
    }
    match n_oc - j {
        0 => {}
        1 => go!(1, j),
        2 => go!(2, j),
        3 => go!(3, j),
        4 => go!(4, j),
        _ => go!(5, j),
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    mut out: QOutput<'_>,
    in_stride: usize,
    out_stride: usize,
    res: Res,
) {
    let pixels = s.in_h * s.in_w;
    let pr = probe(&out);
    let dst = Dst::of(&mut out);
    // Not zeroed: `pack` writes every byte the tiles read.
    let mut buf = core::mem::MaybeUninit::<Packed>::uninit();
    let buf = buf.as_mut_ptr() as *mut u8;
    let mut corr = [0i32; OC_CHUNK];
    let mut stages = [Stage::new(p, &pr, 0); OC_CHUNK];
    let mut oc0 = 0;
    while oc0 < s.out_c {
        let n_oc = (s.out_c - oc0).min(OC_CHUNK);
        corrections(p, s.in_c, oc0, n_oc, &mut corr);
        for j in 0..n_oc {
            stages[j] = Stage::new(p, &pr, oc0 + j);
        }
        let mut p0 = 0;
        while p0 < pixels {
            let n = (pixels - p0).min(TILE);
            pack(input.as_ptr(), s.in_c, in_stride, p0, n, buf);
            tile_row(
                buf,
                p.weight.as_ptr().add(oc0 * s.in_c),
                s.in_c,
                &corr,
                &stages,
                dst,
                out_stride,
                oc0 * out_stride + p0,
                n,
                n_oc,
                res.offset(oc0, p0),
            );
            p0 += TILE;
        }
        oc0 += n_oc;
    }
}

/// Quantized pointwise convolution (`qconv1x1`): AVX-512 VNNI kernel for 1x1, stride 1,
/// unpadded, single-group shapes with at most 512 input channels; anything else (or a CPU
/// without AVX-512 VNNI/BW) runs [`crate::generic_i8::qconv2d`]. Same results as the reference,
/// bit for bit.
pub fn conv1x1(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    let pixels = s.in_h * s.in_w;
    if !supported(s) || s.out_c == 0 || pixels == 0 {
        return crate::generic_i8::qconv2d(s, p, input, out);
    }
    check(s, p, input, &out, pixels, pixels);
    // SAFETY: buffer sizes checked by `check` (every load and store stays inside them: masked
    // loads and stores cover exactly the valid pixels, weight reads the `in_c * out_c` bytes);
    // avx512f, avx512bw and avx512vnni are present (`supported`).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out, pixels, pixels, Res::None)
    }
}

/// A pointwise shape (1x1, stride 1, unpadded, one group) with 1 to 512 input channels, on a
/// CPU with AVX-512 VNNI/BW.
fn supported(s: &ConvShape) -> bool {
    s.is_pointwise() && (1..=MAX_K).contains(&s.in_c) && crate::has_avx512vnni()
}

/// Panics unless the buffers hold `s`'s planes at these strides (a caller bug, not bad input).
fn check(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    out: &QOutput<'_>,
    in_stride: usize,
    out_stride: usize,
) {
    let pixels = s.in_h * s.in_w;
    assert!(
        in_stride >= pixels && out_stride >= pixels,
        "qconv1x1: stride below the plane size"
    );
    assert!(
        input.len() >= (s.in_c - 1) * in_stride + pixels,
        "qconv1x1: input too short"
    );
    assert!(
        out.len() >= (s.out_c - 1) * out_stride + pixels,
        "qconv1x1: output too short"
    );
    p.check_weights("qconv1x1", s);
}

/// [`conv1x1`] on planes `in_stride` bytes (input) and `out_stride` elements (output) apart
/// (rows of larger planes, e.g. a streamed value's ring): input channel `c`, pixel `i` is
/// `input[c * in_stride + i]`, output channel `o`, pixel `i` goes to element
/// `o * out_stride + i`. Same results as [`conv1x1`] on the planes alone, then, with a
/// residual, as the add of [`QResidual`] on them. Installed as
/// [`crate::Kernels::qconv1x1_strided`] on CPUs with AVX-512 VNNI/BW; the shape must be
/// pointwise with 1 to 512 input channels, and a residual of the output's type (the caller's
/// contract: panics otherwise).
pub fn conv1x1_strided(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    out: QOutput<'_>,
    in_stride: usize,
    out_stride: usize,
    residual: Option<&QResidual<'_>>,
) {
    let pixels = s.in_h * s.in_w;
    assert!(
        supported(s),
        "qconv1x1_strided: not a supported pointwise shape or CPU"
    );
    if s.out_c == 0 || pixels == 0 {
        return;
    }
    check(s, p, input, &out, in_stride, out_stride);
    let needed = |stride: usize| {
        assert!(
            stride >= pixels,
            "qconv1x1_strided: residual stride below the plane"
        );
        (s.out_c - 1) * stride + pixels
    };
    let mut res_add = None;
    let res = match (residual, &out) {
        (None, _) => Res::None,
        (Some(QResidual::F32 { rows, stride, act }), QOutput::F32 { .. }) => {
            assert!(
                rows.len() >= needed(*stride),
                "qconv1x1_strided: residual too short"
            );
            Res::F32(rows.as_ptr(), *stride, *act)
        }
        (Some(QResidual::U8 { rows, stride, add }), QOutput::U8 { .. }) => {
            assert!(
                rows.len() >= needed(*stride),
                "qconv1x1_strided: residual too short"
            );
            // SAFETY: avx512f is present (`supported`).
            #[allow(unsafe_code)]
            let c = QAdd32::new(add).map(|c| unsafe { QAdd16::new(&c) });
            let ra: &ResAdd = res_add.insert(ResAdd { add: *add, c });
            Res::U8(rows.as_ptr(), *stride, ra)
        }
        _ => panic!("qconv1x1_strided: residual and output of different types"),
    };
    // SAFETY: as in `conv1x1`, with every plane access inside `c * stride + [0, pixels)`,
    // checked by `check` (and above, for the residual) against the buffer lengths.
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out, in_stride, out_stride, res)
    }
}
