//! Row streams (rows pushed as a sensor reads them out) equal the whole-frame row-streamed
//! result bit for bit: random models, frame sizes (odd, smaller than one stripe), all four CFA
//! phases, stripe widths and halos (also halos below the receptive field, where stripes
//! differ from one pass), push patterns, frame parts run by separate streams into one output,
//! and frames streamed back to back. Each output row comes out once, in order, within the
//! stated latency and the stated most rows per push.

use rand::{Rng, SeedableRng};
use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::Model;
use rawnr_core::noise::NoiseParams;
use rawnr_core::Error;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, StripeOptions};
use rawnr_engine::graph::Engine;
use rawnr_engine::row_stream::{RowStream, RowStreamBuffers};
use rawnr_tests::*;

/// Owned buffers of one stream.
struct Bufs {
    window: Vec<u16>,
    rings: Vec<f32>,
    work: Vec<f32>,
}

impl Bufs {
    fn new(s: &RowStream<'_>) -> Self {
        let z = s.sizes();
        Bufs {
            window: vec![0; z.window],
            rings: vec![0.0; z.rings],
            work: vec![0.0; z.work],
        }
    }
    fn get(&mut self) -> RowStreamBuffers<'_> {
        RowStreamBuffers {
            window: &mut self.window,
            rings: &mut self.rings,
            work: &mut self.work,
        }
    }
}

/// Streams `input` (rows `stride` apart) through `parts` streams, pushing `pattern` rows at a
/// time (cycled), into a frame with stride `stride`; checks order, latency and per-push
/// maxima on the way.
fn stream_frame(
    streams: &mut [RowStream<'_>],
    bufs: &mut [Bufs],
    input: &[u16],
    layout: &FrameLayout,
    pattern: &[usize],
    out: &mut [u16],
) {
    let (h, stride) = (layout.height, layout.stride);
    let mut next_row = 0;
    let mut returned = 0;
    let mut k = 0;
    let latency = streams[0].latency_rows();
    let mut push_out = vec![0u16; h * stride];
    while next_row < h {
        let n = pattern[k % pattern.len()].min(h - next_row);
        k += 1;
        let mut seen = None;
        for (s, b) in streams.iter_mut().zip(bufs.iter_mut()) {
            let max = s.max_output_rows(n);
            let (first, count) = s
                .push(
                    &input[next_row * stride..],
                    n,
                    stride,
                    &mut b.get(),
                    &mut push_out,
                    stride,
                )
                .unwrap();
            assert!(count <= max, "{count} rows from a push of {n} (max {max})");
            assert_eq!(first, returned, "rows come out in order");
            if let Some(prev) = seen {
                assert_eq!(prev, (first, count), "every part finishes the same rows");
            }
            seen = Some((first, count));
            let (x0, x1) = s.columns();
            for r in 0..count {
                out[(first + r) * stride + x0..(first + r) * stride + x1]
                    .copy_from_slice(&push_out[r * stride + x0..r * stride + x1]);
            }
        }
        let (_, count) = seen.unwrap();
        next_row += n;
        returned += count;
        // Every row r with min(r + latency, h) <= rows pushed is out.
        let due = if next_row == h {
            h
        } else {
            (next_row + 1).saturating_sub(latency)
        };
        assert!(
            returned >= due,
            "{returned} rows out after {next_row} pushed (latency {latency})"
        );
    }
    assert_eq!(returned, h, "every row returned once");
}

#[test]
fn row_streams_equal_the_streamed_frame_on_random_models() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let noise = NoiseParams {
        k: 1e-3,
        sigma2: 1e-6,
    };
    let mut cases = 0;
    for case in 0..30 {
        let bytes = random_model(&mut rng);
        let words = aligned(&bytes);
        let model = Model::parse(as_bytes(&words, bytes.len())).unwrap();
        let info = *model.info();
        let engine = Engine::new(model);
        if !engine.can_stream() {
            continue;
        }
        let d = Denoiser::new(engine);
        let m = info.size_multiple as usize;
        let cfa = CfaPhase::ALL[case % 4];
        let width = rng.random_range(2..(12 * m).max(40));
        let height = rng.random_range(2..(10 * m).max(40));
        let stride = width + rng.random_range(0..3);
        let layout = FrameLayout {
            width,
            height,
            stride,
            cfa,
        };
        let levels = Levels {
            black: [rng.random_range(0.0..2000.0), 1000.0, 1500.0, 500.0],
            white: 65535.0,
        };
        let input: Vec<u16> = (0..height * stride)
            .map(|_| rng.random_range(0..=65535u16))
            .collect();
        // Halo: the model's, or one size multiple (below the receptive field: stripes then
        // differ from one pass, and the stream must still equal the streamed frame).
        let halo = if case % 2 == 0 { None } else { Some(m) };
        let opts = StripeOptions {
            width: m * rng.random_range(1..4),
            halo,
            step: rng.random_range(1..12),
            min_rows: rng.random_range(1..4),
        };
        let mut reference = vec![0u16; input.len()];
        d.denoise(
            &input,
            &layout,
            &mut reference,
            &layout,
            &levels,
            noise,
            &DenoiseOptions::stripes(opts, 1),
        )
        .unwrap();
        let stripes = d.stream_stripes(&layout, &opts).unwrap();
        for parts in [1, stripes.min(2), stripes] {
            let mut streams: Vec<RowStream<'_>> = (0..parts)
                .map(|p| {
                    d.row_stream(&layout, &levels, noise, &opts, p, parts)
                        .unwrap()
                })
                .collect();
            let mut bufs: Vec<Bufs> = streams.iter().map(Bufs::new).collect();
            let patterns: [&[usize]; 3] = [&[1], &[height], &[3, 1, 7, 2, 16]];
            // Two frames back to back on the same streams with different patterns.
            for pattern in [patterns[case % 3], patterns[(case + 1) % 3]] {
                let mut out = vec![0u16; input.len()];
                stream_frame(&mut streams, &mut bufs, &input, &layout, pattern, &mut out);
                for y in 0..height {
                    let (a, b) = (
                        &reference[y * stride..][..width],
                        &out[y * stride..][..width],
                    );
                    let diff = a.iter().zip(b).filter(|(x, y)| x != y).count();
                    assert_eq!(diff, 0, "case {case}: {cfa:?} {width}x{height}, {opts:?}, {parts} parts, pattern {pattern:?}: row {y} differs in {diff} pixels");
                }
            }
            cases += 1;
        }
    }
    assert!(cases >= 30, "only {cases} streamed cases");
}

#[test]
fn pmrid_row_stream_equals_the_streamed_frame_with_bounded_memory() {
    // Real raw data (tests/fixtures/halide: 256x344, GRBG, 10-bit, stacked eight times to
    // 256x2752 so the frame is taller than PMRID's vertical reach) through PMRID f32 and int8.
    let pgm =
        rawnr_io::pgm::read(&repo_root().join("tests/fixtures/halide/bayer_small.pgm")).unwrap();
    let data: Vec<u16> = pgm.data.repeat(8);
    let layout = FrameLayout::new(pgm.width, 8 * pgm.height, CfaPhase::Grbg);
    let levels = Levels::uniform(25.0, 1023.0);
    let noise = NoiseParams {
        k: 2e-3,
        sigma2: 4e-6,
    };
    for name in ["models/pmrid.rnm", "models/pmrid-int8.rnm"] {
        let bytes = std::fs::read(repo_root().join(name)).unwrap();
        let words = aligned(&bytes);
        let model = Model::parse(as_bytes(&words, bytes.len())).unwrap();
        let d = Denoiser::new(Engine::new(model));
        // Stripes of 64 packed columns, the model's step and rows per call.
        let opts = StripeOptions {
            width: 64,
            ..StripeOptions::for_model(d.engine().model())
        };
        let mut reference = vec![0u16; data.len()];
        d.denoise(
            &data,
            &layout,
            &mut reference,
            &layout,
            &levels,
            noise,
            &DenoiseOptions::stripes(opts, 2),
        )
        .unwrap();
        let stripes = d.stream_stripes(&layout, &opts).unwrap();
        assert!(stripes >= 2);
        for parts in [1, 2, stripes] {
            let mut streams: Vec<RowStream<'_>> = (0..parts)
                .map(|p| {
                    d.row_stream(&layout, &levels, noise, &opts, p, parts)
                        .unwrap()
                })
                .collect();
            let mut bufs: Vec<Bufs> = streams.iter().map(Bufs::new).collect();
            let mut out = vec![0u16; data.len()];
            stream_frame(&mut streams, &mut bufs, &data, &layout, &[16], &mut out);
            assert!(out == reference, "{name}, {parts} parts");
            assert!(out != data, "{name}: the network changed the frame");
            // Latency and window: PMRID's vertical reach (its receptive field, in packed rows)
            // plus the schedule's batching (a few rows of the 1/16 level), not the frame.
            let s = &streams[0];
            let reach = 2 * (d.engine().model().info().receptive_field as usize + 128);
            println!(
                "{name}: {parts} parts, latency {} rows, window {} rows, sizes {:?}",
                s.latency_rows(),
                s.window_rows(),
                s.sizes()
            );
            assert!(
                s.window_rows() <= reach,
                "{name}: window {}",
                s.window_rows()
            );
            assert!(
                s.latency_rows() <= reach,
                "{name}: latency {}",
                s.latency_rows()
            );
            assert!(s.latency_rows() < layout.height);
        }
    }
}

#[test]
fn row_stream_rejects_bad_pushes_and_parts() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let bytes = random_model(&mut rng);
    let words = aligned(&bytes);
    let model = Model::parse(as_bytes(&words, bytes.len())).unwrap();
    let d = Denoiser::new(Engine::new(model));
    let layout = FrameLayout::new(64, 32, CfaPhase::Rggb);
    let levels = Levels::uniform(0.0, 1023.0);
    let noise = NoiseParams {
        k: 1e-3,
        sigma2: 1e-6,
    };
    let opts = StripeOptions::default();
    let stripes = d.stream_stripes(&layout, &opts).unwrap();
    for (p, n) in [(0, 0), (1, 1), (0, stripes + 1)] {
        assert!(matches!(
            d.row_stream(&layout, &levels, noise, &opts, p, n),
            Err(Error::BadFrame(_))
        ));
    }
    let mut s = d.row_stream(&layout, &levels, noise, &opts, 0, 1).unwrap();
    let mut b = Bufs::new(&s);
    let rows = vec![100u16; 64 * 40];
    let mut out = vec![0u16; 64 * 32];
    // Past the frame's end, short rows, short output, short buffers: errors, no panic.
    assert!(s.push(&rows, 33, 64, &mut b.get(), &mut out, 64).is_err());
    assert!(s
        .push(&rows[..64 * 3], 4, 64, &mut b.get(), &mut out, 64)
        .is_err());
    assert!(s
        .push(&rows, 32, 64, &mut b.get(), &mut out[..64], 64)
        .is_err());
    let mut short = Bufs {
        window: vec![0; 1],
        rings: vec![0.0; 1],
        work: vec![0.0; 1],
    };
    assert!(s
        .push(&rows, 1, 64, &mut short.get(), &mut out, 64)
        .is_err());
    let (first, count) = s.push(&rows, 32, 64, &mut b.get(), &mut out, 64).unwrap();
    assert_eq!((first, count), (0, 32));
}
