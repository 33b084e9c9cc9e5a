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
