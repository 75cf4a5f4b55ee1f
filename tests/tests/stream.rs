//! Row streaming (every value a ring of rows, each output row computed once) gives bit-identical
//! results to one pass of the engine over the whole region.

use rand::{Rng, SeedableRng};
use rawnr_core::format::Model;
use rawnr_engine::graph::{Engine, Shape};
use rawnr_kernels::Kernels;
use rawnr_tests::*;

/// One whole-region pass (unfused plan: the plain reference).
fn whole(e: &Engine<'_>, h: usize, w: usize, input: &[f32]) -> Vec<f32> {
    let m = e.model();
    let plan = e.plan(h, w).unwrap();
    let mut shapes = vec![Shape::default(); m.n_values()];
    e.infer_shapes(h, w, &mut shapes).unwrap();
    let mut scratch = vec![f32::NAN; plan.scratch_len];
    scratch[plan.range(0, &shapes[0])].copy_from_slice(&input[..shapes[0].len()]);
    e.run(&plan, &shapes, &mut scratch).unwrap();
    let out_v = m.info().output_value as usize;
    scratch[plan.range(out_v, &shapes[out_v])].to_vec()
}

/// A streamed pass of an `h x w` region (plan width `plan_w`, `step` input rows per step),
/// scratch poisoned with NaN; checks rows arrive in order, each once.
fn streamed(
    e: &Engine<'_>,
    h: usize,
    w: usize,
    plan_w: usize,
    step: usize,
    min_rows: usize,
    input: &[f32],
) -> Vec<f32> {
    let plan = e.stream_plan(h, plan_w, step, min_rows).unwrap();
    let mut scratch = vec![f32::NAN; plan.scratch_len];
    let c_in = 4;
    let c_out = 4;
    let mut out = vec![f32::NAN; c_out * h * w];
    let mut next = 0;
    e.run_streamed(
        &plan,
        w,
        &mut scratch,
        &mut |r0, r1, planes| {
            let n = r1 - r0;
            for c in 0..c_in {
                planes[c * n * w..(c + 1) * n * w]
                    .copy_from_slice(&input[(c * h + r0) * w..(c * h + r1) * w]);
            }
            Ok(())
        },
        &mut |r0, r1, planes| {
            assert_eq!(r0, next, "rows out of order");
            next = r1;
            let n = r1 - r0;
            for c in 0..c_out {
                out[(c * h + r0) * w..(c * h + r1) * w]
                    .copy_from_slice(&planes[c * n * w..(c + 1) * n * w]);
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(next, h, "not every row came out");
    out
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn streamed_pmrid_f32_and_int8_equal_a_whole_pass_bit_for_bit() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for name in ["pmrid.rnm", "pmrid-int8.rnm", "pmrid-f16.rnm"] {
        let bytes = std::fs::read(repo_root().join("models").join(name)).unwrap();
        let words = aligned(&bytes);
        let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
        // Without the strided pointwise and depthwise kernels, pointwise nodes copy their rows
        // and depthwise ones run channel by channel (copying rows where the ring wraps).
        let mut copying = Kernels::best();
        copying.conv1x1_into = None;
        copying.qconv1x1_strided = None;
        copying.depthwise_strided = None;
        copying.qdepthwise_strided = None;
        copying.conv_strided = None;
        for kernels in [Kernels::best(), Kernels::reference(), copying] {
            let e = Engine::with_kernels(m, kernels).with_fusion(false);
            assert!(e.can_stream());
            // Taller than the receptive field, so rings wrap; a narrower region on the plan.
            let (h, w) = (704, 48);
            let input: Vec<f32> = (0..4 * h * w)
                .map(|_| rng.random_range(-0.1..1.0))
                .collect();
            let a = whole(&e, h, w, &input);
            // The full-resolution skip's first node runs twice (late, from the input) instead
            // of its rows waiting in a ring: the equality below covers that path.
            let plan = e.stream_plan(h, w, 16, 1).unwrap();
            assert_eq!(plan.recomputed_nodes(), 1, "{name}");
            for (step, plan_w, min_rows) in [(16, w, 1), (5, w + 32, 4), (64, w, 8)] {
                let b = streamed(&e, h, w, plan_w, step, min_rows, &input);
                assert_eq!(
                    bits(&a),
                    bits(&b),
                    "{name} ({}) step {step}: streamed output differs",
                    e.kernels().name
                );
            }
        }
    }
}

#[test]
fn random_models_streamed_equal_a_whole_pass() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(78);
    let mut streamed_models = 0;
    for _ in 0..24 {
        let bytes = random_model(&mut rng);
        let words = aligned(&bytes);
        let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
        let e = Engine::new(m).with_fusion(false);
        if !e.can_stream() {
            assert!(e.stream_plan(64, 64, 8, 1).is_err());
            continue;
        }
        streamed_models += 1;
        let mult = m.info().size_multiple as usize;
        let (h, w) = (
            mult * rng.random_range(1..200 / mult),
            mult * rng.random_range(1..40 / mult),
        );
        let input: Vec<f32> = (0..4 * h * w)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let a = whole(&e, h, w, &input);
        let step = rng.random_range(1..24);
        let min_rows = rng.random_range(1..9);
        let b = streamed(&e, h, w, w, step, min_rows, &input);
        assert_eq!(
            bits(&a),
            bits(&b),
            "model {streamed_models} {h}x{w} step {step}"
        );
    }
    assert!(
        streamed_models >= 8,
        "only {streamed_models} of 24 models stream"
    );
}

#[test]
fn streamed_runs_reject_wrong_sizes_and_short_scratch() {
    let bytes = std::fs::read(repo_root().join("models/pmrid.rnm")).unwrap();
    let words = aligned(&bytes);
    let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
    let e = Engine::new(m);
    let plan = e.stream_plan(96, 64, 8, 1).unwrap();
    let mut fill = |_: usize, _: usize, _: &mut [f32]| Ok(());
    let mut emit = |_: usize, _: usize, _: &[f32]| Ok(());
    let mut short = vec![0f32; plan.scratch_len - 1];
    assert!(e
        .run_streamed(&plan, 64, &mut short, &mut fill, &mut emit)
        .is_err());
    let mut scratch = vec![0f32; plan.scratch_len];
    // Wider than planned, or zero wide.
    assert!(e
        .run_streamed(&plan, 80, &mut scratch, &mut fill, &mut emit)
        .is_err());
    assert!(e
        .run_streamed(&plan, 0, &mut scratch, &mut fill, &mut emit)
        .is_err());
    // A failing callback ends the run with its error.
    let mut failing =
        |_: usize, _: usize, _: &mut [f32]| Err(rawnr_core::Error::BadFrame("fill failed"));
    assert!(e
        .run_streamed(&plan, 64, &mut scratch, &mut failing, &mut emit)
        .is_err());
    assert!(e
        .run_streamed(&plan, 48, &mut scratch, &mut fill, &mut emit)
        .is_ok());
}
