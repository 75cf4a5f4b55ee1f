//! `rawnr-import-pmrid`: converts PMRID's published weights (`.npz`) into `models/pmrid.rnm`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Convert the pretrained PMRID denoiser (.npz export of its PyTorch checkpoint) into a rawnr
/// .rnm model.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// PMRID weights (`torch_pretrained.npz`).
    #[arg(long)]
    npz: PathBuf,
    /// Output model file.
    #[arg(long)]
    out: PathBuf,
    /// Tiling halo in packed pixels stored in the model.
    #[arg(long, default_value_t = rawnr_import::pmrid::PMRID_DEFAULT_HALO)]
    halo: u32,
}

fn run(args: &Args) -> Result<(), String> {
    let arrays = rawnr_import::npz::read_npz(&args.npz).map_err(|e| e.to_string())?;
    let bytes = rawnr_import::pmrid::build(&arrays, args.halo).map_err(|e| e.to_string())?;
    let dir = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        args.out
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model")
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &args.out)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", args.out.display())
    })?;
    println!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rawnr-import-pmrid: {e}");
            ExitCode::FAILURE
        }
    }
}
