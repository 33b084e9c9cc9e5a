// Per-plane (n, c) minimum or maximum over H×W with the index of the first extremum, and the
// gather backward that routes each plane's upstream gradient to that index (torch.max(dim)
// semantics). One workgroup per plane, fixed-order tree reduction: deterministic.

struct Params {
    planes: u32,
    hw: u32,
    is_max: u32,
    n: u32,      // backward: elements of the gradient written
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // forward input / upstream grad
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<i32>;  // forward: index written
@group(0) @binding(4) var<storage, read> argr: array<i32>;       // backward: saved index

const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;

var<workgroup> sv: array<f32, 256>;
var<workgroup> si: array<u32, 256>;

// Whether (a, ia) wins over (b, ib): the larger (smaller) value, ties to the lower index.
fn better(a: f32, ia: u32, b: f32, ib: u32) -> bool {
    if (ia == NONE) { return false; }
    if (ib == NONE) { return true; }
    if (a == b) { return ia < ib; }
    if (p.is_max != 0u) { return a > b; }
    return a < b;
}

@compute @workgroup_size(256)
fn extreme_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let plane = wid.y * nwg.x + wid.x;
    if (plane >= p.planes) { return; }
    let base = plane * p.hw;
    var bv = 0.0;
    var bi = NONE;
    for (var j = lid.x; j < p.hw; j = j + WG) {
        let v = x[base + j];
        if (better(v, j, bv, bi)) {
            bv = v;
            bi = j;
        }
    }
    sv[lid.x] = bv;
    si[lid.x] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid.x < s) {
            let ov = sv[lid.x + s];
            let oi = si[lid.x + s];
            if (better(ov, oi, sv[lid.x], si[lid.x])) {
                sv[lid.x] = ov;
                si[lid.x] = oi;
            }
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        out[plane] = sv[0];
        arg[plane] = i32(si[0]);
    }
}

@compute @workgroup_size(256)
fn extreme_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) { return; }
    let plane = i / p.hw;
    let j = i % p.hw;
    out[i] = select(0.0, x[plane], argr[plane] == i32(j));
}
