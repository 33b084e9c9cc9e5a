//! Finite-difference checks of the elementwise and reduction backward passes against f64 CPU
//! references: every unary map, broadcast binary ops, and sum/mean over dims.
//!
//! Loss L = Σ out·upstream; the analytic GPU gradient is compared with central differences of
//! the f64 reference (eps 1e-4). Tolerance atol 1e-4 + rtol 1e-3: the GPU works in f32.

use advseg::autograd;
use advseg::ops::{self, BinaryOp, UnaryOp};
use advseg::rng::Rng;
use advseg::testing::fd::{numeric_grad, worst_ratio};
use advseg::{Gpu, Tensor};

fn vals(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f64> {
    (0..n)
        .map(|_| {
            // Keep away from kinks at 0 (relu, abs, leaky) so central differences are valid.
            let mut v = rng.range(lo, hi);
            if v.abs() < 0.05 {
                v += 0.1;
            }
            v as f64
        })
        .collect()
}

fn gpu_grads(out: &Tensor, up: &[f64], params: &[&Tensor]) -> Vec<Vec<f64>> {
    let u: Vec<f32> = up.iter().map(|&v| v as f32).collect();
    let up = Tensor::from_f32(out.gpu(), &u, out.shape()).unwrap();
    autograd::backward(out, Some(up), false).unwrap();
    params
        .iter()
        .map(|p| {
            p.grad()
                .unwrap()
                .to_vec_f32()
                .unwrap()
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect()
}

fn param(v: &[f64], shape: &[usize]) -> Tensor {
    let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_f32(&Gpu::shared().unwrap(), &f, shape)
        .unwrap()
        .into_param()
}

fn unary_ref(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::LeakyRelu(s) => {
            if x > 0.0 {
                x
            } else {
                x * s as f64
            }
        }
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Affine(a, b) => a as f64 * x + b as f64,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Square => x * x,
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Clamp(lo, hi) => x.clamp(lo as f64, hi as f64),
        UnaryOp::Softplus => (1.0 + x.exp()).ln(),
    }
}

#[test]
fn unary_backward_matches_finite_differences() {
    let mut rng = Rng::new(11);
    let shape = [2, 3, 4, 5];
    let n = 120;
    let ops_list = [
        (UnaryOp::Relu, -2.0, 2.0),
        (UnaryOp::LeakyRelu(0.2), -2.0, 2.0),
        (UnaryOp::Sigmoid, -4.0, 4.0),
        (UnaryOp::Tanh, -3.0, 3.0),
        (UnaryOp::Affine(-1.5, 0.25), -2.0, 2.0),
        (UnaryOp::Exp, -2.0, 2.0),
        (UnaryOp::Log, 0.2, 3.0),
        (UnaryOp::Square, -2.0, 2.0),
        (UnaryOp::Sqrt, 0.2, 3.0),
        (UnaryOp::Abs, -2.0, 2.0),
        (UnaryOp::Clamp(-0.5, 0.7), -2.0, 2.0),
        (UnaryOp::Softplus, -4.0, 4.0),
    ];
    for (op, lo, hi) in ops_list {
        let x = vals(&mut rng, n, lo, hi);
        // Clamp has kinks at its bounds too.
        let x: Vec<f64> = x
            .iter()
            .map(|&v| {
                if (v + 0.5).abs() < 0.05 || (v - 0.7).abs() < 0.05 {
                    v + 0.12
                } else {
                    v
                }
            })
            .collect();
        let up = vals(&mut rng, n, -1.0, 1.0);
        let xt = param(&x, &shape);
        let y = ops::unary(&xt, op).unwrap();
        let got_y = y.to_vec_f32().unwrap();
        for (g, v) in got_y.iter().zip(&x) {
            let w = unary_ref(op, *v);
            assert!(
                (*g as f64 - w).abs() <= 1e-5 + 1e-5 * w.abs(),
                "{op:?} forward {g} vs {w}"
            );
        }
        let got = &gpu_grads(&y, &up, &[&xt])[0];
        let mut f = |xs: &[f64]| {
            xs.iter()
                .zip(&up)
                .map(|(&v, &u)| unary_ref(op, v) * u)
                .sum::<f64>()
        };
        let want = numeric_grad(&mut f, &x, 1e-4);
        let r = worst_ratio(got, &want, 1e-4, 1e-3);
        assert!(r <= 1.0, "{op:?}: gradient off by {r:.2}x tolerance");
    }
}

fn bcast_index(out_idx: usize, out: &[usize; 4], inp: &[usize; 4]) -> usize {
    let mut rem = out_idx;
    let mut c = [0usize; 4];
    for k in (0..4).rev() {
        c[k] = rem % out[k];
        rem /= out[k];
    }
    let mut idx = 0;
    for k in 0..4 {
        idx = idx * inp[k] + if inp[k] == 1 { 0 } else { c[k] };
    }
    idx
}

#[test]
fn broadcast_binary_backward_matches_finite_differences() {
    let mut rng = Rng::new(5);
    let cases: [([usize; 4], [usize; 4]); 4] = [
        ([2, 3, 4, 5], [2, 3, 4, 5]),
        ([2, 3, 4, 5], [1, 3, 1, 1]),
        ([2, 1, 4, 5], [2, 3, 1, 5]),
        ([1, 1, 1, 1], [2, 3, 2, 2]),
    ];
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
    ] {
        for (sa, sb) in cases {
            let out: [usize; 4] = std::array::from_fn(|k| sa[k].max(sb[k]));
            let (na, nb, no) = (
                sa.iter().product(),
                sb.iter().product(),
                out.iter().product::<usize>(),
            );
            let a = vals(&mut rng, na, -2.0, 2.0);
            // Division needs |b| away from 0; max needs a ≠ b.
            let b: Vec<f64> = vals(&mut rng, nb, 0.5, 2.0)
                .iter()
                .enumerate()
                .map(|(i, v)| if i % 2 == 0 { *v } else { -*v })
                .collect();
            let up = vals(&mut rng, no, -1.0, 1.0);
            let f_ref = |u: f64, v: f64| match op {
                BinaryOp::Add => u + v,
                BinaryOp::Sub => u - v,
                BinaryOp::Mul => u * v,
                BinaryOp::Div => u / v,
                BinaryOp::Max => u.max(v),
                BinaryOp::Gt => unreachable!(),
            };
            let loss = |a: &[f64], b: &[f64]| -> f64 {
                (0..no)
                    .map(|i| {
                        f_ref(a[bcast_index(i, &out, &sa)], b[bcast_index(i, &out, &sb)]) * up[i]
                    })
                    .sum()
            };
            let (at, bt) = (param(&a, &sa), param(&b, &sb));
            let y = ops::binary(&at, &bt, op).unwrap();
            assert_eq!(y.shape(), &out);
            let g = gpu_grads(&y, &up, &[&at, &bt]);
            let want_a = numeric_grad(&mut |xs: &[f64]| loss(xs, &b), &a, 1e-4);
            let want_b = numeric_grad(&mut |xs: &[f64]| loss(&a, xs), &b, 1e-4);
            let ra = worst_ratio(&g[0], &want_a, 1e-4, 1e-3);
            let rb = worst_ratio(&g[1], &want_b, 1e-4, 1e-3);
            assert!(
                ra <= 1.0 && rb <= 1.0,
                "{op:?} {sa:?} {sb:?}: grad a {ra:.2}x, b {rb:.2}x of tolerance"
            );
        }
    }
}

#[test]
fn sum_and_mean_backward_match_finite_differences() {
    let mut rng = Rng::new(9);
    let shape = [2, 3, 4, 5];
    let x = vals(&mut rng, 120, -1.0, 1.0);
    for (dims, mean) in [
        (vec![0, 2, 3], false),
        (vec![1], true),
        (vec![0, 1, 2, 3], true),
        (vec![3], false),
    ] {
        let xt = param(&x, &shape);
        let y = if mean {
            ops::mean_dims(&xt, &dims).unwrap()
        } else {
            ops::sum_dims(&xt, &dims).unwrap()
        };
        let out_shape: Vec<usize> = (0..4)
            .map(|k| if dims.contains(&k) { 1 } else { shape[k] })
            .collect();
        assert_eq!(y.shape(), out_shape.as_slice());
        let no: usize = out_shape.iter().product();
        let up = vals(&mut rng, no, -1.0, 1.0);
        let red: f64 = dims.iter().map(|&d| shape[d] as f64).product();
        let o4: [usize; 4] = out_shape.clone().try_into().unwrap();
        let mut f = |xs: &[f64]| -> f64 {
            let mut acc = vec![0.0; no];
            for (i, v) in xs.iter().enumerate() {
                acc[bcast_index(i, &shape, &o4)] += v;
            }
            acc.iter()
                .zip(&up)
                .map(|(a, u)| if mean { a / red } else { *a } * u)
                .sum()
        };
        let want = numeric_grad(&mut f, &x, 1e-4);
        let got = &gpu_grads(&y, &up, &[&xt])[0];
        let r = worst_ratio(got, &want, 1e-4, 1e-3);
        assert!(r <= 1.0, "dims {dims:?} mean {mean}: {r:.2}x tolerance");
    }
}
