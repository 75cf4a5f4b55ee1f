//! `rawnr-train`: trains a rawnr denoiser from a config, resumes it, exports it, or reports a
//! model configuration's size.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rawnr_train::config::TrainConfig;
use rawnr_train::model::BENCH_PACKED;
use rawnr_train::training::{self, RunOptions};
use rawnr_train::TrainError;

#[derive(Parser)]
#[command(
    name = "rawnr-train",
    about = "Train rawnr denoisers (burn, flex CPU backend)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a model (or resume a run), then export it to RUN/model.rnm.
    Train {
        /// Training config (JSON); with --resume, RUN/config.json is used when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run directory (config, metrics, checkpoints, model).
        #[arg(long)]
        run: PathBuf,
        /// Continue the run from its last checkpoint.
        #[arg(long)]
        resume: bool,
        /// Stop after this many steps (checkpointed; continue with --resume).
        #[arg(long)]
        max_steps: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Export a run's last checkpoint to .rnm.
    Export {
        /// Run directory.
        #[arg(long)]
        run: PathBuf,
        /// Output model file.
        #[arg(short, long)]
        output: PathBuf,
        /// Name stored in the model.
        #[arg(long)]
        name: Option<String>,
        /// Tiling halo in packed pixels (default: the receptive field, for exact tiling; 64 for
        /// the PMRID family).
        #[arg(long)]
        halo: Option<u32>,
    },
    /// Parameters, MACs at 3472x4624, receptive field and exact-tiling cost of a config's model.
    Info {
        /// Training config (JSON).
        #[arg(long)]
        config: PathBuf,
    },
}

fn run(cli: Cli) -> Result<(), TrainError> {
    match cli.cmd {
        Cmd::Train {
            config,
            run,
            resume,
            max_steps,
            quiet,
        } => {
            let path = match (config, resume) {
                (Some(c), _) => c,
                (None, true) => run.join("config.json"),
                (None, false) => return Err(TrainError::Config("--config is required".into())),
            };
            let cfg = TrainConfig::read(&path)?;
            let opts = RunOptions {
                resume,
                max_steps,
                progress: !quiet,
            };
            let s = training::train(&cfg, &run, &opts)?;
            println!(
                "{} steps ({} in this call, {:.0} s, {:.1} patches/s); loss {:.5} -> {:.5}",
                s.step, s.steps_this_run, s.seconds, s.patches_per_s, s.loss_first, s.loss_last
            );
            println!("ISO     PSNR dB   SSIM     (noisy PSNR dB)");
            for v in &s.validation_end {
                println!(
                    "{:<7} {:>7.2}   {:.4}   ({:.2})",
                    v.iso, v.psnr, v.ssim, v.noisy_psnr
                );
            }
            if s.step == cfg.run.steps {
                println!("model: {}", training::model_path(&run).display());
            } else {
                println!("checkpointed at step {}; continue with --resume", s.step);
            }
            Ok(())
        }
        Cmd::Export {
            run,
            output,
            name,
            halo,
        } => {
            let cfg = TrainConfig::read(&run.join("config.json"))?;
            let cond = training::conditioning(&cfg)?;
            let device = training::training_device();
            let model =
                training::load_weights(cfg.model.init(&device), &run.join("checkpoint/model.bpk"))?;
            let name = name.unwrap_or_else(|| format!("rawnr {}", cfg.model.family()));
            let mut meta = training::export_meta(&cfg, &cond, &name);
            meta.halo = halo;
            let bytes = model.export(&cfg.model, &meta)?;
            rawnr_io::atomic::write_atomic(&output, |w| w.write_all(&bytes))
                .map_err(|e| TrainError::Input(e.to_string()))?;
            println!("wrote {} ({} bytes)", output.display(), bytes.len());
            Ok(())
        }
        Cmd::Info { config } => {
            let cfg = TrainConfig::read(&config)?;
            let m = &cfg.model;
            let device = burn::prelude::Device::flex();
            let params = burn::module::Module::num_params(&m.init(&device));
            let (h, w) = BENCH_PACKED;
            let macs = m.macs(h, w);
            let halo = m.exact_halo();
            println!("family {}: {params} parameters", m.family());
            println!(
                "{:.2} GMAC at 3472x4624 ({:.3e} per megapixel)",
                macs as f64 / 1e9,
                macs as f64 / (4 * h * w) as f64 * 1e6
            );
            println!(
                "receptive radius {} packed px; exact-tiling halo {halo}; declared halo {}",
                m.receptive_radius(),
                m.default_halo()
            );
            for tile in [256, 512] {
                let cost = ((tile + 2 * halo) as f64 / tile as f64).powi(2);
                println!("exact tiling at --tile {tile} (packed px) costs {cost:.2}x one pass");
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rawnr-train: {e}");
            ExitCode::FAILURE
        }
    }
}
