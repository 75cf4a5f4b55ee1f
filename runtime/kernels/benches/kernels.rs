//! `cargo bench -p rawnr-kernels`: GMAC/s of each dispatched kernel against the scalar
//! reference on PMRID-like shapes (one thread). Plain timing, median of several runs.

use std::time::Instant;

use rawnr_kernels::{Act, Conv1x1, ConvShape, Kernels};

fn median_secs(mut f: impl FnMut(), runs: usize) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
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
        let tr = median_secs(|| (reference.conv1x1)(&s, &x, &w, &b, Act::Relu, &mut y), 5);
        let tb = median_secs(|| (best.conv1x1)(&s, &x, &w, &b, Act::Relu, &mut y), 5);
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
        let tr = median_secs(|| (reference.conv)(&s, &x, &w, &[], Act::None, &mut y), 5);
        let tb = median_secs(|| f(&s, &x, &w, &[], Act::None, &mut y), 5);
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
        let tr = median_secs(|| (reference.conv)(&s, &x, &w, &[], Act::None, &mut y), 3);
        let tb = median_secs(|| (best.conv)(&s, &x, &w, &[], Act::None, &mut y), 3);
        println!(
            "| dense 3x3 | {ci}->{co} {h}x{h} | {:.2} | {:.2} | {:.1}x |",
            macs / tr / 1e9,
            macs / tb / 1e9,
            tr / tb
        );
    }
}
