//! Per-plane min/max (ops::minmax), min–max normalisation, CAM and Grad-CAM (nn::cam): values
//! and backward passes against f64 CPU references and their central differences.

use advseg::nn::cam::{self, GradCamCfg};
use advseg::testing::fd::{numeric_grad, worst_ratio};
use advseg::{ops, Gpu, Tensor};

/// Distinct shuffled values (no ties, gaps ≫ the FD step).
fn tie_free(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        idx.swap(i, (s % (i as u64 + 1)) as usize);
    }
    idx.into_iter()
        .map(|k| (k as f32 - n as f32 / 2.0) * 0.05)
        .collect()
}

fn weights(n: usize, seed: u64) -> Vec<f64> {
    tie_free(n, seed)
        .iter()
        .map(|v| (*v as f64 * 0.37).sin())
        .collect()
}

/// f64 reference of (x − min) / (max − min + eps) per plane of `hw` elements.
fn normalize_ref(x: &[f64], hw: usize, eps: f64) -> Vec<f64> {
    x.chunks(hw)
        .flat_map(|p| {
            let lo = p.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            p.iter()
                .map(move |v| (v - lo) / (hi - lo + eps))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn max_min_spatial_values_and_gradients() {
    let gpu = Gpu::shared().unwrap();
    let shape = [2, 3, 7, 45]; // 315 > 256 elements per plane: strided scan + tree
    let hw = 7 * 45;
    let xv = tie_free(2 * 3 * hw, 1);
    let up = weights(6, 2);
    for is_max in [true, false] {
        let x = Tensor::from_f32(&gpu, &xv, &shape).unwrap().into_param();
        let y = if is_max {
            ops::max_spatial(&x)
        } else {
            ops::min_spatial(&x)
        }
        .unwrap();
        assert_eq!(y.shape(), &[2, 3, 1, 1]);
        let r = |v: &[f64]| -> Vec<f64> {
            v.chunks(hw)
                .map(|p| {
                    p.iter().cloned().fold(
                        if is_max {
                            f64::NEG_INFINITY
                        } else {
                            f64::INFINITY
                        },
                        if is_max { f64::max } else { f64::min },
                    )
                })
                .collect()
        };
        let x64: Vec<f64> = xv.iter().map(|&v| v as f64).collect();
        let yv: Vec<f64> = y.to_vec_f32().unwrap().iter().map(|&v| v as f64).collect();
        assert_eq!(yv, r(&x64), "values are exact");
        let upt = Tensor::from_f32(
            &gpu,
            &up.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            &[2, 3, 1, 1],
        )
        .unwrap();
        ops::sum(&ops::mul(&y, &upt).unwrap())
            .unwrap()
            .backward()
            .unwrap();
        let g: Vec<f64> = x
            .grad()
            .unwrap()
            .to_vec_f32()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        let fd = numeric_grad(&mut |v| dot(&r(v), &up), &x64, 1e-3);
        let w = worst_ratio(&g, &fd, 1e-5, 1e-4);
        assert!(w <= 1.0, "is_max {is_max}: worst {w}");
    }
}

#[test]
fn ties_route_to_the_first_index() {
    let gpu = Gpu::shared().unwrap();
    let x = Tensor::from_f32(&gpu, &[1.0, 3.0, 3.0, 0.0, 0.0, 2.0], &[1, 1, 2, 3])
        .unwrap()
        .into_param();
    let y = ops::max_spatial(&x).unwrap();
    let z = ops::min_spatial(&x).unwrap();
    ops::sum(&ops::add(&y, &z).unwrap())
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        x.grad().unwrap().to_vec_f32().unwrap(),
        vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    );
    assert!(ops::max_spatial(&Tensor::from_f32(&gpu, &[1.0; 4], &[4]).unwrap()).is_err());
}

#[test]
fn minmax_normalize_matches_reference_and_fd() {
    let gpu = Gpu::shared().unwrap();
    let (shape, hw) = ([2, 2, 4, 5], 20);
    let xv = tie_free(80, 3);
    let x64: Vec<f64> = xv.iter().map(|&v| v as f64).collect();
    let up = weights(80, 4);
    let eps = 1e-3;
    let x = Tensor::from_f32(&gpu, &xv, &shape).unwrap().into_param();
    let y = cam::minmax_normalize(&x, eps as f32).unwrap();
    let yv: Vec<f64> = y.to_vec_f32().unwrap().iter().map(|&v| v as f64).collect();
    let want = normalize_ref(&x64, hw, eps);
    assert!(worst_ratio(&yv, &want, 1e-6, 1e-5) <= 1.0);
    let upt = Tensor::from_f32(
        &gpu,
        &up.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        &shape,
    )
    .unwrap();
    ops::sum(&ops::mul(&y, &upt).unwrap())
        .unwrap()
        .backward()
        .unwrap();
    let g: Vec<f64> = x
        .grad()
        .unwrap()
        .to_vec_f32()
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let fd = numeric_grad(&mut |v| dot(&normalize_ref(v, hw, eps), &up), &x64, 1e-4);
    let w = worst_ratio(&g, &fd, 1e-4, 1e-3);
    assert!(w <= 1.0, "worst {w}");
}

#[test]
fn cam_is_relu_of_classifier_product() {
    let gpu = Gpu::shared().unwrap();
    let (n, c, h, w, k) = (2, 3, 2, 3, 2);
    let f = tie_free(n * c * h * w, 5);
    let wt = tie_free(k * c, 6);
    let ft = Tensor::from_f32(&gpu, &f, &[n, c, h, w]).unwrap();
    let wt2 = Tensor::from_f32(&gpu, &wt, &[k, c]).unwrap();
    let got = cam::cam(&ft, &wt2).unwrap();
    assert_eq!(got.shape(), &[n, k, h, w]);
    let got = got.to_vec_f32().unwrap();
    for ni in 0..n {
        for ki in 0..k {
            for p in 0..h * w {
                let s: f32 = (0..c)
                    .map(|ci| wt[ki * c + ci] * f[(ni * c + ci) * h * w + p])
                    .sum();
                let g = got[(ni * k + ki) * h * w + p];
                assert!((g - s.max(0.0)).abs() < 1e-5, "{g} vs {s}");
            }
        }
    }
    let conv_w = Tensor::from_f32(&gpu, &wt, &[k, c, 1, 1]).unwrap();
    let same = cam::cam(&ft, &conv_w).unwrap().to_vec_f32().unwrap();
    assert_eq!(same, got);
    let bad = Tensor::from_f32(&gpu, &[0.0; 12], &[2, 3, 2]).unwrap();
    assert!(cam::cam(&ft, &bad).is_err());
}

/// Grad-CAM through a GAP + linear head: ∂logit_c/∂F_k = W[c,k]/(hw) everywhere, so
/// α_k = W[c,k]/(hw) and A = norm(ReLU(Σ_k α_k F_k)) has a closed form; its gradient w.r.t. F
/// (α constant) is checked by central differences of that closed form.
#[test]
fn grad_cam_matches_closed_form_and_fd() {
    let gpu = Gpu::shared().unwrap();
    let (n, c, h, w, k) = (2, 3, 4, 5, 4);
    let hw = h * w;
    let fv = tie_free(n * c * hw, 7);
    let wv = tie_free(k * c, 8);
    let classes = [2usize, 0];
    let eps = 1e-3;
    let cfg = GradCamCfg {
        eps,
        ..GradCamCfg::default()
    };
    let f = Tensor::from_f32(&gpu, &fv, &[n, c, h, w])
        .unwrap()
        .into_param();
    let wt = Tensor::from_f32(&gpu, &wv, &[k, c]).unwrap().into_param();
    let pooled = ops::adaptive_avg_pool2d(&f, [1, 1])
        .unwrap()
        .reshape(&[n, c])
        .unwrap();
    let logits = ops::linear(&pooled, &wt, None).unwrap();
    let a = cam::grad_cam(&f, &logits, &classes, &cfg).unwrap();
    assert_eq!(a.shape(), &[n, 1, h, w]);

    let reference = |fx: &[f64]| -> Vec<f64> {
        let mut raw = vec![0f64; n * hw];
        for ni in 0..n {
            for p in 0..hw {
                let s: f64 = (0..c)
                    .map(|ci| {
                        wv[classes[ni] * c + ci] as f64 / hw as f64 * fx[(ni * c + ci) * hw + p]
                    })
                    .sum();
                raw[ni * hw + p] = s.max(0.0);
            }
        }
        normalize_ref(&raw, hw, eps as f64)
    };
    let f64v: Vec<f64> = fv.iter().map(|&v| v as f64).collect();
    let av: Vec<f64> = a.to_vec_f32().unwrap().iter().map(|&v| v as f64).collect();
    let r = worst_ratio(&av, &reference(&f64v), 1e-5, 1e-4);
    assert!(r <= 1.0, "values: worst {r}");

    let up = weights(n * hw, 9);
    let upt = Tensor::from_f32(
        &gpu,
        &up.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        &[n, 1, h, w],
    )
    .unwrap();
    // A later backward through the same forward still works (the graph was retained), and
    // Grad-CAM left no gradient on the head's weight.
    assert!(wt.grad().is_none());
    ops::sum(&ops::mul(&a, &upt).unwrap())
        .unwrap()
        .backward()
        .unwrap();
    let g: Vec<f64> = f
        .grad()
        .unwrap()
        .to_vec_f32()
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let fd = numeric_grad(&mut |v| dot(&reference(v), &up), &f64v, 1e-4);
    let r = worst_ratio(&g, &fd, 1e-4, 1e-3);
    assert!(r <= 1.0, "grad: worst {r}");

    // Resized output, values in [0, 1].
    let cfg = GradCamCfg {
        size: Some([9, 11]),
        ..GradCamCfg::default()
    };
    let a = cam::grad_cam(&f, &logits, &classes, &cfg).unwrap();
    assert_eq!(a.shape(), &[n, 1, 9, 11]);
    assert!(a
        .to_vec_f32()
        .unwrap()
        .iter()
        .all(|v| (0.0..=1.0).contains(v)));
    assert!(cam::grad_cam(&f, &logits, &[4, 0], &cfg).is_err());
}
