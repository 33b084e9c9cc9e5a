//! Engine-level behaviour: upload/readback, dtypes, shape errors, buffer pool reuse, counters,
//! batching of dispatches, deterministic reductions.

use advseg::{ops, DType, Gpu, Tensor};

fn gpu() -> std::sync::Arc<Gpu> {
    Gpu::shared().expect("GPU adapter")
}

#[test]
fn upload_readback_roundtrip_f32_and_i32() {
    let g = gpu();
    let v: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 7.0).collect();
    let t = Tensor::from_f32(&g, &v, &[2, 5, 10, 10]).unwrap();
    assert_eq!(t.to_vec_f32().unwrap(), v);
    let l: Vec<i32> = (0..60).map(|i| i % 7 - 1).collect();
    let li = Tensor::from_i32(&g, &l, &[3, 4, 5]).unwrap();
    assert_eq!(li.dtype(), DType::I32);
    assert_eq!(li.to_vec_i32().unwrap(), l);
    assert!(li.to_vec_f32().is_err());
    let z = Tensor::zeros(&g, &[3, 7], DType::F32).unwrap();
    assert!(z.to_vec_f32().unwrap().iter().all(|&x| x == 0.0));
}

#[test]
fn shape_errors_name_op_and_shapes() {
    let g = gpu();
    let a = Tensor::full(&g, &[2, 3, 4, 5], 1.0).unwrap();
    let b = Tensor::full(&g, &[2, 4, 4, 5], 1.0).unwrap();
    let e = ops::add(&a, &b).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("[2, 3, 4, 5]") && e.contains("[2, 4, 4, 5]"),
        "{e}"
    );
    let e = Tensor::from_f32(&g, &[1.0, 2.0], &[3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("from_f32") && e.contains("[3]"), "{e}");
    let e = a.reshape(&[7]).unwrap_err().to_string();
    assert!(e.contains("reshape"), "{e}");
}

#[test]
fn too_large_buffer_is_an_error_not_a_panic() {
    let g = gpu();
    // Tensors may exceed one storage binding (ops split them); one buffer may not exceed the
    // device's max_buffer_size.
    let limit = g.summary.max_buffer_size;
    let e = g.alloc("test_alloc", limit + 4).unwrap_err().to_string();
    assert!(
        e.contains("test_alloc") && e.contains("max_buffer_size"),
        "{e}"
    );
}

#[test]
fn pool_reuses_buffers_and_counts_live_bytes() {
    // A private context so other tests running in parallel do not disturb the counters.
    let g = Gpu::new().unwrap();
    let before = g.counters();
    for _ in 0..5 {
        let a = Tensor::full(&g, &[64, 64], 1.0).unwrap();
        let b = ops::relu(&a).unwrap();
        drop((a, b));
    }
    let after = g.counters();
    assert_eq!(
        after.buffers_allocated - before.buffers_allocated,
        2,
        "{after:?}"
    );
    assert_eq!(after.bytes_live, 0);
    assert!(after.bytes_peak >= 2 * 64 * 64 * 4);
    assert_eq!(after.dispatches - before.dispatches, 10);
    // Recording does not submit per op; only the pipeline/dispatch counters move.
    assert!(after.submits - before.submits <= 1, "{after:?}");
    assert_eq!(after.readbacks, 0);
    assert_eq!(after.pipelines, 2, "fill + unary, each compiled once");
}

#[test]
fn many_dispatches_share_submits_and_readback_only_on_request() {
    let g = Gpu::new().unwrap();
    let mut x = Tensor::full(&g, &[1000], 0.0).unwrap();
    let before = g.counters();
    for _ in 0..1500 {
        x = ops::add_scalar(&x, 1.0).unwrap();
    }
    let mid = g.counters().since(&before);
    assert_eq!(mid.readbacks, 0);
    assert!(
        mid.submits <= 3,
        "1500 dispatches took {} submits",
        mid.submits
    );
    assert_eq!(x.to_vec_f32().unwrap()[999], 1500.0);
    assert_eq!(g.counters().since(&before).readbacks, 1);
}

#[test]
fn reductions_are_deterministic_and_accurate() {
    let g = gpu();
    // Large enough to take the two-pass path.
    let n = 300_000;
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
        .collect();
    let t = Tensor::from_f32(&g, &v, &[n]).unwrap();
    let s1 = ops::sum(&t).unwrap().item().unwrap();
    let s2 = ops::sum(&t).unwrap().item().unwrap();
    assert_eq!(s1.to_bits(), s2.to_bits(), "same input, same bits");
    let exact: f64 = v.iter().map(|&x| x as f64).sum();
    assert!(
        (s1 as f64 - exact).abs() < 1e-3 * exact.abs().max(1.0),
        "{s1} vs {exact}"
    );
    // Per-channel sums of NCHW.
    let x: Vec<f32> = (0..2 * 3 * 4 * 5).map(|i| i as f32).collect();
    let xt = Tensor::from_f32(&g, &x, &[2, 3, 4, 5]).unwrap();
    let c = ops::sum_dims(&xt, &[0, 2, 3]).unwrap();
    assert_eq!(c.shape(), &[1, 3, 1, 1]);
    let got = c.to_vec_f32().unwrap();
    for (ch, got_ch) in got.iter().enumerate() {
        let want: f32 = (0..2)
            .flat_map(|n| (0..20).map(move |k| (n * 60 + ch * 20 + k) as f32))
            .sum();
        assert_eq!(*got_ch, want);
    }
}

#[test]
fn grid_folds_beyond_per_dimension_limit() {
    let g = gpu();
    // 70_000 workgroups of 256 exceed 65_535 in x: the grid folds into y and kernels still
    // cover every element exactly once.
    let n = 256 * 70_000;
    let t = Tensor::full(&g, &[n], 2.0).unwrap();
    let s = ops::sum(&ops::mul_scalar(&t, 0.5).unwrap())
        .unwrap()
        .item()
        .unwrap();
    assert_eq!(s, n as f32);
}

/// Host sum of `x` (shape `d`, 4-d) over the dims where `keep` is false, in f64.
fn host_sum(x: &[f32], d: [usize; 4], keep: [bool; 4]) -> Vec<f64> {
    let od: Vec<usize> = (0..4).map(|k| if keep[k] { d[k] } else { 1 }).collect();
    let mut out = vec![0.0f64; od.iter().product()];
    for (i, &v) in x.iter().enumerate() {
        let c = [
            i / (d[1] * d[2] * d[3]),
            (i / (d[2] * d[3])) % d[1],
            (i / d[3]) % d[2],
            i % d[3],
        ];
        let o = (0..4).fold(0, |o, k| o * od[k] + if keep[k] { c[k] } else { 0 });
        out[o] += v as f64;
    }
    out
}

#[test]
fn reductions_match_the_host_for_every_kept_dim_pattern() {
    // Every keep pattern over shapes that take each kernel: vec4 rows (H·W % 4 == 0), scalar
    // rows, columns, chunked two-pass rows, and the general fallback (kept dims around a summed
    // one).
    let g = gpu();
    for d in [[3, 5, 7, 9], [2, 6, 4, 8], [2, 3, 150, 100], [1, 300, 1, 3]] {
        let n: usize = d.iter().product();
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 + 13) % 1009) as f32 / 1009.0 - 0.4)
            .collect();
        let t = Tensor::from_f32(&g, &x, &d).unwrap();
        for mask in 0..16u32 {
            let keep = [0, 1, 2, 3].map(|k| mask & (1 << k) != 0);
            let dims: Vec<usize> = (0..4).filter(|&k| !keep[k]).collect();
            let a = ops::sum_dims(&t, &dims).unwrap().to_vec_f32().unwrap();
            let b = ops::sum_dims(&t, &dims).unwrap().to_vec_f32().unwrap();
            let want = host_sum(&x, d, keep);
            assert_eq!(a.len(), want.len(), "{d:?} keep {keep:?}");
            for (i, (&got, &w)) in a.iter().zip(&want).enumerate() {
                assert_eq!(
                    got.to_bits(),
                    b[i].to_bits(),
                    "{d:?} keep {keep:?}: not deterministic"
                );
                assert!(
                    (got as f64 - w).abs() <= 1e-5 * (n as f64).sqrt().max(1.0) + 1e-5 * w.abs(),
                    "{d:?} keep {keep:?} [{i}]: {got} vs {w}"
                );
            }
        }
    }
}

#[test]
fn elementwise_vec4_paths_match_the_host_on_odd_shapes() {
    // Tails (numel % 4 != 0), rows not a multiple of 4, and broadcasts along every dim.
    let g = gpu();
    let val = |n: usize, s: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 31 + s * 17) % 23) as f32 / 7.0 - 1.5)
            .collect()
    };
    let cases: [(&[usize], &[usize]); 7] = [
        (&[2, 3, 5, 7], &[2, 3, 5, 7]),
        (&[2, 3, 5, 7], &[1, 3, 1, 1]),
        (&[2, 3, 4, 8], &[1, 3, 1, 1]),
        (&[2, 3, 4, 8], &[2, 1, 4, 8]),
        (&[3, 1, 8], &[3, 5, 1]),
        (&[7], &[1]),
        (&[1, 2, 3, 4], &[4]),
    ];
    for (sa, sb) in cases {
        let (na, nb) = (sa.iter().product(), sb.iter().product());
        let (va, vb) = (val(na, 1), val(nb, 2));
        let a = Tensor::from_f32(&g, &va, sa).unwrap();
        let b = Tensor::from_f32(&g, &vb, sb).unwrap();
        let out = ops::elementwise::broadcast_shape("test", sa, sb).unwrap();
        let d4 = |s: &[usize]| {
            let mut d = [1usize; 4];
            d[4 - s.len()..].copy_from_slice(s);
            d
        };
        let (da, db, dout) = (d4(sa), d4(sb), d4(&out));
        let at = |v: &[f32], d: [usize; 4], c: [usize; 4]| {
            let i = (0..4).fold(0, |i, k| i * d[k] + if d[k] == 1 { 0 } else { c[k] });
            v[i]
        };
        let n: usize = out.iter().product();
        let mut want_add = Vec::with_capacity(n);
        let mut want_mul = Vec::with_capacity(n);
        for i in 0..n {
            let c = [
                i / (dout[1] * dout[2] * dout[3]),
                (i / (dout[2] * dout[3])) % dout[1],
                (i / dout[3]) % dout[2],
                i % dout[3],
            ];
            let (u, v) = (at(&va, da, c), at(&vb, db, c));
            want_add.push(u + v);
            want_mul.push(u * v);
        }
        let add = ops::add(&a, &b).unwrap().to_vec_f32().unwrap();
        let mul = ops::mul(&a, &b).unwrap().to_vec_f32().unwrap();
        assert_eq!(add, want_add, "add {sa:?} {sb:?}");
        assert_eq!(mul, want_mul, "mul {sa:?} {sb:?}");
        let relu = ops::relu(&a).unwrap().to_vec_f32().unwrap();
        let want: Vec<f32> = va.iter().map(|&v| v.max(0.0)).collect();
        assert_eq!(relu, want, "relu {sa:?}");
    }
}
