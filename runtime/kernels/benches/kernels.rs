//! `cargo bench -p rawnr-kernels`: GMAC/s of each dispatched kernel against the scalar
//! reference on PMRID-like shapes (one thread). Plain timing, fastest of several runs.
//!
//! `cargo bench -p rawnr-kernels -- pmrid` instead times every layer of PMRID on one 384x384
//! tile (a 256 tile with a 64 halo) with the dispatched kernels and prints the time per op
//! class; `-- dwloop C H K S` runs one depthwise layer (C channels, H x H, K x K, stride S) in a
//! loop, for a profiler; `-- convloop CI CO W R` one dense 3x3 convolution of R output rows W
//! wide (a streamed call).

use std::time::Instant;

use rawnr_kernels::{generic, Act, Conv1x1, ConvShape, Kernels};

mod common;
use common::{pmrid_layers, Layer};

/// Fastest of `runs` timed calls after a warm-up (the machine is shared: the minimum is the
/// least disturbed run).
fn min_secs(mut f: impl FnMut(), runs: usize) -> f64 {
    f();
    (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = |w: &str| args.iter().any(|a| a == w);
    if only("pmrid") {
        return pmrid_profile(384);
    }
    if only("dwloop") {
        // One depthwise layer in a loop (for a profiler): c, h, k, stride from the arguments.
        let n: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        let (c, h, kk, st) = (n[0], n[1], n[2], n[3]);
        let k = Kernels::best();
        let s = ConvShape {
            in_c: c,
            in_h: h,
            in_w: h,
            out_c: c,
            k_h: kk,
            k_w: kk,
            stride_h: st,
            stride_w: st,
            pad: [kk / 2; 4],
            groups: c,
        };
        let (oh, ow) = s.conv_out().unwrap();
        let x = vec![0.5f32; c * h * h];
        let wt = vec![0.01f32; c * kk * kk];
        let mut y = vec![0f32; c * oh * ow];
        let t = min_secs(
            || {
                for _ in 0..20 {
                    (k.depthwise)(&s, &x, &wt, &[], Act::None, &mut y)
                }
            },
            20,
        );
        println!(
            "{:.1} GMAC/s",
            (c * oh * ow * kk * kk * 20) as f64 / t / 1e9
        );
        return;
    }
    if only("convloop") {
        // One dense 3x3 convolution of a few output rows in a loop (a streamed call): in_c,
        // out_c, width, output rows from the arguments.
        let n: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        let (ci, co, w, rows) = (n[0], n[1], n[2], n[3]);
        let k = Kernels::best();
        let s = ConvShape {
            in_c: ci,
            in_h: rows + 2,
            in_w: w,
            out_c: co,
            k_h: 3,
            k_w: 3,
            stride_h: 1,
            stride_w: 1,
            pad: [0, 1, 0, 1],
            groups: 1,
        };
        let (oh, ow) = s.conv_out().unwrap();
        let x = vec![0.5f32; ci * s.in_h * w];
        let wt = vec![0.01f32; co * ci * 9];
        let b = vec![0.1f32; co];
        let mut y = vec![0f32; co * oh * ow];
        let reps = 200;
        let t = min_secs(
            || {
                for _ in 0..reps {
                    (k.conv)(&s, &x, &wt, &b, Act::Relu, &mut y)
                }
            },
            10,
        );
        println!(
            "{ci}->{co} {w} wide, {oh} rows: {:.1} GMAC/s",
            (co * ci * 9 * oh * ow * reps) as f64 / t / 1e9
        );
        return;
    }
    kernel_table();
}

/// Times each PMRID layer on an `h` x `h` tile and prints a per-class summary.
fn pmrid_profile(h: usize) {
    use rand::{Rng, SeedableRng};
    let k = Kernels::best();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut rv = |n: usize, lo: f32, hi: f32| -> Vec<f32> {
        (0..n).map(|_| rng.random_range(lo..hi)).collect()
    };
    let mut classes: Vec<(String, f64, f64, usize)> = Vec::new();
    let mut add_to = |name: String, t: f64, macs: f64| {
        if let Some(c) = classes.iter_mut().find(|c| c.0 == name) {
            c.1 += t;
            c.2 += macs;
            c.3 += 1;
        } else {
            classes.push((name, t, macs, 1));
        }
    };
    println!("PMRID {h}x{h} tile, {}:", k.name);
    println!("| layer | ms | GMAC/s |");
    println!("|---|---|---|");
    for layer in pmrid_layers(h) {
        let (name, class, t, macs) = match layer {
            Layer::Dense(ci, co, h, kk) => {
                let (t, macs) = time_conv(&k, &mut rv, ci, co, h, kk, 1, 1);
                (
                    format!("conv{kk} {ci}->{co} {h}"),
                    format!("dense {kk}x{kk}"),
                    t,
                    macs,
                )
            }
            Layer::Dw(c, h, kk, st) => {
                let (t, macs) = time_conv(&k, &mut rv, c, c, h, kk, st, c);
                (
                    format!("dw{kk} s{st} c{c} {h}"),
                    format!("depthwise {kk}x{kk} s{st}"),
                    t,
                    macs,
                )
            }
            Layer::Pw(ci, co, h) => {
                let (t, macs) = time_conv(&k, &mut rv, ci, co, h, 1, 1, 1);
                (
                    format!("pw {ci}->{co} {h}"),
                    "pointwise 1x1".to_string(),
                    t,
                    macs,
                )
            }
            Layer::ConvT(ci, co, h) => {
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
                let x = rv(ci * h * h, 0.0, 1.0);
                let w = rv(ci * co * 4, -0.1, 0.1);
                let b = rv(co, -0.1, 0.1);
                let mut y = vec![0f32; co * 4 * h * h];
                let t = min_secs(|| (k.conv_transpose)(&s, &x, &w, &b, Act::None, &mut y), 5);
                let macs = (ci * co * 4 * h * h) as f64;
                (
                    format!("convT {ci}->{co} {h}"),
                    "transposed 2x2".to_string(),
                    t,
                    macs,
                )
            }
            Layer::Add(c, h) => {
                let a = rv(c * h * h, -1.0, 1.0);
                let b = rv(c * h * h, -1.0, 1.0);
                let mut y = vec![0f32; c * h * h];
                let t = min_secs(|| generic::add(&a, &b, Act::Relu, &mut y), 5);
                (format!("add c{c} {h}"), "add".to_string(), t, 0.0)
            }
        };
        println!("| {name} | {:.3} | {:.2} |", t * 1e3, macs / t / 1e9);
        add_to(class, t, macs);
    }
    let total: f64 = classes.iter().map(|c| c.1).sum();
    let total_macs: f64 = classes.iter().map(|c| c.2).sum();
    println!();
    println!("| op class | layers | ms/tile | share | GMAC | GMAC/s |");
    println!("|---|---|---|---|---|---|");
    for (name, t, macs, n) in &classes {
        println!(
            "| {name} | {n} | {:.2} | {:.1}% | {:.3} | {:.2} |",
            t * 1e3,
            100.0 * t / total,
            macs / 1e9,
            macs / t / 1e9
        );
    }
    println!(
        "| total | | {:.2} | 100% | {:.3} | {:.2} |",
        total * 1e3,
        total_macs / 1e9,
        total_macs / total / 1e9
    );
}

/// Times one "same" convolution layer with the kernel the engine would dispatch to; returns
/// (seconds, MACs).
#[allow(clippy::too_many_arguments)]
fn time_conv(
    k: &Kernels,
    rv: &mut impl FnMut(usize, f32, f32) -> Vec<f32>,
    ci: usize,
    co: usize,
    h: usize,
    kk: usize,
    stride: usize,
    groups: usize,
) -> (f64, f64) {
    let s = ConvShape {
        in_c: ci,
        in_h: h,
        in_w: h,
        out_c: co,
        k_h: kk,
        k_w: kk,
        stride_h: stride,
        stride_w: stride,
        pad: [kk / 2; 4],
        groups,
    };
    let (oh, ow) = s.conv_out().unwrap();
    let x = rv(ci * h * h, 0.0, 1.0);
    let w = rv(co * ci / groups * kk * kk, -0.1, 0.1);
    let b = rv(co, -0.1, 0.1);
    let mut y = vec![0f32; co * oh * ow];
    let macs = (co * ci / groups * kk * kk * oh * ow) as f64;
    let t = if kk == 1 {
        let p = Conv1x1 {
            in_c: ci,
            out_c: co,
            pixels: h * h,
        };
        min_secs(|| (k.conv1x1)(&p, &x, &w, &b, Act::Relu, &mut y), 5)
    } else if groups > 1 {
        min_secs(|| (k.depthwise)(&s, &x, &w, &[], Act::None, &mut y), 5)
    } else {
        min_secs(|| (k.conv)(&s, &x, &w, &b, Act::Relu, &mut y), 5)
    };
    (t, macs)
}

fn kernel_table() {
    let best = Kernels::best();
    let reference = Kernels::reference();
    println!(
        "| kernel | shape | generic GMAC/s | {} GMAC/s | speedup |",
        best.name
    );
    println!("|---|---|---|---|---|");
    for &(ci, co, hw) in &[
        (16, 64, 192 * 192),
        (64, 16, 192 * 192),
        (128, 512, 24 * 24),
        (256, 64, 48 * 48),
        (32, 32, 192 * 192),
    ] {
        let s = Conv1x1 {
            in_c: ci,
            out_c: co,
            pixels: hw,
        };
        let x = vec![0.5f32; ci * hw];
        let w = vec![0.01f32; ci * co];
        let b = vec![0.1f32; co];
        let mut y = vec![0f32; co * hw];
        let macs = (ci * co * hw) as f64;
        let tr = min_secs(|| (reference.conv1x1)(&s, &x, &w, &b, Act::Relu, &mut y), 5);
        let tb = min_secs(|| (best.conv1x1)(&s, &x, &w, &b, Act::Relu, &mut y), 5);
        println!(
            "| conv1x1 | {ci}->{co} x {hw} | {:.2} | {:.2} | {:.1}x |",
            macs / tr / 1e9,
            macs / tb / 1e9,
            tr / tb
        );
    }
    for &(c, h, k, stride) in &[
        (16, 192, 5, 1),
        (64, 96, 5, 1),
        (256, 24, 5, 1),
        (64, 96, 3, 1),
        (64, 192, 5, 2),
        (16, 384, 3, 2),
    ] {
        let p = k / 2;
        let s = ConvShape {
            in_c: c,
            in_h: h,
            in_w: h,
            out_c: c,
            k_h: k,
            k_w: k,
            stride_h: stride,
            stride_w: stride,
            pad: [p; 4],
            groups: c,
        };
        let (oh, ow) = s.conv_out().unwrap();
        let x = vec![0.5f32; c * h * h];
        let w = vec![0.01f32; c * k * k];
        let mut y = vec![0f32; c * oh * ow];
        let macs = (c * oh * ow * k * k) as f64;
        let f = best.depthwise;
        let tr = min_secs(|| (reference.conv)(&s, &x, &w, &[], Act::None, &mut y), 5);
        let tb = min_secs(|| f(&s, &x, &w, &[], Act::None, &mut y), 5);
        println!(
            "| depthwise s{stride} | c{c} {h}x{h} k{k} | {:.2} | {:.2} | {:.1}x |",
            macs / tr / 1e9,
            macs / tb / 1e9,
            tr / tb
        );
    }
    for &(ci, co, h) in &[(4, 16, 384), (16, 4, 384)] {
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
        let mut y = vec![0f32; co * h * h];
        let macs = (co * ci * 9 * h * h) as f64;
        let tr = min_secs(|| (reference.conv)(&s, &x, &w, &[], Act::None, &mut y), 3);
        let tb = min_secs(|| (best.conv)(&s, &x, &w, &[], Act::None, &mut y), 3);
        println!(
            "| dense 3x3 | {ci}->{co} {h}x{h} | {:.2} | {:.2} | {:.1}x |",
            macs / tr / 1e9,
            macs / tb / 1e9,
            tr / tb
        );
    }
    for &(ci, co, h) in &[(64, 64, 24), (64, 32, 48), (32, 16, 192)] {
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
        let macs = (ci * co * 4 * h * h) as f64;
        let tr = min_secs(
            || (reference.conv_transpose)(&s, &x, &w, &b, Act::None, &mut y),
            3,
        );
        let tb = min_secs(
            || (best.conv_transpose)(&s, &x, &w, &b, Act::None, &mut y),
            3,
        );
        println!(
            "| transposed 2x2 | {ci}->{co} {h}x{h} | {:.2} | {:.2} | {:.1}x |",
            macs / tr / 1e9,
            macs / tb / 1e9,
            tr / tb
        );
    }
}
