// In-place parameter updates, one dispatch per parameter, following torch.optim's update rules
// (SGD with dampening 0; Adam without amsgrad). Step-dependent scalars (Adam's bias
// corrections) arrive precomputed in the params.

struct Params {
    n: u32,
    nesterov: u32,
    lr: f32,
    momentum: f32,      // SGD momentum / Adam beta1
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,     // Adam: lr / (1 − beta1^t)
    bc2_sqrt: f32,      // Adam: sqrt(1 − beta2^t)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> s1: array<f32>;   // momentum buffer / exp_avg
@group(0) @binding(4) var<storage, read_write> s2: array<f32>;   // exp_avg_sq

// @include prelude

// SGD without momentum: p −= lr·(g + wd·p).
@compute @workgroup_size(256)
fn sgd_plain(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let d = grad[i] + p.weight_decay * param[i];
    param[i] = param[i] - p.lr * d;
}

// SGD with momentum: buf = μ·buf + d (buf starts at 0, so the first step sets buf = d as torch
// does); p −= lr·(nesterov ? d + μ·buf : buf).
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let d = grad[i] + p.weight_decay * param[i];
    let b = p.momentum * s1[i] + d;
    s1[i] = b;
    let u = select(b, d + p.momentum * b, p.nesterov == 1u);
    param[i] = param[i] - p.lr * u;
}

// Adam (L2 weight decay added to the gradient, as torch.optim.Adam):
// m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g², p −= step_size · m / (sqrt(v)/bc2_sqrt + eps).
@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let g = grad[i] + p.weight_decay * param[i];
    let m = p.momentum * s1[i] + (1.0 - p.momentum) * g;
    let v = p.beta2 * s2[i] + (1.0 - p.beta2) * g * g;
    s1[i] = m;
    s2[i] = v;
    let denom = sqrt(v) / p.bc2_sqrt + p.eps;
    param[i] = param[i] - p.step_size * m / denom;
}

// Weight averaging (model EMA): avg = d·avg + (1−d)·w, with `param` bound to the average and
// `grad` to the live weights; d arrives in `momentum`. Written as PyTorch's
// `avg.lerp_(w, 1 − d)` so a shadow equal to the weights stays bit-equal to them.
@compute @workgroup_size(256)
fn ema_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let a = param[i];
    param[i] = a + (1.0 - p.momentum) * (grad[i] - a);
}
