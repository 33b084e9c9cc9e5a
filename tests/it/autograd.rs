//! The autograd engine with the loss / channel ops and the elementwise ones: accumulation over
//! two backward passes, detach, no_grad, frozen parameters, `autograd::grad` w.r.t. an
//! intermediate, retained graphs, and a steady-state memory / submit / readback check of a
//! small training loop (forward, CE loss, backward, SGD step).

use advseg::autograd::{self, no_grad};
use advseg::ops::{concat, elementwise as ew, loss, reduce, softmax};
use advseg::optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
use advseg::{Gpu, Tensor};
use std::sync::{Arc, Mutex, MutexGuard};

/// These tests share one GPU context; running them one at a time keeps them from interleaving
/// their tapes' work. The steady-state test counts on a context of its own, because the other
/// modules of this test binary use the shared one in parallel.
static SERIAL: Mutex<()> = Mutex::new(());

fn gpu() -> (MutexGuard<'static, ()>, Arc<Gpu>) {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    (guard, Gpu::shared().expect("GPU adapter"))
}
fn t(g: &Arc<Gpu>, v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_f32(g, v, s).unwrap()
}
fn vals(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37 + k).sin() * 1.5).collect()
}
fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// A tiny "network": logits = concat(x·G, x) · D + B, CE against fixed labels.
struct Net {
    x: Tensor,
    target: Tensor,
}

impl Net {
    fn new(g: &Arc<Gpu>) -> Net {
        let labels: Vec<i32> = (0..2 * 3 * 3)
            .map(|i| if i % 7 == 3 { 255 } else { i % 4 })
            .collect();
        Net {
            x: t(g, &vals(2 * 2 * 3 * 3, 0.3), &[2, 2, 3, 3]),
            target: Tensor::from_i32(g, &labels, &[2, 3, 3]).unwrap(),
        }
    }
    fn logits(&self, gp: &Tensor, dp: &Tensor, bp: &Tensor) -> Tensor {
        let h = ew::mul(&self.x, gp).unwrap();
        let cat = concat::concat(&[&h, &self.x], 1).unwrap();
        ew::add(&ew::mul(&cat, dp).unwrap(), bp).unwrap()
    }
    fn loss(&self, gp: &Tensor, dp: &Tensor, bp: &Tensor) -> Tensor {
        loss::cross_entropy(&self.logits(gp, dp, bp), &self.target, 255, None).unwrap()
    }
}

fn params(g: &Arc<Gpu>) -> (Tensor, Tensor, Tensor) {
    (
        t(g, &vals(2, 1.0), &[1, 2, 1, 1]).into_param(),
        t(g, &vals(4, 2.0), &[1, 4, 1, 1]).into_param(),
        t(g, &vals(4, 3.0), &[1, 4, 1, 1]).into_param(),
    )
}

#[test]
fn gradients_accumulate_over_two_backward_calls() {
    let (_serial, g) = gpu();
    let net = Net::new(&g);
    let (gp, dp, bp) = params(&g);
    net.loss(&gp, &dp, &bp).backward().unwrap();
    let once = gp.grad().unwrap().to_vec_f32().unwrap();
    net.loss(&gp, &dp, &bp).backward().unwrap();
    let twice = gp.grad().unwrap().to_vec_f32().unwrap();
    assert!(once.iter().any(|v| v.abs() > 1e-4), "{once:?}");
    close(
        &twice,
        &once.iter().map(|v| 2.0 * v).collect::<Vec<_>>(),
        1e-6,
        "accumulated grad",
    );
    gp.zero_grad();
    assert!(gp.grad().is_none());
}

#[test]
fn detach_stops_gradients() {
    let (_serial, g) = gpu();
    let net = Net::new(&g);
    let (gp, dp, bp) = params(&g);
    let logits = net.logits(&gp, &dp, &bp);
    // Only B sees the gradient: the detached logits cut G and D off.
    let l = loss::cross_entropy(
        &ew::add(&logits.detach(), &bp).unwrap(),
        &net.target,
        255,
        None,
    )
    .unwrap();
    l.backward().unwrap();
    assert!(gp.grad().is_none() && dp.grad().is_none());
    assert!(bp.grad().is_some());
    assert!(!logits.detach().requires_grad() && logits.detach().same_storage(&logits));
}

#[test]
fn no_grad_records_nothing() {
    let (_serial, g) = gpu();
    let net = Net::new(&g);
    let (gp, dp, bp) = params(&g);
    let l = no_grad(|| net.loss(&gp, &dp, &bp));
    assert!(!l.requires_grad() && l.is_leaf());
    let e = l.backward().unwrap_err().to_string();
    assert!(e.contains("does not require grad"), "{e}");
    assert!(gp.grad().is_none());
    // Same value as with recording on.
    close(
        &[l.item().unwrap()],
        &[net.loss(&gp, &dp, &bp).item().unwrap()],
        1e-6,
        "loss",
    );
}

/// D frozen, G trained: D gets nothing, G gets the same gradient as with D trainable.
#[test]
fn frozen_parameter_passes_gradient_through() {
    let (_serial, g) = gpu();
    let net = Net::new(&g);
    let (gp, dp, bp) = params(&g);
    net.loss(&gp, &dp, &bp).backward().unwrap();
    let (g_ref, d_ref) = (
        gp.grad().unwrap().to_vec_f32().unwrap(),
        dp.grad().unwrap().to_vec_f32().unwrap(),
    );
    assert!(d_ref.iter().any(|v| v.abs() > 1e-4));
    for p in [&gp, &dp, &bp] {
        p.zero_grad();
    }
    dp.set_requires_grad(false).unwrap();
    net.loss(&gp, &dp, &bp).backward().unwrap();
    assert!(dp.grad().is_none(), "frozen parameter got a gradient");
    close(
        &gp.grad().unwrap().to_vec_f32().unwrap(),
        &g_ref,
        1e-6,
        "G grad through frozen D",
    );
    // An intermediate cannot be frozen.
    let h = ew::mul(&net.x, &gp).unwrap();
    assert!(h.set_requires_grad(false).is_err());
}

/// `autograd::grad` w.r.t. an intermediate: matches the gradient of a leaf standing in for it,
/// and leaves the parameters' gradients untouched.
#[test]
fn grad_wrt_intermediate_leaves_params_untouched() {
    let (_serial, g) = gpu();
    let net = Net::new(&g);
    let (gp, dp, bp) = params(&g);
    let u = t(&g, &vals(2 * 2 * 9, 5.0), &[2, 2, 3, 3]);
    let head = |h: &Tensor| {
        reduce::sum(&ew::mul(&softmax::log_softmax(h, 1).unwrap(), &u).unwrap()).unwrap()
    };
    let h = ew::mul(&net.x, &gp).unwrap();
    let out = head(&h);
    let gh = autograd::grad(&out, &[&h], false)
        .unwrap()
        .remove(0)
        .expect("grad w.r.t. h");
    assert!(
        gp.grad().is_none(),
        "parameter grad touched by autograd::grad"
    );
    let hl = h.detach().into_param();
    head(&hl).backward().unwrap();
    close(
        &gh.to_vec_f32().unwrap(),
        &hl.grad().unwrap().to_vec_f32().unwrap(),
        1e-6,
        "d out / d h",
    );
    let _ = (dp, bp);
}

/// `backward_into`: one forward shared by two losses, each backpropagated into its own
/// parameters (a GAN's G step and D step), gives each parameter exactly the gradient that a
/// full backward of its own loss gives it, and leaves every other parameter untouched.
#[test]
fn backward_into_splits_one_forward_between_two_losses() {
    let (_serial, g) = gpu();
    let net = Net::new(&g);
    let (gp, dp, bp) = params(&g);
    let grads = |ps: [&Tensor; 3]| -> Vec<Option<Vec<f32>>> {
        ps.iter()
            .map(|p| p.grad().map(|x| x.to_vec_f32().unwrap()))
            .collect()
    };
    // Reference: each loss through a full backward, parameters zeroed in between.
    let second = |l: &Tensor| ew::mul_scalar(&reduce::sum(&ew::mul(l, l).unwrap()).unwrap(), 0.5);
    net.loss(&gp, &dp, &bp).backward().unwrap();
    let first_ref = grads([&gp, &dp, &bp]);
    for p in [&gp, &dp, &bp] {
        p.zero_grad();
    }
    second(&net.logits(&gp, &dp, &bp))
        .unwrap()
        .backward()
        .unwrap();
    let second_ref = grads([&gp, &dp, &bp]);
    for p in [&gp, &dp, &bp] {
        p.zero_grad();
    }

    // One forward: the first loss into G only (graph kept), the second into D and B only.
    let logits = net.logits(&gp, &dp, &bp);
    let l1 = loss::cross_entropy(&logits, &net.target, 255, None).unwrap();
    l1.backward_into(std::slice::from_ref(&gp), true).unwrap();
    let after_first = grads([&gp, &dp, &bp]);
    assert_eq!(after_first[1], None, "D got a gradient from the G pass");
    assert_eq!(after_first[2], None, "B got a gradient from the G pass");
    close(
        after_first[0].as_ref().unwrap(),
        first_ref[0].as_ref().unwrap(),
        1e-6,
        "G grad",
    );
    second(&logits)
        .unwrap()
        .backward_into(&[dp.clone(), bp.clone()], false)
        .unwrap();
    let after = grads([&gp, &dp, &bp]);
    assert_eq!(
        after[0], after_first[0],
        "G's gradient changed in the D pass"
    );
    for i in 1..3 {
        close(
            after[i].as_ref().unwrap(),
            second_ref[i].as_ref().unwrap(),
            1e-6,
            "D/B grad",
        );
    }
    // A frozen parameter among `params` stays without gradient; a non-parameter is an error.
    dp.zero_grad();
    dp.set_requires_grad(false).unwrap();
    second(&net.logits(&gp, &dp, &bp))
        .unwrap()
        .backward_into(std::slice::from_ref(&dp), false)
        .unwrap();
    assert!(dp.grad().is_none(), "frozen parameter got a gradient");
    dp.set_requires_grad(true).unwrap();
    let e = net
        .loss(&gp, &dp, &bp)
        .backward_into(&[logits.detach()], false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("params[0]") && e.contains("not a parameter"),
        "{e}"
    );
}

/// `backward_many_into` from a loss and a seeded intermediate in one pass equals the backward of
/// `loss + Σ h·u` (whose gradient w.r.t. h is u), and rejects a seed of the wrong shape.
#[test]
fn backward_from_several_roots_sums_their_gradients() {
    let (_serial, g) = gpu();
    let net = Net::new(&g);
    let (gp, dp, bp) = params(&g);
    let u = t(&g, &vals(2 * 2 * 9, 7.0), &[2, 2, 3, 3]);
    let h = ew::mul(&net.x, &gp).unwrap();
    let l = net.loss(&gp, &dp, &bp);
    let surrogate = reduce::sum(&ew::mul(&h, &u).unwrap()).unwrap();
    ew::add(&l, &surrogate).unwrap().backward().unwrap();
    let want = [&gp, &dp, &bp].map(|p| p.grad().unwrap().to_vec_f32().unwrap());
    for p in [&gp, &dp, &bp] {
        p.zero_grad();
    }
    let h = ew::mul(&net.x, &gp).unwrap();
    let l = net.loss(&gp, &dp, &bp);
    let all = [gp.clone(), dp.clone(), bp.clone()];
    autograd::backward_many_into(&[(&l, None), (&h, Some(u.clone()))], &all, false).unwrap();
    for (p, w) in all.iter().zip(&want) {
        close(
            &p.grad().unwrap().to_vec_f32().unwrap(),
            w,
            1e-5,
            "two roots",
        );
    }
    let bad = t(&g, &[1.0], &[1]);
    let h = ew::mul(&net.x, &gp).unwrap();
    let e = autograd::backward_many_into(&[(&h, Some(bad))], &all, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("must match the output's shape"), "{e}");
}

#[test]
fn backward_retain_then_backward_then_error() {
    let (_serial, g) = gpu();
    let net = Net::new(&g);
    let (gp, dp, bp) = params(&g);
    let l = net.loss(&gp, &dp, &bp);
    l.backward_retain().unwrap();
    let once = gp.grad().unwrap().to_vec_f32().unwrap();
    l.backward().unwrap();
    close(
        &gp.grad().unwrap().to_vec_f32().unwrap(),
        &once.iter().map(|v| 2.0 * v).collect::<Vec<_>>(),
        1e-6,
        "two passes",
    );
    let e = l.backward().unwrap_err().to_string();
    assert!(e.contains("already freed") && e.contains("retain"), "{e}");
}

/// Five identical training steps: after step 2 nothing is allocated, and each step submits and
/// reads back only a little (one readback for the loss value when it is asked for).
#[test]
fn training_steps_reach_steady_state() {
    let (_serial, _) = gpu();
    let g = Gpu::new().expect("GPU adapter");
    let net = Net::new(&g);
    let (gp, dp, bp) = params(&g);
    let mut opt = Sgd::new(
        vec![
            ParamGroup::new(vec![gp.clone(), dp.clone()]),
            ParamGroup::new(vec![bp.clone()]).lr_mult(10.0),
        ],
        SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
    )
    .unwrap();
    let mut losses = Vec::new();
    let mut snaps = vec![g.counters()];
    for step in 0..5 {
        let l = net.loss(&gp, &dp, &bp);
        l.backward().unwrap();
        opt.step().unwrap();
        opt.zero_grad();
        // Ask for the loss value on every other step only.
        if step % 2 == 0 {
            losses.push(l.item().unwrap());
        }
        drop(l);
        g.flush().unwrap();
        snaps.push(g.counters());
    }
    for s in 2..5 {
        let d = snaps[s + 1].since(&snaps[s]);
        println!("step {s}: {d:?}");
        assert_eq!(d.buffers_allocated, 0, "step {s} allocated buffers: {d:?}");
        assert_eq!(d.pipelines, 0, "step {s} compiled pipelines: {d:?}");
        assert_eq!(
            d.readbacks,
            if s % 2 == 0 { 1 } else { 0 },
            "step {s}: {d:?}"
        );
        assert!(
            d.submits <= 2,
            "step {s} submitted {} times: {d:?}",
            d.submits
        );
        assert!(d.dispatches > 5, "step {s}: {d:?}");
    }
    assert!(
        losses[2] < losses[0],
        "training does not reduce the loss: {losses:?}"
    );
}
