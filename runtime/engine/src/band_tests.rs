//! Tests of the allocation-free entry points: plans in caller memory and tile rows run from a
//! window of input rows (what a line-buffer / stripe caller does) against the whole-frame call.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use rand::{Rng, SeedableRng};
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::builder::{ConvSpec, ModelBuilder};
use rawnr_core::format::{Activation, Model};
use rawnr_core::noise::NoiseParams;

use crate::denoiser::{Denoiser, TileOptions};
use crate::graph::{Engine, Shape};

/// A small random model with a stride-2 stage (size multiple 2) and a global residual.
fn small_model(rng: &mut impl Rng) -> Vec<u8> {
    let mut w = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-0.4..0.4)).collect() };
    let mut b = ModelBuilder::new("band test model");
    let x = b.input();
    let a = b.conv2d(
        "a",
        x,
        &w(8 * 4 * 9),
        [8, 4, 3, 3],
        Some(&w(8)),
        ConvSpec::same(3).act(Activation::Relu),
    );
    let d = b.conv2d(
        "down",
        a,
        &w(8 * 8 * 9),
        [8, 8, 3, 3],
        None,
        ConvSpec::same(3).stride(2).act(Activation::LeakyRelu(0.1)),
    );
    let spec = ConvSpec {
        stride: [2, 2],
        pad: [0; 4],
        groups: 1,
        activation: Activation::None,
    };
    let up = b.conv_transpose2d("up", d, &w(8 * 8 * 4), [8, 8, 2, 2], Some(&w(8)), spec);
    let s = b.add(up, a, Activation::Relu);
    let o = b.conv2d(
        "out",
        s,
        &w(4 * 8 * 9),
        [4, 8, 3, 3],
        Some(&w(4)),
        ConvSpec::same(3),
    );
    let out = b.add(x, o, Activation::None);
    b.finish(out).expect("valid model")
}

/// A 4-byte aligned copy of `bytes` (as a C caller or an mmap provides): the buffer and the
/// offset of the copy in it.
fn aligned(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; bytes.len() + 3];
    let off = buf.as_ptr().align_offset(4);
    buf[off..off + bytes.len()].copy_from_slice(bytes);
    (buf, off)
}

#[test]
fn plans_in_caller_memory_equal_owned_plans() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let bytes = small_model(&mut rng);
    let (buf, off) = aligned(&bytes);
    let m = Model::parse(&buf[off..off + bytes.len()]).unwrap();
    let e = Engine::new(m);
    let n = m.n_values();
    for (h, w) in [(2, 2), (8, 6), (34, 20)] {
        let owned = e.plan(h, w).unwrap();
        let mut shapes = vec![Shape::default(); n];
        let mut offsets = vec![0usize; n];
        let mut work = vec![0usize; n * crate::graph::PLAN_WORK_PER_VALUE];
        let r = e
            .plan_in(h, w, &mut shapes, &mut offsets, &mut work)
            .unwrap();
        assert_eq!(r.scratch_len, owned.scratch_len);
        assert_eq!(r.shapes, &owned.shapes[..]);
        assert_eq!(r.offsets, &owned.offsets[..]);
    }
    let mut short = vec![Shape::default(); n - 1];
    let mut offsets = vec![0usize; n];
    let mut work = vec![0usize; n * crate::graph::PLAN_WORK_PER_VALUE];
    assert!(e
        .plan_in(8, 8, &mut short, &mut offsets, &mut work)
        .is_err());
}

#[test]
fn tile_rows_from_row_windows_equal_the_whole_frame_call() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let bytes = small_model(&mut rng);
    let (buf, off) = aligned(&bytes);
    let m = Model::parse(&buf[off..off + bytes.len()]).unwrap();
    let d = Denoiser::new(Engine::new(m));
    let n = m.n_values();
    let levels = Levels {
        black: [3.0, 4.0, 5.0, 6.0],
        white: 1023.0,
    };
    let noise = NoiseParams {
        k: 0.01,
        sigma2: 1e-4,
    };
    for case in 0..24 {
        let cfa = CfaPhase::ALL[case % 4];
        let width = rng.random_range(2..40);
        let height = rng.random_range(2..50);
        let stride = width + rng.random_range(0..3);
        let layout = FrameLayout {
            width,
            height,
            stride,
            cfa,
        };
        let opts = TileOptions {
            tile: rng.random_range(1..12),
            halo: if case % 3 == 0 {
                Some(rng.random_range(0..4))
            } else {
                None
            },
        };
        let input: Vec<u16> = (0..(height - 1) * stride + width)
            .map(|_| rng.random_range(0..1024))
            .collect();
        let mut shapes = vec![Shape::default(); n];
        let mut offsets = vec![0usize; n];
        let mut work = vec![0usize; n * crate::graph::PLAN_WORK_PER_VALUE];
        let fp = d
            .prepare_in(
                &layout,
                &levels,
                noise,
                &opts,
                &mut shapes,
                &mut offsets,
                &mut work,
            )
            .unwrap();
        let owned = d.prepare(&layout, &levels, noise, &opts).unwrap();
        assert_eq!(fp.grid, owned.grid);
        assert_eq!(fp.scratch_len(), owned.scratch_len());
        let mut run_shapes = vec![Shape::default(); n];
        let mut scratch = vec![0f32; fp.scratch_len()];
        let mut want = vec![0u16; input.len()];
        d.denoise_with(
            &fp,
            &input,
            &layout,
            &mut want,
            &layout,
            &mut run_shapes,
            &mut scratch,
        )
        .unwrap();
        // The owned plan gives the same frame.
        let mut again = vec![0u16; input.len()];
        d.denoise_with(
            &owned,
            &input,
            &layout,
            &mut again,
            &layout,
            &mut run_shapes,
            &mut scratch,
        )
        .unwrap();
        assert_eq!(want, again);
        // Tile rows from exactly the rows they read, into buffers holding only their rows.
        let mut next = 0;
        for row in 0..fp.grid.rows() {
            let (o0, o1) = fp.grid.band_output_rows(&layout, row);
            let (i0, i1) = fp.grid.band_input_rows(&layout, row);
            assert_eq!(o0, next, "tile rows must tile the frame");
            assert!(
                i0 <= o0 && o1 <= i1 && i1 <= height,
                "{case}: {i0}..{i1} {o0}..{o1}"
            );
            next = o1;
            let window = &input[i0 * stride..(i1 - 1) * stride + width];
            let out_stride = width + 1;
            let out_layout = FrameLayout {
                stride: out_stride,
                ..layout
            };
            let mut band = vec![0u16; (o1 - o0) * out_stride];
            d.denoise_band_rows(
                &fp,
                window,
                i0,
                &layout,
                row,
                &mut band,
                o0,
                &out_layout,
                &mut run_shapes,
                &mut scratch,
            )
            .unwrap();
            for y in o0..o1 {
                assert_eq!(
                    &band[(y - o0) * out_stride..][..width],
                    &want[y * stride..][..width],
                    "case {case} {cfa:?} {width}x{height} tile row {row}, raw row {y}"
                );
            }
            // A window missing its last row is refused.
            if i1 - i0 > 1 {
                let short = &input[i0 * stride..(i1 - 2) * stride + width];
                assert!(d
                    .denoise_band_rows(
                        &fp,
                        short,
                        i0,
                        &layout,
                        row,
                        &mut band,
                        o0,
                        &out_layout,
                        &mut run_shapes,
                        &mut scratch,
                    )
                    .is_err());
            }
        }
        assert_eq!(next, height);
        assert!(d
            .denoise_band_rows(
                &fp,
                &input,
                0,
                &layout,
                fp.grid.rows(),
                &mut want,
                0,
                &layout,
                &mut run_shapes,
                &mut scratch,
            )
            .is_err());
    }
}

/// A random graph of pointwise convolutions and adds whose inputs reach back to any earlier
/// value, so many values stay alive at once (skip connections), with channel counts 4 or 8.
fn skip_model(rng: &mut impl Rng, nodes: usize) -> Vec<u8> {
    let mut b = ModelBuilder::new("skip model");
    let x = b.input();
    let mut values = vec![(x, 4usize)];
    for i in 0..nodes {
        let (a, ca) = values[rng.random_range(0..values.len())];
        let same: Vec<_> = values.iter().filter(|v| v.1 == ca).copied().collect();
        if rng.random_bool(0.4) && same.len() > 1 {
            let (o, _) = same[rng.random_range(0..same.len())];
            values.push((b.add(a, o, Activation::None), ca));
        } else {
            let co = if rng.random_bool(0.5) { 4 } else { 8 };
            let w: Vec<f32> = (0..co * ca).map(|_| rng.random_range(-0.3..0.3)).collect();
            let y = b.conv2d(
                &format!("c{i}"),
                a,
                &w,
                [co, ca, 1, 1],
                None,
                ConvSpec::same(1),
            );
            values.push((y, co));
        }
    }
    let (last, c) = *values.last().unwrap();
    let w: Vec<f32> = (0..4 * c).map(|_| rng.random_range(-0.3..0.3)).collect();
    let o = b.conv2d("out", last, &w, [4, c, 1, 1], None, ConvSpec::same(1));
    let out = b.add(x, o, Activation::None);
    b.finish(out).expect("valid model")
}

/// The arena plan (without fusion) is what greedy-by-size placement defines: values taken
/// largest first (lowest index among equals), each at the lowest offset, among 0 and the ends
/// of the values already placed that live at the same time as it, where it overlaps none of
/// them (checked by brute force, the planner's former O(n^3) form); and no two values alive at
/// once share memory.
#[test]
fn plans_are_lowest_first_fit_greedy_by_size() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for case in 0..12 {
        let bytes = skip_model(&mut rng, 5 + 15 * case);
        let (buf, off) = aligned(&bytes);
        let m = Model::parse(&buf[off..off + bytes.len()]).unwrap();
        let e = Engine::new(m).with_fusion(false);
        let (h, w) = (rng.random_range(1..9), rng.random_range(1..9));
        let plan = e.plan(h, w).unwrap();
        let n = m.n_values();
        let mut last = vec![0usize; n];
        for i in 0..m.n_nodes() {
            let node = m.node(i);
            for &v in &node.inputs[..node.n_inputs as usize] {
                last[v as usize] = i;
            }
        }
        last[m.info().output_value as usize] = usize::MAX;
        let born = |v: usize| v.saturating_sub(1);
        let dies = |v: usize| last[v].max(born(v));
        let live_together = |a: usize, b: usize| born(a) <= dies(b) && born(b) <= dies(a);
        let size = |v: usize| crate::graph::slot_len(m.value_type(v), &plan.shapes[v]);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| size(b).cmp(&size(a)).then(a.cmp(&b)));
        let mut end = 0;
        for (k, &v) in order.iter().enumerate() {
            let earlier: Vec<usize> = order[..k]
                .iter()
                .copied()
                .filter(|&u| live_together(u, v))
                .collect();
            let fits = |c: usize| {
                earlier
                    .iter()
                    .all(|&u| c >= plan.offsets[u] + size(u) || plan.offsets[u] >= c + size(v))
            };
            let want = core::iter::once(0)
                .chain(earlier.iter().map(|&u| plan.offsets[u] + size(u)))
                .filter(|&c| fits(c))
                .min()
                .unwrap();
            assert_eq!(plan.offsets[v], want, "case {case}: value {v}");
            end = end.max(want + size(v));
        }
        assert_eq!(plan.scratch_len, end, "case {case}");
    }
}

/// Above `GREEDY_PLAN_MAX_VALUES` the planner gives each value its own slot in value order
/// (linear time for hostile graphs): offsets are the running sum of the sizes, so no two
/// values share memory.
#[test]
fn large_plans_give_each_value_its_own_slot() {
    use crate::graph::GREEDY_PLAN_MAX_VALUES;
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    let bytes = skip_model(&mut rng, GREEDY_PLAN_MAX_VALUES + 10);
    let (buf, off) = aligned(&bytes);
    let m = Model::parse(&buf[off..off + bytes.len()]).unwrap();
    assert!(m.n_values() > GREEDY_PLAN_MAX_VALUES + 1);
    let e = Engine::new(m).with_fusion(false);
    let plan = e.plan(3, 5).unwrap();
    let mut end = 0;
    for v in 0..m.n_values() {
        assert_eq!(plan.offsets[v], end, "value {v}");
        end += crate::graph::slot_len(m.value_type(v), &plan.shapes[v]);
    }
    assert_eq!(plan.scratch_len, end);
}

/// Models over `STREAM_MAX_NODES` nodes do not stream (their stream planning would be
/// quadratic); tiles run them.
#[test]
fn models_over_the_stream_node_limit_run_in_tiles_only() {
    use crate::stream::STREAM_MAX_NODES;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let bytes = skip_model(&mut rng, STREAM_MAX_NODES + 1);
    let (buf, off) = aligned(&bytes);
    let m = Model::parse(&buf[off..off + bytes.len()]).unwrap();
    assert!(m.n_nodes() > STREAM_MAX_NODES);
    let e = Engine::new(m);
    assert!(!e.can_stream());
    assert!(e.stream_plan(8, 8, 4, 1).is_err());
    assert!(e.plan(8, 8).is_ok());
}
