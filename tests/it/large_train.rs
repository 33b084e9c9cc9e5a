//! Training on activations larger than one storage binding (`ops::split_grad`): a context with
//! a forced small binding limit runs each op by batch chunks or channel groups, with
//! gradients, and every value and gradient is compared with the shared context's unsplit run.
//!
//! Tolerances (relative to the largest magnitude of the unsplit result):
//! - per-channel and per-image ops (batch norm in both modes, resizes, softmax, log-softmax,
//!   pooling, concat, broadcasting elementwise ops), the losses' element gradients: bit-for-bit,
//!   the same float operations per element;
//! - the gradient of an operand broadcast over the batch (a per-channel bias): 1e-6, a sum
//!   over chunks;
//! - conv2d by batch chunks: 1e-5, a chunk's GEMM may pick another split-K than the whole
//!   batch's, and the weight gradient is a sum over chunks;
//! - a loss's value: 1e-6, it is the sum of the chunks' partial means;
//! - the tiny training step and the discriminator: 1e-5 on losses, gradients, updated
//!   parameters and running statistics, where the conv reassociations above compound through
//!   the layers (measured: at most 5.4e-7).

use crate::common::{close, on};
use advseg::nn::{arch, disc::FcDiscriminator, BnMode, ParamStore};
use advseg::ops::{self, Conv2dParams};
use advseg::optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
use advseg::{Gpu, Tensor};
use std::sync::{Arc, OnceLock};

/// Per-op tests: 4 KiB, 1024 f32.
fn small() -> Arc<Gpu> {
    static G: OnceLock<Arc<Gpu>> = OnceLock::new();
    G.get_or_init(|| Gpu::new_with_binding_limit(Some(4096)).unwrap())
        .clone()
}

/// Network tests: 16 KiB, one image of each of their activations fits, two do not.
fn small16() -> Arc<Gpu> {
    static G: OnceLock<Arc<Gpu>> = OnceLock::new();
    G.get_or_init(|| Gpu::new_with_binding_limit(Some(16384)).unwrap())
        .clone()
}

fn big() -> Arc<Gpu> {
    Gpu::shared().unwrap()
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = advseg::rng::Rng::new(seed);
    (0..n).map(|_| rng.range(-1.0, 1.0)).collect()
}

fn host(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().unwrap()
}

/// `f` of parameters made from `inputs` on both contexts, backpropagated from Σ y²/2 (so the
/// upstream gradient is y, not uniform): [y, grad of each input] per context.
fn fwd_bwd(
    inputs: &[(Vec<f32>, Vec<usize>)],
    f: impl Fn(&[Tensor]) -> Tensor,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let run = |g: &Arc<Gpu>| {
        let ps: Vec<Tensor> = inputs
            .iter()
            .map(|(v, s)| on(g, v, s).into_param())
            .collect();
        let y = f(&ps);
        let l = if y.numel() == 1 {
            y.clone()
        } else {
            ops::sum(&ops::mul(&y, &ops::mul_scalar(&y, 0.5).unwrap()).unwrap()).unwrap()
        };
        l.backward().unwrap();
        let mut out = vec![host(&y)];
        out.extend(ps.iter().map(|p| host(&p.grad().unwrap())));
        out
    };
    (run(&small()), run(&big()))
}

fn inp(shape: &[usize], seed: u64) -> (Vec<f32>, Vec<usize>) {
    (values(shape.iter().product(), seed), shape.to_vec())
}

#[test]
fn conv2d_by_batch_chunks_with_gradients() {
    // x [3, 4, 9, 10]: 4320 bytes, an image 1440; output 1800 per image: chunks of 2 + 1.
    let ins = [inp(&[3, 4, 9, 10], 1), inp(&[5, 4, 3, 3], 2), inp(&[5], 3)];
    for p in [Conv2dParams::new(1, 1, 1), Conv2dParams::new(2, 2, 2)] {
        let (s, u) = fwd_bwd(&ins, |t| {
            ops::conv2d(&t[0], &t[1], Some(&t[2]), &p).unwrap()
        });
        for (k, (a, b)) in s.iter().zip(&u).enumerate() {
            close(&format!("conv2d {p:?} output {k}"), a, b, 1e-5);
        }
    }
}

#[test]
fn per_channel_and_per_image_ops_split_exactly_with_gradients() {
    // [2, 6, 10, 10]: 4800 bytes, a channel 800, an image 2400.
    let x = inp(&[2, 6, 10, 10], 4);
    let (wv, bv) = (inp(&[6], 5), inp(&[6], 6));
    let stats = (
        values(6, 7),
        values(6, 8)
            .iter()
            .map(|v| v.abs() + 0.5)
            .collect::<Vec<f32>>(),
    );
    for training in [true, false] {
        let run = |g: &Arc<Gpu>| {
            let (rm, rv) = (on(g, &stats.0, &[6]), on(g, &stats.1, &[6]));
            let ps: Vec<Tensor> = [&x, &wv, &bv]
                .iter()
                .map(|(v, s)| on(g, v, s).into_param())
                .collect();
            let y = ops::batch_norm2d(
                &ps[0],
                Some(&ps[1]),
                Some(&ps[2]),
                &rm,
                &rv,
                training,
                0.1,
                1e-5,
            )
            .unwrap();
            ops::sum(&ops::mul(&y, &y).unwrap())
                .unwrap()
                .backward()
                .unwrap();
            let mut out = vec![host(&y), host(&rm), host(&rv)];
            out.extend(ps.iter().map(|p| host(&p.grad().unwrap())));
            out
        };
        let (s, u) = (run(&small()), run(&big()));
        for (k, (a, b)) in s.iter().zip(&u).enumerate() {
            assert_eq!(a, b, "batch_norm2d training={training} output {k}");
        }
    }
    let small_in = inp(&[2, 6, 5, 7], 9);
    for align in [false, true] {
        let (s, u) = fwd_bwd(std::slice::from_ref(&small_in), |t| {
            ops::upsample_bilinear2d(&t[0], [10, 13], align).unwrap()
        });
        assert_eq!(s, u, "upsample_bilinear2d align_corners={align}");
        let (s, u) = fwd_bwd(std::slice::from_ref(&x), |t| {
            ops::upsample_bilinear2d(&t[0], [4, 7], align).unwrap()
        });
        assert_eq!(s, u, "downsample_bilinear2d align_corners={align}");
    }
    let (s, u) = fwd_bwd(std::slice::from_ref(&small_in), |t| {
        ops::upsample_nearest2d(&t[0], [11, 9]).unwrap()
    });
    assert_eq!(s, u, "upsample_nearest2d");
    for log in [false, true] {
        let (s, u) = fwd_bwd(std::slice::from_ref(&x), |t| {
            let y = if log {
                ops::softmax::log_softmax(&t[0], 1)
            } else {
                ops::softmax::softmax(&t[0], 1)
            };
            // Weighted, so the softmax gradient is not zero.
            ops::mul(&y.unwrap(), &t[0]).unwrap()
        });
        assert_eq!(s, u, "softmax log={log}");
    }
}

#[test]
fn pooling_concat_and_broadcasts_split_by_batch_with_gradients() {
    // [2, 6, 10, 10]: 4800 bytes, an image 2400.
    let x = inp(&[2, 6, 10, 10], 14);
    let one = std::slice::from_ref(&x);
    let (s, u) = fwd_bwd(one, |t| {
        ops::max_pool2d(&t[0], [3, 3], [2, 2], [1, 1], true).unwrap()
    });
    assert_eq!(s, u, "max_pool2d");
    let (s, u) = fwd_bwd(one, |t| {
        ops::avg_pool2d(&t[0], [2, 2], [2, 2], [1, 1], false, true).unwrap()
    });
    assert_eq!(s, u, "avg_pool2d");
    let (s, u) = fwd_bwd(one, |t| ops::adaptive_avg_pool2d(&t[0], [3, 3]).unwrap());
    assert_eq!(s, u, "adaptive_avg_pool2d");
    let two = [x.clone(), inp(&[2, 3, 10, 10], 15)];
    let (s, u) = fwd_bwd(&two, |t| ops::concat::concat(&[&t[0], &t[1]], 1).unwrap());
    assert_eq!(s, u, "concat");
    // A per-pixel mask and a per-channel bias broadcast against [2, 6, 10, 10]: the mask is
    // cut with the batch (exact), the bias is whole and its gradient sums over chunks.
    for (shape, seed) in [([2, 1, 10, 10], 16), ([1, 6, 1, 1], 17)] {
        let ins = [x.clone(), inp(&shape, seed)];
        let (s, u) = fwd_bwd(&ins, |t| {
            ops::add(&ops::mul(&t[0], &t[1]).unwrap(), &t[1]).unwrap()
        });
        assert_eq!(
            s[..2],
            u[..2],
            "mul/add by {shape:?}: output and x's gradient"
        );
        close(
            &format!("mul/add by {shape:?}: its gradient"),
            &s[2],
            &u[2],
            1e-6,
        );
    }
}

#[test]
fn losses_split_by_batch_count_the_whole_batch() {
    // Logits [3, 5, 10, 10]: 6000 bytes, 2000 per image; some labels ignored (255) and one
    // image with few valid pixels, so per-chunk means would weigh the images wrongly.
    let (n, c, h, w) = (3, 5, 10, 10);
    let labels: Vec<i32> = (0..n * h * w)
        .map(|i| {
            if i % 7 == 0 || (i >= 2 * h * w && i % 5 != 0) {
                255
            } else {
                (i % c) as i32
            }
        })
        .collect();
    let logits = inp(&[n, c, h, w], 10);
    let pw: Vec<f32> = values(n * h * w, 11).iter().map(|v| v.abs()).collect();
    for weighted in [false, true] {
        let run = |g: &Arc<Gpu>| {
            let x = on(g, &logits.0, &logits.1).into_param();
            let t = Tensor::from_i32(g, &labels, &[n, h, w]).unwrap();
            let p = on(g, &pw, &[n, h, w]).into_param();
            let l = ops::loss::cross_entropy(&x, &t, 255, weighted.then_some(&p)).unwrap();
            l.backward().unwrap();
            let mut out = vec![host(&l), host(&x.grad().unwrap())];
            if weighted {
                out.push(host(&p.grad().unwrap()));
            }
            out
        };
        let (s, u) = (run(&small()), run(&big()));
        close("cross_entropy loss", &s[0], &u[0], 1e-6);
        assert_eq!(
            s[1..],
            u[1..],
            "cross_entropy gradients weighted={weighted}"
        );
    }
    // BCE on [4, 1, 12, 12]: its stats (2 rows) are 4608 bytes. A 0/1 mask.
    let shape = [4, 1, 12, 12];
    let mask: Vec<f32> = (0..576).map(|i| ((i % 3) != 0) as u8 as f32).collect();
    for masked in [false, true] {
        let (xs, ts) = (inp(&shape, 12), inp(&shape, 13));
        let run = |g: &Arc<Gpu>| {
            let x = on(g, &xs.0, &shape).into_param();
            let t = on(g, &ts.0, &shape).into_param();
            let m = on(g, &mask, &shape);
            let l = ops::loss::bce_with_logits(&x, &t, masked.then_some(&m)).unwrap();
            l.backward().unwrap();
            vec![host(&l), host(&x.grad().unwrap()), host(&t.grad().unwrap())]
        };
        let (s, u) = (run(&small()), run(&big()));
        close("bce loss", &s[0], &u[0], 1e-6);
        assert_eq!(s[1..], u[1..], "bce gradients masked={masked}");
    }
}

#[test]
fn one_image_over_the_limit_refuses_training_naming_the_op() {
    let g = small();
    let x = on(&g, &values(6 * 600, 30), &[1, 6, 20, 30]).into_param();
    let w = on(&g, &values(8 * 6 * 9, 31), &[8, 6, 3, 3]);
    let e = ops::conv2d(&x, &w, None, &Conv2dParams::new(1, 1, 1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("conv2d: one image of input [1, 6, 20, 30]")
            && e.contains("with gradients")
            && e.contains("over the storage-binding limit of 4096 bytes"),
        "{e}"
    );
    // Without gradients the same conv runs by channel groups.
    let y = advseg::autograd::no_grad(|| ops::conv2d(&x, &w, None, &Conv2dParams::new(1, 1, 1)));
    assert_eq!(y.unwrap().shape(), &[1, 8, 20, 30]);
}

/// Every slot of a store (parameters after the step, running statistics) and every gradient.
fn store_values(store: &ParamStore) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for s in store.slots() {
        let t = s.get().unwrap();
        out.push((s.name.clone(), host(&t)));
        if let Some(g) = t.grad() {
            out.push((format!("{}.grad", s.name), host(&g)));
        }
    }
    out
}

/// One supervised step of `tiny` (train-mode BN, logits upsampled to the input, CE with an
/// ignore label, SGD with momentum): the input [2, 3, 32, 32] (24 KiB), stage 1's output and
/// batch norm (32 KiB), the upsampled logits and the CE are split, stage 2's and 3's weights
/// (18 and 36 KiB) go by output features.
#[test]
fn tiny_training_step_with_a_small_binding_limit_matches_unsplit() {
    let (n, classes, h, w) = (2, 3, 32, 32);
    let xv = values(n * 3 * h * w, 40);
    let labels: Vec<i32> = (0..n * h * w)
        .map(|i| {
            if i % 11 == 0 {
                255
            } else {
                (i / 7 % classes) as i32
            }
        })
        .collect();
    let run = |g: &Arc<Gpu>| {
        let m = arch::build("tiny", classes).unwrap();
        m.materialize(g, 3).unwrap();
        let params = m.store.trainable().unwrap();
        let mut opt = Sgd::new(
            vec![ParamGroup::new(params)],
            SgdConfig {
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 5e-4,
                nesterov: false,
            },
        )
        .unwrap();
        let x = on(g, &xv, &[n, 3, h, w]);
        let t = Tensor::from_i32(g, &labels, &[n, h, w]).unwrap();
        let z = m.forward(&x, BnMode::Train).unwrap();
        let z = ops::upsample_bilinear2d(&z, [h, w], true).unwrap();
        let loss = ops::loss::cross_entropy(&z, &t, 255, None).unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
        let mut out = vec![("loss".to_string(), host(&loss))];
        out.extend(store_values(&m.store));
        out
    };
    let (s, u) = (run(&small16()), run(&big()));
    assert_eq!(s.len(), u.len());
    for ((name, a), (_, b)) in s.iter().zip(&u) {
        close(name, a, b, 1e-5);
    }
}

/// Hung et al.'s discriminator on softmax probabilities, BCE against "real" everywhere, as
/// advsemi's adversarial term: the probabilities [4, 3, 32, 32] (48 KiB), conv1's output
/// (32 KiB) and the BCE's stats (32 KiB) are split; conv3's and conv4's weights go by output
/// features. Loss, every discriminator gradient and the gradient reaching the logits.
#[test]
fn fc_discriminator_forward_backward_with_a_small_binding_limit_matches_unsplit() {
    let shape = [4, 3, 32, 32];
    let zv = values(shape.iter().product(), 50);
    let run = |g: &Arc<Gpu>| {
        let mut store = ParamStore::new();
        let d = FcDiscriminator::new(&mut store, "", 3, 8);
        store.materialize(g, 5).unwrap();
        let z = on(g, &zv, &shape).into_param();
        let p = ops::softmax::softmax(&z, 1).unwrap();
        let y = d.forward(&p).unwrap();
        let ones = Tensor::full(g, y.shape(), 1.0).unwrap();
        let loss = ops::loss::bce_with_logits(&y, &ones, None).unwrap();
        loss.backward().unwrap();
        let mut out = vec![
            ("loss".to_string(), host(&loss)),
            ("z.grad".to_string(), host(&z.grad().unwrap())),
        ];
        out.extend(store_values(&store));
        out
    };
    let (s, u) = (run(&small16()), run(&big()));
    assert_eq!(s.len(), u.len());
    for ((name, a), (_, b)) in s.iter().zip(&u) {
        close(name, a, b, 1e-5);
    }
}

/// The pieces' sub-graphs are retained with the outer graph: a second backward after
/// `backward_retain` doubles the gradients (as unsplit), and a third one names the freed graph.
#[test]
fn split_graph_backward_retain_runs_twice() {
    let (xs, ws) = (inp(&[3, 4, 9, 10], 60), inp(&[5, 4, 3, 3], 61));
    let run = |g: &Arc<Gpu>| {
        let x = on(g, &xs.0, &xs.1).into_param();
        let w = on(g, &ws.0, &ws.1).into_param();
        let y = ops::conv2d(&x, &w, None, &Conv2dParams::new(1, 1, 1)).unwrap();
        let l = ops::sum(&ops::mul(&y, &y).unwrap()).unwrap();
        l.backward_retain().unwrap();
        l.backward().unwrap();
        let e = l.backward().unwrap_err().to_string();
        assert!(e.contains("already freed"), "{e}");
        [host(&x.grad().unwrap()), host(&w.grad().unwrap())]
    };
    let (s, u) = (run(&small()), run(&big()));
    for (k, (a, b)) in s.iter().zip(&u).enumerate() {
        close(&format!("twice-accumulated gradient {k}"), a, b, 1e-5);
    }
}

/// Every method's real training step, evaluation and probes through the CLI at a 128 KiB
/// binding limit (batch 8 at 48²: every activation of `tiny` is over it, one channel of the
/// batch is not) give the unsplit run's losses and metrics. Tolerance 1e-4 relative: the
/// chunked convs and reductions reassociate sums (measured: the logged values agree to the
/// printed digits). rrm runs its label CRF on the gather path in both runs, since the matrix
/// path's [HW, HW] operator does not fit the small limit (the two paths agree to 2.3e-5, which
/// can flip a reliable-pixel decision). Smaller still, where one image of the first conv's
/// output is over the limit, training is refused, naming the op and the setting.
#[test]
fn every_method_trains_at_a_small_binding_limit_like_unsplit() {
    use crate::common::{lines, tmp};
    let methods: &[(&str, &[&str])] = &[
        ("supervised", &[]),
        ("advsemi", &["--set", "semi_start=1", "--ndf", "8"]),
        ("gan-cegu", &["--ndf", "8"]),
        ("ssgan", &["--ndf", "8"]),
        (
            "eader",
            &["--arch", "tiny-cls", "--set", "adversary=tiny-cls"],
        ),
        (
            "rrm",
            &[
                "--arch",
                "rrm-tiny",
                "--set",
                "cls_only_steps=1",
                "--set",
                "crf_iters=2",
                "--set",
                "crf_matrix_max_px=0",
            ],
        ),
    ];
    let run = |method: &str, extra: &[&str], limit: Option<&str>| {
        let dir = tmp(
            "large_train",
            &format!("{method}-{}", limit.unwrap_or("whole")),
        );
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_advseg"));
        c.args(["train", "--method", method, "--data", "synthetic:size=48"])
            .args(["--iters", "2", "--batch", "8", "--labeled-fraction", "1/8"])
            .args(["--eval-every", "2", "--seed", "3", "--set", "probes=1"])
            .args(extra)
            .arg("--out")
            .arg(&dir)
            .env("XDG_RUNTIME_DIR", "/tmp")
            .env("ADVSEG_TUNE", "off");
        if let Some(l) = limit {
            c.env("ADVSEG_MAX_BINDING_BYTES", l);
        }
        let o = c.output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).to_string(),
            dir,
        )
    };
    for (m, extra) in methods {
        let (ok_w, err_w, whole) = run(m, extra, None);
        assert!(ok_w, "{m} unsplit: {err_w}");
        let (ok_s, err_s, split) = run(m, extra, Some("131072"));
        assert!(ok_s, "{m} at 128 KiB: {err_s}");
        let (a, b) = (lines(&whole), lines(&split));
        assert_eq!(a.len(), b.len(), "{m}: metrics lines");
        let mut compared = 0;
        for (la, lb) in a.iter().zip(&b) {
            for (k, va) in la.as_object().unwrap() {
                // Speeds and wall times differ; everything else is a value of the run.
                if k.contains("per_s") || k.ends_with("_s") || k == "seconds" {
                    continue;
                }
                let Some(x) = va.as_f64() else { continue };
                let y = lb[k].as_f64().unwrap_or_else(|| panic!("{m}: {k} missing"));
                assert!(
                    (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                    "{m}: {k} = {x} unsplit, {y} at 128 KiB"
                );
                compared += 1;
            }
        }
        assert!(compared >= 5, "{m}: only {compared} values compared");
    }
    let (ok, err, _) = run("supervised", &[], Some("32768"));
    assert!(
        !ok && err.contains("conv2d: one image") && err.contains("--batch"),
        "{err}"
    );
}
