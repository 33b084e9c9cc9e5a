//! Finite-difference gradient checks in f64 on the host.
//!
//! `check` perturbs each checked input element, evaluates a scalar loss `L = Σ out·upstream`
//! through the GPU forward, and compares central differences with the autograd gradient.
//! f32 forward passes limit accuracy to ~1e-2 relative; callers pick `eps` and tolerances
//! accordingly, or use an f64 host reference for the forward.

/// Central difference of `f` at `x[i]` with step `eps`.
pub fn central(f: &mut dyn FnMut(&[f64]) -> f64, x: &mut [f64], i: usize, eps: f64) -> f64 {
    let orig = x[i];
    x[i] = orig + eps;
    let fp = f(x);
    x[i] = orig - eps;
    let fm = f(x);
    x[i] = orig;
    (fp - fm) / (2.0 * eps)
}

/// Numerical gradient of `f` w.r.t. every element of `x`.
pub fn numeric_grad(f: &mut dyn FnMut(&[f64]) -> f64, x: &[f64], eps: f64) -> Vec<f64> {
    let mut xs = x.to_vec();
    (0..x.len()).map(|i| central(f, &mut xs, i, eps)).collect()
}

/// Largest `|a − b| / (atol + rtol·|b|)`.
pub fn worst_ratio(a: &[f64], b: &[f64], atol: f64, rtol: f64) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (atol + rtol * y.abs()))
        .fold(0.0, f64::max)
}
