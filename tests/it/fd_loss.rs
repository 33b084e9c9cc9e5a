//! Finite-difference checks of the backward passes of softmax, log_softmax, cross-entropy (incl.
//! the pixel-weight gradient), BCE with logits (incl. mask and the target gradient), multilabel
//! soft margin, concat and split, against f64 CPU references written here. Also the forward
//! values, the no-valid-pixel conventions, argmax, one_hot and check_labels.

use advseg::autograd;
use advseg::ops::{concat, elementwise, loss, reduce, softmax};
use advseg::testing::fd::{numeric_grad, worst_ratio};
use advseg::{Gpu, Tensor};
use std::sync::Arc;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
    fn normal(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| (self.next() * 2.0 - 1.0) * scale).collect()
    }
    fn labels(&mut self, n: usize, c: usize, ignore: i32, frac: f64) -> Vec<i32> {
        (0..n)
            .map(|_| {
                if self.next() < frac {
                    ignore
                } else {
                    (self.next() * c as f64) as i32 % c as i32
                }
            })
            .collect()
    }
}

fn gpu() -> Arc<Gpu> {
    Gpu::shared().expect("GPU adapter")
}
fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}
fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}
fn param(g: &Arc<Gpu>, v: &[f64], s: &[usize]) -> Tensor {
    Tensor::from_f32(g, &f32s(v), s).unwrap().into_param()
}

/// Backpropagates `upstream` from `out` and returns each parameter's gradient.
fn grads(out: &Tensor, upstream: &[f64], params: &[&Tensor]) -> Vec<Vec<f64>> {
    let up = Tensor::from_f32(out.gpu(), &f32s(upstream), out.shape()).unwrap();
    autograd::backward(out, Some(up), false).unwrap();
    params
        .iter()
        .map(|p| f64s(&p.grad().expect("gradient").to_vec_f32().unwrap()))
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let r = worst_ratio(got, want, atol, rtol);
    assert!(
        r <= 1.0,
        "{what}: worst {r:.3} of tolerance\n got  {got:?}\n want {want:?}"
    );
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

// ---------- CPU references (f64) ----------

fn softmax_ref(x: &[f64], n: usize, c: usize, inner: usize, log: bool) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for b in 0..n {
        for s in 0..inner {
            let idx = |k: usize| (b * c + k) * inner + s;
            let m = (0..c).map(|k| x[idx(k)]).fold(f64::MIN, f64::max);
            let z: f64 = (0..c).map(|k| (x[idx(k)] - m).exp()).sum();
            for k in 0..c {
                out[idx(k)] = if log {
                    x[idx(k)] - m - z.ln()
                } else {
                    (x[idx(k)] - m).exp() / z
                };
            }
        }
    }
    out
}

fn ce_ref(
    x: &[f64],
    t: &[i32],
    w: Option<&[f64]>,
    n: usize,
    c: usize,
    inner: usize,
    ignore: i32,
) -> f64 {
    let ls = softmax_ref(x, n, c, inner, true);
    let (mut sum, mut count) = (0.0, 0.0);
    for b in 0..n {
        for s in 0..inner {
            let p = b * inner + s;
            let lab = t[p];
            if lab == ignore || lab < 0 || lab >= c as i32 {
                continue;
            }
            sum -= w.map_or(1.0, |w| w[p]) * ls[(b * c + lab as usize) * inner + s];
            count += 1.0;
        }
    }
    if count > 0.0 {
        sum / count
    } else {
        0.0
    }
}

fn bce_ref(x: &[f64], t: &[f64], m: Option<&[f64]>) -> f64 {
    let (mut s, mut cnt) = (0.0, 0.0);
    for i in 0..x.len() {
        let mi = m.map_or(1.0, |m| m[i]);
        s += mi * (x[i].max(0.0) - x[i] * t[i] + (1.0 + (-x[i].abs()).exp()).ln());
        cnt += mi;
    }
    if cnt > 0.0 {
        s / cnt
    } else {
        0.0
    }
}

// ---------- tests ----------

#[test]
fn softmax_and_log_softmax_fd() {
    let g = gpu();
    let mut rng = Rng(1);
    for (shape, (n, c, inner)) in [(vec![2, 4, 2, 3], (2, 4, 6)), (vec![3, 5], (3, 5, 1))] {
        for log in [false, true] {
            let x0 = rng.normal(n * c * inner, 2.0);
            let up = rng.normal(x0.len(), 1.0);
            let x = param(&g, &x0, &shape);
            let y = if log {
                softmax::log_softmax(&x, 1)
            } else {
                softmax::softmax(&x, 1)
            }
            .unwrap();
            let what = if log { "log_softmax" } else { "softmax" };
            assert_close(
                &format!("{what} forward"),
                &f64s(&y.to_vec_f32().unwrap()),
                &softmax_ref(&x0, n, c, inner, log),
                1e-6,
                1e-5,
            );
            let got = grads(&y, &up, &[&x]).remove(0);
            let num = numeric_grad(
                &mut |v| dot(&softmax_ref(v, n, c, inner, log), &up),
                &x0,
                1e-5,
            );
            assert_close(&format!("{what} grad {shape:?}"), &got, &num, 1e-5, 1e-4);
        }
    }
    assert!(softmax::softmax(&Tensor::zeros(&g, &[2, 3], advseg::DType::F32).unwrap(), 0).is_err());
}

#[test]
fn cross_entropy_fd_with_and_without_pixel_weight() {
    let g = gpu();
    let mut rng = Rng(2);
    // (shape, ignore, ignored fraction); the second has image 1 fully ignored.
    for (shape, ignore, frac) in [
        (vec![2, 4, 3, 2], 255, 0.3),
        (vec![2, 3, 2, 2], -100, 0.2),
        (vec![5, 4], -100, 0.3),
    ] {
        let (n, c) = (shape[0], shape[1]);
        let inner: usize = shape[2..].iter().product();
        let tshape: Vec<usize> = std::iter::once(n)
            .chain(shape[2..].iter().copied())
            .collect();
        let mut t = rng.labels(n * inner, c, ignore, frac);
        if ignore == -100 && shape.len() == 4 {
            t[inner..2 * inner].fill(ignore);
        }
        let x0 = rng.normal(n * c * inner, 2.0);
        let w0: Vec<f64> = (0..n * inner).map(|_| rng.next() * 2.0).collect();
        let up = [0.7];
        let target = Tensor::from_i32(&g, &t, &tshape).unwrap();
        // Unweighted.
        let x = param(&g, &x0, &shape);
        let l = loss::cross_entropy(&x, &target, ignore, None).unwrap();
        assert_eq!(l.shape(), &[] as &[usize]);
        let want = ce_ref(&x0, &t, None, n, c, inner, ignore);
        assert_close(
            "ce forward",
            &[l.item().unwrap() as f64],
            &[want],
            1e-6,
            1e-5,
        );
        let gx = grads(&l, &up, &[&x]).remove(0);
        let num = numeric_grad(
            &mut |v| 0.7 * ce_ref(v, &t, None, n, c, inner, ignore),
            &x0,
            1e-5,
        );
        assert_close(&format!("ce grad {shape:?}"), &gx, &num, 1e-6, 1e-4);
        // Pixel-weighted: gradients for the logits and the weights.
        let x = param(&g, &x0, &shape);
        let w = param(&g, &w0, &tshape);
        let l = loss::cross_entropy(&x, &target, ignore, Some(&w)).unwrap();
        let want = ce_ref(&x0, &t, Some(&w0), n, c, inner, ignore);
        assert_close(
            "weighted ce forward",
            &[l.item().unwrap() as f64],
            &[want],
            1e-6,
            1e-5,
        );
        let gr = grads(&l, &up, &[&x, &w]);
        let num_x = numeric_grad(
            &mut |v| 0.7 * ce_ref(v, &t, Some(&w0), n, c, inner, ignore),
            &x0,
            1e-5,
        );
        let num_w = numeric_grad(
            &mut |v| 0.7 * ce_ref(&x0, &t, Some(v), n, c, inner, ignore),
            &w0,
            1e-5,
        );
        assert_close(
            &format!("weighted ce grad logits {shape:?}"),
            &gr[0],
            &num_x,
            1e-6,
            1e-4,
        );
        assert_close(
            &format!("weighted ce grad weight {shape:?}"),
            &gr[1],
            &num_w,
            1e-6,
            1e-4,
        );
    }
}

/// No valid pixel: loss 0 and zero gradient (PyTorch would give NaN).
#[test]
fn cross_entropy_all_ignored_is_zero() {
    let g = gpu();
    let x = param(&g, &Rng(3).normal(2 * 3 * 4, 1.0), &[2, 3, 2, 2]);
    let t = Tensor::from_i32(&g, &[255; 8], &[2, 2, 2]).unwrap();
    let l = loss::cross_entropy(&x, &t, 255, None).unwrap();
    assert_eq!(l.item().unwrap(), 0.0);
    l.backward().unwrap();
    assert!(x
        .grad()
        .unwrap()
        .to_vec_f32()
        .unwrap()
        .iter()
        .all(|&v| v == 0.0));
    // Shape errors name the op.
    let bad = Tensor::from_i32(&g, &[0; 6], &[2, 3]).unwrap();
    let e = loss::cross_entropy(&x, &bad, 255, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cross_entropy"), "{e}");
}

#[test]
fn bce_with_logits_fd_with_mask_and_target_grad() {
    let g = gpu();
    let mut rng = Rng(4);
    for (shape, masked) in [
        (vec![2, 2, 3, 2], true),
        (vec![3, 4], false),
        (vec![2, 5], true),
    ] {
        let n: usize = shape.iter().product();
        let x0 = rng.normal(n, 4.0);
        let t0: Vec<f64> = (0..n).map(|_| rng.next()).collect();
        let mut m0: Vec<f64> = (0..n)
            .map(|_| if rng.next() < 0.6 { 1.0 } else { 0.0 })
            .collect();
        m0[..shape[1]].fill(0.0);
        let m = masked.then(|| Tensor::from_f32(&g, &f32s(&m0), &shape).unwrap());
        let mref = masked.then_some(m0.as_slice());
        let (x, t) = (param(&g, &x0, &shape), param(&g, &t0, &shape));
        let l = loss::bce_with_logits(&x, &t, m.as_ref()).unwrap();
        assert_close(
            "bce forward",
            &[l.item().unwrap() as f64],
            &[bce_ref(&x0, &t0, mref)],
            1e-6,
            1e-5,
        );
        let gr = grads(&l, &[1.3], &[&x, &t]);
        let num_x = numeric_grad(&mut |v| 1.3 * bce_ref(v, &t0, mref), &x0, 1e-5);
        let num_t = numeric_grad(&mut |v| 1.3 * bce_ref(&x0, v, mref), &t0, 1e-5);
        assert_close(
            &format!("bce grad logits {shape:?}"),
            &gr[0],
            &num_x,
            1e-6,
            1e-4,
        );
        assert_close(
            &format!("bce grad target {shape:?}"),
            &gr[1],
            &num_t,
            1e-6,
            1e-4,
        );
    }
    // All-zero mask: 0 loss, zero gradient.
    let x = param(&g, &[1.0, -2.0], &[2]);
    let t = Tensor::from_f32(&g, &[1.0, 0.0], &[2]).unwrap();
    let z = Tensor::zeros(&g, &[2], advseg::DType::F32).unwrap();
    let l = loss::bce_with_logits(&x, &t, Some(&z)).unwrap();
    assert_eq!(l.item().unwrap(), 0.0);
    l.backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec_f32().unwrap(), vec![0.0, 0.0]);
}

#[test]
fn multilabel_soft_margin_fd() {
    let g = gpu();
    let mut rng = Rng(5);
    let (n, c) = (3, 5);
    let x0 = rng.normal(n * c, 3.0);
    let t0: Vec<f64> = (0..n * c)
        .map(|_| if rng.next() < 0.4 { 1.0 } else { 0.0 })
        .collect();
    // PyTorch's definition: mean over N of the mean over C of −(t·logσ(x) + (1−t)·logσ(−x)).
    let reference = |x: &[f64], t: &[f64]| -> f64 {
        let ls = |v: f64| -(1.0 + (-v).exp()).ln();
        (0..n)
            .map(|i| {
                (0..c)
                    .map(|j| {
                        -(t[i * c + j] * ls(x[i * c + j])
                            + (1.0 - t[i * c + j]) * ls(-x[i * c + j]))
                    })
                    .sum::<f64>()
                    / c as f64
            })
            .sum::<f64>()
            / n as f64
    };
    let (x, t) = (param(&g, &x0, &[n, c]), param(&g, &t0, &[n, c]));
    let l = loss::multilabel_soft_margin(&x, &t).unwrap();
    assert_close(
        "mlsm forward",
        &[l.item().unwrap() as f64],
        &[reference(&x0, &t0)],
        1e-6,
        1e-5,
    );
    let gr = grads(&l, &[0.9], &[&x, &t]);
    let num_x = numeric_grad(&mut |v| 0.9 * reference(v, &t0), &x0, 1e-5);
    let num_t = numeric_grad(&mut |v| 0.9 * reference(&x0, v), &t0, 1e-5);
    assert_close("mlsm grad logits", &gr[0], &num_x, 1e-6, 1e-4);
    assert_close("mlsm grad target", &gr[1], &num_t, 1e-6, 1e-4);
    assert!(loss::multilabel_soft_margin(
        &param(&g, &x0, &[n, c, 1, 1]),
        &param(&g, &t0, &[n, c, 1, 1])
    )
    .is_err());
}

/// Concat along channels of three inputs, then split the result back (uneven sizes) and form
/// Σ piece·upstream: gradients are exact permutations of the upstream.
#[test]
fn concat_and_split_fd() {
    let g = gpu();
    let mut rng = Rng(6);
    for (n, cs, spatial) in [
        (2usize, [2usize, 1, 3], vec![2usize, 3]),
        (3, [1, 4, 2], vec![]),
    ] {
        let inner: usize = spatial.iter().product();
        let shape_of = |c: usize| -> Vec<usize> {
            [n, c].into_iter().chain(spatial.iter().copied()).collect()
        };
        let xs0: Vec<Vec<f64>> = cs.iter().map(|&c| rng.normal(n * c * inner, 1.0)).collect();
        let xs: Vec<Tensor> = xs0
            .iter()
            .zip(cs)
            .map(|(v, c)| param(&g, v, &shape_of(c)))
            .collect();
        let refs: Vec<&Tensor> = xs.iter().collect();
        let y = concat::concat(&refs, 1).unwrap();
        let ctot: usize = cs.iter().sum();
        assert_eq!(y.shape(), shape_of(ctot).as_slice());
        let cat_ref = |parts: &[Vec<f64>]| -> Vec<f64> {
            let mut out = vec![0.0; n * ctot * inner];
            let mut off = 0;
            for (p, &c) in parts.iter().zip(&cs) {
                for b in 0..n {
                    for k in 0..c {
                        for s in 0..inner {
                            out[(b * ctot + off + k) * inner + s] = p[(b * c + k) * inner + s];
                        }
                    }
                }
                off += c;
            }
            out
        };
        // A copy: exact up to the f32 rounding of the f64 inputs.
        assert_close(
            "concat forward",
            &f64s(&y.to_vec_f32().unwrap()),
            &cat_ref(&xs0),
            1e-12,
            1e-7,
        );
        // Split the concatenation into different, uneven pieces and weight each by an upstream.
        let sizes = [ctot - 1, 1];
        let pieces = concat::split(&y, &sizes, 1).unwrap();
        let ups: Vec<Vec<f64>> = sizes
            .iter()
            .map(|&c| rng.normal(n * c * inner, 1.0))
            .collect();
        let mut total: Option<Tensor> = None;
        for (p, u) in pieces.iter().zip(&ups) {
            let ut = Tensor::from_f32(&g, &f32s(u), p.shape()).unwrap();
            let term = reduce::sum(&elementwise::mul(p, &ut).unwrap()).unwrap();
            total = Some(match total {
                None => term,
                Some(t) => elementwise::add(&t, &term).unwrap(),
            });
        }
        let total = total.unwrap();
        let split_ref = |v: &[f64]| -> f64 {
            let mut s = 0.0;
            for b in 0..n {
                for k in 0..ctot {
                    let (pi, kk) = if k < sizes[0] {
                        (0, k)
                    } else {
                        (1, k - sizes[0])
                    };
                    for q in 0..inner {
                        s += v[(b * ctot + k) * inner + q]
                            * ups[pi][(b * sizes[pi] + kk) * inner + q];
                    }
                }
            }
            s
        };
        let got = grads(&total, &[1.0], &refs);
        for (i, x0) in xs0.iter().enumerate() {
            let num = numeric_grad(
                &mut |v| {
                    let mut parts = xs0.clone();
                    parts[i] = v.to_vec();
                    split_ref(&cat_ref(&parts))
                },
                x0,
                1e-3,
            );
            assert_close(
                &format!("concat/split grad of input {i}"),
                &got[i],
                &num,
                1e-5,
                1e-5,
            );
        }
    }
    let a = Tensor::zeros(&g, &[2, 3, 2, 2], advseg::DType::F32).unwrap();
    let b = Tensor::zeros(&g, &[2, 3, 2, 3], advseg::DType::F32).unwrap();
    assert!(concat::concat(&[&a, &b], 1).is_err());
    assert!(concat::split(&a, &[1, 1], 1).is_err());
    assert!(concat::narrow_channels(&a, 2, 2).is_err());
}

/// Concat along the batch (dim 0, as a GAN's D loss joins its labelled and unlabelled fakes):
/// the inputs laid end to end, and each input's gradient its slice of the upstream.
#[test]
fn concat_batch_forward_and_gradient() {
    let g = gpu();
    let mut rng = Rng(7);
    for rest in [vec![1usize, 2, 3], vec![4], vec![2, 5]] {
        let row: usize = rest.iter().product();
        let ns = [2usize, 1, 3];
        let xs0: Vec<Vec<f64>> = ns.iter().map(|&n| rng.normal(n * row, 1.0)).collect();
        let shape =
            |n: usize| -> Vec<usize> { [n].into_iter().chain(rest.iter().copied()).collect() };
        let xs: Vec<Tensor> = xs0
            .iter()
            .zip(ns)
            .map(|(v, n)| param(&g, v, &shape(n)))
            .collect();
        let refs: Vec<&Tensor> = xs.iter().collect();
        let y = concat::concat(&refs, 0).unwrap();
        assert_eq!(y.shape(), shape(6).as_slice());
        let want: Vec<f64> = xs0.concat();
        assert_close(
            "concat dim 0",
            &f64s(&y.to_vec_f32().unwrap()),
            &want,
            1e-12,
            1e-7,
        );
        let up = rng.normal(6 * row, 1.0);
        let got = grads(&y, &up, &refs);
        let mut off = 0;
        for (i, n) in ns.iter().enumerate() {
            let slice = &up[off..off + n * row];
            assert_close(
                &format!("concat dim 0 grad {i}"),
                &got[i],
                slice,
                1e-7,
                1e-6,
            );
            off += n * row;
        }
    }
    let a = Tensor::zeros(&g, &[2, 3, 2], advseg::DType::F32).unwrap();
    let b = Tensor::zeros(&g, &[2, 2, 2], advseg::DType::F32).unwrap();
    let e = concat::concat(&[&a, &b], 0).unwrap_err().to_string();
    assert!(e.contains("every dim but 0"), "{e}");
    assert!(concat::concat(&[&a, &a], 2).is_err());
}

#[test]
fn argmax_one_hot_and_label_check() {
    let g = gpu();
    // Ties resolve to the lowest channel.
    let x = Tensor::from_f32(&g, &[3.0, 3.0, 3.0, 0.0, 2.0, 2.0, 3.0, 2.0], &[2, 2, 1, 2]).unwrap();
    let a = softmax::argmax_channels(&x).unwrap();
    assert_eq!(
        (a.shape(), a.to_vec_i32().unwrap()),
        (&[2usize, 1, 2][..], vec![0, 0, 1, 0])
    );
    let x2 = Tensor::from_f32(&g, &[0.5, 0.5, -1.0, 0.0, 2.0, 2.0], &[2, 3]).unwrap();
    let a = softmax::argmax_channels(&x2).unwrap();
    assert_eq!(
        (a.shape(), a.to_vec_i32().unwrap()),
        (&[2usize][..], vec![0, 1])
    );
    // one_hot: ignore index and out-of-range labels give all-zero vectors.
    let lab = Tensor::from_i32(&g, &[0, 2, 255, 7], &[1, 2, 2]).unwrap();
    let oh = softmax::one_hot(&lab, 3, 255).unwrap();
    assert_eq!(oh.shape(), &[1, 3, 2, 2]);
    #[rustfmt::skip]
    assert_eq!(oh.to_vec_f32().unwrap(), vec![
        1.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
        0.0, 1.0, 0.0, 0.0,
    ]);
    let oh1 = softmax::one_hot(&Tensor::from_i32(&g, &[1, -100], &[2]).unwrap(), 2, -100).unwrap();
    assert_eq!(oh1.to_vec_f32().unwrap(), vec![0.0, 1.0, 0.0, 0.0]);
    assert!(softmax::check_labels(&[0, 2, 255], 3, 255).is_ok());
    let e = softmax::check_labels(&[0, 3, 255], 3, 255)
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 3 at index 1"), "{e}");
    assert!(softmax::check_labels(&[-1], 3, 255).is_err());
}
