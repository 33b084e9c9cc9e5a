//! Finite-difference checks of the spatial ops' backward passes (pooling, resizing, batch norm)
//! against f64 CPU references written here, plus unit tests of dropout, frozen-affine batch
//! norm, running statistics and error handling.

use advseg::autograd;
use advseg::ops;
use advseg::testing::fd::{numeric_grad, worst_ratio};
use advseg::{Gpu, Tensor};
use std::sync::Arc;

fn gpu() -> Arc<Gpu> {
    Gpu::shared().expect("GPU adapter")
}

/// Deterministic uniform values in [-1, 1).
fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// Distinct values 0.01 apart in shuffled order: max-pool argmaxes stay put under FD steps.
fn tie_free(n: usize, seed: u64) -> Vec<f32> {
    let mut idx: Vec<usize> = (0..n).collect();
    let u = uniform(n, seed);
    for i in (1..n).rev() {
        let j = (((u[i] as f64 + 1.0) / 2.0) * (i + 1) as f64) as usize % (i + 1);
        idx.swap(i, j);
    }
    idx.into_iter()
        .map(|k| k as f32 * 0.01 - n as f32 * 0.005)
        .collect()
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Checks one op: GPU forward vs `reference`, and the GPU gradients of `Σ out·u` w.r.t. every
/// input against central differences of the reference. `inputs` are (data, shape) pairs; the
/// reference gets them concatenated.
fn check(
    name: &str,
    inputs: &[(Vec<f32>, Vec<usize>)],
    forward: &dyn Fn(&[Tensor]) -> advseg::Result<Tensor>,
    reference: &dyn Fn(&[f64]) -> Vec<f64>,
    tol: (f64, f64),
) {
    let gpu = gpu();
    let params: Vec<Tensor> = inputs
        .iter()
        .map(|(d, s)| Tensor::from_f32(&gpu, d, s).unwrap().into_param())
        .collect();
    let y = forward(&params).unwrap();
    let flat: Vec<f64> = inputs.iter().flat_map(|(d, _)| to64(d)).collect();
    let want = reference(&flat);
    let got = to64(&y.to_vec_f32().unwrap());
    assert_eq!(got.len(), want.len(), "{name}: output size");
    let fw = worst_ratio(&got, &want, 1e-5, 1e-4);
    assert!(
        fw <= 1.0,
        "{name}: forward differs from the f64 reference ({fw:.2} of tolerance)"
    );

    let up = uniform(y.numel(), 99);
    let up_t = Tensor::from_f32(&gpu, &up, y.shape()).unwrap();
    autograd::backward(&y, Some(up_t), false).unwrap();
    let up64 = to64(&up);
    let mut loss = |v: &[f64]| {
        reference(v)
            .iter()
            .zip(&up64)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    let num = numeric_grad(&mut loss, &flat, 1e-4);
    let mut off = 0;
    for (k, ((d, _), p)) in inputs.iter().zip(&params).enumerate() {
        let g = to64(
            &p.grad()
                .unwrap_or_else(|| panic!("{name}: no gradient for input {k}"))
                .to_vec_f32()
                .unwrap(),
        );
        let n = &num[off..off + d.len()];
        let r = worst_ratio(&g, n, tol.0, tol.1);
        assert!(
            r <= 1.0,
            "{name}: gradient of input {k} off by {r:.2} of tolerance\n got  {g:?}\n want {n:?}"
        );
        off += d.len();
    }
}

// ---------------------------------------------------------------- pooling references

fn out_size(input: usize, k: usize, s: usize, p: usize, ceil: bool) -> usize {
    let span = input + 2 * p - k;
    let mut o = if ceil { span.div_ceil(s) } else { span / s } + 1;
    if ceil && (o - 1) * s >= input + p {
        o -= 1;
    }
    o
}

#[derive(Clone, Copy)]
struct Geo {
    shape: [usize; 4],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    ceil: bool,
}

impl Geo {
    fn out(&self) -> [usize; 2] {
        [
            out_size(self.shape[2], self.k[0], self.s[0], self.p[0], self.ceil),
            out_size(self.shape[3], self.k[1], self.s[1], self.p[1], self.ceil),
        ]
    }
}

fn max_pool_ref(g: Geo, x: &[f64]) -> Vec<f64> {
    let [n, c, h, w] = g.shape;
    let [oh, ow] = g.out();
    let mut out = Vec::new();
    for pl in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let hs = (oy * g.s[0]) as i64 - g.p[0] as i64;
                let ws = (ox * g.s[1]) as i64 - g.p[1] as i64;
                let mut m = f64::NEG_INFINITY;
                for y in hs.max(0)..(hs + g.k[0] as i64).min(h as i64) {
                    for xx in ws.max(0)..(ws + g.k[1] as i64).min(w as i64) {
                        m = m.max(x[pl * h * w + y as usize * w + xx as usize]);
                    }
                }
                out.push(m);
            }
        }
    }
    out
}

fn avg_pool_ref(g: Geo, cip: bool, x: &[f64]) -> Vec<f64> {
    let [n, c, h, w] = g.shape;
    let [oh, ow] = g.out();
    let (h, w) = (h as i64, w as i64);
    let mut out = Vec::new();
    for pl in 0..(n * c) as i64 {
        for oy in 0..oh as i64 {
            for ox in 0..ow as i64 {
                let hs = oy * g.s[0] as i64 - g.p[0] as i64;
                let ws = ox * g.s[1] as i64 - g.p[1] as i64;
                let he = (hs + g.k[0] as i64).min(h + g.p[0] as i64);
                let we = (ws + g.k[1] as i64).min(w + g.p[1] as i64);
                let pool = (he - hs) * (we - ws);
                let (hs, ws, he, we) = (hs.max(0), ws.max(0), he.min(h), we.min(w));
                let mut s = 0.0;
                for y in hs..he {
                    for xx in ws..we {
                        s += x[(pl * h * w + y * w + xx) as usize];
                    }
                }
                let div = if cip { pool } else { (he - hs) * (we - ws) };
                out.push(s / div as f64);
            }
        }
    }
    out
}

const POOL_GEOS: [Geo; 4] = [
    Geo {
        shape: [1, 2, 8, 8],
        k: [3, 3],
        s: [2, 2],
        p: [0, 0],
        ceil: true,
    },
    Geo {
        shape: [2, 1, 7, 9],
        k: [3, 3],
        s: [2, 2],
        p: [1, 1],
        ceil: true,
    },
    Geo {
        shape: [1, 1, 6, 5],
        k: [4, 3],
        s: [4, 3],
        p: [2, 1],
        ceil: true,
    },
    Geo {
        shape: [1, 2, 5, 6],
        k: [3, 2],
        s: [1, 2],
        p: [1, 0],
        ceil: false,
    },
];

#[test]
fn fd_max_pool2d() {
    for (i, g) in POOL_GEOS.into_iter().enumerate() {
        let x = tie_free(g.shape.iter().product(), 10 + i as u64);
        check(
            &format!("max_pool2d geo {i}"),
            &[(x, g.shape.to_vec())],
            &|t| ops::max_pool2d(&t[0], g.k, g.s, g.p, g.ceil),
            &|v| max_pool_ref(g, v),
            (1e-5, 1e-4),
        );
    }
}

#[test]
fn max_pool2d_indices_are_plane_offsets() {
    let gpu = gpu();
    let x = Tensor::from_f32(
        &gpu,
        &[1.0, 5.0, 2.0, 3.0, 9.0, 0.0, 4.0, 8.0, 7.0],
        &[1, 1, 3, 3],
    )
    .unwrap();
    let (y, idx) = ops::max_pool2d_with_indices(&x, [2, 2], [1, 1], [0, 0], false).unwrap();
    assert_eq!(y.to_vec_f32().unwrap(), vec![9.0, 9.0, 9.0, 9.0]);
    assert_eq!(idx.to_vec_i32().unwrap(), vec![4, 4, 4, 4]);
}

#[test]
fn fd_avg_pool2d() {
    for (i, g) in POOL_GEOS.into_iter().enumerate() {
        for cip in [true, false] {
            let x = uniform(g.shape.iter().product(), 20 + i as u64);
            check(
                &format!("avg_pool2d geo {i} count_include_pad={cip}"),
                &[(x, g.shape.to_vec())],
                &|t| ops::avg_pool2d(&t[0], g.k, g.s, g.p, g.ceil, cip),
                &|v| avg_pool_ref(g, cip, v),
                (1e-5, 1e-4),
            );
        }
    }
}

fn adaptive_ref(shape: [usize; 4], o: [usize; 2], x: &[f64]) -> Vec<f64> {
    let [n, c, h, w] = shape;
    let mut out = Vec::new();
    for pl in 0..n * c {
        for oy in 0..o[0] {
            for ox in 0..o[1] {
                let (h0, h1) = (oy * h / o[0], ((oy + 1) * h).div_ceil(o[0]));
                let (w0, w1) = (ox * w / o[1], ((ox + 1) * w).div_ceil(o[1]));
                let mut s = 0.0;
                for y in h0..h1 {
                    for xx in w0..w1 {
                        s += x[pl * h * w + y * w + xx];
                    }
                }
                out.push(s / ((h1 - h0) * (w1 - w0)) as f64);
            }
        }
    }
    out
}

#[test]
fn fd_adaptive_avg_pool2d() {
    for (i, (shape, o)) in [
        ([2, 2, 5, 7], [1, 1]),
        ([1, 2, 7, 5], [3, 4]),
        ([1, 1, 3, 2], [5, 4]),
    ]
    .into_iter()
    .enumerate()
    {
        let x = uniform(shape.iter().product(), 30 + i as u64);
        check(
            &format!("adaptive_avg_pool2d {shape:?} -> {o:?}"),
            &[(x, shape.to_vec())],
            &|t| ops::adaptive_avg_pool2d(&t[0], o),
            &|v| adaptive_ref(shape, o, v),
            (1e-5, 1e-4),
        );
    }
}

// ---------------------------------------------------------------- resize references

/// PyTorch's bilinear taps along one axis: (lower index, upper index, lower weight, upper weight).
fn taps(n_in: usize, n_out: usize, ac: bool) -> Vec<(usize, usize, f64, f64)> {
    let scale = if ac {
        if n_out > 1 {
            (n_in as f64 - 1.0) / (n_out as f64 - 1.0)
        } else {
            0.0
        }
    } else {
        n_in as f64 / n_out as f64
    };
    (0..n_out)
        .map(|d| {
            let src = if ac {
                scale * d as f64
            } else {
                (scale * (d as f64 + 0.5) - 0.5).max(0.0)
            };
            let i0 = (src as usize).min(n_in - 1);
            let i1 = if i0 < n_in - 1 { i0 + 1 } else { i0 };
            let l1 = src - i0 as f64;
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

fn bilinear_ref(shape: [usize; 4], size: [usize; 2], ac: bool, x: &[f64]) -> Vec<f64> {
    let [n, c, h, w] = shape;
    let (ty, tx) = (taps(h, size[0], ac), taps(w, size[1], ac));
    let mut out = Vec::new();
    for pl in 0..n * c {
        let at = |y: usize, xx: usize| x[pl * h * w + y * w + xx];
        for &(y0, y1, a0, a1) in &ty {
            for &(x0, x1, b0, b1) in &tx {
                out.push(
                    a0 * (b0 * at(y0, x0) + b1 * at(y0, x1))
                        + a1 * (b0 * at(y1, x0) + b1 * at(y1, x1)),
                );
            }
        }
    }
    out
}

const RESIZES: [([usize; 4], [usize; 2]); 6] = [
    ([1, 1, 3, 4], [17, 13]),
    ([1, 2, 17, 11], [5, 4]),
    ([2, 1, 5, 7], [8, 3]),
    ([1, 1, 4, 5], [1, 1]),
    ([1, 1, 1, 3], [4, 7]),
    ([1, 1, 6, 6], [41, 9]),
];

#[test]
fn fd_upsample_bilinear2d() {
    for (i, (shape, size)) in RESIZES.into_iter().enumerate() {
        for ac in [false, true] {
            let x = uniform(shape.iter().product(), 40 + i as u64);
            check(
                &format!("bilinear {shape:?} -> {size:?} align_corners={ac}"),
                &[(x, shape.to_vec())],
                &|t| ops::upsample_bilinear2d(&t[0], size, ac),
                &|v| bilinear_ref(shape, size, ac, v),
                (1e-5, 1e-4),
            );
        }
    }
}

fn nearest_ref(shape: [usize; 4], size: [usize; 2], x: &[f64]) -> Vec<f64> {
    let [n, c, h, w] = shape;
    // f32 arithmetic on purpose: PyTorch computes the source index in float.
    let src = |d: usize, i: usize, o: usize| {
        (((d as f32) * (i as f32 / o as f32)).floor() as usize).min(i - 1)
    };
    let mut out = Vec::new();
    for pl in 0..n * c {
        for oy in 0..size[0] {
            for ox in 0..size[1] {
                out.push(x[pl * h * w + src(oy, h, size[0]) * w + src(ox, w, size[1])]);
            }
        }
    }
    out
}

#[test]
fn fd_upsample_nearest2d() {
    for (i, (shape, size)) in RESIZES.into_iter().enumerate() {
        let x = uniform(shape.iter().product(), 50 + i as u64);
        check(
            &format!("nearest {shape:?} -> {size:?}"),
            &[(x, shape.to_vec())],
            &|t| ops::upsample_nearest2d(&t[0], size),
            &|v| nearest_ref(shape, size, v),
            (1e-5, 1e-4),
        );
    }
}

// ---------------------------------------------------------------- batch norm

/// Train-mode batch norm in f64; `v` = x ++ weight ++ bias.
fn bn_train_ref(shape: [usize; 4], eps: f64, v: &[f64]) -> Vec<f64> {
    let [n, c, h, w] = shape;
    let hw = h * w;
    let nx = n * c * hw;
    let (x, wt, b) = (&v[..nx], &v[nx..nx + c], &v[nx + c..nx + 2 * c]);
    let m = (n * hw) as f64;
    let mut out = vec![0.0; nx];
    for ch in 0..c {
        let idx = || (0..n).flat_map(move |b| (0..hw).map(move |j| (b * c + ch) * hw + j));
        let mean = idx().map(|i| x[i]).sum::<f64>() / m;
        let var = idx().map(|i| (x[i] - mean).powi(2)).sum::<f64>() / m;
        for i in idx() {
            out[i] = (x[i] - mean) / (var + eps).sqrt() * wt[ch] + b[ch];
        }
    }
    out
}

#[test]
fn fd_batch_norm2d_train() {
    let gpu = gpu();
    // [2, 2, 16, 20]: 640 values per channel, so each invocation strides over several.
    for (i, shape) in [[2, 3, 3, 4], [4, 2, 1, 1], [1, 2, 3, 3], [2, 2, 16, 20]]
        .into_iter()
        .enumerate()
    {
        let c = shape[1];
        let mut x = uniform(shape.iter().product(), 60 + i as u64);
        x.iter_mut().for_each(|v| *v = *v * 2.0 + 0.5);
        let wt = uniform(c, 70 + i as u64);
        let b = uniform(c, 80 + i as u64);
        let rm = Tensor::zeros(&gpu, &[c], advseg::DType::F32).unwrap();
        let rv = Tensor::full(&gpu, &[c], 1.0).unwrap();
        check(
            &format!("batch_norm2d train {shape:?}"),
            &[(x, shape.to_vec()), (wt, vec![c]), (b, vec![c])],
            &|t| ops::batch_norm2d(&t[0], Some(&t[1]), Some(&t[2]), &rm, &rv, true, 0.1, 1e-5),
            &|v| bn_train_ref(shape, 1e-5, v),
            (1e-4, 1e-3),
        );
    }
}

#[test]
fn fd_batch_norm2d_eval() {
    let gpu = gpu();
    let shape = [2, 3, 2, 3];
    let c = 3;
    let rm_h = [0.3f32, -0.2, 1.0];
    let rv_h = [0.5f32, 2.0, 1.5];
    let rm = Tensor::from_f32(&gpu, &rm_h, &[c]).unwrap();
    let rv = Tensor::from_f32(&gpu, &rv_h, &[c]).unwrap();
    let reference = |v: &[f64]| {
        let nx = 36;
        (0..nx)
            .map(|i| {
                let ch = (i / 6) % c;
                (v[i] - rm_h[ch] as f64) / (rv_h[ch] as f64 + 1e-5).sqrt() * v[nx + ch]
                    + v[nx + c + ch]
            })
            .collect()
    };
    check(
        "batch_norm2d eval",
        &[
            (uniform(36, 90), shape.to_vec()),
            (uniform(c, 91), vec![c]),
            (uniform(c, 92), vec![c]),
        ],
        &|t| ops::batch_norm2d(&t[0], Some(&t[1]), Some(&t[2]), &rm, &rv, false, 0.1, 1e-5),
        &reference,
        (1e-4, 1e-3),
    );
    // Eval mode leaves the running statistics alone.
    assert_eq!(rm.to_vec_f32().unwrap(), rm_h);
    assert_eq!(rv.to_vec_f32().unwrap(), rv_h);
}

#[test]
fn batch_norm2d_frozen_affine_still_passes_gradient_to_x() {
    let gpu = gpu();
    let shape = [2, 2, 3, 3];
    let xd = uniform(36, 100);
    let (wd, bd) = (vec![1.5f32, -0.5], vec![0.2f32, 0.1]);
    let up = uniform(36, 101);
    let run = |frozen: bool| {
        let x = Tensor::from_f32(&gpu, &xd, &shape).unwrap().into_param();
        let wt = Tensor::from_f32(&gpu, &wd, &[2]).unwrap().into_param();
        let b = Tensor::from_f32(&gpu, &bd, &[2]).unwrap().into_param();
        if frozen {
            wt.set_requires_grad(false).unwrap();
            b.set_requires_grad(false).unwrap();
        }
        let rm = Tensor::zeros(&gpu, &[2], advseg::DType::F32).unwrap();
        let rv = Tensor::full(&gpu, &[2], 1.0).unwrap();
        let y = ops::batch_norm2d(&x, Some(&wt), Some(&b), &rm, &rv, true, 0.1, 1e-5).unwrap();
        autograd::backward(
            &y,
            Some(Tensor::from_f32(&gpu, &up, &shape).unwrap()),
            false,
        )
        .unwrap();
        (
            x.grad().unwrap().to_vec_f32().unwrap(),
            wt.grad().is_some(),
            b.grad().is_some(),
        )
    };
    let (gx_free, w_free, b_free) = run(false);
    let (gx_frozen, w_frozen, b_frozen) = run(true);
    assert!(w_free && b_free);
    assert!(
        !w_frozen && !b_frozen,
        "frozen affine parameters must not receive gradients"
    );
    assert_eq!(gx_free, gx_frozen);
}

#[test]
fn batch_norm2d_updates_running_stats_in_place() {
    let gpu = gpu();
    let x: Vec<f32> = (0..8).map(|i| i as f32).collect(); // [2, 2, 1, 2]
    let xt = Tensor::from_f32(&gpu, &x, &[2, 2, 1, 2]).unwrap();
    let rm = Tensor::from_f32(&gpu, &[1.0, 2.0], &[2]).unwrap();
    let rv = Tensor::from_f32(&gpu, &[1.0, 1.0], &[2]).unwrap();
    ops::batch_norm2d(&xt, None, None, &rm, &rv, true, 0.5, 1e-5).unwrap();
    // Channel 0 holds {0, 1, 4, 5}: mean 2.5, unbiased variance 17/3; channel 1 holds {2, 3, 6, 7}.
    let (m, v) = (rm.to_vec_f32().unwrap(), rv.to_vec_f32().unwrap());
    let want_m = [0.5 * 1.0 + 0.5 * 2.5, 0.5 * 2.0 + 0.5 * 4.5];
    let want_v = [0.5 + 0.5 * 17.0 / 3.0, 0.5 + 0.5 * 17.0 / 3.0];
    for k in 0..2 {
        assert!(
            (m[k] - want_m[k]).abs() < 1e-5 && (v[k] - want_v[k]).abs() < 1e-5,
            "got {m:?} {v:?}"
        );
    }
}

#[test]
fn batch_norm2d_errors() {
    let gpu = gpu();
    let x = Tensor::zeros(&gpu, &[1, 2, 1, 1], advseg::DType::F32).unwrap();
    let rm = Tensor::zeros(&gpu, &[2], advseg::DType::F32).unwrap();
    let bad = Tensor::zeros(&gpu, &[3], advseg::DType::F32).unwrap();
    let e = ops::batch_norm2d(&x, None, None, &rm, &rm, true, 0.1, 1e-5).unwrap_err();
    assert!(e.to_string().contains("more than 1 value"), "{e}");
    let e = ops::batch_norm2d(&x, Some(&bad), None, &rm, &rm, false, 0.1, 1e-5).unwrap_err();
    assert!(
        e.to_string().contains("batch_norm2d") && e.to_string().contains("[3]"),
        "{e}"
    );
}

#[test]
fn pool_and_resize_errors() {
    let gpu = gpu();
    let x = Tensor::zeros(&gpu, &[1, 1, 2, 2], advseg::DType::F32).unwrap();
    assert!(ops::max_pool2d(&x, [3, 3], [1, 1], [0, 0], false).is_err());
    assert!(
        ops::max_pool2d(&x, [2, 2], [1, 1], [2, 2], false).is_err(),
        "padding > kernel/2"
    );
    assert!(ops::avg_pool2d(&x, [2, 2], [0, 0], [0, 0], false, true).is_err());
    let x3 = Tensor::zeros(&gpu, &[1, 2, 2], advseg::DType::F32).unwrap();
    assert!(ops::upsample_bilinear2d(&x3, [4, 4], false).is_err());
    assert!(ops::upsample_nearest2d(&x, [0, 4]).is_err());
    assert!(ops::adaptive_avg_pool2d(&x, [0, 1]).is_err());
}

// ---------------------------------------------------------------- dropout

#[test]
fn dropout_statistics_and_reproducibility() {
    let gpu = gpu();
    let n = 1 << 14;
    let x = Tensor::full(&gpu, &[n], 1.0).unwrap().into_param();
    let p = 0.3f32;
    let y = ops::dropout(&x, p, true, 1234).unwrap();
    let v = y.to_vec_f32().unwrap();
    let dropped = v.iter().filter(|&&a| a == 0.0).count() as f64 / n as f64;
    // Binomial std at n = 16384 is ~0.0036; 5 sigma.
    assert!((dropped - 0.3).abs() < 0.018, "dropped fraction {dropped}");
    let scale = 1.0 / (1.0 - p);
    assert!(v.iter().all(|&a| a == 0.0 || (a - scale).abs() < 1e-6));
    let same = ops::dropout(&x, p, true, 1234)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    assert_eq!(v, same, "same seed must give the same mask");
    let other = ops::dropout(&x, p, true, 1235)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let differ = v
        .iter()
        .zip(&other)
        .filter(|(a, b)| (**a == 0.0) != (**b == 0.0))
        .count() as f64
        / n as f64;
    // Independent masks disagree with probability 2·p·(1−p) = 0.42.
    assert!(
        (differ - 0.42).abs() < 0.03,
        "masks of different seeds disagree on {differ}"
    );
    let hi = ops::dropout(&x, p, true, 1234 + (1u64 << 32))
        .unwrap()
        .to_vec_f32()
        .unwrap();
    assert_ne!(v, hi, "the seed's high 32 bits must matter");

    // Backward multiplies by the same mask and scale.
    let g = uniform(n, 7);
    autograd::backward(&y, Some(Tensor::from_f32(&gpu, &g, &[n]).unwrap()), false).unwrap();
    let gx = x.grad().unwrap().to_vec_f32().unwrap();
    for i in 0..n {
        let want = if v[i] == 0.0 { 0.0 } else { g[i] * scale };
        assert!((gx[i] - want).abs() < 1e-6);
    }
}

#[test]
fn dropout_eval_and_edge_probabilities() {
    let gpu = gpu();
    let d = uniform(64, 3);
    let x = Tensor::from_f32(&gpu, &d, &[64]).unwrap();
    assert_eq!(
        ops::dropout(&x, 0.5, false, 1)
            .unwrap()
            .to_vec_f32()
            .unwrap(),
        d,
        "eval mode is identity"
    );
    assert_eq!(
        ops::dropout(&x, 0.0, true, 1)
            .unwrap()
            .to_vec_f32()
            .unwrap(),
        d
    );
    assert!(ops::dropout(&x, 1.0, true, 1)
        .unwrap()
        .to_vec_f32()
        .unwrap()
        .iter()
        .all(|&a| a == 0.0));
    assert!(ops::dropout(&x, 1.5, true, 1).is_err());
    assert!(
        ops::dropout2d(&x, 0.5, true, 1).is_err(),
        "dropout2d needs NCHW"
    );
}

#[test]
fn dropout2d_zeroes_whole_channels() {
    let gpu = gpu();
    let (n, c, hw) = (4, 64, 9);
    let x = Tensor::full(&gpu, &[n, c, 3, 3], 1.0).unwrap();
    let v = ops::dropout2d(&x, 0.5, true, 42)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let mut dropped = 0;
    for plane in v.chunks(hw) {
        assert!(
            plane.iter().all(|&a| a == plane[0]),
            "a channel was partly dropped: {plane:?}"
        );
        assert!(plane[0] == 0.0 || (plane[0] - 2.0).abs() < 1e-6);
        dropped += (plane[0] == 0.0) as usize;
    }
    let frac = dropped as f64 / (n * c) as f64;
    // 256 planes: std ~0.031; 5 sigma.
    assert!((frac - 0.5).abs() < 0.16, "dropped channel fraction {frac}");
}

#[test]
fn backward_passes_are_bitwise_deterministic() {
    let gpu = gpu();
    let shape = [2, 3, 9, 11];
    let xd = uniform(shape.iter().product(), 200);
    let up_bn = uniform(xd.len(), 201);
    let run = || {
        let x = Tensor::from_f32(&gpu, &xd, &shape).unwrap().into_param();
        let rm = Tensor::zeros(&gpu, &[3], advseg::DType::F32).unwrap();
        let rv = Tensor::full(&gpu, &[3], 1.0).unwrap();
        let y = ops::batch_norm2d(&x, None, None, &rm, &rv, true, 0.1, 1e-5).unwrap();
        let y = ops::max_pool2d(&y, [3, 3], [2, 2], [1, 1], true).unwrap();
        let y = ops::upsample_bilinear2d(&y, [9, 11], false).unwrap();
        let y = ops::avg_pool2d(&y, [3, 3], [1, 1], [1, 1], false, false).unwrap();
        let up = Tensor::from_f32(&gpu, &up_bn, y.shape()).unwrap();
        autograd::backward(&y, Some(up), false).unwrap();
        x.grad().unwrap().to_vec_f32().unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
}
