//! `--backend ort`: the same tiled pipeline, with each tile run by ONNX Runtime on the model's
//! ONNX export (made in memory from the `.rnm`): fp32, or for an int8 model (e.g.
//! `models/pmrid-int8.rnm`) the int8 QDQ graph, which ONNX Runtime's CPU EP runs with its own
//! integer kernels (QLinearConv etc.) and TensorRT / QNN / NNAPI take as int8.
//!
//! The library is loaded at run time (`ort`'s `load-dynamic`): from `ORT_DYLIB_PATH`, else from
//! the `onnxruntime` Python package (`pip install onnxruntime==1.32.0`, or
//! `onnxruntime-gpu` for CUDA/TensorRT) found through `python3`. An execution provider that
//! fails to register is an error naming it; nothing falls back to the CPU silently.

use std::path::PathBuf;

#[allow(unused_imports)]
use ort::ep;
use ort::session::Session;
use ort::value::TensorRef;
use rawnr_core::format::Model;

use crate::CliError;

/// Execution provider requested with `--ep`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Ep {
    /// ONNX Runtime's CPU kernels.
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
    /// NVIDIA TensorRT.
    Tensorrt,
    /// Android NNAPI.
    Nnapi,
    /// Qualcomm QNN (Hexagon NPU).
    Qnn,
    /// Apple Core ML.
    Coreml,
}

/// `--qdq-weights`: how an int8 model's QDQ export stores weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QdqWeightsArg {
    /// By execution provider and CPU ([`Ep::qdq_weights`]).
    Auto,
    /// uint8 with zero point 128.
    U8,
    /// int8 with zero point 0.
    S8,
}

impl QdqWeightsArg {
    /// The storage used on `ep`.
    pub fn resolve(self, ep: Ep) -> rawnr_onnx::QdqWeights {
        match self {
            QdqWeightsArg::Auto => ep.qdq_weights(),
            QdqWeightsArg::U8 => rawnr_onnx::QdqWeights::U8Offset,
            QdqWeightsArg::S8 => rawnr_onnx::QdqWeights::S8,
        }
    }
}

impl Ep {
    /// How an int8 model's QDQ weights are stored for this provider: symmetric int8 for the
    /// accelerators, which expect it; on the CPU EP, int8 where ONNX Runtime's u8 x s8 kernels
    /// are exact and fastest (x86-64 with VNNI: `vpdpbusd` sums in 32 bits), else offset uint8,
    /// whose u8 x u8 kernels widen before multiplying and are exact everywhere (x86 without VNNI
    /// sums u8 x s8 pairs in 16 bits with `vpmaddubsw`, which saturates). Measured on PMRID-int8
    /// on AVX-512 VNNI, 3472x4624, 2 threads: both storages give identical outputs, int8 in
    /// 2.78-2.91 s, uint8 in 4.06-4.32 s.
    pub fn qdq_weights(self) -> rawnr_onnx::QdqWeights {
        match self {
            // ONNX Runtime's kernels follow the hardware: `--isa` / `RAWNR_ISA` (rawnr's own
            // kernels) do not change this.
            Ep::Cpu if rawnr_kernels::cpu::x86_vnni() => rawnr_onnx::QdqWeights::S8,
            Ep::Cpu => rawnr_onnx::QdqWeights::U8Offset,
            _ => rawnr_onnx::QdqWeights::S8,
        }
    }
}

fn ort_err(what: &str) -> impl Fn(ort::Error) -> CliError + '_ {
    move |e| CliError::Usage(format!("ONNX Runtime: {what}: {e}"))
}

/// Where the ONNX Runtime shared library is.
pub fn library_path() -> Result<PathBuf, CliError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Ok(PathBuf::from(p));
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"])
        .output()
        .map_err(|e| CliError::Usage(format!("ONNX Runtime not found (set ORT_DYLIB_PATH or pip install onnxruntime==1.32.0): python3: {e}")))?;
    if !out.status.success() {
        return Err(CliError::Usage(
            "ONNX Runtime not found: set ORT_DYLIB_PATH to libonnxruntime (`source .ci/pyenv.sh` sets it to the one .ci/test installs), or pip install onnxruntime==1.32.0 into the python3 on PATH".into(),
        ));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("capi");
    let lib = std::fs::read_dir(&dir)
        .map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libonnxruntime.so")
                    || n == "libonnxruntime.dylib"
                    || n == "onnxruntime.dll"
            })
        })
        .min_by_key(|p| p.as_os_str().len())
        .ok_or_else(|| CliError::Usage(format!("no libonnxruntime in {}", dir.display())))?;
    Ok(lib)
}

/// An ONNX Runtime session running one model's network on tiles.
pub struct OrtNet {
    session: Session,
}

impl OrtNet {
    /// Exports `model` to ONNX (fp32; int8 QDQ for an int8 model, its weights stored as
    /// `weights` says) and opens a session with `threads` intra-op threads on `ep`.
    pub fn new(
        model: &Model<'_>,
        threads: usize,
        ep: Ep,
        weights: QdqWeightsArg,
    ) -> Result<Self, CliError> {
        let onnx = rawnr_onnx::export_with(model, rawnr_onnx::Precision::F32, weights.resolve(ep))
            .map_err(|e| CliError::Usage(format!("ONNX export: {e}")))?;
        let lib = library_path()?;
        let env = ort::init_from(&lib)
            .map_err(|e| {
                CliError::Usage(format!("{}: cannot load ONNX Runtime: {e}", lib.display()))
            })?
            .build()
            .map_err(ort_err("environment"))?;
        let missing = |f: &str| {
            CliError::Usage(format!(
                "execution provider {f}: this build lacks it (rebuild with cargo feature `{f}`)"
            ))
        };
        let dispatch: Option<ort::ep::ExecutionProviderDispatch> = match ep {
            Ep::Cpu => None,
            #[cfg(feature = "cuda")]
            Ep::Cuda => Some(ep::CUDA::default().build()),
            #[cfg(feature = "tensorrt")]
            Ep::Tensorrt => Some(ep::TensorRT::default().build()),
            #[cfg(feature = "nnapi")]
            Ep::Nnapi => Some(ep::NNAPI::default().build()),
            #[cfg(feature = "qnn")]
            Ep::Qnn => Some(ep::QNN::default().build()),
            #[cfg(feature = "coreml")]
            Ep::Coreml => Some(ep::CoreML::default().build()),
            #[allow(unreachable_patterns)]
            other => return Err(missing(&format!("{other:?}").to_lowercase())),
        };
        let mut builder = Session::builder(&env).map_err(ort_err("session"))?;
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| CliError::Usage(format!("ONNX Runtime: threads: {e}")))?;
        if let Some(d) = dispatch {
            let name = format!("{ep:?}").to_lowercase();
            builder = builder
                .with_execution_providers([d.error_on_failure()])
                .map_err(|e| {
                    CliError::Usage(format!("execution provider {name} failed to register: {e}"))
                })?;
        }
        let session = builder
            .commit_from_memory(&onnx)
            .map_err(|e| CliError::Usage(format!("ONNX Runtime: loading the model: {e}")))?;
        Ok(OrtNet { session })
    }

    /// Runs one tile: `[4, h, w]` in, `[4, h, w]` out.
    pub fn run(
        &mut self,
        input: &[f32],
        h: usize,
        w: usize,
        output: &mut [f32],
    ) -> Result<(), ort::Error> {
        let t = TensorRef::from_array_view(([1usize, 4, h, w], input))?;
        let outputs = self.session.run(ort::inputs!["input" => t])?;
        let (_, y) = outputs["output"].try_extract_tensor::<f32>()?;
        output[..y.len()].copy_from_slice(y);
        Ok(())
    }
}
