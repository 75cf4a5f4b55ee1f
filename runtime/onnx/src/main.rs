//! `rawnr-export-onnx`: writes the ONNX form of a `.rnm` model.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rawnr_core::format::Model;
use rawnr_onnx::{export_with, Precision, QdqWeights};

/// Export a rawnr .rnm model to ONNX (opset 17, dynamic H and W).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Input model (.rnm).
    model: PathBuf,
    /// Output ONNX file.
    out: PathBuf,
    /// Precision: fp32 or fp16 (an int8 model exports as an int8 QDQ graph with fp32).
    #[arg(long, default_value = "fp32")]
    precision: String,
    /// int8 models: how the QDQ graph stores weights. `u8` (uint8 q+128, zero point 128) runs
    /// exactly in ONNX Runtime's CPU EP on every x86 CPU; `s8` (int8, zero point 0) is what
    /// TensorRT, QNN and NNAPI expect (ONNX Runtime's CPU EP saturates some of its products on
    /// x86 CPUs without VNNI). Both dequantize to the same weights.
    #[arg(long, value_enum, default_value_t = WeightStorage::U8)]
    qdq_weights: WeightStorage,
}

/// `--qdq-weights`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum WeightStorage {
    /// uint8 with zero point 128.
    U8,
    /// int8 with zero point 0.
    S8,
}

fn run(a: &Args) -> Result<(), String> {
    let precision = match a.precision.as_str() {
        "fp32" => Precision::F32,
        "fp16" => Precision::F16,
        p => {
            return Err(format!(
                "--precision {p}: expected fp32 or fp16 (int8 models export as QDQ with fp32)"
            ))
        }
    };
    let bytes = std::fs::read(&a.model).map_err(|e| format!("{}: {e}", a.model.display()))?;
    // Copy into 4-byte aligned memory so the weights parse in place.
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
    let view = words_as_bytes(&words, bytes.len());
    let model = Model::parse(view).map_err(|e| format!("{}: {e}", a.model.display()))?;
    let weights = match a.qdq_weights {
        WeightStorage::U8 => QdqWeights::U8Offset,
        WeightStorage::S8 => QdqWeights::S8,
    };
    let onnx = export_with(&model, precision, weights)
        .map_err(|e| format!("{}: {e}", a.model.display()))?;
    let tmp = a.out.with_extension("onnx.tmp");
    std::fs::write(&tmp, &onnx)
        .and_then(|_| std::fs::rename(&tmp, &a.out))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", a.out.display())
        })?;
    println!(
        "wrote {} ({} bytes, {})",
        a.out.display(),
        onnx.len(),
        rawnr_onnx::graph_precision(&model, precision)
    );
    Ok(())
}

fn words_as_bytes(words: &[u32], len: usize) -> &[u8] {
    &bytemuck::cast_slice::<u32, u8>(words)[..len]
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rawnr-export-onnx: {e}");
            ExitCode::FAILURE
        }
    }
}
