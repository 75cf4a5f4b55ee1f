//! `denoise-raw bench`: warm latency, throughput, arithmetic rate and peak memory of the native
//! runtime (or ONNX Runtime, `--backend ort`) on a synthetic frame. The backend column says what
//! runs: native f32 / f32 with f16 weights / int8, ONNX Runtime fp32 or int8 QDQ (the export of
//! an int8 model).

use std::time::Instant;

use clap::Args;
use rawnr_core::bayer::{pack_region_rows, CfaPhase, FrameLayout, Levels, PixelTransform};
use rawnr_core::format::{DType, Model, Precision};
use rawnr_core::noise::Affine;
use rawnr_engine::denoiser::{Cut, DenoiseOptions, Denoiser};
use rawnr_engine::graph::{Engine, Shape};

use crate::{model, CliError, EngineArgs};

/// Options of `denoise-raw bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Frame width in raw pixels.
    #[arg(long, default_value_t = 3472)]
    width: usize,
    /// Frame height in raw pixels.
    #[arg(long, default_value_t = 4624)]
    height: usize,
    /// Timed runs after one warm-up run.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print only the table row (to append rows of several runs).
    #[arg(long)]
    no_header: bool,
    /// Benchmark on this DNG's active area instead of a synthetic frame.
    #[arg(long)]
    input: Option<std::path::PathBuf>,
    /// Also time every node on one tile region (one thread, native backend) and print the
    /// time per op class.
    #[arg(long)]
    profile: bool,
    /// With the profile, also print the time of every node (or fused chain), in network
    /// order, with its input and output shapes (implies --profile).
    #[arg(long)]
    profile_nodes: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}

/// What the native engine computes in: `int8` (W8A8 nodes), `f16 weights` or `f32`.
fn native_precision(m: &Model<'_>) -> &'static str {
    match m.precision() {
        Precision::Int8 => "int8",
        Precision::F16Weights => "f32 (f16 weights)",
        Precision::F32 => "f32",
    }
}

/// A deterministic textured 10-bit frame with noise-like detail.
fn synthetic(width: usize, height: usize) -> Vec<u16> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..width * height)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (x, y) = ((i % width) as f32, (i / width) as f32);
            let base = 300.0 + 200.0 * ((x * 0.01).sin() * (y * 0.013).cos());
            (base + (state % 64) as f32) as u16
        })
        .collect()
}

/// Runs the benchmark and prints one table row.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    args.engine.apply_isa()?;
    let store = model::load(args.engine.single_model()?)?;
    let m = store.model();
    let d = Denoiser::new(Engine::new(m).with_fusion(!args.engine.no_fusion));
    let (input, layout, levels) = match &args.input {
        Some(p) => {
            let f = rawnr_io::dng::read(p)?;
            let (x, y, w, h) = f.active;
            let data: Vec<u16> = (y..y + h)
                .flat_map(|r| f.data[r * f.width + x..r * f.width + x + w].iter().copied())
                .collect();
            (data, FrameLayout::new(w, h, f.cfa), f.levels)
        }
        None => (
            synthetic(args.width, args.height),
            FrameLayout::new(args.width, args.height, CfaPhase::Rggb),
            Levels::uniform(64.0, 1023.0),
        ),
    };
    let mut out = vec![0u16; input.len()];
    // Speed does not depend on the noise level: the model's own profile at ISO 1600.
    let noise: rawnr_core::noise::ChannelNoise = d
        .default_noise(1600.0)
        .map_err(|source| CliError::Runtime {
            context: "noise parameters".into(),
            source,
        })?
        .into();
    let threads = args.engine.threads();
    let opts = args.engine.tiles(&d, threads)?;
    let rt = |source| CliError::Runtime {
        context: "bench".into(),
        source,
    };
    let fp = d.prepare(&layout, &levels, noise, &opts).map_err(rt)?;
    // Row-streamed stripes (native default) or square tiles.
    let cut = match args.engine.backend {
        crate::Backend::Native => args.engine.cut(&d, &layout, threads)?,
        crate::Backend::Ort => Cut::Tiles(opts),
    };
    let streamed = match &cut {
        Cut::Stripes(so) => Some(d.prepare_streamed(&layout, so).map_err(rt)?),
        Cut::Tiles(_) => None,
    };
    // Arithmetic of the tiles or stripes actually run (halo overlap included).
    let mut shapes = vec![Shape::default(); m.n_values()];
    let mut macs = 0u64;
    let regions: Vec<(usize, usize)> = match &streamed {
        Some((grid, _)) => grid
            .band_tiles(0)
            .map(|t| (grid.padded_h, t.region.3))
            .collect(),
        None => (0..fp.grid.rows())
            .flat_map(|r| fp.grid.band_tiles(r).collect::<Vec<_>>())
            .map(|t| (t.region.2, t.region.3))
            .collect(),
    };
    for &(h, w) in &regions {
        d.engine().infer_shapes(h, w, &mut shapes).map_err(rt)?;
        macs += d.engine().macs(&shapes);
    }
    let mut times = Vec::new();
    #[cfg(feature = "ort")]
    let mut ort_net = match args.engine.backend {
        crate::Backend::Ort => Some(crate::ort_backend::OrtNet::new(
            &m.at_noise_band(fp.noise_band()).map_err(rt)?,
            threads,
            args.engine.ep,
            args.engine.qdq_weights,
        )?),
        crate::Backend::Native => None,
    };
    for i in 0..=args.runs.max(1) {
        let t0 = Instant::now();
        match args.engine.backend {
            crate::Backend::Native => {
                let run = DenoiseOptions {
                    cut,
                    threads,
                    progress: None,
                };
                d.denoise(&input, &layout, &mut out, &layout, &levels, noise, &run)
                    .map_err(rt)?
            }
            #[cfg(feature = "ort")]
            crate::Backend::Ort => {
                let net = ort_net
                    .as_mut()
                    .ok_or_else(|| CliError::Usage("ONNX Runtime session missing".into()))?;
                d.denoise_via(
                    &fp,
                    &input,
                    &layout,
                    &mut out,
                    &layout,
                    |x, h, w, y| net.run(x, h, w, y),
                    &|_, _| {},
                )
                .map_err(|e| match e {
                    rawnr_engine::denoiser::ViaError::Runtime(source) => rt(source),
                    rawnr_engine::denoiser::ViaError::Backend(e) => {
                        CliError::Usage(format!("ONNX Runtime: {e}"))
                    }
                })?
            }
            #[cfg(not(feature = "ort"))]
            crate::Backend::Ort => {
                return Err(CliError::Usage(
                    "--backend ort: this build has no ONNX Runtime backend; build with `--features ort`"
                        .into(),
                ))
            }
        }
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mp = (layout.width * layout.height) as f64 / 1e6;
    let frame_bytes = (input.len() * 2 * 2) as f64;
    if !args.no_header {
        println!("| backend | model | frame | threads | tile/halo (packed px) | median s | MP/s | GMAC/run | GMAC/s | scratch MiB | peak RSS MiB | RSS - frames MiB |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    }
    let rss = peak_rss().map(|b| b as f64 / (1 << 20) as f64);
    println!(
        "| {} | {} | {}x{} | {} | {} | {:.3} | {:.2} | {:.1} | {:.2} | {} | {} | {} |",
        match args.engine.backend {
            crate::Backend::Native => format!(
                "native {} ({})",
                native_precision(&m),
                d.engine().kernels().name
            ),
            #[cfg(feature = "ort")]
            crate::Backend::Ort => format!(
                "ONNX Runtime 1.32 {}{} ({:?} EP)",
                rawnr_onnx::graph_precision(&m, rawnr_onnx::Precision::F32),
                if m.is_int8() {
                    match args.engine.qdq_weights.resolve(args.engine.ep) {
                        rawnr_onnx::QdqWeights::U8Offset => ", u8 weights",
                        rawnr_onnx::QdqWeights::S8 => ", s8 weights",
                    }
                } else {
                    ""
                },
                args.engine.ep
            ),
            #[cfg(not(feature = "ort"))]
            crate::Backend::Ort => "ONNX Runtime".to_string(),
        },
        m.info().name_str(),
        layout.width,
        layout.height,
        threads,
        match &streamed {
            Some((grid, p)) => format!("stripe {}/{} step {}", grid.tile, grid.halo, p.step),
            None => format!("{}/{}", fp.grid.tile, fp.grid.halo),
        },
        median,
        mp / median,
        macs as f64 / 1e9,
        macs as f64 / 1e9 / median,
        match args.engine.backend {
            // The native runtime's whole working memory: one arena per worker.
            crate::Backend::Native => format!(
                "{:.1}",
                match &streamed {
                    Some((_, p)) => p.scratch_len * 4 * threads.min(regions.len()),
                    None => fp.scratch_len() * 4 * threads,
                } as f64
                    / (1 << 20) as f64
            ),
            crate::Backend::Ort => "n/a".into(),
        },
        rss.map_or("n/a".into(), |r| format!("{r:.0}")),
        rss.map_or("n/a".into(), |r| format!(
            "{:.0}",
            r - frame_bytes / (1 << 20) as f64
        )),
    );
    if args.profile || args.profile_nodes {
        let (runs, each) = (args.runs.max(1), args.profile_nodes);
        match &streamed {
            Some((_, plan)) => profile_stream(d.engine(), plan, runs, each).map_err(rt)?,
            None => {
                let region = fp.grid.tile + 2 * fp.grid.halo;
                profile_nodes(d.engine(), region, runs, each).map_err(rt)?;
            }
        }
    }
    Ok(())
}

/// The op class of node `i` for the profile: op, weight type and convolution kind.
fn node_class(engine: &Engine<'_>, i: usize) -> String {
    use rawnr_engine::ops::NodeClass;
    let m = engine.model();
    let n = m.node(i);
    match engine.node_class(i) {
        class @ (NodeClass::Pointwise
        | NodeClass::Depthwise
        | NodeClass::Dense
        | NodeClass::Transposed) => {
            let ty = match m.tensor(n.weight as usize).dtype {
                DType::I8 => "int8",
                DType::F16 => "f16w",
                _ => "f32",
            };
            let (k, st) = (n.kernel[0], n.stride[0]);
            format!("{} {ty} {k}x{k}/{st}", class.name())
        }
        _ => {
            let u8 = matches!(m.value_type(i + 1), rawnr_core::format::ValueType::U8(_));
            format!("{:?}{}", n.op, if u8 { " u8" } else { "" })
        }
    }
}

/// Time of one op class in a profile.
struct ClassTime {
    class: String,
    secs: f64,
    macs: u64,
    /// Node calls and rows computed (streamed runs).
    calls: Option<(usize, usize)>,
}

impl ClassTime {
    /// The GMAC/s cell ("-" without MACs).
    fn rate(&self) -> String {
        if self.macs > 0 {
            format!("{:.1}", self.macs as f64 / 1e9 / self.secs)
        } else {
            "-".into()
        }
    }

    /// The calls and rows-per-call cells (with their separators), empty without calls.
    fn calls_cells(&self) -> String {
        match self.calls {
            Some((c, n)) => format!(" {c} | {:.1} |", n as f64 / c.max(1) as f64),
            None => String::new(),
        }
    }
}

/// Prints a profile's op classes, slowest first, with their share of `total` seconds and their
/// GMAC/s (and calls and rows per call where known), then the total.
fn print_profile(what: &str, mut rows: Vec<ClassTime>, total: f64, total_macs: u64) {
    rows.sort_by(|a, b| b.secs.total_cmp(&a.secs));
    let streamed = rows.iter().any(|r| r.calls.is_some());
    println!();
    println!("Per-node profile, {what}:");
    if streamed {
        println!("| op class | ms | share | GMAC | GMAC/s | calls | rows/call |");
        println!("|---|---|---|---|---|---|---|");
    } else {
        println!("| op class | ms | share | GMAC | GMAC/s |");
        println!("|---|---|---|---|---|");
    }
    for r in &rows {
        println!(
            "| {} | {:.2} | {:.1}% | {:.3} | {} |{}",
            r.class,
            r.secs * 1e3,
            100.0 * r.secs / total,
            r.macs as f64 / 1e9,
            r.rate(),
            r.calls_cells(),
        );
    }
    println!(
        "| total | {:.2} | 100% | {:.3} | {:.1} |{}",
        total * 1e3,
        total_macs as f64 / 1e9,
        total_macs as f64 / 1e9 / total,
        if streamed { " | |" } else { "" }
    );
}

/// Time of one node (or fused chain) in a profile.
struct NodeTime {
    /// The (first) model node.
    node: usize,
    /// Input and output value shapes.
    shapes: (Shape, Shape),
    /// Its op class and time.
    time: ClassTime,
}

/// Prints every node's time, in network order, with its share of `total` seconds.
fn print_nodes(rows: &[NodeTime], total: f64) {
    let streamed = rows.iter().any(|r| r.time.calls.is_some());
    println!();
    println!("Per node (network order):");
    let head = "| node | op | input | output | ms | share | GMAC/s |";
    if streamed {
        println!("{head} calls | rows/call |");
        println!("|---|---|---|---|---|---|---|---|---|");
    } else {
        println!("{head}");
        println!("|---|---|---|---|---|---|---|");
    }
    let shape = |s: &Shape| format!("{}x{}x{}", s.c, s.h, s.w);
    for r in rows {
        let t = &r.time;
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.1}% | {} |{}",
            r.node,
            t.class,
            shape(&r.shapes.0),
            shape(&r.shapes.1),
            t.secs * 1e3,
            100.0 * t.secs / total,
            t.rate(),
            t.calls_cells(),
        );
    }
}

/// Times every node call of a streamed run over one stripe region (`plan`'s size, one thread,
/// fastest of `runs` per node) and prints milliseconds, share, GMAC/s, calls and rows per call
/// per op class (a pointwise node fused with its add counts as the pointwise node; a node
/// cloned to run late counts twice), then, with `each`, per node.
fn profile_stream(
    engine: &Engine<'_>,
    plan: &rawnr_engine::stream::StreamPlan,
    runs: usize,
    each: bool,
) -> Result<(), rawnr_core::Error> {
    let m = engine.model();
    let (h, w) = plan.input;
    let mut shapes = vec![Shape::default(); m.n_values()];
    engine.infer_shapes(h, w, &mut shapes)?;
    let mut scratch = vec![0f32; plan.scratch_len];
    // Input rows packed from a synthetic raw frame of the region's size, as a real run packs
    // them (the first convolution's calls include the packing).
    let layout = FrameLayout::new(2 * w, 2 * h, CfaPhase::Rggb);
    let frame = synthetic(layout.width, layout.height);
    let levels = Levels::uniform(64.0, 1023.0);
    let tf = PixelTransform::forward(&levels, Affine::IDENTITY, 1.0);
    let n = m.n_nodes();
    let mut best = vec![f64::MAX; n];
    let (mut calls, mut rows) = (vec![0usize; n], vec![0usize; n]);
    for _ in 0..=runs {
        let mut times = vec![0f64; n];
        calls.fill(0);
        rows.fill(0);
        let mut t = Instant::now();
        engine.run_streamed_with_hook(
            plan,
            w,
            &mut scratch,
            &mut |r0, r1, planes| {
                pack_region_rows(&frame, 0, &layout, &tf, r0, 0, r1 - r0, w, planes)
            },
            &mut |_, _, _| Ok(()),
            &mut |i, r| {
                let now = Instant::now();
                times[i] += (now - t).as_secs_f64();
                calls[i] += 1;
                rows[i] += r;
                t = now;
            },
        )?;
        for (b, t) in best.iter_mut().zip(&times) {
            *b = b.min(*t);
        }
    }
    // (class, seconds, MACs, calls, rows)
    let mut classes: Vec<(String, f64, u64, usize, usize)> = Vec::new();
    let mut nodes = Vec::new();
    let mut total_macs = 0u64;
    for i in (0..n).filter(|&i| calls[i] > 0) {
        let x = shapes[m.node(i).inputs[0] as usize];
        let macs = engine.node_macs(i, &shapes) * rows[i] as u64 / shapes[i + 1].h.max(1) as u64;
        total_macs += macs;
        let class = node_class(engine, i);
        // An add that never ran on its own ran fused into the pointwise node before it.
        let fused_add =
            i + 1 < n && calls[i + 1] == 0 && m.node(i + 1).op == rawnr_core::format::OpKind::Add;
        nodes.push(NodeTime {
            node: i,
            shapes: (x, shapes[i + 1]),
            time: ClassTime {
                class: if fused_add {
                    format!("{class} + add")
                } else {
                    class.clone()
                },
                secs: best[i],
                macs,
                calls: Some((calls[i], rows[i])),
            },
        });
        match classes.iter_mut().find(|c| c.0 == class) {
            Some(c) => {
                c.1 += best[i];
                c.2 += macs;
                c.3 += calls[i];
                c.4 += rows[i];
            }
            None => classes.push((class, best[i], macs, calls[i], rows[i])),
        }
    }
    let total: f64 = (0..n).filter(|&i| calls[i] > 0).map(|i| best[i]).sum();
    let rows: Vec<ClassTime> = classes
        .into_iter()
        .map(|(class, secs, macs, c, r)| ClassTime {
            class,
            secs,
            macs,
            calls: Some((c, r)),
        })
        .collect();
    print_profile(
        &format!("one streamed {h}x{w} stripe region, one thread, fastest of {runs}"),
        rows,
        total,
        total_macs,
    );
    if each {
        print_nodes(&nodes, total);
    }
    Ok(())
}

/// Times every node of `engine` on a `region x region` tile (fastest of `runs` per node) and
/// prints milliseconds, share and GMAC/s per op class, then, with `each`, per node or fused
/// chain.
fn profile_nodes(
    engine: &Engine<'_>,
    region: usize,
    runs: usize,
    each: bool,
) -> Result<(), rawnr_core::Error> {
    let m = engine.model();
    let plan = engine.plan(region, region)?;
    let mut scratch = vec![0f32; plan.scratch_len];
    let n = m.n_nodes();
    let mut best = vec![f64::MAX; n];
    for _ in 0..=runs {
        let mut t = Instant::now();
        let mut times = vec![0f64; n];
        engine.run_with_hook(&plan, &plan.shapes, &mut scratch, &mut |i| {
            let now = Instant::now();
            times[i] = (now - t).as_secs_f64();
            t = now;
        })?;
        for (b, t) in best.iter_mut().zip(&times) {
            *b = b.min(*t);
        }
    }
    let mut classes: Vec<(String, f64, u64)> = Vec::new();
    let mut nodes = Vec::new();
    let mut i = 0;
    while i < n {
        // A fused chain is timed as a whole (depthwise + pointwise [+ add]).
        let len = engine.fused_nodes(&plan, i);
        let macs: u64 = (i..i + len)
            .map(|j| engine.node_macs(j, &plan.shapes))
            .sum();
        let time: f64 = best[i..i + len].iter().sum();
        let mut class = node_class(engine, i);
        if len > 1 {
            class = format!("fused {class}");
            for j in i + 1..i + len {
                class.push_str(match m.node(j).op {
                    rawnr_core::format::OpKind::Quantize => " + quantize",
                    rawnr_core::format::OpKind::Add => " + add",
                    _ => " + pointwise",
                });
            }
        }
        nodes.push(NodeTime {
            node: i,
            shapes: (
                plan.shapes[m.node(i).inputs[0] as usize],
                plan.shapes[i + len],
            ),
            time: ClassTime {
                class: class.clone(),
                secs: time,
                macs,
                calls: None,
            },
        });
        match classes.iter_mut().find(|c| c.0 == class) {
            Some(c) => {
                c.1 += time;
                c.2 += macs;
            }
            None => classes.push((class, time, macs)),
        }
        i += len;
    }
    let total: f64 = best.iter().sum();
    let rows: Vec<ClassTime> = classes
        .into_iter()
        .map(|(class, secs, macs)| ClassTime {
            class,
            secs,
            macs,
            calls: None,
        })
        .collect();
    print_profile(
        &format!("one {region}x{region} tile region, one thread, fastest of {runs}"),
        rows,
        total,
        engine.macs(&plan.shapes),
    );
    if each {
        print_nodes(&nodes, total);
    }
    Ok(())
}
