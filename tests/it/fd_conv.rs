//! conv2d / linear against an f64 CPU reference: forward values, and all three gradients against
//! central differences of the reference, for every GEMM tile preset and forced split-K.

use advseg::autograd;
use advseg::ops::conv::{conv2d_with, linear_with, Conv2dParams, Family, GemmConfig, Tile};
use advseg::testing::fd::{numeric_grad, worst_ratio};
use advseg::{Gpu, Tensor};

/// Deterministic values in [-1, 1).
fn data(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Shape {
    x: [usize; 4],
    w: [usize; 4],
    p: Conv2dParams,
}

impl Shape {
    fn out(&self) -> [usize; 4] {
        let o = |d: usize| {
            (self.x[2 + d] + 2 * self.p.padding[d] - self.p.dilation[d] * (self.w[2 + d] - 1) - 1)
                / self.p.stride[d]
                + 1
        };
        [self.x[0], self.w[0], o(0), o(1)]
    }
}

/// Direct f64 convolution, PyTorch semantics.
fn conv_ref(s: &Shape, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let [n, ci, h, wd] = s.x;
    let [co, _, kh, kw] = s.w;
    let [_, _, oh, ow] = s.out();
    let p = &s.p;
    let mut y = vec![0.0; n * co * oh * ow];
    for bi in 0..n {
        for o in 0..co {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b[o]);
                    for c in 0..ci {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize
                                    - p.padding[0] as isize;
                                let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize
                                    - p.padding[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                acc += x[((bi * ci + c) * h + iy as usize) * wd + ix as usize]
                                    * w[((o * ci + c) * kh + ky) * kw + kx];
                            }
                        }
                    }
                    y[((bi * co + o) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    y
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}
fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

/// Runs forward + backward on the GPU with `cfg` and checks everything against the reference.
fn check(name: &str, s: Shape, bias: bool, linear: bool, cfg: GemmConfig) {
    let gpu = Gpu::shared().expect("GPU");
    let nx: usize = s.x.iter().product();
    let nw: usize = s.w.iter().product();
    let co = s.w[0];
    let x = data(nx, 1);
    let w = data(nw, 2);
    let b = data(co, 3);
    let ny: usize = s.out().iter().product();
    let up = data(ny, 4);
    let bref = bias.then_some(b.as_slice());

    let (xs, ws): (Vec<usize>, Vec<usize>) = if linear {
        (vec![s.x[0], s.x[1]], vec![s.w[0], s.w[1]])
    } else {
        (s.x.to_vec(), s.w.to_vec())
    };
    let xt = Tensor::from_f32(&gpu, &f32s(&x), &xs).unwrap().into_param();
    let wt = Tensor::from_f32(&gpu, &f32s(&w), &ws).unwrap().into_param();
    let bt = Tensor::from_f32(&gpu, &f32s(&b), &[co])
        .unwrap()
        .into_param();
    let y = if linear {
        linear_with(&xt, &wt, bias.then_some(&bt), &cfg).unwrap()
    } else {
        conv2d_with(&xt, &wt, bias.then_some(&bt), &s.p, &cfg).unwrap()
    };
    let want = conv_ref(&s, &x, &w, bref);
    let got = f64s(&y.to_vec_f32().unwrap());
    let r = worst_ratio(&got, &want, 1e-4, 1e-4);
    assert!(r <= 1.0, "{name}: forward off by {r:.3} of tolerance");

    let upt = Tensor::from_f32(&gpu, &f32s(&up), y.shape()).unwrap();
    autograd::backward(&y, Some(upt), false).unwrap();
    let loss = |y: Vec<f64>| -> f64 { y.iter().zip(&up).map(|(a, b)| a * b).sum() };
    // The loss is linear in each operand, so any step is exact up to rounding.
    let eps = 1e-3;
    let gx = numeric_grad(&mut |v: &[f64]| loss(conv_ref(&s, v, &w, bref)), &x, eps);
    let gw = numeric_grad(&mut |v: &[f64]| loss(conv_ref(&s, &x, v, bref)), &w, eps);
    let mut grads = vec![("x", &xt, gx), ("weight", &wt, gw)];
    if bias {
        let gb = numeric_grad(
            &mut |v: &[f64]| loss(conv_ref(&s, &x, &w, Some(v))),
            &b,
            eps,
        );
        grads.push(("bias", &bt, gb));
    }
    for (what, t, want) in grads {
        let got = f64s(
            &t.grad()
                .unwrap_or_else(|| panic!("{name}: no grad for {what}"))
                .to_vec_f32()
                .unwrap(),
        );
        let r = worst_ratio(&got, &want, 2e-4, 1e-3);
        assert!(r <= 1.0, "{name}: grad {what} off by {r:.3} of tolerance");
    }
}

fn shapes() -> Vec<(&'static str, Shape)> {
    vec![
        (
            "3x3 pad 1",
            Shape {
                x: [2, 3, 5, 6],
                w: [4, 3, 3, 3],
                p: Conv2dParams::new(1, 1, 1),
            },
        ),
        (
            "stride 2 dilation 2 asymmetric padding",
            Shape {
                x: [1, 2, 9, 8],
                w: [3, 2, 3, 3],
                p: Conv2dParams {
                    stride: [2, 2],
                    padding: [2, 1],
                    dilation: [2, 2],
                },
            },
        ),
        (
            "rectangular 2x3 kernel, stride 1x2, dilation 1x3",
            Shape {
                x: [2, 2, 6, 11],
                w: [3, 2, 2, 3],
                p: Conv2dParams {
                    stride: [1, 2],
                    padding: [0, 3],
                    dilation: [1, 3],
                },
            },
        ),
    ]
}

#[test]
fn conv2d_matches_reference_and_finite_differences() {
    for (name, s) in shapes() {
        check(name, s, true, false, GemmConfig::default());
        check(name, s, false, false, GemmConfig::default());
    }
}

#[test]
fn every_tile_preset_and_forced_split_k() {
    let (name, s) = shapes().swap_remove(1);
    for tile in Tile::PRESETS {
        for splits in [1, 3] {
            let cfg = GemmConfig {
                family: Some(Family::Tiled),
                tile: Some(tile),
                splits: Some(splits),
                ..Default::default()
            };
            check(
                &format!("{name} {tile:?} splits {splits}"),
                s,
                true,
                false,
                cfg,
            );
        }
    }
}

#[test]
fn every_family_on_every_shape() {
    for family in Family::ALL {
        let cfg = GemmConfig {
            family: Some(family),
            ..Default::default()
        };
        for (name, s) in shapes() {
            check(&format!("{name} {family:?}"), s, true, false, cfg);
        }
    }
}

#[test]
fn every_texture_block_and_forced_split_k() {
    for (name, s) in [shapes().swap_remove(1), shapes().swap_remove(2)] {
        for (rm, splits, subgroups) in [
            (8, 1, true),
            (16, 3, true),
            (32, 1, true),
            (32, 3, true),
            (8, 3, false),
            (16, 1, false),
            (32, 3, false),
        ] {
            let cfg = GemmConfig {
                family: Some(Family::Texture),
                rm: Some(rm),
                splits: Some(splits),
                subgroups: Some(subgroups),
                ..Default::default()
            };
            check(
                &format!("{name} texture rm {rm} splits {splits} subgroups {subgroups}"),
                s,
                true,
                false,
                cfg,
            );
        }
    }
}

/// The subgroup variant only shares fetches: its results are the plain variant's, bit for bit.
#[test]
fn subgroup_variant_gives_the_same_bits() {
    let gpu = Gpu::shared().expect("GPU");
    let (_, s) = shapes().swap_remove(1);
    let x = Tensor::from_f32(&gpu, &f32s(&data(s.x.iter().product(), 5)), &s.x).unwrap();
    let w = Tensor::from_f32(&gpu, &f32s(&data(s.w.iter().product(), 6)), &s.w).unwrap();
    let run = |subgroups: bool| {
        let cfg = GemmConfig {
            family: Some(Family::Texture),
            subgroups: Some(subgroups),
            ..Default::default()
        };
        conv2d_with(&x, &w, None, &s.p, &cfg)
            .unwrap()
            .to_vec_f32()
            .unwrap()
    };
    let (a, b) = (run(true), run(false));
    assert!(
        a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
        "subgroup and plain variants differ"
    );
}

#[test]
fn linear_matches_reference_and_finite_differences() {
    let s = Shape {
        x: [5, 7, 1, 1],
        w: [3, 7, 1, 1],
        p: Conv2dParams::default(),
    };
    check("linear", s, true, true, GemmConfig::default());
    check("linear no bias", s, false, true, GemmConfig::default());
    for family in Family::ALL {
        let cfg = GemmConfig {
            family: Some(family),
            splits: Some(2),
            ..Default::default()
        };
        check(&format!("linear {family:?}"), s, true, true, cfg);
    }
    check(
        "linear split",
        s,
        true,
        true,
        GemmConfig {
            family: Some(Family::Tiled),
            tile: Some(Tile::T128),
            splits: Some(2),
            ..Default::default()
        },
    );
}

#[test]
fn bad_shapes_are_errors() {
    let gpu = Gpu::shared().expect("GPU");
    let x = Tensor::zeros(&gpu, &[1, 3, 4, 4], advseg::DType::F32).unwrap();
    let w = Tensor::zeros(&gpu, &[2, 4, 3, 3], advseg::DType::F32).unwrap();
    assert!(advseg::ops::conv2d(&x, &w, None, &Conv2dParams::default()).is_err());
    let w = Tensor::zeros(&gpu, &[2, 3, 7, 7], advseg::DType::F32).unwrap();
    assert!(advseg::ops::conv2d(&x, &w, None, &Conv2dParams::default()).is_err());
    let w = Tensor::zeros(&gpu, &[2, 3, 3, 3], advseg::DType::F32).unwrap();
    let b = Tensor::zeros(&gpu, &[3], advseg::DType::F32).unwrap();
    assert!(advseg::ops::conv2d(&x, &w, Some(&b), &Conv2dParams::default()).is_err());
    assert!(advseg::ops::conv2d(&x, &w, None, &Conv2dParams::new(0, 0, 1)).is_err());
}

/// A weight packed once (`PackedLinear`, the CRF matrix path's operator) multiplies like the
/// texture family's `linear`, bit for bit, for every block height.
#[test]
fn packed_linear_gives_linears_bits() {
    use advseg::ops::conv_tex::{PackedLinear, TexConfig};
    let gpu = Gpu::shared().expect("GPU");
    let x = Tensor::from_f32(&gpu, &f32s(&data(7 * 45, 3)), &[7, 45]).unwrap();
    let w = Tensor::from_f32(&gpu, &f32s(&data(37 * 45, 4)), &[37, 45]).unwrap();
    for rm in [8, 16, 32] {
        let cfg = GemmConfig {
            family: Some(Family::Texture),
            rm: Some(rm),
            splits: Some(1),
            ..Default::default()
        };
        let want = linear_with(&x, &w, None, &cfg)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let tex = TexConfig {
            rm: Some(rm),
            splits: Some(1),
            subgroups: None,
        };
        let packed = PackedLinear::new(&w, &tex).unwrap();
        for _ in 0..2 {
            let got = packed.apply(&x, &tex).unwrap();
            assert_eq!(got.shape(), &[7, 37]);
            assert_eq!(got.to_vec_f32().unwrap(), want, "rm {rm}");
        }
    }
    let bad = Tensor::from_f32(&gpu, &[0.0; 8], &[2, 4]).unwrap();
    let packed = PackedLinear::new(&w, &TexConfig::default()).unwrap();
    assert!(packed.apply(&bad, &TexConfig::default()).is_err());
}
