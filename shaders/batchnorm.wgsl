// 2-d batch normalisation over NCHW. Per-channel statistics use one workgroup per channel with
// a fixed two-pass tree reduction (mean, then centred sum of squares), so results are
// deterministic and stable for inputs with a large mean. The per-element passes are one
// per-channel affine map read from a coefficient table:
//   out = (x - T[om + c]) * T[oa + c] + T[ok + c] (+ g * T[ob + c] when use_g)
// Forward table  [mean | invstd | scale | shift]            (4C)
// Backward table [Σg | Σg·x̂ | mean | k_x | k_g | k_0]       (6C)

struct Params {
    n: u32,            // elements of x
    c: u32,            // channels
    hw: u32,           // H * W
    m: u32,            // N * H * W (elements per channel)
    eps: f32,
    momentum: f32,
    flags: u32,        // 1: train (batch stats), 2: has weight, 4: has bias, 8: update running stats
    use_g: u32,
    om: u32,
    oa: u32,
    ob: u32,
    ok: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(5) var<storage, read> weight: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read> table: array<f32>;
@group(0) @binding(8) var<storage, read> g: array<f32>;

const WG: u32 = 256u;
const TRAIN: u32 = 1u;
const HAS_WEIGHT: u32 = 2u;
const HAS_BIAS: u32 = 4u;
const UPDATE_RUNNING: u32 = 8u;

var<workgroup> acc0: array<f32, WG>;
var<workgroup> acc1: array<f32, WG>;

fn elem(c: u32, r: u32) -> u32 {
    return ((r / p.hw) * p.c + c) * p.hw + r % p.hw;
}

fn weight_of(c: u32) -> f32 {
    if ((p.flags & HAS_WEIGHT) != 0u) {
        return weight[c];
    }
    return 1.0;
}

fn bias_of(c: u32) -> f32 {
    if ((p.flags & HAS_BIAS) != 0u) {
        return bias[c];
    }
    return 0.0;
}

// Tree-reduces acc0/acc1 into element 0 (all invocations must call it).
fn reduce2(l: u32) {
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (l < s) {
            acc0[l] = acc0[l] + acc0[l + s];
            acc1[l] = acc1[l] + acc1[l + s];
        }
        workgroupBarrier();
    }
}

// One workgroup per channel: batch mean and biased variance → forward table; optionally the
// running statistics are updated in place (running_var with the unbiased variance).
@compute @workgroup_size(256)
fn batch_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.y * nwg.x + wid.x;
    let l = lid.x;
    let live = c < p.c;
    var s = 0.0;
    if (live) {
        for (var r = l; r < p.m; r = r + WG) {
            s = s + x[elem(c, r)];
        }
    }
    acc0[l] = s;
    acc1[l] = 0.0;
    reduce2(l);
    let mean = acc0[0] / f32(p.m);
    workgroupBarrier();
    var q = 0.0;
    if (live) {
        for (var r = l; r < p.m; r = r + WG) {
            let d = x[elem(c, r)] - mean;
            q = q + d * d;
        }
    }
    acc0[l] = q;
    acc1[l] = 0.0;
    reduce2(l);
    if (l == 0u && live) {
        let var_b = acc0[0] / f32(p.m);
        let invstd = 1.0 / sqrt(var_b + p.eps);
        out[c] = mean;
        out[p.c + c] = invstd;
        out[2u * p.c + c] = weight_of(c) * invstd;
        out[3u * p.c + c] = bias_of(c);
        if ((p.flags & UPDATE_RUNNING) != 0u) {
            let unbiased = acc0[0] / f32(p.m - 1u);
            run_mean[c] = (1.0 - p.momentum) * run_mean[c] + p.momentum * mean;
            run_var[c] = (1.0 - p.momentum) * run_var[c] + p.momentum * unbiased;
        }
    }
}

// Eval mode: forward table from the running statistics (one invocation per channel).
@compute @workgroup_size(256)
fn running_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (c >= p.c) { return; }
    let invstd = 1.0 / sqrt(run_var[c] + p.eps);
    out[c] = run_mean[c];
    out[p.c + c] = invstd;
    out[2u * p.c + c] = weight_of(c) * invstd;
    out[3u * p.c + c] = bias_of(c);
}

// Per-element channel affine map (forward output and input gradient).
@compute @workgroup_size(256)
fn channel_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) { return; }
    let c = (i / p.hw) % p.c;
    var v = (x[i] - table[p.om + c]) * table[p.oa + c] + table[p.ok + c];
    if (p.use_g == 1u) {
        v = v + g[i] * table[p.ob + c];
    }
    out[i] = v;
}

// One workgroup per channel: Σg and Σg·x̂ (the bias and weight gradients) plus the input
// gradient's coefficients. `table` is the forward table. Train mode differentiates through the
// batch statistics: dx = w·invstd·(g − Σg/M − x̂·Σg·x̂/M); eval mode: dx = w·invstd·g.
@compute @workgroup_size(256)
fn bwd_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.y * nwg.x + wid.x;
    let l = lid.x;
    let live = c < p.c;
    var sg = 0.0;
    var sgx = 0.0;
    var mean = 0.0;
    if (live) {
        mean = table[c];
        for (var r = l; r < p.m; r = r + WG) {
            let e = elem(c, r);
            sg = sg + g[e];
            sgx = sgx + g[e] * (x[e] - mean);
        }
    }
    acc0[l] = sg;
    acc1[l] = sgx;
    reduce2(l);
    if (l == 0u && live) {
        let invstd = table[p.c + c];
        let sum_g = acc0[0];
        let sum_gxhat = acc1[0] * invstd;
        let kg = weight_of(c) * invstd;
        var kx = 0.0;
        var k0 = 0.0;
        if ((p.flags & TRAIN) != 0u) {
            let inv_m = 1.0 / f32(p.m);
            kx = -kg * invstd * sum_gxhat * inv_m;
            k0 = -kg * sum_g * inv_m;
        }
        out[c] = sum_g;
        out[p.c + c] = sum_gxhat;
        out[2u * p.c + c] = mean;
        out[3u * p.c + c] = kx;
        out[4u * p.c + c] = kg;
        out[5u * p.c + c] = k0;
    }
}
