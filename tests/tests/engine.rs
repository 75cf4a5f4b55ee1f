//! The arena-planned engine computes what a plain executor with one buffer per value computes,
//! while using less memory than the sum of all activations.

use rand::{Rng, SeedableRng};
use rawnr_core::format::{Activation, Model, OpKind, NO_TENSOR};
use rawnr_engine::graph::{Engine, Shape};
use rawnr_kernels::{generic, Act, ConvShape, Kernels};
use rawnr_tests::*;

/// Executes the graph with a separate buffer per value (no arena, no reuse).
fn plain_run(m: &Model<'_>, shapes: &[Shape], input: &[f32]) -> Vec<Vec<f32>> {
    let mut vals: Vec<Vec<f32>> = vec![input.to_vec()];
    for i in 0..m.n_nodes() {
        let n = m.node(i);
        let x = shapes[n.inputs[0] as usize];
        let mut out = vec![0f32; shapes[i + 1].len()];
        let a = match n.activation {
            Activation::None => Act::None,
            Activation::Relu => Act::Relu,
            Activation::LeakyRelu(s) => Act::LeakyRelu(s),
        };
        let ins: Vec<&[f32]> = n.inputs[..n.n_inputs as usize]
            .iter()
            .map(|&v| vals[v as usize].as_slice())
            .collect();
        match n.op {
            OpKind::Conv2d | OpKind::ConvTranspose2d => {
                let s = ConvShape {
                    in_c: x.c,
                    in_h: x.h,
                    in_w: x.w,
                    out_c: n.out_channels as usize,
                    k_h: n.kernel[0] as usize,
                    k_w: n.kernel[1] as usize,
                    stride_h: n.stride[0] as usize,
                    stride_w: n.stride[1] as usize,
                    pad: n.pad.map(|p| p as usize),
                    groups: n.groups as usize,
                };
                let b = if n.bias == NO_TENSOR {
                    &[][..]
                } else {
                    m.tensor_f32(n.bias as usize)
                };
                let w = m.tensor_f32(n.weight as usize);
                if n.op == OpKind::Conv2d {
                    generic::conv2d(&s, ins[0], w, b, a, &mut out)
                } else {
                    generic::conv_transpose2d(&s, ins[0], w, b, a, &mut out)
                }
            }
            OpKind::Relu | OpKind::LeakyRelu => generic::activation(ins[0], a, &mut out),
            OpKind::Add => generic::add(ins[0], ins[1], a, &mut out),
            OpKind::Concat => generic::concat(&ins, &mut out),
            OpKind::PixelShuffle => {
                let r = n.factor as usize;
                generic::pixel_shuffle(ins[0], x.c / (r * r), x.h, x.w, r, &mut out)
            }
            OpKind::PixelUnshuffle => {
                generic::pixel_unshuffle(ins[0], x.c, x.h, x.w, n.factor as usize, &mut out)
            }
            OpKind::Quantize | OpKind::Dequantize => panic!("the plain executor runs f32 models"),
        }
        vals.push(out);
    }
    vals
}

#[test]
fn arena_engine_matches_plain_executor() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    for _ in 0..10 {
        let bytes = random_model(&mut rng);
        let words = aligned(&bytes);
        let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
        // The reference kernels make the comparison exact; the dispatched ones are compared
        // within rounding below.
        let e = Engine::with_kernels(m, Kernels::reference());
        let fast = Engine::new(m);
        let mult = m.info().size_multiple as usize;
        let (h, w) = (mult * rng.random_range(1..9), mult * rng.random_range(1..9));
        let plan = e.plan(h, w).unwrap();
        let total: usize = plan.shapes.iter().map(|s| s.len()).sum();
        assert!(
            plan.scratch_len < total,
            "arena {} does not reuse memory (sum {total})",
            plan.scratch_len
        );
        let input: Vec<f32> = (0..4 * h * w)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        // Poison the arena: stale data must never leak into results.
        let mut scratch = vec![f32::NAN; plan.scratch_len];
        scratch[plan.range(0, &plan.shapes[0])].copy_from_slice(&input);
        e.run(&plan, &plan.shapes, &mut scratch).unwrap();
        let out_v = m.info().output_value as usize;
        let got = &scratch[plan.range(out_v, &plan.shapes[out_v])];
        let want = plain_run(&m, &plan.shapes, &input);
        assert_eq!(got, want[out_v].as_slice());
        let mut scratch2 = vec![f32::NAN; plan.scratch_len];
        scratch2[plan.range(0, &plan.shapes[0])].copy_from_slice(&input);
        fast.run(&plan, &plan.shapes, &mut scratch2).unwrap();
        let got2 = &scratch2[plan.range(out_v, &plan.shapes[out_v])];
        let scale = want[out_v].iter().fold(1f32, |a, x| a.max(x.abs()));
        for (a, b) in got2.iter().zip(&want[out_v]) {
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{} kernels: {a} vs {b}",
                fast.kernels().name
            );
        }
        // A smaller input runs on the same plan.
        let mut shapes = vec![Shape::default(); m.n_values()];
        e.infer_shapes(mult, mult, &mut shapes).unwrap();
        let small: Vec<f32> = input[..4 * mult * mult].to_vec();
        scratch[plan.range(0, &shapes[0])].copy_from_slice(&small);
        e.run(&plan, &shapes, &mut scratch).unwrap();
        let want = plain_run(&m, &shapes, &small);
        assert_eq!(
            &scratch[plan.range(out_v, &shapes[out_v])],
            want[out_v].as_slice()
        );
    }
}

#[test]
fn run_rejects_bad_buffers_and_sizes() {
    let bytes = random_model(&mut rand::rngs::StdRng::seed_from_u64(22));
    let words = aligned(&bytes);
    let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
    let e = Engine::new(m);
    let mult = m.info().size_multiple as usize;
    let plan = e.plan(4 * mult, 4 * mult).unwrap();
    let mut short = vec![0f32; plan.scratch_len - 1];
    assert!(e.run(&plan, &plan.shapes, &mut short).is_err());
    let big = e.plan(8 * mult, 8 * mult).unwrap();
    let mut scratch = vec![0f32; big.scratch_len];
    assert!(
        e.run(&plan, &big.shapes, &mut scratch).is_err(),
        "input larger than the plan must be refused"
    );
    // Sizes that break the stride structure are a shape error, not a panic.
    if mult > 1 {
        assert!(e.plan(mult + 1, mult).is_err());
    }
    assert!(e.plan(0, 8).is_err());
}
