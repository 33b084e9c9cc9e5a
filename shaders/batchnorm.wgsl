// 2-d batch normalisation over NCHW. Per-channel statistics use one 64-wide workgroup per
// channel, two passes (mean, then centred sum of squares, stable for inputs with a large mean);
// each lane sums a fixed strided set of the channel's elements, read as vec4s when H·W % 4 == 0,
// walking (n, j) without integer division (scalarised, so slow, on CPU SIMD drivers), and the
// lane partials are summed in lane order after one barrier, so results are deterministic. The
// per-element passes are one per-channel affine map read from a coefficient table:
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
// x, out and g are vec4 arrays so the per-element passes move four floats per access (pool
// buffers are multiples of 16 bytes); scalar accesses index a component.
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(5) var<storage, read> weight: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read> table: array<f32>;
@group(0) @binding(8) var<storage, read> g: array<vec4<f32>>;

const WG: u32 = 256u;
const RW: u32 = 64u;
// Pipeline constants rather than uniforms: CPU SIMD drivers run both sides of a uniform branch
// under a mask, so a runtime choice would pay for the vec4 and the scalar loop alike.
override V4: u32 = 1u;      // H·W % 4 == 0: read vec4s
override USE_G: u32 = 0u;   // channel_affine adds g · T[ob + c] (mirrors Params.use_g)
const TRAIN: u32 = 1u;
const HAS_WEIGHT: u32 = 2u;
const HAS_BIAS: u32 = 4u;
const UPDATE_RUNNING: u32 = 8u;

var<workgroup> part: array<vec2<f32>, RW>;

fn xs(e: u32) -> f32 {
    return x[e >> 2u][e & 3u];
}

fn gs(e: u32) -> f32 {
    return g[e >> 2u][e & 3u];
}

fn put(e: u32, v: f32) {
    out[e >> 2u][e & 3u] = v;
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

// Sum of every lane's v in lane order, returned to all lanes (all lanes must call it).
fn wg_total(l: u32, v: vec2<f32>) -> vec2<f32> {
    part[l] = v;
    workgroupBarrier();
    var t = vec2<f32>(0.0);
    for (var j = 0u; j < RW; j = j + 1u) {
        t = t + part[j];
    }
    workgroupBarrier();
    return t;
}

// Lane l's walk over one channel: units (vec4s, or scalars when H·W % 4 != 0) r = l, l + RW, …
// of the N·U units (U per image), as (n, j) with r = n·U + j; .z is the number of steps.
fn walk_start(l: u32, u: u32) -> vec3<u32> {
    let total = (p.m / p.hw) * u;
    var steps = 0u;
    if (l < total) {
        steps = (total - l + RW - 1u) / RW;
    }
    return vec3<u32>(l / u, l % u, steps);
}

fn walk_next(nj: vec2<u32>, u: u32) -> vec2<u32> {
    var n = nj.x + RW / u;
    var j = nj.y + RW % u;
    if (j >= u) {
        j = j - u;
        n = n + 1u;
    }
    return vec2<u32>(n, j);
}

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// Σ over channel c of x (mode 0), (x − mean)² (mode 1), or (g, g·(x − mean)) (mode 2), lane l's
// share.
fn lane_sums(c: u32, l: u32, mode: u32, mean: f32) -> vec2<f32> {
    let v4 = V4 == 1u;
    var u = p.hw;
    if (v4) {
        u = p.hw / 4u;
    }
    let w = walk_start(l, u);
    var nj = w.xy;
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    for (var k = 0u; k < w.z; k = k + 1u) {
        let e = (nj.x * p.c + c) * u + nj.y;
        var xv: vec4<f32>;
        var gv = vec4<f32>(0.0);
        if (v4) {
            xv = x[e];
            if (mode == 2u) { gv = g[e]; }
        } else {
            // Scalar unit in .x; the other components stay zero in every sum below.
            xv = vec4<f32>(xs(e), mean, mean, mean);
            if (mode == 2u) { gv = vec4<f32>(gs(e), 0.0, 0.0, 0.0); }
        }
        if (mode == 0u) {
            s0 = s0 + xv; // mean is 0 here, so a scalar unit's padding adds nothing
        } else if (mode == 1u) {
            let d = xv - mean;
            s0 = s0 + d * d;
        } else {
            s0 = s0 + gv;
            s1 = s1 + gv * (xv - mean);
        }
        nj = walk_next(nj, u);
    }
    return vec2<f32>(hsum(s0), hsum(s1));
}

// One workgroup per channel: batch mean and biased variance → forward table; optionally the
// running statistics are updated in place (running_var with the unbiased variance).
@compute @workgroup_size(64)
fn batch_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.y * nwg.x + wid.x;
    let l = lid.x;
    let live = c < p.c;
    let cc = min(c, p.c - 1u);
    let mean = wg_total(l, lane_sums(cc, l, 0u, 0.0)).x / f32(p.m);
    let q = wg_total(l, lane_sums(cc, l, 1u, mean)).x;
    if (l == 0u && live) {
        let var_b = q / f32(p.m);
        let invstd = 1.0 / sqrt(var_b + p.eps);
        put(c, mean);
        put(p.c + c, invstd);
        put(2u * p.c + c, weight_of(c) * invstd);
        put(3u * p.c + c, bias_of(c));
        if ((p.flags & UPDATE_RUNNING) != 0u) {
            let unbiased = q / f32(p.m - 1u);
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
    put(c, run_mean[c]);
    put(p.c + c, invstd);
    put(2u * p.c + c, weight_of(c) * invstd);
    put(3u * p.c + c, bias_of(c));
}

// Per-element channel affine map (forward output and input gradient), one vec4 per invocation:
// with H·W % 4 == 0 a vec4 lies in one channel, so its channel is worked out once.
@compute @workgroup_size(256)
fn channel_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (4u * i >= p.n) { return; }
    if (V4 == 1u) {
        let c = (i / (p.hw / 4u)) % p.c;
        var v = (x[i] - table[p.om + c]) * table[p.oa + c] + table[p.ok + c];
        if (USE_G == 1u) {
            v = v + g[i] * table[p.ob + c];
        }
        out[i] = v;
        return;
    }
    for (var e = 4u * i; e < min(4u * i + 4u, p.n); e = e + 1u) {
        let c = (e / p.hw) % p.c;
        var v = (xs(e) - table[p.om + c]) * table[p.oa + c] + table[p.ok + c];
        if (USE_G == 1u) {
            v = v + gs(e) * table[p.ob + c];
        }
        put(e, v);
    }
}

// One workgroup per channel: Σg and Σg·x̂ (the bias and weight gradients) plus the input
// gradient's coefficients. `table` is the forward table. Train mode differentiates through the
// batch statistics: dx = w·invstd·(g − Σg/M − x̂·Σg·x̂/M); eval mode: dx = w·invstd·g.
@compute @workgroup_size(64)
fn bwd_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.y * nwg.x + wid.x;
    let l = lid.x;
    let live = c < p.c;
    let cc = min(c, p.c - 1u);
    let mean = table[cc];
    let t = wg_total(l, lane_sums(cc, l, 2u, mean));
    if (l == 0u && live) {
        let invstd = table[p.c + c];
        let sum_g = t.x;
        let sum_gxhat = t.y * invstd;
        let kg = weight_of(c) * invstd;
        var kx = 0.0;
        var k0 = 0.0;
        if ((p.flags & TRAIN) != 0u) {
            let inv_m = 1.0 / f32(p.m);
            kx = -kg * invstd * sum_gxhat * inv_m;
            k0 = -kg * sum_g * inv_m;
        }
        put(c, sum_g);
        put(p.c + c, sum_gxhat);
        put(2u * p.c + c, mean);
        put(3u * p.c + c, kx);
        put(4u * p.c + c, kg);
        put(5u * p.c + c, k0);
    }
}
