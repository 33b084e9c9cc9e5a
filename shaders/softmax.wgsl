// Channel-wise kernels over NCHW (or [N, C] with inner = 1): softmax / log_softmax forward and
// backward, argmax over channels, one-hot encoding of label maps. One invocation owns one
// (n, spatial) position and loops over the channels, so no cross-thread reduction is needed.
// When H·W % 4 == 0 (V4) an invocation owns four neighbouring positions and reads vec4s: a
// quarter of the invocations and index arithmetic on CPU SIMD drivers (lavapipe). Otherwise the
// same code runs on one position splat over the four lanes. V4 and the softmax/log_softmax
// choice are pipeline constants so the unused branch folds away (lavapipe would run both sides
// of a uniform branch under a mask).

struct Params {
    n_pos: u32,     // positions N * inner (or output elements for one_hot)
    c: u32,         // channels
    inner: u32,     // H * W (1 for [N, C])
    op: u32,        // SOFTMAX or LOG_SOFTMAX (mirrors the OP constant)
    ignore: i32,    // ignore_index of one_hot
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> lab: array<vec4<i32>>;
@group(0) @binding(5) var<storage, read_write> out_i: array<i32>;

// @include prelude
// @include codes
override OP: u32 = 0u;   // SOFTMAX or LOG_SOFTMAX
override V4: u32 = 0u;   // inner % 4 == 0: four positions per invocation

// Offset of channel 0 at position i.
fn base_of(i: u32) -> u32 {
    return (i / p.inner) * p.c * p.inner + i % p.inner;
}

// First position of invocation i.
fn first_pos(i: u32) -> u32 {
    if (V4 == 1u) {
        return 4u * i;
    }
    return i;
}

// The invocation's values at element offset k of a channel: a vec4 (V4) or one value splat.
fn ld(k: u32) -> vec4<f32> {
    if (V4 == 1u) {
        return x[k >> 2u];
    }
    return vec4<f32>(x[k >> 2u][k & 3u]);
}

fn ldg(k: u32) -> vec4<f32> {
    if (V4 == 1u) {
        return g[k >> 2u];
    }
    return vec4<f32>(g[k >> 2u][k & 3u]);
}

fn st(k: u32, v: vec4<f32>) {
    if (V4 == 1u) {
        out[k >> 2u] = v;
    } else {
        out[k >> 2u][k & 3u] = v.x;
    }
}

// out = softmax(x) or log_softmax(x) over channels; max-subtracted so exp never overflows.
@compute @workgroup_size(256)
fn softmax_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = first_pos(linear_id(wid, nwg, lid));
    if (i >= p.n_pos) { return; }
    let b = base_of(i);
    var m = ld(b);
    for (var c = 1u; c < p.c; c = c + 1u) {
        m = max(m, ld(b + c * p.inner));
    }
    var s = vec4<f32>(0.0);
    for (var c = 0u; c < p.c; c = c + 1u) {
        s = s + exp(ld(b + c * p.inner) - m);
    }
    let ls = log(s);
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = b + c * p.inner;
        let z = ld(k) - m;
        if (OP == SOFTMAX) {
            st(k, exp(z) / s);
        } else {
            st(k, z - ls);
        }
    }
}

// x = forward output y, g = upstream gradient.
// softmax:      dx = y * (g - Σ g·y)
// log_softmax:  dx = g - exp(y) * Σ g
@compute @workgroup_size(256)
fn softmax_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = first_pos(linear_id(wid, nwg, lid));
    if (i >= p.n_pos) { return; }
    let b = base_of(i);
    var s = vec4<f32>(0.0);
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = b + c * p.inner;
        if (OP == SOFTMAX) {
            s = s + ldg(k) * ld(k);
        } else {
            s = s + ldg(k);
        }
    }
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = b + c * p.inner;
        if (OP == SOFTMAX) {
            st(k, ld(k) * (ldg(k) - s));
        } else {
            st(k, ldg(k) - exp(ld(k)) * s);
        }
    }
}

// out_i[n, s] = first channel holding the maximum (strict > keeps the lowest index on ties).
@compute @workgroup_size(256)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_pos) { return; }
    let b = base_of(i);
    var best = x[b >> 2u][b & 3u];
    var arg = 0u;
    for (var c = 1u; c < p.c; c = c + 1u) {
        let k = b + c * p.inner;
        let v = x[k >> 2u][k & 3u];
        if (v > best) {
            best = v;
            arg = c;
        }
    }
    out_i[i] = i32(arg);
}

// out[n, c, s] = 1 if lab[n, s] == c else 0; ignore_index and out-of-range labels give zeros.
// With V4 an invocation writes four neighbouring outputs of one (n, c) plane.
@compute @workgroup_size(256)
fn one_hot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = first_pos(linear_id(wid, nwg, lid));
    if (i >= p.n_pos) { return; }
    let s = i % p.inner;
    let c = (i / p.inner) % p.c;
    let n = i / (p.inner * p.c);
    let l = n * p.inner + s;
    if (V4 == 1u) {
        let t = lab[l >> 2u];
        let hit = (t != vec4<i32>(p.ignore)) & (t == vec4<i32>(i32(c)));
        out[i >> 2u] = select(vec4<f32>(0.0), vec4<f32>(1.0), hit);
    } else {
        let t = lab[l >> 2u][l & 3u];
        out[i >> 2u][i & 3u] = select(0.0, 1.0, t != p.ignore && t == i32(c));
    }
}
