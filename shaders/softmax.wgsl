// Channel-wise kernels over NCHW (or [N, C] with inner = 1): softmax / log_softmax forward and
// backward, argmax over channels, one-hot encoding of label maps. One invocation owns one
// (n, spatial) position and loops over the channels, so no cross-thread reduction is needed.

struct Params {
    n_pos: u32,     // positions N * inner (or output elements for one_hot)
    c: u32,         // channels
    inner: u32,     // H * W (1 for [N, C])
    op: u32,        // 0 = softmax, 1 = log_softmax
    ignore: i32,    // ignore_index of one_hot
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> lab: array<i32>;
@group(0) @binding(5) var<storage, read_write> out_i: array<i32>;

const WG: u32 = 256u;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// Offset of channel 0 at position i.
fn base_of(i: u32) -> u32 {
    return (i / p.inner) * p.c * p.inner + i % p.inner;
}

// out = softmax(x) or log_softmax(x) over channels; max-subtracted so exp never overflows.
@compute @workgroup_size(256)
fn softmax_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_pos) { return; }
    let b = base_of(i);
    var m = x[b];
    for (var c = 1u; c < p.c; c = c + 1u) {
        m = max(m, x[b + c * p.inner]);
    }
    var s = 0.0;
    for (var c = 0u; c < p.c; c = c + 1u) {
        s = s + exp(x[b + c * p.inner] - m);
    }
    let ls = log(s);
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = b + c * p.inner;
        let z = x[k] - m;
        if (p.op == 0u) {
            out[k] = exp(z) / s;
        } else {
            out[k] = z - ls;
        }
    }
}

// x = forward output y, g = upstream gradient.
// softmax:      dx = y * (g - Σ g·y)
// log_softmax:  dx = g - exp(y) * Σ g
@compute @workgroup_size(256)
fn softmax_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_pos) { return; }
    let b = base_of(i);
    var s = 0.0;
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = b + c * p.inner;
        if (p.op == 0u) {
            s = s + g[k] * x[k];
        } else {
            s = s + g[k];
        }
    }
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = b + c * p.inner;
        if (p.op == 0u) {
            out[k] = x[k] * (g[k] - s);
        } else {
            out[k] = g[k] - exp(x[k]) * s;
        }
    }
}

// out_i[n, s] = first channel holding the maximum (strict > keeps the lowest index on ties).
@compute @workgroup_size(256)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_pos) { return; }
    let b = base_of(i);
    var best = x[b];
    var arg = 0u;
    for (var c = 1u; c < p.c; c = c + 1u) {
        let v = x[b + c * p.inner];
        if (v > best) {
            best = v;
            arg = c;
        }
    }
    out_i[i] = i32(arg);
}

// out[n, c, s] = 1 if lab[n, s] == c else 0; ignore_index and out-of-range labels give zeros.
@compute @workgroup_size(256)
fn one_hot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_pos) { return; }
    let s = i % p.inner;
    let c = (i / p.inner) % p.c;
    let n = i / (p.inner * p.c);
    let t = lab[n * p.inner + s];
    out[i] = select(0.0, 1.0, t != p.ignore && t == i32(c));
}
