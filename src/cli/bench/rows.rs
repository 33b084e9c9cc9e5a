//! `bench ops` rows: the timing context, the shape tables and one small function per op that
//! pushes its [`BenchRow`]s (add new ops by writing another one and listing it in
//! [`ops_rows`]). `bench/torch_ops.py` prints the same rows for PyTorch.

use super::{BenchRow, OpsArgs};
use advseg::ops::conv::{
    conv2d_forward_raw, conv2d_input_grad_raw, conv2d_weight_grad_raw, Conv2dParams, ConvGeom,
    GemmConfig,
};
use advseg::{Gpu, Tensor};
use anyhow::Result;
use std::sync::Arc;
use std::time::Instant;

pub(super) struct Ctx {
    pub(super) gpu: Arc<Gpu>,
    pub(super) reps: usize,
    pub(super) filter: Option<String>,
    pub(super) gemm: GemmConfig,
}

impl Ctx {
    fn wanted(&self, op: &str, shape: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| op.contains(f.as_str()) || shape.contains(f.as_str()))
    }

    /// Times `f` (which records GPU work): one warm-up call (pipeline compiles, pool fills),
    /// then `reps` samples of `iters` back-to-back calls bracketed by `sync`.
    fn time(
        &self,
        op: &str,
        shape: &str,
        flops: Option<f64>,
        mut f: impl FnMut() -> Result<()>,
    ) -> Result<BenchRow> {
        f()?;
        self.gpu.sync()?;
        let t = Instant::now();
        f()?;
        self.gpu.sync()?;
        let once = t.elapsed().as_secs_f64();
        // Aim for ≥ 20 ms per sample so sync overhead does not dominate short kernels.
        let iters = ((0.02 / once.max(1e-6)).ceil() as usize).clamp(1, 100);
        self.gpu.reset_peak();
        let before = self.gpu.counters();
        let mut samples = Vec::with_capacity(self.reps);
        let cpu0 = super::super::bench_step::cpu_seconds();
        for _ in 0..self.reps.max(1) {
            let t = Instant::now();
            for _ in 0..iters {
                f()?;
            }
            self.gpu.sync()?;
            samples.push(t.elapsed().as_secs_f64() * 1e3 / iters as f64);
        }
        let calls = (iters * samples.len()) as f64;
        let cpu_ms = cpu0
            .zip(super::super::bench_step::cpu_seconds())
            .map(|(a, b)| (b - a) * 1e3 / calls);
        samples.sort_by(f64::total_cmp);
        let ms = samples[samples.len() / 2];
        Ok(BenchRow {
            cpu_ms,
            gflop_per_cpu_s: flops.zip(cpu_ms).map(|(f, c)| f / (c.max(1e-9) * 1e6)),
            op: op.to_string(),
            shape: shape.to_string(),
            ms,
            flops,
            gflops: flops.map(|f| f / (ms * 1e6)),
            bytes: None,
            gbps: None,
            iters,
            samples: samples.len(),
            counters: self.gpu.counters().since(&before),
        })
    }
}

/// A convolution benchmark shape: name and [ci, co, hw, k, stride, pad, dil] (square kernel,
/// stride, padding and dilation).
type ConvSpec = (&'static str, [usize; 7]);

/// DeepLab-v2 ResNet-101 (321×321 crops, output stride 8) and the fully convolutional
/// discriminator's 4×4/2 layers.
const CONVS: &[ConvSpec] = &[
    ("res101 3x3 256ch 41x41 d2", [256, 256, 41, 3, 1, 2, 2]),
    ("res101 3x3 512ch 41x41 d4", [512, 512, 41, 3, 1, 4, 4]),
    ("res101 3x3 64ch 81x81", [64, 64, 81, 3, 1, 1, 1]),
    ("aspp 3x3 2048->21 41x41 d6", [2048, 21, 41, 3, 1, 6, 6]),
    ("aspp 3x3 2048->21 41x41 d24", [2048, 21, 41, 3, 1, 24, 24]),
    ("disc 4x4/2 21->64 321->161", [21, 64, 321, 4, 2, 1, 1]),
    ("disc 4x4/2 64->128 161->81", [64, 128, 161, 4, 2, 1, 1]),
    ("disc 4x4/2 128->256 81->41", [128, 256, 81, 4, 2, 1, 1]),
    ("disc 4x4/2 256->512 41->21", [256, 512, 41, 4, 2, 1, 1]),
];

const QUICK_CONVS: &[ConvSpec] = &[
    ("quick 3x3 8->16 17x17 d2", [8, 16, 17, 3, 1, 2, 2]),
    ("quick 4x4/2 3->8 33->17", [3, 8, 33, 4, 2, 1, 1]),
];

/// Forward, input-grad and weight-grad rows of one convolution.
fn conv_rows(cx: &Ctx, s: &ConvSpec, batch: usize, rows: &mut Vec<BenchRow>) -> Result<()> {
    let (name, [ci, co, hw, k, stride, pad, dil]) = *s;
    let shape = format!("{name} n{batch}");
    let p = Conv2dParams::new(stride, pad, dil);
    let g = ConvGeom::new(&[batch, ci, hw, hw], &[co, ci, k, k], &p)?;
    conv_geom_rows(cx, "conv2d", &shape, &g, rows)
}

fn conv_geom_rows(
    cx: &Ctx,
    op: &str,
    shape: &str,
    g: &ConvGeom,
    rows: &mut Vec<BenchRow>,
) -> Result<()> {
    let gpu = &cx.gpu;
    let cfg = cx.gemm;
    let x = Tensor::full(gpu, &[g.batch, g.ci, g.h, g.w], 0.01)?;
    let w = Tensor::full(gpu, &[g.co, g.ci, g.kh, g.kw], 0.01)?;
    let b = Tensor::full(gpu, &[g.co], 0.01)?;
    let dy = Tensor::full(gpu, &g.out_shape(), 0.01)?;
    let flops = Some(g.flops());
    let fwd = format!("{op} fwd");
    if cx.wanted(&fwd, shape) {
        rows.push(cx.time(&fwd, shape, flops, || {
            conv2d_forward_raw(&x, &w, Some(&b), g, &cfg)?;
            Ok(())
        })?);
    }
    let dx = format!("{op} dgrad");
    if cx.wanted(&dx, shape) {
        rows.push(cx.time(&dx, shape, flops, || {
            conv2d_input_grad_raw(&dy, &w, g, &cfg)?;
            Ok(())
        })?);
    }
    let dw = format!("{op} wgrad");
    if cx.wanted(&dw, shape) {
        rows.push(cx.time(&dw, shape, flops, || {
            conv2d_weight_grad_raw(&dy, &x, g, &cfg)?;
            Ok(())
        })?);
    }
    Ok(())
}

/// Linear layer y = x·wᵀ as the same GEMM (N×in times in×out).
fn linear_rows(cx: &Ctx, n: usize, inp: usize, out: usize, rows: &mut Vec<BenchRow>) -> Result<()> {
    let shape = format!("{n}x{inp} -> {out}");
    conv_geom_rows(cx, "linear", &shape, &ConvGeom::linear(n, inp, out), rows)
}

fn with_bytes(mut r: BenchRow, bytes: f64) -> BenchRow {
    r.bytes = Some(bytes);
    r.gbps = Some(bytes / (r.ms * 1e6));
    r
}

/// Times `f` under no_grad (forward rows).
fn no_grad_time(
    cx: &Ctx,
    op: &str,
    shape: &str,
    f: impl FnMut() -> Result<()>,
) -> Result<BenchRow> {
    let _g = advseg::autograd::NoGradGuard::new();
    cx.time(op, shape, None, f)
}

/// Batch norm (train mode: batch statistics + running-stat update) at DeepLab training sizes.
fn batchnorm_rows(cx: &Ctx, shape4: [usize; 4], rows: &mut Vec<BenchRow>) -> Result<()> {
    let gpu = &cx.gpu;
    let [n, c, h, w] = shape4;
    let shape = format!("{n}x{c}x{h}x{w}");
    let x = Tensor::full(gpu, &shape4, 0.5)?.into_param();
    let (wt, b) = (
        Tensor::full(gpu, &[c], 1.0)?.into_param(),
        Tensor::full(gpu, &[c], 0.0)?.into_param(),
    );
    let (rm, rv) = (Tensor::full(gpu, &[c], 0.0)?, Tensor::full(gpu, &[c], 1.0)?);
    let dy = Tensor::full(gpu, &shape4, 0.01)?;
    let elems = (n * c * h * w) as f64;
    let bn = || advseg::ops::batch_norm2d(&x, Some(&wt), Some(&b), &rm, &rv, true, 0.1, 1e-5);
    if cx.wanted("batch_norm2d fwd", &shape) {
        let r = no_grad_time(cx, "batch_norm2d fwd", &shape, || Ok(bn().map(|_| ())?))?;
        rows.push(with_bytes(r, 2.0 * 4.0 * elems));
    }
    if cx.wanted("batch_norm2d fwd+bwd", &shape) {
        let r = cx.time("batch_norm2d fwd+bwd", &shape, None, || {
            advseg::autograd::backward(&bn()?, Some(dy.clone()), false)?;
            x.zero_grad();
            wt.zero_grad();
            b.zero_grad();
            Ok(())
        })?;
        rows.push(with_bytes(r, 5.0 * 4.0 * elems));
    }
    Ok(())
}

/// Elementwise maps and reductions at one activation shape: the kernels every layer's forward
/// and backward run besides its convolution (activations, bias broadcasts, bias gradients).
fn elementwise_rows(cx: &Ctx, shape4: [usize; 4], rows: &mut Vec<BenchRow>) -> Result<()> {
    use advseg::ops;
    let gpu = &cx.gpu;
    let [n, c, h, w] = shape4;
    let shape = format!("{n}x{c}x{h}x{w}");
    let x = Tensor::full(gpu, &shape4, 0.5)?;
    let y = Tensor::full(gpu, &shape4, 0.25)?;
    let bias = Tensor::full(gpu, &[1, c, 1, 1], 0.1)?;
    let bytes = 4.0 * (n * c * h * w) as f64;
    type Case<'a> = (&'a str, f64, Box<dyn Fn() -> advseg::Result<()> + 'a>);
    let cases: Vec<Case> = vec![
        (
            "elementwise relu",
            2.0,
            Box::new(|| ops::relu(&x).map(|_| ())),
        ),
        (
            "elementwise add",
            3.0,
            Box::new(|| ops::add(&x, &y).map(|_| ())),
        ),
        (
            "elementwise add [1,C,1,1]",
            2.0,
            Box::new(|| ops::add(&x, &bias).map(|_| ())),
        ),
        (
            "reduce sum_to_shape [1,C,1,1]",
            1.0,
            Box::new(|| ops::sum_to_shape(&x, &[1, c, 1, 1]).map(|_| ())),
        ),
        ("reduce mean", 1.0, Box::new(|| ops::mean(&x).map(|_| ()))),
    ];
    for (op, k, f) in cases {
        if cx.wanted(op, &shape) {
            let r = no_grad_time(cx, op, &shape, || Ok(f()?))?;
            rows.push(with_bytes(r, k * bytes));
        }
    }
    Ok(())
}

/// Bilinear upsampling of logits to the crop (align_corners = true, as AdvSemiSeg).
fn bilinear_rows(cx: &Ctx, from: [usize; 4], to: usize, rows: &mut Vec<BenchRow>) -> Result<()> {
    let gpu = &cx.gpu;
    let [n, c, h, w] = from;
    let shape = format!("{n}x{c}x{h}x{w} -> {to}x{to}");
    let x = Tensor::full(gpu, &from, 0.5)?.into_param();
    let dy = Tensor::full(gpu, &[n, c, to, to], 0.01)?;
    let bytes = 4.0 * (n * c) as f64 * ((h * w) as f64 + (to * to) as f64);
    let up = || advseg::ops::upsample_bilinear2d(&x, [to, to], true);
    if cx.wanted("upsample_bilinear2d fwd", &shape) {
        let r = no_grad_time(cx, "upsample_bilinear2d fwd", &shape, || {
            Ok(up().map(|_| ())?)
        })?;
        rows.push(with_bytes(r, bytes));
    }
    if cx.wanted("upsample_bilinear2d fwd+bwd", &shape) {
        let r = cx.time("upsample_bilinear2d fwd+bwd", &shape, None, || {
            advseg::autograd::backward(&up()?, Some(dy.clone()), false)?;
            x.zero_grad();
            Ok(())
        })?;
        rows.push(with_bytes(r, 2.0 * bytes));
    }
    Ok(())
}

/// burn-bench's convolution shapes: id, batch and [ci, co, hw, k, stride, pad, dil].
const BURN_CONVS: &[(&str, usize, [usize; 7])] = &[
    ("conv1 3x3 256ch 41x41 d2", 2, [256, 256, 41, 3, 1, 2, 2]),
    ("conv2 3x3 64ch 81x81", 2, [64, 64, 81, 3, 1, 1, 1]),
    ("conv3 aspp 2048->21 d6", 1, [2048, 21, 41, 3, 1, 6, 6]),
    ("conv4 aspp 2048->21 d24", 1, [2048, 21, 41, 3, 1, 24, 24]),
    ("conv5 4x4/2 21->64 321", 2, [21, 64, 321, 4, 2, 1, 1]),
    ("conv6 3x3 512ch 21x21 d4", 2, [512, 512, 21, 3, 1, 4, 4]),
];

/// burn-bench's rows: each conv as forward, both gradients and forward+backward (3× the
/// forward's FLOP, as burn-bench counts it), the square matmuls and the FCDiscriminator.
fn burn_rows(cx: &Ctx, rows: &mut Vec<BenchRow>) -> Result<()> {
    for &(name, batch, [ci, co, hw, k, stride, pad, dil]) in BURN_CONVS {
        let shape = format!("{name} n{batch}");
        let p = Conv2dParams::new(stride, pad, dil);
        let g = ConvGeom::new(&[batch, ci, hw, hw], &[co, ci, k, k], &p)?;
        conv_geom_rows(cx, "conv2d", &shape, &g, rows)?;
        let op = "conv2d fwd+bwd";
        if cx.wanted(op, &shape) {
            let gpu = &cx.gpu;
            let x = Tensor::full(gpu, &[g.batch, g.ci, g.h, g.w], 0.01)?;
            let w = Tensor::full(gpu, &[g.co, g.ci, g.kh, g.kw], 0.01)?;
            let dy = Tensor::full(gpu, &g.out_shape(), 0.01)?;
            let cfg = cx.gemm;
            rows.push(cx.time(op, &shape, Some(3.0 * g.flops()), || {
                conv2d_forward_raw(&x, &w, None, &g, &cfg)?;
                conv2d_input_grad_raw(&dy, &w, &g, &cfg)?;
                conv2d_weight_grad_raw(&dy, &x, &g, &cfg)?;
                Ok(())
            })?);
        }
    }
    for n in [1024, 2048] {
        let shape = format!("matmul {n}x{n}x{n}");
        let op = "matmul";
        if cx.wanted(op, &shape) {
            let gpu = &cx.gpu;
            let a = Tensor::full(gpu, &[n, n], 0.01)?;
            let b = Tensor::full(gpu, &[n, n], 0.01)?;
            let g = ConvGeom::linear(n, n, n);
            let cfg = cx.gemm;
            rows.push(cx.time(op, &shape, Some(g.flops()), || {
                conv2d_forward_raw(
                    &a.reshape(&[n, n, 1, 1])?,
                    &b.reshape(&[n, n, 1, 1])?,
                    None,
                    &g,
                    &cfg,
                )?;
                Ok(())
            })?);
        }
    }
    fcd_rows(cx, rows)
}

/// Hung et al.'s FCDiscriminator (ndf 64) at (2, 21, 321, 321): logits upsampled to the input,
/// BCE-with-logits against ones; forward, and forward + backward to the input and weights.
fn fcd_rows(cx: &Ctx, rows: &mut Vec<BenchRow>) -> Result<()> {
    let shape = "fcd (2,21,321,321) ndf64";
    let gpu = &cx.gpu;
    let m = advseg::nn::arch::build("fcdisc", 21)?;
    m.materialize(gpu, 0)?;
    let x = Tensor::full(gpu, &[2, 21, 321, 321], 0.01)?.into_param();
    let ones = Tensor::full(gpu, &[2, 1, 321, 321], 1.0)?;
    let bn = advseg::nn::BnMode::Train;
    let loss = || -> Result<Tensor> {
        Ok(advseg::ops::loss::bce_with_logits(
            &m.forward(&x, bn)?,
            &ones,
            None,
        )?)
    };
    // FLOP of the convolutions (forward), as burn-bench counts them.
    let before = gpu.counters();
    advseg::autograd::no_grad(loss)?;
    let fwd_flops = gpu.counters().since(&before).flops as f64;
    if cx.wanted("fcd fwd", shape) {
        let _g = advseg::autograd::NoGradGuard::new();
        rows.push(cx.time("fcd fwd", shape, Some(fwd_flops), || {
            loss()?;
            Ok(())
        })?);
    }
    if cx.wanted("fcd fwd+bwd", shape) {
        rows.push(cx.time("fcd fwd+bwd", shape, Some(3.0 * fwd_flops), || {
            loss()?.backward()?;
            Ok(())
        })?);
    }
    Ok(())
}

/// Every benchmark row; other op families add their per-op functions here.
pub(super) fn ops_rows(cx: &Ctx, a: &OpsArgs) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    if a.suite == "burn" {
        burn_rows(cx, &mut rows)?;
        return Ok(rows);
    }
    anyhow::ensure!(
        a.suite == "deeplab",
        "--suite {:?}: expected deeplab or burn",
        a.suite
    );
    let convs = if a.quick { QUICK_CONVS } else { CONVS };
    for s in convs {
        conv_rows(cx, s, a.batch, &mut rows)?;
    }
    let n = a.batch;
    if a.quick {
        linear_rows(cx, 64, 64, 64, &mut rows)?;
        batchnorm_rows(cx, [n, 8, 17, 17], &mut rows)?;
        elementwise_rows(cx, [n, 16, 48, 48], &mut rows)?;
        bilinear_rows(cx, [n, 6, 9, 9], 33, &mut rows)?;
    } else {
        linear_rows(cx, 4096, 4096, 4096, &mut rows)?;
        batchnorm_rows(cx, [n, 256, 81, 81], &mut rows)?;
        batchnorm_rows(cx, [n, 1024, 41, 41], &mut rows)?;
        elementwise_rows(cx, [n, 256, 81, 81], &mut rows)?;
        bilinear_rows(cx, [n, 21, 41, 41], 321, &mut rows)?;
    }
    Ok(rows)
}
