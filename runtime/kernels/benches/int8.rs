//! `cargo bench -p rawnr-kernels --bench int8`: the int8 kernels against the f32 kernels of
//! the same dispatch ([`Kernels::best`]) on PMRID shapes, one thread, in GMAC/s (median of
//! several runs), and the machine's measured peak multiply-accumulate rates (register-resident
//! `vfmadd` / `vpdpbusd` / `vpmaddwd` loops) for "achieved vs peak".
//!
//! `-- quick` runs fewer repetitions; `-- pmrid` instead times every convolution of PMRID on a
//! 384x384 tile with the f32 and the int8 kernels and prints the time per op class; `-- calls`
//! compares calls of 2 output rows (as streamed runs make them) with calls of 32 rows, per
//! layer (the kernels' per-call set-up).

use std::time::Instant;

use rawnr_kernels::quant::{QConvParams, QOutput, QParams};
use rawnr_kernels::{Act, Conv1x1, ConvShape, Kernels, QConvFn};

mod common;
use common::{pmrid_layers, Layer};

/// Seconds this thread has run on a CPU (Linux: `/proc/thread-self/schedstat`), else wall
/// time. The bench machine is shared: CPU time is what a kernel costs, wall time is not.
fn now() -> f64 {
    static WALL: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let wall = || WALL.get_or_init(Instant::now).elapsed().as_secs_f64();
    match std::fs::read_to_string("/proc/thread-self/schedstat") {
        Ok(s) => s
            .split_whitespace()
            .next()
            .and_then(|t| t.parse::<u64>().ok())
            .map_or_else(wall, |ns| ns as f64 * 1e-9),
        Err(_) => wall(),
    }
}

/// Median CPU time per call of `f` over `runs` batches (after one warm-up), each batch long
/// enough (about 50 ms of wall time) for the CPU-time clock's resolution.
fn median_secs(mut f: impl FnMut(), runs: usize) -> f64 {
    let t0 = Instant::now();
    f();
    let once = t0.elapsed().as_secs_f64().max(1e-7);
    let reps = ((0.05 / once).ceil() as usize).clamp(1, 100_000);
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = now();
            for _ in 0..reps {
                f();
            }
            (now() - t0) / reps as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// Best of several timings of a peak loop: MAC/s.
fn peak(f: impl Fn(usize) -> (u64, f64)) -> f64 {
    let iters = 10_000_000;
    let mut best: f64 = 0.0;
    for _ in 0..7 {
        let t0 = now();
        let (macs, sink) = f(iters);
        let t = now() - t0;
        std::hint::black_box(sink);
        best = best.max(macs as f64 / t);
    }
    best
}

struct Case {
    label: String,
    macs: f64,
    f32_s: f64,
    i8_s: f64,
}

fn print(title: &str, cases: &[Case]) {
    println!("\n{title}");
    println!("| shape | f32 GMAC/s | int8 GMAC/s | int8 / f32 |");
    println!("|---|---|---|---|");
    for c in cases {
        println!(
            "| {} | {:.1} | {:.1} | {:.2}x |",
            c.label,
            c.macs / c.f32_s / 1e9,
            c.macs / c.i8_s / 1e9,
            c.f32_s / c.i8_s
        );
    }
}

/// Random-ish operands of a quantized convolution (values do not affect timing).
struct QOps {
    x: Vec<u8>,
    w: Vec<i8>,
    ws: Vec<f32>,
    b: Vec<i32>,
}

impl QOps {
    fn new(nx: usize, nw: usize, oc: usize) -> QOps {
        QOps {
            x: (0..nx).map(|i| (i * 7 % 251) as u8).collect(),
            w: (0..nw)
                .map(|i| ((i * 13 % 255) as i32 - 127) as i8)
                .collect(),
            ws: vec![0.01; oc],
            b: (0..oc).map(|i| i as i32 * 100).collect(),
        }
    }
    fn params(&self) -> QConvParams<'_> {
        QConvParams {
            in_zero_point: 17,
            in_scale: 0.02,
            weight: &self.w,
            weight_scale: &self.ws,
            bias: &self.b,
        }
    }
}

const OUT_Q: QParams = QParams {
    scale: 0.05,
    zero_point: 3,
};

/// Times an int8 kernel with `u8` output (fused ReLU), the common case inside the network.
fn time_q(f: QConvFn, s: &ConvShape, ops: &QOps, out_len: usize, runs: usize) -> f64 {
    let p = ops.params();
    let mut y = vec![0u8; out_len];
    median_secs(
        || {
            f(
                s,
                &p,
                &ops.x,
                QOutput::U8 {
                    q: OUT_Q,
                    relu: true,
                    dst: &mut y,
                },
            )
        },
        runs,
    )
}

/// Times PMRID's convolutions with the f32 and the int8 kernels, per op class.
fn pmrid_profile(k: &Kernels, h: usize, runs: usize) {
    // (class, f32 s, int8 s, MACs)
    let mut classes: Vec<(&str, f64, f64, f64)> = Vec::new();
    for layer in pmrid_layers(h) {
        let (class, s, transposed) = match layer {
            Layer::Dense(ci, co, h, kk) => ("dense 3x3", conv_shape(ci, co, h, kk, 1, 1), false),
            Layer::Dw(c, h, kk, st) => ("depthwise", conv_shape(c, c, h, kk, st, c), false),
            Layer::Pw(ci, co, h) => ("pointwise", conv_shape(ci, co, h, 1, 1, 1), false),
            // Element-wise adds are timed by `denoise-raw bench --profile` (the real graph).
            Layer::Add(..) => continue,
            Layer::ConvT(ci, co, h) => {
                let mut s = conv_shape(ci, co, h, 2, 2, 1);
                s.pad = [0; 4];
                ("transposed 2x2", s, true)
            }
        };
        let (oh, ow) = if transposed {
            s.conv_transpose_out().unwrap()
        } else {
            s.conv_out().unwrap()
        };
        let (cin_g, n_out) = (s.in_c / s.groups, s.out_c * oh * ow);
        let nw = s.out_c * cin_g * s.k_h * s.k_w;
        let macs = if transposed {
            (s.in_c * s.out_c * 4 * s.in_h * s.in_w) as f64
        } else {
            (n_out * cin_g * s.k_h * s.k_w) as f64
        };
        let x = vec![0.5f32; s.in_c * s.in_h * s.in_w];
        let w = vec![0.01f32; nw];
        let b = vec![0.1f32; s.out_c];
        let mut y = vec![0f32; n_out];
        let (ff, qf): (rawnr_kernels::ConvFn, QConvFn) = match layer {
            Layer::Dense(..) => (k.conv, k.qconv),
            Layer::Dw(..) => (k.depthwise, k.qdepthwise),
            Layer::Pw(..) => (k.conv, k.qconv1x1),
            Layer::ConvT(..) => (k.conv_transpose, k.qconv_transpose),
            Layer::Add(..) => continue,
        };
        let f32_s = if let Layer::Pw(..) = layer {
            let s1 = Conv1x1 {
                in_c: s.in_c,
                out_c: s.out_c,
                pixels: oh * ow,
            };
            median_secs(|| (k.conv1x1)(&s1, &x, &w, &b, Act::Relu, &mut y), runs)
        } else {
            median_secs(|| ff(&s, &x, &w, &b, Act::Relu, &mut y), runs)
        };
        let ops = QOps::new(x.len(), nw, s.out_c);
        let i8_s = time_q(qf, &s, &ops, n_out, runs);
        match classes.iter_mut().find(|c| c.0 == class) {
            Some(c) => {
                c.1 += f32_s;
                c.2 += i8_s;
                c.3 += macs;
            }
            None => classes.push((class, f32_s, i8_s, macs)),
        }
    }
    println!("\nPMRID convolutions on a {h}x{h} tile, one thread:");
    println!("| class | GMAC | f32 ms | int8 ms | f32 GMAC/s | int8 GMAC/s |");
    println!("|---|---|---|---|---|---|");
    let (mut tf, mut ti, mut tm) = (0.0, 0.0, 0.0);
    for (c, f, i, m) in &classes {
        println!(
            "| {c} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
            m / 1e9,
            f * 1e3,
            i * 1e3,
            m / f / 1e9,
            m / i / 1e9
        );
        tf += f;
        ti += i;
        tm += m;
    }
    println!(
        "| all | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
        tm / 1e9,
        tf * 1e3,
        ti * 1e3,
        tm / tf / 1e9,
        tm / ti / 1e9
    );
}

/// A "same" convolution shape (padding `k / 2`).
fn conv_shape(ci: usize, co: usize, h: usize, k: usize, stride: usize, groups: usize) -> ConvShape {
    ConvShape {
        in_c: ci,
        in_h: h,
        in_w: h,
        out_c: co,
        k_h: k,
        k_w: k,
        stride_h: stride,
        stride_w: stride,
        pad: [k / 2; 4],
        groups,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let runs = if quick { 3 } else { 9 };
    let k = Kernels::best();
    println!("kernels: {}", k.name);
    if std::env::args().any(|a| a == "calls") {
        return stream_calls(&k, runs);
    }
    if std::env::args().any(|a| a == "pmrid") {
        return pmrid_profile(&k, 384, if quick { 1 } else { 3 });
    }

    let mut cases = Vec::new();
    // PMRID pointwise layers on a 384x384 packed tile (in, out, side), plus small planes.
    for &(ci, co, h) in &[
        (16, 16, 384),
        (16, 64, 192),
        (64, 16, 192),
        (64, 64, 48),
        (32, 128, 96),
        (128, 32, 96),
        (64, 256, 48),
        (256, 64, 48),
        (128, 512, 24),
        (512, 128, 24),
        (512, 64, 24),
        (512, 512, 6),
    ] {
        let hw = h * h;
        let s1 = Conv1x1 {
            in_c: ci,
            out_c: co,
            pixels: hw,
        };
        let s = ConvShape::pointwise(ci, co, h, h);
        let x = vec![0.5f32; ci * hw];
        let w = vec![0.01f32; ci * co];
        let b = vec![0.1f32; co];
        let mut y = vec![0f32; co * hw];
        let f32_s = median_secs(|| (k.conv1x1)(&s1, &x, &w, &b, Act::Relu, &mut y), runs);
        let ops = QOps::new(ci * hw, ci * co, co);
        let i8_s = time_q(k.qconv1x1, &s, &ops, co * hw, runs);
        cases.push(Case {
            label: format!("pointwise {ci}->{co} {h}x{h}"),
            macs: (ci * co * hw) as f64,
            f32_s,
            i8_s,
        });
    }
    print("pointwise 1x1", &cases);

    let mut cases = Vec::new();
    // PMRID depthwise layers (channels, input side, k, stride).
    for &(c, h, kk, stride) in &[
        (16, 384, 3, 1),
        (16, 384, 5, 2),
        (64, 192, 5, 1),
        (64, 192, 5, 2),
        (32, 192, 3, 1),
        (128, 96, 5, 1),
        (256, 48, 5, 1),
        (512, 24, 3, 1),
    ] {
        let p = kk / 2;
        let s = ConvShape {
            in_c: c,
            in_h: h,
            in_w: h,
            out_c: c,
            k_h: kk,
            k_w: kk,
            stride_h: stride,
            stride_w: stride,
            pad: [p; 4],
            groups: c,
        };
        let (oh, ow) = s.conv_out().unwrap();
        let x = vec![0.5f32; c * h * h];
        let w = vec![0.01f32; c * kk * kk];
        let mut y = vec![0f32; c * oh * ow];
        let f32_s = median_secs(|| (k.depthwise)(&s, &x, &w, &[], Act::None, &mut y), runs);
        let ops = QOps::new(c * h * h, c * kk * kk, c);
        let i8_s = time_q(k.qdepthwise, &s, &ops, c * oh * ow, runs);
        cases.push(Case {
            label: format!("depthwise {kk}x{kk} s{stride} c{c} {h}x{h}"),
            macs: (c * oh * ow * kk * kk) as f64,
            f32_s,
            i8_s,
        });
    }
    print("depthwise", &cases);

    let mut cases = Vec::new();
    // PMRID's 2x2 stride-2 transposed convolutions (in, out, input side).
    for &(ci, co, h) in &[(64, 64, 24), (64, 32, 48), (32, 32, 96), (32, 16, 192)] {
        let s = ConvShape {
            in_c: ci,
            in_h: h,
            in_w: h,
            out_c: co,
            k_h: 2,
            k_w: 2,
            stride_h: 2,
            stride_w: 2,
            pad: [0; 4],
            groups: 1,
        };
        let x = vec![0.5f32; ci * h * h];
        let w = vec![0.01f32; ci * co * 4];
        let b = vec![0.1f32; co];
        let mut y = vec![0f32; co * 4 * h * h];
        let f32_s = median_secs(
            || (k.conv_transpose)(&s, &x, &w, &b, Act::None, &mut y),
            runs,
        );
        let ops = QOps::new(ci * h * h, ci * co * 4, co);
        let i8_s = time_q(k.qconv_transpose, &s, &ops, co * 4 * h * h, runs);
        cases.push(Case {
            label: format!("transposed 2x2 s2 {ci}->{co} {h}x{h}"),
            macs: (ci * co * 4 * h * h) as f64,
            f32_s,
            i8_s,
        });
    }
    print("transposed", &cases);

    let mut cases = Vec::new();
    // conv0 (u8 output, ReLU) and out1 (f32 output) on a 384x384 tile.
    for &(ci, co, h, f32_out) in &[(4, 16, 384, false), (16, 4, 384, true)] {
        let s = ConvShape {
            in_c: ci,
            in_h: h,
            in_w: h,
            out_c: co,
            k_h: 3,
            k_w: 3,
            stride_h: 1,
            stride_w: 1,
            pad: [1; 4],
            groups: 1,
        };
        let x = vec![0.5f32; ci * h * h];
        let w = vec![0.01f32; co * ci * 9];
        let b = vec![0.1f32; co];
        let mut y = vec![0f32; co * h * h];
        let f32_s = median_secs(|| (k.conv)(&s, &x, &w, &b, Act::None, &mut y), runs);
        let ops = QOps::new(ci * h * h, ci * co * 9, co);
        let i8_s = if f32_out {
            let p = ops.params();
            let mut yq = vec![0f32; co * h * h];
            median_secs(
                || {
                    (k.qconv)(
                        &s,
                        &p,
                        &ops.x,
                        QOutput::F32 {
                            act: Act::None,
                            dst: &mut yq,
                        },
                    )
                },
                runs,
            )
        } else {
            time_q(k.qconv, &s, &ops, co * h * h, runs)
        };
        cases.push(Case {
            label: format!(
                "dense 3x3 {ci}->{co} {h}x{h}{}",
                if f32_out { " (f32 out)" } else { "" }
            ),
            macs: (ci * co * 9 * h * h) as f64,
            f32_s,
            i8_s,
        });
    }
    print("dense", &cases);

    println!("\npeak (register-resident loops, one core):");
    println!("| loop | GMAC/s |");
    println!("|---|---|");
    #[cfg(target_arch = "x86_64")]
    {
        use rawnr_kernels::x86_64::peak as pk;
        let rows = [
            (
                "f32 vfmadd zmm (AVX-512)",
                peak(|n| {
                    let (m, s) = pk::fma_avx512(n);
                    (m, s as f64)
                }),
            ),
            (
                "f32 vfmadd ymm (AVX2)",
                peak(|n| {
                    let (m, s) = pk::fma_avx2(n);
                    (m, s as f64)
                }),
            ),
            (
                "int8 vpdpbusd zmm (AVX-512 VNNI)",
                peak(|n| {
                    let (m, s) = pk::dpbusd_avx512(n);
                    (m, s as f64)
                }),
            ),
            (
                "int16 vpmaddwd+vpaddd ymm (AVX2)",
                peak(|n| {
                    let (m, s) = pk::maddwd_avx2(n);
                    (m, s as f64)
                }),
            ),
        ];
        for (name, r) in rows {
            println!("| {name} | {:.1} |", r / 1e9);
        }
    }
}

/// GMAC/s of streamed-size calls (a few output rows of a wide plane) against tall calls of the
/// same layer: the per-call cost of the kernels' set-up (stages, corrections, weight packing).
fn stream_calls(k: &Kernels, runs: usize) {
    println!("| layer | width | GMAC/s 2 rows | GMAC/s 32 rows |");
    println!("|---|---|---|---|");
    for &(ci, co, kk, w) in &[
        (512, 128, 1, 64),
        (128, 512, 1, 64),
        (256, 64, 1, 128),
        (16, 64, 1, 512),
        (16, 16, 1, 1024),
        (512, 512, 5, 64),
        (512, 512, 3, 64),
        (256, 256, 5, 128),
        (64, 64, 5, 512),
        (16, 16, 3, 1024),
    ] {
        let mut rates = Vec::new();
        for rows in [2, 32] {
            let dw = kk > 1;
            let s = ConvShape {
                in_c: ci,
                in_h: rows + kk - 1,
                in_w: w,
                out_c: co,
                k_h: kk,
                k_w: kk,
                stride_h: 1,
                stride_w: 1,
                pad: [0, kk / 2, 0, kk / 2],
                groups: if dw { ci } else { 1 },
            };
            let wlen = co * (ci / s.groups) * kk * kk;
            let ops = QOps::new(ci * s.in_h * w, wlen, co);
            let f = if dw { k.qdepthwise } else { k.qconv1x1 };
            let t = time_q(f, &s, &ops, co * rows * w, runs);
            rates.push(wlen as f64 * (rows * w) as f64 / t / 1e9);
        }
        let kind = if kk > 1 {
            format!("dw {kk}x{kk} {ci}")
        } else {
            format!("pw {ci}->{co}")
        };
        println!("| {kind} | {w} | {:.1} | {:.1} |", rates[0], rates[1]);
    }
}
