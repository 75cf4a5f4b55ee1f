//! Seconds-long training runs: the loss falls and validation PSNR rises; a run split by a
//! checkpoint and `--resume` ends where the unsplit run ends; runs refuse what would lose work.

mod common;

use rawnr_train::training::{train, RunOptions};

fn quiet() -> RunOptions {
    RunOptions::default()
}

#[test]
fn loss_falls_and_validation_psnr_rises() {
    let dir = common::scratch_dir("train-falls");
    let cfg = common::tiny_config(&dir, 60);
    let s = train(&cfg, &dir.join("run"), &quiet()).unwrap();
    assert_eq!(s.step, 60);
    assert!(
        s.loss_last < 0.8 * s.loss_first,
        "loss {} -> {}",
        s.loss_first,
        s.loss_last
    );
    let start = s.validation_start.expect("fresh run validates at step 0");
    for (a, b) in start.iter().zip(&s.validation_end) {
        assert_eq!(a.iso, b.iso);
        assert!(
            b.psnr > a.psnr + 1.0,
            "ISO {}: PSNR {:.2} -> {:.2} dB",
            a.iso,
            a.psnr,
            b.psnr
        );
    }
    // The run's files: config beside the weights, metrics, the exported model.
    let run = dir.join("run");
    for f in [
        "config.json",
        "train.csv",
        "validation.csv",
        "parts.jsonl",
        "model.rnm",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert!(run.join("checkpoint/model.bpk").is_file());
    let csv = std::fs::read_to_string(run.join("train.csv")).unwrap();
    assert_eq!(csv.lines().count(), 61, "header + one line per step");
}

#[test]
fn resumed_run_ends_where_the_unsplit_run_ends() {
    let dir = common::scratch_dir("train-resume");
    let cfg = common::tiny_config(&dir, 8);
    let whole = dir.join("whole");
    train(&cfg, &whole, &quiet()).unwrap();
    let split = dir.join("split");
    let part = RunOptions {
        max_steps: Some(5),
        ..quiet()
    };
    let s = train(&cfg, &split, &part).unwrap();
    assert_eq!(s.step, 5);
    assert!(
        !split.join("model.rnm").exists(),
        "exported before the last step"
    );
    // A second fresh start in the same directory would overwrite the run.
    assert!(train(&cfg, &split, &quiet()).is_err());
    let resume = RunOptions {
        resume: true,
        ..quiet()
    };
    // Resuming with a different config is refused.
    let mut other = cfg.clone();
    other.optim.lr *= 2.0;
    assert!(train(&other, &split, &resume).is_err());
    let s = train(&cfg, &split, &resume).unwrap();
    assert_eq!((s.step, s.steps_this_run), (8, 3));
    let a = std::fs::read(whole.join("model.rnm")).unwrap();
    let b = std::fs::read(split.join("model.rnm")).unwrap();
    assert!(a == b, "5 + 3 resumed steps differ from 8 steps");
    let parts = std::fs::read_to_string(split.join("parts.jsonl")).unwrap();
    assert_eq!(parts.lines().count(), 2, "each part recorded");
}

#[test]
fn bad_configs_are_refused_with_a_reason() {
    let dir = common::scratch_dir("train-bad");
    let good = common::tiny_config(&dir, 4);
    type Edit = Box<dyn Fn(&mut rawnr_train::config::TrainConfig)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("patch", Box::new(|c| c.data.patch = 30)),
        ("iso", Box::new(|c| c.data.iso_min = 0.0)),
        ("no data", Box::new(|c| c.data.dead_leaves = 0)),
        (
            "loss",
            Box::new(|c| {
                c.loss.l1 = 0.0;
                c.loss.charbonnier = 0.0;
                c.loss.ms_ssim = 0.0
            }),
        ),
        ("ms-ssim scales", Box::new(|c| c.loss.ms_ssim_scales = 4)),
        ("lr", Box::new(|c| c.optim.lr = f64::NAN)),
        ("optimizer", Box::new(|c| c.optim.optimizer = "sgd".into())),
        ("validation", Box::new(|c| c.run.validation.isos.clear())),
        ("steps", Box::new(|c| c.run.steps = 0)),
    ];
    for (what, edit) in cases {
        let mut c = good.clone();
        edit(&mut c);
        assert!(c.check().is_err(), "{what} accepted");
    }
    // A missing profile is an error at start, not a panic.
    let mut c = good.clone();
    c.data.profile = dir.join("missing.json");
    assert!(train(&c, &dir.join("run"), &quiet()).is_err());
    // A validation ISO where the profile gives no valid noise (k > 1) is an error, not a panic.
    let mut c = good.clone();
    c.run.validation.isos = vec![1e7];
    assert!(c.check().is_ok());
    assert!(train(&c, &dir.join("run-iso"), &quiet()).is_err());
}

#[test]
fn pmrid_fine_tunes_from_its_published_weights() {
    let dir = common::scratch_dir("train-pmrid");
    let mut cfg = common::tiny_config(&dir, 2);
    cfg.model = rawnr_train::model::ModelConfig::Pmrid(Default::default());
    cfg.data.anchor_profile =
        Some(rawnr_tests::repo_root().join("trainer/train/configs/pmrid-sensor-profile.json"));
    cfg.data.anchor_iso = Some(1600.0);
    cfg.data.input_scale = 256.0;
    cfg.data.batch = 2;
    cfg.loss.ms_ssim = 0.0;
    cfg.run.init = Some(rawnr_tests::shared_data().join("PMRID/torch_pretrained.npz"));
    cfg.check().unwrap();
    let s = train(&cfg, &dir.join("run"), &quiet()).unwrap();
    // The published weights went in (they denoise before any step), and they train.
    for v in s.validation_start.as_ref().unwrap() {
        assert!(
            v.psnr > v.noisy_psnr + 2.0,
            "ISO {}: pretrained PMRID {:.2} dB vs noisy {:.2} dB",
            v.iso,
            v.psnr,
            v.noisy_psnr
        );
    }
    assert!(s.loss_last.is_finite());
    let csv = std::fs::read_to_string(dir.join("run/train.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
}

#[test]
fn shipped_configs_are_valid_and_name_existing_files() {
    let root = rawnr_tests::repo_root();
    let dir = root.join("trainer/train/configs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with("profile.json") {
            continue;
        }
        let mut cfg = rawnr_train::config::TrainConfig::read(&path).unwrap();
        // Paths in a config are relative to the repository root.
        let at_root = |p: &std::path::Path| root.join(p);
        cfg.data.profile = at_root(&cfg.data.profile);
        cfg.data.anchor_profile = cfg.data.anchor_profile.as_deref().map(at_root);
        for p in &mut cfg.data.more_profiles {
            p.profile = at_root(&p.profile);
        }
        rawnr_train::training::conditioning(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(init) = &cfg.run.init {
            assert!(
                at_root(init).is_file(),
                "{name}: {} missing",
                init.display()
            );
        }
        n += 1;
    }
    assert!(n >= 2, "configs found: {n}");
}
