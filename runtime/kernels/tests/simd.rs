//! The dispatched kernels against the scalar reference over random shapes (odd pixel counts,
//! channel counts that are not multiples of the vector width, tiny planes) and named edge
//! cases; plus the property that keeps tiling exact: an output element's value does not
//! depend on where it sits in the plane.

use rand::{Rng, SeedableRng};
use rawnr_kernels::{generic, Act, Conv1x1, ConvShape, Isa, Kernels, PlaneLayout};

fn rand_vec(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + y.abs()) * 8.0,
            "{what}: element {i}: {x} vs reference {y}"
        );
    }
}

const ACTS: [Act; 3] = [Act::None, Act::Relu, Act::LeakyRelu(0.125)];

#[test]
fn selected_kernels_are_reported() {
    let k = Kernels::best();
    println!(
        "kernels: {} (CPU level {}, active level {})",
        k.name,
        Isa::detected(),
        Isa::active()
    );
    #[cfg(target_arch = "x86_64")]
    if Isa::allows(Isa::Avx2) {
        assert_ne!(
            k.name, "generic",
            "AVX2+FMA CPU but generic kernels selected"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        println!(
            "aarch64 features: neon={} fp16={} dotprod={} i8mm={} sve={}",
            std::arch::is_aarch64_feature_detected!("neon"),
            std::arch::is_aarch64_feature_detected!("fp16"),
            std::arch::is_aarch64_feature_detected!("dotprod"),
            std::arch::is_aarch64_feature_detected!("i8mm"),
            std::arch::is_aarch64_feature_detected!("sve"),
        );
        assert!(std::arch::is_aarch64_feature_detected!("neon"));
        assert!(
            k.name.contains("neon") || !Isa::allows(Isa::Neon),
            "NEON CPU but NEON kernels not selected"
        );
    }
}

/// A level forced through `RAWNR_ISA` (as CI does to run the AVX2 set on AVX-512 machines) is
/// the one in effect: a typo or a level the CPU lacks fails here instead of silently testing
/// another set.
#[test]
fn forced_level_is_in_effect() {
    let Some(want) = std::env::var("RAWNR_ISA").ok().filter(|v| !v.is_empty()) else {
        assert_eq!(Isa::active(), Isa::detected());
        return;
    };
    let want = Isa::check_name(&want).unwrap_or_else(|e| panic!("RAWNR_ISA={want}: {e}"));
    assert_eq!(Isa::forced(), want);
    assert_eq!(Isa::active(), want.unwrap_or(Isa::detected()));
    for &l in Isa::levels() {
        let allowed = Isa::levels().iter().position(|&x| x == l)
            <= Isa::levels().iter().position(|&x| x == Isa::active());
        assert_eq!(Isa::allows(l), allowed, "{l}");
    }
    if Isa::active() == Isa::Generic {
        assert_eq!(Kernels::best().name, "generic");
    }
}

#[test]
fn level_names_parse() {
    for &l in Isa::levels() {
        assert_eq!(Isa::parse(l.name()), Some(l));
        if let Ok(x) = Isa::check_name(l.name()) {
            assert_eq!(x, Some(l));
        }
    }
    assert_eq!(Isa::parse("AVX512-VNNI"), Some(Isa::Avx512Vnni));
    assert_eq!(Isa::parse("neon+dotprod"), Some(Isa::NeonDotprod));
    assert_eq!(Isa::parse("sse2"), None);
    assert_eq!(Isa::check_name("native"), Ok(None));
    assert_eq!(
        Isa::check_name("bogus"),
        Err(rawnr_kernels::IsaError::Unknown)
    );
    assert_eq!(Isa::check_name("generic"), Ok(Some(Isa::Generic)));
    #[cfg(target_arch = "x86_64")]
    assert!(matches!(
        Isa::check_name("neon"),
        Err(rawnr_kernels::IsaError::OtherArchitecture(Isa::Neon))
    ));
}

#[test]
fn conv1x1_matches_reference_on_random_shapes() {
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(31);
    let mut cases: Vec<(usize, usize, usize)> = vec![
        (1, 1, 1),
        (1, 1, 17),
        (3, 5, 15),
        (16, 64, 33),
        (64, 16, 31),
        (7, 9, 1),
        (512, 128, 40),
    ];
    for _ in 0..200 {
        cases.push((
            rng.random_range(1..40),
            rng.random_range(1..40),
            rng.random_range(1..200),
        ));
    }
    for (i, &(in_c, out_c, pixels)) in cases.iter().enumerate() {
        let s = Conv1x1 {
            in_c,
            out_c,
            pixels,
        };
        let x = rand_vec(&mut rng, in_c * pixels);
        let w = rand_vec(&mut rng, in_c * out_c);
        let b = if i % 3 == 0 {
            vec![]
        } else {
            rand_vec(&mut rng, out_c)
        };
        let act = ACTS[i % 3];
        let mut want = vec![0f32; out_c * pixels];
        generic::conv1x1(&s, &x, &w, &b, act, &mut want);
        // The generic 1x1 is itself checked against the general convolution.
        let mut via_conv = vec![0f32; out_c * pixels];
        let cs = ConvShape::pointwise(in_c, out_c, 1, pixels);
        generic::conv2d(&cs, &x, &w, &b, act, &mut via_conv);
        assert_eq!(want, via_conv);
        let mut got = vec![f32::NAN; out_c * pixels];
        (k.conv1x1)(&s, &x, &w, &b, act, &mut got);
        close(
            &got,
            &want,
            &format!("{} conv1x1 {in_c}->{out_c} x {pixels}", k.name),
        );
    }
}

#[test]
fn conv1x1_value_does_not_depend_on_position() {
    // The same pixel computed as part of planes of different lengths and offsets must be
    // bit-identical: vector lanes, masked tails and scalar tails do the same arithmetic.
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(32);
    let (in_c, out_c) = (13, 11);
    let w = rand_vec(&mut rng, in_c * out_c);
    let b = rand_vec(&mut rng, out_c);
    let n = 77;
    let x = rand_vec(&mut rng, in_c * n);
    let mut full = vec![0f32; out_c * n];
    (k.conv1x1)(
        &Conv1x1 {
            in_c,
            out_c,
            pixels: n,
        },
        &x,
        &w,
        &b,
        Act::None,
        &mut full,
    );
    for (start, len) in [(0, 1), (5, 3), (16, 17), (31, 40), (40, 37), (76, 1)] {
        let sub: Vec<f32> = (0..in_c)
            .flat_map(|c| x[c * n + start..c * n + start + len].to_vec())
            .collect();
        let mut out = vec![0f32; out_c * len];
        (k.conv1x1)(
            &Conv1x1 {
                in_c,
                out_c,
                pixels: len,
            },
            &sub,
            &w,
            &b,
            Act::None,
            &mut out,
        );
        for oc in 0..out_c {
            assert_eq!(
                &out[oc * len..(oc + 1) * len],
                &full[oc * n + start..oc * n + start + len],
                "pixels {start}..+{len}"
            );
        }
    }
}

#[test]
fn depthwise_matches_reference_on_random_shapes() {
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(33);
    let mut cases = vec![
        (1, 1, 1, 1, 0, 1),
        (3, 5, 5, 5, 2, 1),
        (16, 7, 9, 3, 1, 1),
        (2, 64, 40, 5, 2, 1),
        (5, 2, 30, 3, 1, 1),
        (4, 12, 12, 5, 0, 1),
    ];
    cases.extend([
        (2, 9, 97, 5, 2, 2),
        (3, 8, 80, 3, 1, 2),
        (1, 1, 2, 1, 0, 2),
        (4, 33, 150, 5, 2, 2),
    ]);
    for _ in 0..200 {
        let k = [1, 3, 5, 7][rng.random_range(0..4)];
        cases.push((
            rng.random_range(1..9),
            rng.random_range(1..30),
            rng.random_range(1..150),
            k,
            rng.random_range(0..=k / 2 + 1),
            rng.random_range(1..3),
        ));
    }
    for (i, &(c, h, w, kk, p, st)) in cases.iter().enumerate() {
        let s = ConvShape {
            in_c: c,
            in_h: h,
            in_w: w,
            out_c: c,
            k_h: kk,
            k_w: kk,
            stride_h: st,
            stride_w: st,
            pad: [p, p, p, p],
            groups: c,
        };
        let Some((oh, ow)) = s.conv_out() else {
            continue;
        };
        let x = rand_vec(&mut rng, c * h * w);
        let wt = rand_vec(&mut rng, c * kk * kk);
        let b = if i % 2 == 0 {
            vec![]
        } else {
            rand_vec(&mut rng, c)
        };
        let act = ACTS[i % 3];
        let mut want = vec![0f32; c * oh * ow];
        generic::conv2d(&s, &x, &wt, &b, act, &mut want);
        let mut got = vec![f32::NAN; c * oh * ow];
        (k.depthwise)(&s, &x, &wt, &b, act, &mut got);
        close(
            &got,
            &want,
            &format!("{} depthwise c{c} {h}x{w} k{kk} p{p} s{st}", k.name),
        );
    }
}

/// `c` planes of `h` rows of `w` (CHW in `x`) laid out as `l` says: channel planes
/// `l.in_stride` apart, row `y` at plane row `(l.in_first_row + y) mod l.in_rows`; NaN elsewhere.
fn ring_planes(x: &[f32], c: usize, h: usize, w: usize, l: &PlaneLayout) -> Vec<f32> {
    let mut planes = vec![f32::NAN; (c - 1) * l.in_stride + l.in_rows * w];
    for ch in 0..c {
        for y in 0..h {
            let at = ch * l.in_stride + (l.in_first_row + y) % l.in_rows * w;
            planes[at..at + w].copy_from_slice(&x[(ch * h + y) * w..][..w]);
        }
    }
    planes
}

/// Asserts that `got` holds `want`'s planes (`plane` elements each) `stride` apart, bit for
/// bit, and `sentinel` everywhere else.
fn same_planes_at(
    got: &[f32],
    want: &[f32],
    plane: usize,
    stride: usize,
    sentinel: f32,
    what: &str,
) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let n = want.len() / plane.max(1);
    for ch in 0..n {
        let at = ch * stride;
        assert_eq!(
            bits(&got[at..at + plane]),
            bits(&want[ch * plane..][..plane]),
            "{what} channel {ch}"
        );
        let end = if ch + 1 < n { at + stride } else { got.len() };
        assert!(
            got[at + plane..end].iter().all(|&v| v == sentinel),
            "{what}: wrote outside the rows"
        );
    }
}

/// The depthwise kernel on rows of ring planes ([`Kernels::depthwise_strided`]: channel planes
/// apart, input rows wrapping at the ring's end, output rows inside larger planes), as a
/// streamed run calls it: equal bit for bit to the dense kernel on each channel's rows alone,
/// and nothing outside the output rows written.
#[test]
fn depthwise_on_ring_rows_equals_dense_planes() {
    let k = Kernels::best();
    let Some(strided) = k.depthwise_strided else {
        eprintln!("no strided depthwise kernel on this CPU ({})", k.name);
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(34);
    for i in 0..300 {
        // 17: wider than the AVX-512 kernel's columns (it hands over to the AVX2 one).
        let kk = [3, 5, 7, 1, 2, 17][rng.random_range(0..6)];
        let st = rng.random_range(1..3);
        let p = rng.random_range(0..=kk / 2);
        let c = rng.random_range(1..40);
        let h = rng.random_range(1..12);
        let w = [1, 15, 16, 17, 33, 64, 100, 224, 450][rng.random_range(0..9)];
        // Rows only at the top or bottom of the region have padding there.
        let (pt, pb) = [(p, p), (0, p), (p, 0), (0, 0)][rng.random_range(0..4)];
        let s = ConvShape {
            in_c: c,
            in_h: h,
            in_w: w,
            out_c: c,
            k_h: kk,
            k_w: kk,
            stride_h: st,
            stride_w: st,
            pad: [pt, p, pb, p],
            groups: c,
        };
        let Some((oh, ow)) = s.conv_out() else {
            continue;
        };
        let ring = h + rng.random_range(0..5);
        let first = rng.random_range(0..ring);
        let l = PlaneLayout {
            in_stride: ring * w + rng.random_range(0..3) * w,
            in_rows: ring,
            in_first_row: first,
            out_stride: oh * ow + rng.random_range(0..3) * ow,
        };
        let x = rand_vec(&mut rng, c * h * w);
        let planes = ring_planes(&x, c, h, w, &l);
        let wt = rand_vec(&mut rng, c * kk * kk);
        let b = if i % 2 == 0 {
            vec![]
        } else {
            rand_vec(&mut rng, c)
        };
        let act = ACTS[i % 3];
        let mut want = vec![0f32; c * oh * ow];
        (k.depthwise)(&s, &x, &wt, &b, act, &mut want);
        let sentinel = -7.25f32;
        let mut got = vec![sentinel; (c - 1) * l.out_stride + oh * ow + 5];
        strided(&s, &planes, &wt, &b, act, &mut got, &l);
        let what = format!(
            "ring depthwise c{c} {h}x{w} k{kk} p{pt},{p},{pb} s{st} ring {ring} first {first}"
        );
        same_planes_at(&got, &want, oh * ow, l.out_stride, sentinel, &what);
        // And the dense kernel itself is the reference's.
        let mut reference = vec![0f32; c * oh * ow];
        generic::conv2d(&s, &x, &wt, &b, act, &mut reference);
        close(&want, &reference, &what);
    }
}

/// The dense convolution on rows of ring planes ([`Kernels::conv_strided`]), as streamed calls
/// use it: bit for bit the dense kernel on the rows alone, nothing written between output
/// planes, and `false` (nothing written) for shapes it does not take.
#[test]
fn dense_conv_on_ring_rows_equals_dense_planes() {
    let k = Kernels::best();
    let Some(strided) = k.conv_strided else {
        eprintln!("no strided dense kernel on this CPU ({})", k.name);
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(35);
    let mut refused = 0;
    for i in 0..300 {
        let kk = [3, 1, 5, 2][rng.random_range(0..4)];
        let p = rng.random_range(0..=kk / 2);
        let (pt, pb) = [(p, p), (0, p), (p, 0), (0, 0)][rng.random_range(0..4)];
        let (ic, oc) = (rng.random_range(1..18), rng.random_range(1..20));
        let h = rng.random_range(1..10);
        let w = [1, 15, 16, 17, 33, 64, 100, 450][rng.random_range(0..8)];
        let st = if i % 10 == 9 { 2 } else { 1 };
        let s = ConvShape {
            in_c: ic,
            in_h: h,
            in_w: w,
            out_c: oc,
            k_h: kk,
            k_w: kk,
            stride_h: st,
            stride_w: st,
            pad: [pt, p, pb, p],
            groups: 1,
        };
        let Some((oh, ow)) = s.conv_out() else {
            continue;
        };
        let ring = h + rng.random_range(0..5);
        let first = rng.random_range(0..ring);
        let l = PlaneLayout {
            in_stride: ring * w + rng.random_range(0..3) * w,
            in_rows: ring,
            in_first_row: first,
            out_stride: oh * ow + rng.random_range(0..3) * ow,
        };
        let x = rand_vec(&mut rng, ic * h * w);
        let planes = ring_planes(&x, ic, h, w, &l);
        let wt = rand_vec(&mut rng, oc * ic * kk * kk);
        let b = if i % 2 == 0 {
            vec![]
        } else {
            rand_vec(&mut rng, oc)
        };
        let act = ACTS[i % 3];
        let sentinel = -3.5f32;
        let mut got = vec![sentinel; (oc - 1) * l.out_stride + oh * ow + 3];
        if !strided(&s, &planes, &wt, &b, act, &mut got, &l) {
            refused += 1;
            assert!(got.iter().all(|&v| v == sentinel), "a refused shape wrote");
            assert!(st != 1, "stride-1 dense shape refused: {s:?}");
            continue;
        }
        let mut want = vec![0f32; oc * oh * ow];
        (k.conv)(&s, &x, &wt, &b, act, &mut want);
        let what =
            format!("ring conv {ic}->{oc} {h}x{w} k{kk} p{pt},{p},{pb} ring {ring} first {first}");
        same_planes_at(&got, &want, oh * ow, l.out_stride, sentinel, &what);
    }
    assert!(refused > 0, "stride-2 shapes must be refused");
}

#[test]
fn depthwise_value_does_not_depend_on_position() {
    // A crop of the input (with enough margin) gives bit-identical interior outputs.
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(34);
    let (c, h, w, kk) = (3, 20, 53, 5);
    let p = kk / 2;
    let x = rand_vec(&mut rng, c * h * w);
    let wt = rand_vec(&mut rng, c * kk * kk);
    let s = ConvShape {
        in_c: c,
        in_h: h,
        in_w: w,
        out_c: c,
        k_h: kk,
        k_w: kk,
        stride_h: 1,
        stride_w: 1,
        pad: [p; 4],
        groups: c,
    };
    let mut full = vec![0f32; c * h * w];
    (k.depthwise)(&s, &x, &wt, &[], Act::None, &mut full);
    for (x0, cw) in [(3, 11), (7, 40), (10, 43), (0, 9)] {
        let crop: Vec<f32> = (0..c * h)
            .flat_map(|r| x[r * w + x0..r * w + x0 + cw].to_vec())
            .collect();
        let sc = ConvShape { in_w: cw, ..s };
        let mut out = vec![0f32; c * h * cw];
        (k.depthwise)(&sc, &crop, &wt, &[], Act::None, &mut out);
        // Columns at least `p` away from the crop's own borders see the same inputs.
        let inner_lo = if x0 == 0 { 0 } else { p };
        for r in 0..c * h {
            for col in inner_lo..cw - p {
                assert_eq!(
                    out[r * cw + col],
                    full[r * w + x0 + col],
                    "crop {x0}+{cw} row {r} col {col}"
                );
            }
        }
    }
}

#[test]
fn conv_transpose_matches_reference_on_random_shapes() {
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(35);
    let mut cases = vec![
        (1, 1, 1, 1),
        (64, 64, 3, 33),
        (32, 16, 5, 64),
        (3, 5, 2, 31),
        (7, 3, 4, 97),
    ];
    for _ in 0..100 {
        cases.push((
            rng.random_range(1..20),
            rng.random_range(1..20),
            rng.random_range(1..10),
            rng.random_range(1..80),
        ));
    }
    for (n, &(ci, co, h, w)) in cases.iter().enumerate() {
        let s = ConvShape {
            in_c: ci,
            in_h: h,
            in_w: w,
            out_c: co,
            k_h: 2,
            k_w: 2,
            stride_h: 2,
            stride_w: 2,
            pad: [0; 4],
            groups: 1,
        };
        let x = rand_vec(&mut rng, ci * h * w);
        let wt = rand_vec(&mut rng, ci * co * 4);
        let b = if n % 2 == 0 {
            vec![]
        } else {
            rand_vec(&mut rng, co)
        };
        let act = ACTS[n % 3];
        let mut want = vec![0f32; co * 4 * h * w];
        generic::conv_transpose2d(&s, &x, &wt, &b, act, &mut want);
        let mut got = vec![f32::NAN; co * 4 * h * w];
        (k.conv_transpose)(&s, &x, &wt, &b, act, &mut got);
        close(
            &got,
            &want,
            &format!("{} conv_transpose {ci}->{co} {h}x{w}", k.name),
        );
        // Position independence: a column crop of the input gives the same output columns.
        if w > 40 {
            let (x0, cw) = (5, w - 9);
            let crop: Vec<f32> = (0..ci * h)
                .flat_map(|r| x[r * w + x0..r * w + x0 + cw].to_vec())
                .collect();
            let sc = ConvShape { in_w: cw, ..s };
            let mut out = vec![0f32; co * 4 * h * cw];
            (k.conv_transpose)(&sc, &crop, &wt, &b, act, &mut out);
            for r in 0..co * 2 * h {
                assert_eq!(
                    &out[r * 2 * cw..(r + 1) * 2 * cw],
                    &got[r * 2 * w + 2 * x0..r * 2 * w + 2 * (x0 + cw)]
                );
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_and_avx2_pointwise_agree_bit_for_bit() {
    // Both compute bias + one FMA per input channel in order, so they must agree exactly
    // (tiling stays exact whichever a machine selects). Calling either is sound anywhere: each
    // falls back to the reference without its features.
    use rawnr_kernels::x86_64::{avx2_conv1x1_f32, avx512_conv1x1_f32};
    let both = Isa::allows(Isa::Avx512);
    let mut rng = rand::rngs::StdRng::seed_from_u64(38);
    for n in 0..100 {
        let (ci, co, px) = (
            rng.random_range(1..40),
            rng.random_range(1..30),
            rng.random_range(1..120),
        );
        let s = Conv1x1 {
            in_c: ci,
            out_c: co,
            pixels: px,
        };
        let x = rand_vec(&mut rng, ci * px);
        let w = rand_vec(&mut rng, ci * co);
        let b = rand_vec(&mut rng, co);
        let (mut a, mut c) = (vec![0f32; co * px], vec![1f32; co * px]);
        avx2_conv1x1_f32::conv1x1(&s, &x, &w, &b, ACTS[n % 3], &mut a);
        avx512_conv1x1_f32::conv1x1(&s, &x, &w, &b, ACTS[n % 3], &mut c);
        if both {
            assert_eq!(a, c, "{ci}->{co} x {px}");
        }
    }
}

/// A "dense" case: (in_c, out_c, h, w, k_h, k_w, pad).
type DenseCase = (usize, usize, usize, usize, usize, usize, [usize; 4]);

/// Named and random dense cases.
fn dense_cases(rng: &mut impl Rng) -> Vec<DenseCase> {
    let mut cases = vec![
        (4, 16, 40, 40, 3, 3, [1; 4]),
        (16, 4, 33, 37, 3, 3, [1; 4]),
        (1, 1, 1, 1, 3, 3, [1; 4]),
        (3, 5, 2, 2, 5, 5, [2; 4]),
        (2, 9, 7, 100, 1, 1, [0; 4]),
        (5, 13, 9, 17, 3, 5, [1, 2, 1, 2]),
        (7, 3, 6, 23, 7, 7, [3; 4]),
        (4, 17, 5, 49, 3, 3, [0, 2, 1, 0]),
    ];
    for _ in 0..150 {
        let (k_h, k_w) = (
            [1, 2, 3, 5, 7][rng.random_range(0..5)],
            [1, 2, 3, 5, 7][rng.random_range(0..5)],
        );
        cases.push((
            rng.random_range(1..12),
            rng.random_range(1..20),
            rng.random_range(1..14),
            rng.random_range(1..70),
            k_h,
            k_w,
            [
                rng.random_range(0..k_h),
                rng.random_range(0..k_w),
                rng.random_range(0..k_h),
                rng.random_range(0..k_w),
            ],
        ));
    }
    cases
}

#[test]
fn dense_conv_matches_reference_on_random_shapes() {
    // Stride 1, one group, any kernel and padding (incl. planes smaller than the kernel); the
    // AVX2 and AVX-512 kernels must also agree bit for bit (same arithmetic).
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(40);
    for (i, (in_c, out_c, h, w, k_h, k_w, pad)) in dense_cases(&mut rng).into_iter().enumerate() {
        let s = ConvShape {
            in_c,
            in_h: h,
            in_w: w,
            out_c,
            k_h,
            k_w,
            stride_h: 1,
            stride_w: 1,
            pad,
            groups: 1,
        };
        let Some((oh, ow)) = s.conv_out() else {
            continue;
        };
        let x = rand_vec(&mut rng, in_c * h * w);
        let wt = rand_vec(&mut rng, out_c * in_c * k_h * k_w);
        let b = if i % 2 == 0 {
            vec![]
        } else {
            rand_vec(&mut rng, out_c)
        };
        let act = ACTS[i % 3];
        let mut want = vec![0f32; out_c * oh * ow];
        generic::conv2d(&s, &x, &wt, &b, act, &mut want);
        let mut got = vec![f32::NAN; out_c * oh * ow];
        (k.conv)(&s, &x, &wt, &b, act, &mut got);
        let what = format!(
            "{} conv {in_c}->{out_c} {h}x{w} k{k_h}x{k_w} pad {pad:?}",
            k.name
        );
        close(&got, &want, &what);
        #[cfg(target_arch = "x86_64")]
        {
            use rawnr_kernels::x86_64::{avx2_conv_f32, avx512_conv_f32};
            let mut a = vec![f32::NAN; out_c * oh * ow];
            let mut c = vec![f32::NAN; out_c * oh * ow];
            avx2_conv_f32::conv(&s, &x, &wt, &b, act, &mut a);
            avx512_conv_f32::conv(&s, &x, &wt, &b, act, &mut c);
            close(&a, &want, &what);
            if Isa::allows(Isa::Avx512) {
                assert_eq!(a, c, "{what}: AVX2 and AVX-512 differ");
            }
        }
    }
}

#[test]
fn dense_conv_falls_back_for_other_shapes() {
    // Strided and grouped convolutions go to the reference, bit for bit.
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(41);
    for (stride, groups) in [(2, 1), (1, 2), (3, 2)] {
        let s = ConvShape {
            in_c: 4,
            in_h: 11,
            in_w: 19,
            out_c: 6,
            k_h: 3,
            k_w: 3,
            stride_h: stride,
            stride_w: stride,
            pad: [1; 4],
            groups,
        };
        let (oh, ow) = s.conv_out().unwrap();
        let x = rand_vec(&mut rng, 4 * 11 * 19);
        let wt = rand_vec(&mut rng, 6 * 4 / groups * 9);
        let b = rand_vec(&mut rng, 6);
        let mut want = vec![0f32; 6 * oh * ow];
        generic::conv2d(&s, &x, &wt, &b, Act::Relu, &mut want);
        let mut got = vec![f32::NAN; 6 * oh * ow];
        (k.conv)(&s, &x, &wt, &b, Act::Relu, &mut got);
        assert_eq!(got, want, "stride {stride} groups {groups}");
    }
}

#[test]
fn dense_conv_value_does_not_depend_on_position() {
    // Column and row crops of the input (with enough margin) give bit-identical interior
    // outputs, for both kernel widths of PMRID's first and last layers.
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for (in_c, out_c) in [(4, 16), (16, 4), (3, 7)] {
        let (h, w, kk) = (21, 75, 3);
        let p = kk / 2;
        let x = rand_vec(&mut rng, in_c * h * w);
        let wt = rand_vec(&mut rng, out_c * in_c * kk * kk);
        let b = rand_vec(&mut rng, out_c);
        let s = ConvShape {
            in_c,
            in_h: h,
            in_w: w,
            out_c,
            k_h: kk,
            k_w: kk,
            stride_h: 1,
            stride_w: 1,
            pad: [p; 4],
            groups: 1,
        };
        let mut full = vec![0f32; out_c * h * w];
        (k.conv)(&s, &x, &wt, &b, Act::Relu, &mut full);
        for (y0, ch, x0, cw) in [
            (0, 21, 3, 11),
            (2, 9, 7, 40),
            (5, 16, 10, 65),
            (0, 5, 0, 17),
            (4, 17, 33, 42),
        ] {
            let mut crop = Vec::new();
            for c in 0..in_c {
                for r in y0..y0 + ch {
                    crop.extend_from_slice(&x[(c * h + r) * w + x0..(c * h + r) * w + x0 + cw]);
                }
            }
            let sc = ConvShape {
                in_h: ch,
                in_w: cw,
                ..s
            };
            let mut out = vec![0f32; out_c * ch * cw];
            (k.conv)(&sc, &crop, &wt, &b, Act::Relu, &mut out);
            // Pixels at least `p` away from the crop's own borders (or on the frame's border)
            // see the same inputs.
            let (ylo, xlo) = (if y0 == 0 { 0 } else { p }, if x0 == 0 { 0 } else { p });
            let yhi = if y0 + ch == h { ch } else { ch - p };
            let xhi = if x0 + cw == w { cw } else { cw - p };
            for oc in 0..out_c {
                for r in ylo..yhi {
                    for col in xlo..xhi {
                        assert_eq!(
                            out[(oc * ch + r) * cw + col].to_bits(),
                            full[(oc * h + y0 + r) * w + x0 + col].to_bits(),
                            "{in_c}->{out_c} crop ({y0}+{ch}, {x0}+{cw}) at ({r}, {col})"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_and_avx2_depthwise_and_transposed_agree_bit_for_bit() {
    // Same arithmetic (bias, one FMA per tap in order, zero columns outside the row, rows
    // outside skipped): the results are identical, so tiling stays exact whichever a machine
    // selects. Widths up to 2100 reach the AVX2 kernel's unpadded path.
    use rawnr_kernels::x86_64::{
        avx2_convt2x2_f32, avx2_dw_f32, avx512_convt2x2_f32, avx512_dw_f32,
    };
    let both = Isa::allows(Isa::Avx512);
    let mut rng = rand::rngs::StdRng::seed_from_u64(43);
    for n in 0..150 {
        let kk = [1, 3, 5, 7][rng.random_range(0..4)];
        let st = rng.random_range(1..3);
        let p = rng.random_range(0..=kk / 2 + 1);
        let c = rng.random_range(1..6);
        let h = rng.random_range(1..25);
        let w = if n % 25 == 0 {
            rng.random_range(2040..2100)
        } else {
            rng.random_range(1..120)
        };
        let s = ConvShape {
            in_c: c,
            in_h: h,
            in_w: w,
            out_c: c,
            k_h: kk,
            k_w: kk,
            stride_h: st,
            stride_w: st,
            pad: [p; 4],
            groups: c,
        };
        let Some((oh, ow)) = s.conv_out() else {
            continue;
        };
        let x = rand_vec(&mut rng, c * h * w);
        let wt = rand_vec(&mut rng, c * kk * kk);
        let b = if n % 2 == 0 {
            vec![]
        } else {
            rand_vec(&mut rng, c)
        };
        let act = ACTS[n % 3];
        let (mut a, mut d) = (vec![0f32; c * oh * ow], vec![1f32; c * oh * ow]);
        avx2_dw_f32::depthwise(&s, &x, &wt, &b, act, &mut a);
        avx512_dw_f32::depthwise(&s, &x, &wt, &b, act, &mut d);
        let mut want = vec![0f32; c * oh * ow];
        generic::conv2d(&s, &x, &wt, &b, act, &mut want);
        close(
            &d,
            &want,
            &format!("avx512 depthwise c{c} {h}x{w} k{kk} p{p} s{st}"),
        );
        if both {
            assert_eq!(a, d, "depthwise c{c} {h}x{w} k{kk} p{p} s{st}");
        }

        let (ci, co) = (rng.random_range(1..20), rng.random_range(1..20));
        let (h, w) = (rng.random_range(1..6), rng.random_range(1..90));
        let s = ConvShape {
            in_c: ci,
            in_h: h,
            in_w: w,
            out_c: co,
            k_h: 2,
            k_w: 2,
            stride_h: 2,
            stride_w: 2,
            pad: [0; 4],
            groups: 1,
        };
        let x = rand_vec(&mut rng, ci * h * w);
        let wt = rand_vec(&mut rng, ci * co * 4);
        let b = if n % 2 == 1 {
            vec![]
        } else {
            rand_vec(&mut rng, co)
        };
        let (mut a, mut d) = (vec![0f32; co * 4 * h * w], vec![1f32; co * 4 * h * w]);
        avx2_convt2x2_f32::conv_transpose2x2(&s, &x, &wt, &b, act, &mut a);
        avx512_convt2x2_f32::conv_transpose2x2(&s, &x, &wt, &b, act, &mut d);
        let mut want = vec![0f32; co * 4 * h * w];
        generic::conv_transpose2d(&s, &x, &wt, &b, act, &mut want);
        close(
            &d,
            &want,
            &format!("avx512 conv_transpose {ci}->{co} {h}x{w}"),
        );
        if both {
            assert_eq!(a, d, "conv_transpose {ci}->{co} {h}x{w}");
        }
    }
}

#[test]
fn depthwise_stride2_value_does_not_depend_on_position() {
    // Even-aligned crops of the input give bit-identical interior outputs with stride 2.
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(44);
    for kk in [3, 5] {
        let (c, h, w) = (3, 22, 90);
        let p = kk / 2;
        let x = rand_vec(&mut rng, c * h * w);
        let wt = rand_vec(&mut rng, c * kk * kk);
        let s = ConvShape {
            in_c: c,
            in_h: h,
            in_w: w,
            out_c: c,
            k_h: kk,
            k_w: kk,
            stride_h: 2,
            stride_w: 2,
            pad: [p; 4],
            groups: c,
        };
        let (oh, ow) = s.conv_out().unwrap();
        let mut full = vec![0f32; c * oh * ow];
        (k.depthwise)(&s, &x, &wt, &[], Act::None, &mut full);
        for (x0, cw) in [(0, 34), (4, 40), (10, 80), (36, 54)] {
            let crop: Vec<f32> = (0..c * h)
                .flat_map(|r| x[r * w + x0..r * w + x0 + cw].to_vec())
                .collect();
            let sc = ConvShape { in_w: cw, ..s };
            let (_, cow) = sc.conv_out().unwrap();
            let mut out = vec![0f32; c * oh * cow];
            (k.depthwise)(&sc, &crop, &wt, &[], Act::None, &mut out);
            // Output column j of the crop is column x0 / 2 + j of the whole; it sees the same
            // inputs when its taps stay inside the crop or both are at the frame's edge.
            for r in 0..c * oh {
                for j in 0..cow {
                    let lo = 2 * j as isize - p as isize;
                    let hi = 2 * j + kk - 1 - p;
                    let inside = (lo >= 0 || x0 == 0) && (hi < cw || x0 + cw == w);
                    if inside {
                        assert_eq!(
                            out[r * cow + j].to_bits(),
                            full[r * ow + x0 / 2 + j].to_bits(),
                            "k{kk} crop {x0}+{cw} row {r} col {j}"
                        );
                    }
                }
            }
        }
    }
}

/// Every `conv1x1_into` (generic, and per ISA where present) writes planes at the given stride,
/// leaves the gaps between them alone, and with a residual equals the same ISA's `conv1x1`
/// followed by the add the engine would run on that CPU, bit for bit.
#[test]
fn pointwise_epilogue_equals_pointwise_then_add() {
    use rawnr_kernels::{AddFn, Conv1x1Fn, Conv1x1IntoFn, PwEpilogue};
    let mut rng = rand::rngs::StdRng::seed_from_u64(61);
    let best = Kernels::best();
    let mut sets: Vec<(&str, Conv1x1Fn, Conv1x1IntoFn, AddFn)> = vec![(
        "generic",
        generic::conv1x1,
        generic::conv1x1_into,
        generic::add,
    )];
    if let Some(into) = best.conv1x1_into {
        sets.push((best.name, best.conv1x1, into, best.add));
    }
    #[cfg(target_arch = "x86_64")]
    if Isa::allows(Isa::Avx2) {
        use rawnr_kernels::x86_64::avx2_conv1x1_f32;
        sets.push((
            "avx2",
            avx2_conv1x1_f32::conv1x1,
            avx2_conv1x1_f32::conv1x1_into,
            generic::add,
        ));
    }
    #[cfg(target_arch = "aarch64")]
    {
        use rawnr_kernels::aarch64::neon_conv1x1_f32;
        sets.push((
            "neon",
            neon_conv1x1_f32::conv1x1,
            neon_conv1x1_f32::conv1x1_into,
            generic::add,
        ));
    }
    for (name, conv, into, add) in sets {
        for n in 0..60 {
            let in_c = rng.random_range(1..40);
            let out_c = rng.random_range(1..21);
            let pixels = if n < 6 {
                n + 1
            } else {
                rng.random_range(1..300)
            };
            let stride = pixels + rng.random_range(0..40);
            // Input planes `in_stride` apart (rows of a streamed value's ring).
            let in_stride = pixels
                + if n % 2 == 0 {
                    0
                } else {
                    rng.random_range(1..40)
                };
            let s = Conv1x1 {
                in_c,
                out_c,
                pixels,
            };
            let x = rand_vec(&mut rng, in_c * pixels);
            let mut x_strided = vec![f32::NAN; (in_c - 1) * in_stride + pixels];
            for ic in 0..in_c {
                x_strided[ic * in_stride..ic * in_stride + pixels]
                    .copy_from_slice(&x[ic * pixels..(ic + 1) * pixels]);
            }
            let w = rand_vec(&mut rng, in_c * out_c);
            let b = if n % 4 == 0 {
                vec![]
            } else {
                rand_vec(&mut rng, out_c)
            };
            let (act, act2) = (ACTS[n % 3], ACTS[(n / 3) % 3]);
            let len = (out_c - 1) * stride + pixels;
            // Residual planes `res_stride` apart (a streamed skip's ring).
            let res_stride = if n % 3 == 0 {
                stride
            } else {
                pixels + rng.random_range(0..40)
            };
            let residual = rand_vec(&mut rng, (out_c - 1) * res_stride + pixels);
            let mut dense = vec![0f32; out_c * pixels];
            conv(&s, &x, &w, &b, act, &mut dense);
            for with_residual in [false, true] {
                let mut got = vec![f32::NAN; len];
                let e = PwEpilogue {
                    stride,
                    in_stride,
                    residual: with_residual.then_some(&residual[..]),
                    res_stride,
                    act: act2,
                };
                into(&s, &x_strided, &w, &b, act, &mut got, &e);
                for oc in 0..out_c {
                    let at = oc * stride;
                    let plane = &dense[oc * pixels..(oc + 1) * pixels];
                    let mut want = plane.to_vec();
                    if with_residual {
                        let ra = oc * res_stride;
                        add(plane, &residual[ra..ra + pixels], act2, &mut want);
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&got[at..at + pixels]),
                        bits(&want),
                        "{name}: {in_c}->{out_c} x {pixels} stride {stride} residual {with_residual}"
                    );
                    if oc + 1 < out_c {
                        assert!(
                            got[at + pixels..at + stride].iter().all(|v| v.is_nan()),
                            "{name}: wrote between planes"
                        );
                    }
                }
            }
        }
    }
}
