// Dense-CRF mean-field helpers (Krähenbühl & Koltun, pydensecrf semantics). Per-pixel kernels;
// the pairwise filtering itself is shaders/bilateral.wgsl.
//
//   init:    logp = log(clamp(p, lo, hi)) (= −unary), Q = softmax_c(logp)
//   norm:    nrm = 1 / sqrt(x + 1e-20)             (NORMALIZE_SYMMETRIC from filter(1))
//   scale:   out[n, c, i] = q[n, c, i] · nrm[n, i]
//   update:  Q = softmax_c(logp + w_a·nrm_a·fa + w_s·nrm_s·fs)   (Potts: message −(−w)·filtered)

struct Params {
    n_pos: u32,   // N · H · W
    c: u32,
    hw: u32,
    n_el: u32,    // elements of the tensor the entry writes
    w_app: f32,
    w_smooth: f32,
    lo: f32,      // probability clip (pydensecrf unary_from_softmax: [1e-5, 1])
    hi: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;      // p | x | q | logp
@group(0) @binding(2) var<storage, read> b: array<f32>;      // nrm | fa
@group(0) @binding(3) var<storage, read> b2: array<f32>;     // nrm_a
@group(0) @binding(4) var<storage, read> b3: array<f32>;     // fs
@group(0) @binding(5) var<storage, read> b4: array<f32>;     // nrm_s
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> out2: array<f32>;

// @include prelude
// @include softmax_c

fn base_of(i: u32) -> u32 {
    return (i / p.hw) * p.c * p.hw + i % p.hw;
}

// a = probabilities; out = logp, out2 = Q0.
@compute @workgroup_size(256)
fn init(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_pos) { return; }
    let base = base_of(i);
    var m = -3.4e38;
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = base + c * p.hw;
        let l = log(clamp(a[k], p.lo, p.hi));
        out[k] = l;
        m = max(m, l);
    }
    var s = 0.0;
    for (var c = 0u; c < p.c; c = c + 1u) {
        s = s + exp(out[base + c * p.hw] - m);
    }
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = base + c * p.hw;
        out2[k] = exp(out[k] - m) / s;
    }
}

// a = filter(1) [N, 1, H, W]; out = 1 / sqrt(a + 1e-20).
@compute @workgroup_size(256)
fn norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_el) { return; }
    out[i] = 1.0 / sqrt(a[i] + 1e-20);
}

// a = q [N, C, H, W], b = nrm [N, 1, H, W]; out = q · nrm.
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let e = linear_id(wid, nwg, lid);
    if (e >= p.n_el) { return; }
    let pix = e % p.hw;
    let n = e / (p.c * p.hw);
    out[e] = a[e] * b[n * p.hw + pix];
}

// a = logp, b = fa, b2 = nrm_a, b3 = fs, b4 = nrm_s; out = Q.
@compute @workgroup_size(256)
fn update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_pos) { return; }
    let base = base_of(i);
    let na = p.w_app * b2[i];
    let ns = p.w_smooth * b4[i];
    var m = -3.4e38;
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = base + c * p.hw;
        let z = a[k] + na * b[k] + ns * b3[k];
        out[k] = z;
        m = max(m, z);
    }
    softmax_c_in_place(base, m);
}
