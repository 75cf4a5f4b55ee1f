//! Layer fusion (depthwise + pointwise [+ add] band by band) gives bit-identical results to
//! running every node over the whole tile, with less scratch.

use rand::{Rng, SeedableRng};
use rawnr_core::format::Model;
use rawnr_engine::graph::{Engine, Shape};
use rawnr_kernels::Kernels;
use rawnr_tests::*;

/// Runs `e` on `input` (shapes of `h x w`) with `plan`-sized scratch poisoned with NaN and
/// returns the output value.
fn run(e: &Engine<'_>, plan_hw: (usize, usize), h: usize, w: usize, input: &[f32]) -> Vec<f32> {
    let m = e.model();
    let plan = e.plan(plan_hw.0, plan_hw.1).unwrap();
    let mut shapes = vec![Shape::default(); m.n_values()];
    e.infer_shapes(h, w, &mut shapes).unwrap();
    let mut scratch = vec![f32::NAN; plan.scratch_len];
    scratch[plan.range(0, &shapes[0])].copy_from_slice(&input[..shapes[0].len()]);
    e.run(&plan, &shapes, &mut scratch).unwrap();
    let out_v = m.info().output_value as usize;
    scratch[plan.range(out_v, &shapes[out_v])].to_vec()
}

fn check_model(m: Model<'_>, kernels: Kernels, expect_shrink: bool, rng: &mut impl Rng) {
    let fused = Engine::with_kernels(m, kernels);
    let plain = Engine::with_kernels(m, kernels).with_fusion(false);
    let (ph, pw) = (288, 272);
    let fp = fused.plan(ph, pw).unwrap();
    let pp = plain.plan(ph, pw).unwrap();
    assert!(fp.band_len > 0, "{}: nothing fused", m.info().name_str());
    assert_eq!(pp.band_len, 0);
    // Fusion never costs more than its band buffer. Where the memory peak is in fused
    // chains it shrinks the scratch (PMRID f32); the int8 model's peak lies elsewhere (its f32
    // full-resolution decoder meets the u8 skips), so there the band buffer adds 1.6%.
    assert!(
        fp.scratch_len <= pp.scratch_len + fp.band_len,
        "fusion grew the scratch past its band buffer: {} vs {} + {}",
        fp.scratch_len,
        pp.scratch_len,
        fp.band_len
    );
    if expect_shrink {
        assert!(
            fp.scratch_len < pp.scratch_len,
            "fusion should shrink the scratch: {} vs {}",
            fp.scratch_len,
            pp.scratch_len
        );
    }
    let fused_nodes: usize = (0..m.n_nodes())
        .map(|i| fused.fused_nodes(&fp, i))
        .filter(|&n| n > 1)
        .sum();
    assert!(fused_nodes >= 10, "only {fused_nodes} nodes fused");
    let input: Vec<f32> = (0..4 * ph * pw)
        .map(|_| rng.random_range(-0.1..1.0))
        .collect();
    // The plan's size, and smaller tiles on the same plan (edge tiles), odd band remainders.
    for (h, w) in [(ph, pw), (208, 160), (144, 272), (32, 48)] {
        let a = run(&fused, (ph, pw), h, w, &input);
        let b = run(&plain, (ph, pw), h, w, &input);
        assert!(a.iter().all(|x| x.is_finite()));
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{} ({}) {h}x{w}: fused output differs",
            m.info().name_str(),
            fused.kernels().name
        );
    }
}

#[test]
fn fused_pmrid_f32_and_int8_equal_unfused_bit_for_bit() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for name in ["pmrid.rnm", "pmrid-int8.rnm"] {
        let bytes = std::fs::read(repo_root().join("models").join(name)).unwrap();
        let words = aligned(&bytes);
        let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
        let shrink = name == "pmrid.rnm";
        check_model(m, Kernels::best(), shrink, &mut rng);
        check_model(m, Kernels::reference(), shrink, &mut rng);
        // Without a strided pointwise kernel the band goes through a buffer and a copy.
        let mut k = Kernels::best();
        k.conv1x1_into = None;
        check_model(m, k, shrink, &mut rng);
    }
}

#[test]
fn f16_weights_are_not_fused_and_run_as_before() {
    let bytes = std::fs::read(repo_root().join("models/pmrid-f16.rnm")).unwrap();
    let words = aligned(&bytes);
    let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
    assert_eq!(Engine::new(m).plan(160, 144).unwrap().band_len, 0);
}

#[test]
fn random_models_fused_equal_unfused() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(77);
    let mut fused_plans = 0;
    for i in 0..24 {
        let bytes = random_model(&mut rng);
        let words = aligned(&bytes);
        let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
        let mult = m.info().size_multiple as usize;
        // Large enough planes for the strided depthwise + pointwise pair to fuse (odd sizes).
        let (h, w) = (
            mult * rng.random_range(300 / mult..400 / mult),
            mult * rng.random_range(260 / mult..380 / mult),
        );
        let input: Vec<f32> = (0..4 * h * w)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut k = Kernels::best();
        if i % 2 == 1 {
            k.conv1x1_into = None;
        }
        let fused = Engine::with_kernels(m, k);
        let plain = Engine::with_kernels(m, k).with_fusion(false);
        fused_plans += usize::from(fused.plan(h, w).unwrap().band_len > 0);
        let a = run(&fused, (h, w), h, w, &input);
        let b = run(&plain, (h, w), h, w, &input);
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
    assert!(fused_plans >= 12, "only {fused_plans} of 24 plans fused");
}

#[test]
fn observed_runs_refuse_a_fused_plan() {
    let bytes = std::fs::read(repo_root().join("models/pmrid.rnm")).unwrap();
    let words = aligned(&bytes);
    let m = Model::parse(as_bytes(&words, bytes.len())).unwrap();
    let e = Engine::new(m);
    let plan = e.plan(160, 144).unwrap();
    let mut scratch = vec![0f32; plan.scratch_len];
    let err = e
        .run_observed(&plan, &plan.shapes, &mut scratch, &mut |_, _| {})
        .unwrap_err();
    assert!(format!("{err}").contains("fusion"), "{err}");
    let e = e.with_fusion(false);
    let plan = e.plan(160, 144).unwrap();
    let mut scratch = vec![0f32; plan.scratch_len];
    let mut seen = 0;
    e.run_observed(&plan, &plan.shapes, &mut scratch, &mut |_, _| seen += 1)
        .unwrap();
    assert_eq!(seen, m.n_values());
}
