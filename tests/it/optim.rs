//! Optimizers against torch.optim: fixtures in tests/fixtures/optim/ (scripts/make_optim_fixtures.py)
//! hold torch's parameters after each of 5 steps with two parameter groups (lr multiplier 10 and a
//! weight-decay override on the second), a poly lr schedule set every step, a parameter without a
//! gradient on one step, and a frozen parameter. Also: state_dict round trip, poly_lr.

use advseg::optim::{poly_lr, Adam, AdamConfig, Optimizer, ParamGroup, Sgd, SgdConfig, StateEntry};
use advseg::{Gpu, Tensor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

struct Fixture {
    doc: Value,
}

impl Fixture {
    fn load(name: &str) -> Fixture {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/optim")
            .join(format!("{name}.json"));
        let doc = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        Fixture { doc }
    }
    fn vec(v: &Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    }
    fn cfg(&self, k: &str) -> f64 {
        self.doc["config"][k].as_f64().unwrap()
    }
    fn shape(&self, k: &str) -> Vec<usize> {
        self.doc["shapes"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    }
    /// Parameters by name and the optimizer groups (frozen parameter frozen).
    fn params(&self, gpu: &Arc<Gpu>) -> (BTreeMap<String, Tensor>, Vec<ParamGroup>) {
        let mut ps = BTreeMap::new();
        for (k, v) in self.doc["init"].as_object().unwrap() {
            let t = Tensor::from_f32(gpu, &Self::vec(v), &self.shape(k))
                .unwrap()
                .into_param();
            if k == "frozen" {
                t.set_requires_grad(false).unwrap();
            }
            ps.insert(k.clone(), t);
        }
        let groups = self.doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let params = g["params"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| ps[n.as_str().unwrap()].clone())
                    .collect();
                let mut pg = ParamGroup::new(params).lr_mult(g["lr_mult"].as_f64().unwrap() as f32);
                if let Some(wd) = g["weight_decay"].as_f64() {
                    pg = pg.weight_decay(wd as f32);
                }
                pg
            })
            .collect();
        (ps, groups)
    }
    fn steps(&self) -> &Vec<Value> {
        self.doc["steps"].as_array().unwrap()
    }
}

/// Gives each parameter the step's gradient; the frozen one gets a gradient too (it must be
/// skipped because it does not require one).
fn set_grads(gpu: &Arc<Gpu>, ps: &BTreeMap<String, Tensor>, step: &Value) {
    for (k, p) in ps {
        let g = &step["grads"][k];
        let g = if g.is_null() {
            if k == "frozen" {
                Some(Tensor::full(gpu, p.shape(), 1.0).unwrap())
            } else {
                None
            }
        } else {
            Some(Tensor::from_f32(gpu, &Fixture::vec(g), p.shape()).unwrap())
        };
        p.set_grad(g);
    }
}

fn check(ps: &BTreeMap<String, Tensor>, want: &Value, what: &str) {
    for (k, p) in ps {
        let got = p.to_vec_f32().unwrap();
        let exp = Fixture::vec(&want[k]);
        for (i, (g, e)) in got.iter().zip(&exp).enumerate() {
            // fp32 on both sides; a few ulps of accumulated rounding difference.
            let tol = 2e-6 + 1e-5 * e.abs();
            assert!(
                (g - e).abs() <= tol,
                "{what}: param {k}[{i}] = {g}, torch {e}"
            );
        }
    }
}

fn run_fixture(name: &str, make: impl Fn(&Fixture, Vec<ParamGroup>) -> Box<dyn Optimizer>) {
    let gpu = Gpu::shared().unwrap();
    let fx = Fixture::load(name);
    let (ps, groups) = fx.params(&gpu);
    let frozen0 = ps["frozen"].to_vec_f32().unwrap();
    let mut opt = make(&fx, groups);
    for (t, step) in fx.steps().iter().enumerate() {
        opt.set_lr(step["lr"].as_f64().unwrap() as f32);
        set_grads(&gpu, &ps, step);
        opt.step().unwrap();
        opt.zero_grad();
        assert!(ps["a"].grad().is_none(), "zero_grad clears gradients");
        check(&ps, &step["after"], &format!("{name} step {t}"));
    }
    assert_eq!(
        ps["frozen"].to_vec_f32().unwrap(),
        frozen0,
        "frozen parameter changed"
    );
}

fn sgd(fx: &Fixture, groups: Vec<ParamGroup>) -> Box<dyn Optimizer> {
    let cfg = SgdConfig {
        lr: 0.0,
        momentum: fx.cfg("momentum") as f32,
        weight_decay: fx.cfg("weight_decay") as f32,
        nesterov: fx.doc["config"]["nesterov"].as_bool().unwrap(),
    };
    Box::new(Sgd::new(groups, cfg).unwrap())
}

fn adam(fx: &Fixture, groups: Vec<ParamGroup>) -> Box<dyn Optimizer> {
    let cfg = AdamConfig {
        lr: 0.0,
        beta1: fx.cfg("beta1") as f32,
        beta2: fx.cfg("beta2") as f32,
        eps: fx.cfg("eps") as f32,
        weight_decay: fx.cfg("weight_decay") as f32,
    };
    Box::new(Adam::new(groups, cfg).unwrap())
}

#[test]
fn sgd_momentum_matches_torch() {
    run_fixture("sgd_momentum", sgd);
}

#[test]
fn sgd_nesterov_matches_torch() {
    run_fixture("sgd_nesterov", sgd);
}

#[test]
fn sgd_plain_matches_torch() {
    run_fixture("sgd_plain", sgd);
}

#[test]
fn adam_matches_torch() {
    run_fixture("adam", adam);
}

/// Three steps, export, fresh optimizer, import, two more steps == five uninterrupted steps.
#[test]
fn state_dict_round_trip_continues_exactly() {
    let gpu = Gpu::shared().unwrap();
    let fx = Fixture::load("adam");
    let (ps, groups) = fx.params(&gpu);
    let mut opt = adam(&fx, groups.clone());
    let steps = fx.steps();
    for step in &steps[..3] {
        opt.set_lr(step["lr"].as_f64().unwrap() as f32);
        set_grads(&gpu, &ps, step);
        opt.step().unwrap();
    }
    let sd: Vec<StateEntry> = opt.state_dict().unwrap();
    let names: Vec<&str> = sd.iter().map(|e| e.0.as_str()).collect();
    assert!(names.contains(&"groups.0.params.0.exp_avg"), "{names:?}");
    assert!(names.contains(&"groups.1.params.0.exp_avg_sq"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("groups.1.params.1.")),
        "frozen param has no state: {names:?}"
    );
    let b_step = sd.iter().find(|e| e.0 == "groups.1.params.0.step").unwrap();
    assert_eq!(
        b_step.1,
        vec![2.0],
        "b had no gradient at step 2, so two Adam steps"
    );
    drop(opt);
    let mut opt2 = adam(&fx, groups);
    opt2.load_state_dict(&sd).unwrap();
    for step in &steps[3..] {
        opt2.set_lr(step["lr"].as_f64().unwrap() as f32);
        set_grads(&gpu, &ps, step);
        opt2.step().unwrap();
    }
    check(&ps, &steps[4]["after"], "after reload");
    let mut bad = sd.clone();
    bad.push(("groups.9.params.0.exp_avg".into(), vec![0.0], vec![1]));
    let err = opt2.load_state_dict(&bad).unwrap_err().to_string();
    assert!(err.contains("unknown state entries"), "{err}");
}

#[test]
fn poly_schedule() {
    assert_eq!(poly_lr(0.01, 0, 10, 0.9), 0.01);
    assert!((poly_lr(0.01, 5, 10, 0.9) - 0.01 * 0.5f32.powf(0.9)).abs() < 1e-9);
    assert_eq!(poly_lr(0.01, 10, 10, 0.9), 0.0);
}

/// The weight average against torch's `AveragedModel` (fixture ema.json, buffers averaged,
/// advseg's warm-up decay): after every step within 2e-6 × max|value| (f32 lerp, torch and
/// WGSL round differently by an ulp or so). Also: the decay schedule, a swap exchanging live
/// and average bit-exactly and a second swap restoring both, an update refused mid-swap, and a
/// resumed average continuing as the uninterrupted one.
#[test]
fn weight_ema_matches_torch_averaged_model() {
    use advseg::optim::ema::{decay_at, WeightEma};
    let gpu = Gpu::shared().unwrap();
    let fx = Fixture::load("ema");
    let decay = fx.doc["decay"].as_f64().unwrap() as f32;
    let names: Vec<String> = fx.doc["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let tensors = |vals: &Value| -> Vec<Tensor> {
        names
            .iter()
            .map(|k| Tensor::from_f32(&gpu, &Fixture::vec(&vals[k]), &fx.shape(k)).unwrap())
            .collect()
    };
    let close_to = |got: &[Tensor], want: &Value, what: &str| {
        for (t, k) in got.iter().zip(&names) {
            let want = Fixture::vec(&want[k]);
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, (a, b)) in t.to_vec_f32().unwrap().iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 2e-6 * scale,
                    "{what} {k}[{i}]: {a} vs torch {b}"
                );
            }
        }
    };
    for (d, t, want) in [(0.999, 0, 0.1), (0.999, 1, 2.0 / 11.0), (0.5, 100, 0.5)] {
        assert!((decay_at(d, t) - want).abs() < 1e-7, "decay_at({d}, {t})");
    }
    let steps = fx.doc["steps"].as_array().unwrap();
    let init = tensors(&fx.doc["init"]);
    let mut ema = WeightEma::new(&init, decay).unwrap();
    let mut saved = None;
    for s in steps {
        let t = s["step"].as_u64().unwrap() as usize;
        assert!((decay_at(decay, t) as f64 - s["decay"].as_f64().unwrap()).abs() < 1e-7);
        let live = tensors(&s["live"]);
        ema.update(&live, t).unwrap();
        close_to(ema.averages(), &s["average"], &format!("step {t}"));
        if t == 3 {
            saved = Some(
                ema.averages()
                    .iter()
                    .map(|a| (a.to_vec_f32().unwrap(), a.shape().to_vec()))
                    .collect::<Vec<_>>(),
            );
            let avg: Vec<Vec<f32>> = ema
                .averages()
                .iter()
                .map(|a| a.to_vec_f32().unwrap())
                .collect();
            let raw: Vec<Vec<f32>> = live.iter().map(|a| a.to_vec_f32().unwrap()).collect();
            ema.swap(&live).unwrap();
            for (i, l) in live.iter().enumerate() {
                assert_eq!(
                    l.to_vec_f32().unwrap(),
                    avg[i],
                    "swapped in: live holds the average"
                );
            }
            let err = ema.update(&live, t).unwrap_err().to_string();
            assert!(err.contains("swapped in"), "{err}");
            ema.swap(&live).unwrap();
            for (i, l) in live.iter().enumerate() {
                assert_eq!(
                    l.to_vec_f32().unwrap(),
                    raw[i],
                    "swapped back: live restored"
                );
                assert_eq!(
                    ema.averages()[i].to_vec_f32().unwrap(),
                    avg[i],
                    "average kept"
                );
            }
        }
    }
    // A resumed average: loaded at step 3, folding in steps 4.. as the uninterrupted one did.
    let mut resumed = WeightEma::new(&init, decay).unwrap();
    resumed.load(&saved.unwrap()).unwrap();
    for s in &steps[3..] {
        resumed
            .update(&tensors(&s["live"]), s["step"].as_u64().unwrap() as usize)
            .unwrap();
    }
    close_to(
        resumed.averages(),
        &steps.last().unwrap()["average"],
        "resumed",
    );
    let err = WeightEma::new(&init, 1.0).err().unwrap().to_string();
    assert!(err.contains("not in [0, 1)"), "{err}");
    let err = ema.update(&init[..1], 9).unwrap_err().to_string();
    assert!(err.contains("1 live tensors for 3"), "{err}");
    // A stored average that does not fit the network is refused whole, naming the tensor.
    let mut bad: Vec<(Vec<f32>, Vec<usize>)> = init
        .iter()
        .map(|t| (t.to_vec_f32().unwrap(), t.shape().to_vec()))
        .collect();
    let err = resumed.load(&bad[..2]).unwrap_err().to_string();
    assert!(err.contains("2 stored tensors for 3"), "{err}");
    bad[1].1 = vec![bad[1].0.len(), 1, 1];
    let err = resumed.load(&bad).unwrap_err().to_string();
    assert!(err.contains("stored tensor 1 does not match"), "{err}");
    bad[1].1 = init[1].shape().to_vec();
    bad[1].0.pop();
    let err = resumed.load(&bad).unwrap_err().to_string();
    assert!(err.contains("stored tensor 1 holds"), "{err}");
}
