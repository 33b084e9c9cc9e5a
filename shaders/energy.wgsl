// Gated dense (CRF) energy loss of RRM (methods.md §4.3), per-pixel / per-element steps; the
// filtering W·x is shaders/bilateral.wgsl. coef = −λ / N.
//
//   prep:       G_i = max(0, unreliable_i ? 1 : R_i − max_k S_ik),  S̃ = R·S
//   terms:      t = coef · S̃ · G · A0 (summed elsewhere),  A = G · A0      (A0 = W S̃)
//   gate_mul:   out = G · S̃
//   grad_rloss: dS = g · 2·coef · A · R                                   (the code's gradient)
//   grad_exact: dS = g · coef · [R (G·A0 + B) − 1{k = argmax, gate open} Σ_k' S̃ A0]  (B = W(G·S̃))

struct Params {
    n_pos: u32,   // N · H · W
    k: u32,       // classes
    hw: u32,
    n_el: u32,    // N · K · H · W
    has_lab: u32, // 0: every pixel counts as unreliable (gate 1)
    ignore: i32,  // label value of unreliable pixels (255)
    coef: f32,
    _pad0: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;    // S | S̃
@group(0) @binding(2) var<storage, read> roi: array<f32>;  // R [N, H, W]
@group(0) @binding(3) var<storage, read> lab: array<i32>;  // reliable labels [N, H, W]
@group(0) @binding(4) var<storage, read> x: array<f32>;    // A0 | A
@group(0) @binding(5) var<storage, read> y: array<f32>;    // G | B
@group(0) @binding(6) var<storage, read> gup: array<f32>;  // upstream gradient [1]
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> out2: array<f32>;

// @include prelude

fn base_of(i: u32) -> u32 {
    return (i / p.hw) * p.k * p.hw + i % p.hw;
}

fn pixel_of(e: u32) -> u32 {
    return (e / (p.k * p.hw)) * p.hw + e % p.hw;
}

fn unreliable(i: u32) -> bool {
    return p.has_lab == 0u || lab[i] == p.ignore;
}

// Gate before clipping and the first argmax channel of S at pixel i.
fn raw_gate(i: u32) -> vec2<f32> {
    let b = base_of(i);
    var m = s[b];
    var am = 0u;
    for (var c = 1u; c < p.k; c = c + 1u) {
        let v = s[b + c * p.hw];
        if (v > m) { m = v; am = c; }
    }
    var g = roi[i] - m;
    if (unreliable(i)) { g = 1.0; }
    return vec2<f32>(g, f32(am));
}

@compute @workgroup_size(256)
fn prep(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_pos) { return; }
    let b = base_of(i);
    let r = roi[i];
    for (var c = 0u; c < p.k; c = c + 1u) {
        out[b + c * p.hw] = r * s[b + c * p.hw];
    }
    out2[i] = max(raw_gate(i).x, 0.0);
}

// s = S̃, x = A0, y = G.
@compute @workgroup_size(256)
fn terms(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let e = linear_id(wid, nwg, lid);
    if (e >= p.n_el) { return; }
    let a = y[pixel_of(e)] * x[e];
    out[e] = p.coef * s[e] * a;
    out2[e] = a;
}

// s = S̃, y = G.
@compute @workgroup_size(256)
fn gate_mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let e = linear_id(wid, nwg, lid);
    if (e >= p.n_el) { return; }
    out[e] = y[pixel_of(e)] * s[e];
}

// x = A.
@compute @workgroup_size(256)
fn grad_rloss(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let e = linear_id(wid, nwg, lid);
    if (e >= p.n_el) { return; }
    out[e] = gup[0] * 2.0 * p.coef * x[e] * roi[pixel_of(e)];
}

// s = S, x = A0, y = B = W(G·S̃).
@compute @workgroup_size(256)
fn grad_exact(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n_pos) { return; }
    let b = base_of(i);
    let r = roi[i];
    let rg = raw_gate(i);
    let g = max(rg.x, 0.0);
    var sa = 0.0;
    for (var c = 0u; c < p.k; c = c + 1u) {
        let k = b + c * p.hw;
        sa = sa + r * s[k] * x[k];
        out[k] = gup[0] * p.coef * r * (g * x[k] + y[k]);
    }
    // dG/dS_{i,argmax} = −1 where the gate is open and computed from S.
    if (!unreliable(i) && rg.x > 0.0) {
        let k = b + u32(rg.y) * p.hw;
        out[k] = out[k] - gup[0] * p.coef * sa;
    }
}
