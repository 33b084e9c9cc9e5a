// Fused loss kernels. Forward kernels write per-element terms laid out as two rows
// [weighted loss terms | counted weights] that a deterministic tree reduction sums; `ratio`
// then divides on the GPU, so a loss never needs a host readback. Backward kernels read the
// reduced sums (`sums`) and the upstream gradient (`g`, one element) straight from buffers.

struct Params {
    n: u32,           // elements handled by this dispatch
    c: u32,           // channels (CE)
    inner: u32,       // H * W (CE; 1 for [N, C] logits)
    ignore: i32,      // ignore_index (CE)
    has_w: u32,       // CE: pixel weights bound; BCE: mask bound (mirrored by HAS_W)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;      // logits
@group(0) @binding(2) var<storage, read> lab: array<i32>;    // CE target
@group(0) @binding(3) var<storage, read> a1: array<f32>;     // CE pixel weight / BCE target
@group(0) @binding(4) var<storage, read> a2: array<f32>;     // CE per-pixel logsumexp / BCE mask
@group(0) @binding(5) var<storage, read> sums: array<f32>;   // [Σ terms, Σ counted]
@group(0) @binding(6) var<storage, read> g: array<f32>;      // upstream gradient, 1 element
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> out2: array<f32>;

// @include prelude
// has_w as a pipeline constant: CPU SIMD drivers (lavapipe) run both sides of a uniform branch
// under a mask, so a runtime flag read the unbound weight/mask buffer for every element anyway.
override HAS_W: u32 = 0u;

// Labels that are ignored or out of range do not count (see ops::softmax::check_labels).
fn ce_valid(t: i32) -> bool {
    return t != p.ignore && t >= 0 && t < i32(p.c);
}

fn pix_weight(i: u32) -> f32 {
    if (HAS_W == 1u) {
        return a1[i];
    }
    return 1.0;
}

// Per pixel i (n = i / inner, s = i % inner): out[i] = w·ce, out[n_pix + i] = valid,
// out2[i] = logsumexp over channels (saved for the backward).
@compute @workgroup_size(256)
fn ce_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let b = (i / p.inner) * p.c * p.inner + i % p.inner;
    var m = x[b];
    for (var c = 1u; c < p.c; c = c + 1u) {
        m = max(m, x[b + c * p.inner]);
    }
    var s = 0.0;
    for (var c = 0u; c < p.c; c = c + 1u) {
        s = s + exp(x[b + c * p.inner] - m);
    }
    let lse = m + log(s);
    out2[i] = lse;
    let t = lab[i];
    if (ce_valid(t)) {
        out[i] = pix_weight(i) * (lse - x[b + u32(t) * p.inner]);
        out[p.n + i] = 1.0;
    } else {
        out[i] = 0.0;
        out[p.n + i] = 0.0;
    }
}

// d loss / d logits for every logit element i: g·w·(softmax − onehot) / #valid.
@compute @workgroup_size(256)
fn ce_bwd_x(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let s = i % p.inner;
    let c = (i / p.inner) % p.c;
    let n = i / (p.inner * p.c);
    let pix = n * p.inner + s;
    let t = lab[pix];
    let count = sums[1];
    if (!ce_valid(t) || count <= 0.0) {
        out[i] = 0.0;
        return;
    }
    let sm = exp(x[i] - a2[pix]);
    let hot = select(0.0, 1.0, t == i32(c));
    out[i] = g[0] * pix_weight(pix) * (sm - hot) / count;
}

// d loss / d pixel_weight for every pixel i: g·ce / #valid.
@compute @workgroup_size(256)
fn ce_bwd_w(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let t = lab[i];
    let count = sums[1];
    if (!ce_valid(t) || count <= 0.0) {
        out[i] = 0.0;
        return;
    }
    let b = (i / p.inner) * p.c * p.inner + i % p.inner;
    out[i] = g[0] * (a2[i] - x[b + u32(t) * p.inner]) / count;
}

fn bce_mask(i: u32) -> f32 {
    if (HAS_W == 1u) {
        return a2[i];
    }
    return 1.0;
}

// Per element: out[i] = m·bce, out[n + i] = m, with the stable
// bce = max(x, 0) − x·t + log(1 + exp(−|x|)).
@compute @workgroup_size(256)
fn bce_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let v = x[i];
    let m = bce_mask(i);
    let l = max(v, 0.0) - v * a1[i] + log(1.0 + exp(-abs(v)));
    out[i] = m * l;
    out[p.n + i] = m;
}

fn sigm(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

// out[i] = d/d logits = g·m·(σ(x) − t) / Σm, out2[i] = d/d target = −g·m·x / Σm.
@compute @workgroup_size(256)
fn bce_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let count = sums[1];
    if (count <= 0.0) {
        out[i] = 0.0;
        out2[i] = 0.0;
        return;
    }
    let k = g[0] * bce_mask(i) / count;
    let v = x[i];
    out[i] = k * (sigm(v) - a1[i]);
    out2[i] = -k * v;
}

// out[0] = sums[0] / sums[1], or 0 when nothing was counted (PyTorch would give NaN).
@compute @workgroup_size(1)
fn ratio() {
    let count = sums[1];
    out[0] = select(0.0, sums[0] / count, count > 0.0);
}
