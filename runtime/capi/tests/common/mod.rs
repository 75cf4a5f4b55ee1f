//! Helpers of the C API tests: paths, PGM files, the Rust reference denoiser, building and
//! running the C examples.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rawnr_core::bayer::{CfaPhase, FrameLayout, Levels};
use rawnr_core::format::Model;
use rawnr_core::noise::NoiseParams;
use rawnr_engine::denoiser::{DenoiseOptions, Denoiser, TileOptions};
use rawnr_engine::graph::Engine;

/// Repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/data` beside the repository, or `RAWNR_SHARED_DATA`.
pub fn shared_data() -> PathBuf {
    std::env::var_os("RAWNR_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"))
}

/// The shipped PMRID model.
pub fn model_path() -> PathBuf {
    repo_root().join("models/pmrid.rnm")
}

/// The real GRBG strip (black 25, white 1023).
pub fn real_raw() -> PathBuf {
    shared_data().join("Halide/bayer_2592_304.pgm")
}

/// A tiny valid model (size multiple 2, global residual) with fixed pseudo-random weights:
/// cheap enough to run many frames under valgrind.
pub fn tiny_model() -> Vec<u8> {
    use rawnr_core::builder::{ConvSpec, ModelBuilder};
    use rawnr_core::format::Activation;
    let mut seed = 0x2545_f491_u32;
    let mut w = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.5
            })
            .collect()
    };
    let mut b = ModelBuilder::new("tiny test model");
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
        ConvSpec::same(3).stride(2).act(Activation::Relu),
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
        None,
        ConvSpec::same(3),
    );
    let out = b.add(x, o, Activation::None);
    b.finish(out).expect("valid model")
}

/// A scratch folder for one test.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("capi")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A 16-bit frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u16>,
}

impl Frame {
    /// The rectangle at (`x`, `y`) (even offsets keep the CFA phase).
    pub fn crop(&self, x: usize, y: usize, width: usize, height: usize) -> Frame {
        let mut data = Vec::with_capacity(width * height);
        for r in y..y + height {
            data.extend_from_slice(&self.data[r * self.width + x..][..width]);
        }
        Frame {
            width,
            height,
            data,
        }
    }
}

/// Reads a binary PGM (16-bit big-endian, or 8-bit).
pub fn read_pgm(path: &Path) -> Frame {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i] == b'#' {
            while bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P5", "{}", path.display());
    let (width, height, maxval): (usize, usize, u32) = (
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
        fields[3].parse().unwrap(),
    );
    let body = &bytes[i + 1..];
    let data: Vec<u16> = if maxval > 255 {
        body.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    } else {
        body.iter().map(|&b| b as u16).collect()
    };
    assert_eq!(data.len(), width * height, "{}", path.display());
    Frame {
        width,
        height,
        data,
    }
}

/// Writes a 16-bit binary PGM.
pub fn write_pgm(path: &Path, f: &Frame) {
    let mut out = format!("P5\n{} {}\n65535\n", f.width, f.height).into_bytes();
    for v in &f.data {
        out.extend_from_slice(&v.to_be_bytes());
    }
    std::fs::write(path, out).unwrap();
}

/// The model bytes in 4-byte aligned memory.
pub struct AlignedModel {
    words: Vec<u32>,
    len: usize,
}

impl AlignedModel {
    pub fn load(path: &Path) -> Self {
        let bytes = std::fs::read(path).unwrap();
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        for (i, chunk) in bytes.chunks(4).enumerate() {
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            words[i] = u32::from_le_bytes(w);
        }
        AlignedModel {
            words,
            len: bytes.len(),
        }
    }
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: u32 words viewed as their bytes, within the allocation.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

/// Denoises with the Rust API (the reference the C programs are compared with).
pub fn rust_denoise(
    model: &[u8],
    frame: &Frame,
    cfa: CfaPhase,
    levels: Levels,
    iso: f32,
    opts: TileOptions,
) -> Frame {
    let m = Model::parse(model).unwrap();
    let d = Denoiser::new(Engine::new(m));
    let layout = FrameLayout::new(frame.width, frame.height, cfa);
    let noise: NoiseParams = d.default_noise(iso).unwrap();
    let mut out = vec![0u16; frame.data.len()];
    d.denoise(
        &frame.data,
        &layout,
        &mut out,
        &layout,
        &levels,
        noise,
        &DenoiseOptions::tiles(opts, 2),
    )
    .unwrap();
    Frame {
        width: frame.width,
        height: frame.height,
        data: out,
    }
}

/// The first differing pixel of two frames, for messages.
pub fn first_difference(a: &Frame, b: &Frame) -> Option<(usize, usize, u16, u16)> {
    assert_eq!((a.width, a.height), (b.width, b.height));
    a.data
        .iter()
        .zip(&b.data)
        .position(|(x, y)| x != y)
        .map(|i| (i % a.width, i / a.width, a.data[i], b.data[i]))
}

/// rawnr's static library as built for this test run. `cargo test` builds the library with
/// all its crate types (the staticlib included) next to the test binaries, in
/// `<target dir>/<profile>/deps`; a plain `cargo build` leaves it one level up. When neither is
/// there, it is built with cargo into the same target directory and profile.
pub fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let profile_dir = deps.parent().unwrap();
    for cand in [
        deps.join("librawnr_capi.a"),
        profile_dir.join("librawnr_capi.a"),
    ] {
        if cand.exists() {
            return cand;
        }
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let profile = profile_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "-p", "rawnr-capi", "--lib"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(repo_root());
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        p => {
            cmd.args(["--profile", p]);
        }
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "cargo build -p rawnr-capi failed");
    let lib = profile_dir.join("librawnr_capi.a");
    assert!(lib.exists(), "{} missing after cargo build", lib.display());
    lib
}

/// How a C program is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// -O1 -g.
    Plain,
    /// -O1 -g -fsanitize=address.
    Asan,
}

/// Compiles `firmware-examples/<name>.c` with `gcc -Wall -Wextra -Werror` against the static
/// library into `dir`.
pub fn build_example(name: &str, dir: &Path, build: Build) -> PathBuf {
    let examples = repo_root().join("firmware-examples");
    let exe = dir.join(match build {
        Build::Plain => name.to_string(),
        Build::Asan => format!("{name}_asan"),
    });
    let mut cmd = Command::new("gcc");
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .arg("-I")
        .arg(examples.join("include"));
    if build == Build::Asan {
        cmd.args(["-fsanitize=address", "-fno-omit-frame-pointer"]);
    }
    cmd.arg("-o")
        .arg(&exe)
        .arg(examples.join(format!("{name}.c")))
        .arg(static_lib())
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ]);
    let out = cmd.output().expect("gcc is needed to build the C examples");
    assert!(
        out.status.success(),
        "gcc {name}.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Runs a command and requires exit code 0; returns its output.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The options of the real strip, as the C examples take them.
pub const REAL_OPTS: [&str; 8] = [
    "--cfa", "grbg", "--black", "25", "--white", "1023", "--iso", "3200",
];

/// The levels of the real strip.
pub fn real_levels() -> Levels {
    Levels::uniform(25.0, 1023.0)
}
