// Deterministic sum reduction of a 4-d tensor onto a 4-d output whose dims are either equal to
// the input's or 1 (sum_to_shape, per-channel sums, whole-tensor sums). One workgroup reduces
// one output element over one chunk of the reduced index space with a fixed tree, so results
// are identical run to run. Large reductions run in two passes via `chunks` > 1.

struct Params {
    in_dims: vec4<u32>,
    in_strides: vec4<u32>,
    keep: vec4<u32>,        // 1 where the output keeps the dim, 0 where it is summed
    n_out: u32,
    n_red: u32,             // product of summed dims
    chunks: u32,            // workgroups per output element
    chunk_len: u32,         // reduced indices per chunk
    scale: f32,             // multiplies the result (1/n for means) when chunks == 1
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
var<workgroup> acc: array<f32, WG>;

// Base input offset of output element o (kept coords), and input offset of reduced index r.
fn kept_offset(o: u32) -> u32 {
    var rem = o;
    var off = 0u;
    for (var k = 3i; k >= 0i; k = k - 1i) {
        if (p.keep[k] == 1u) {
            let c = rem % p.in_dims[k];
            rem = rem / p.in_dims[k];
            off = off + c * p.in_strides[k];
        }
    }
    return off;
}

fn reduced_offset(r: u32) -> u32 {
    var rem = r;
    var off = 0u;
    for (var k = 3i; k >= 0i; k = k - 1i) {
        if (p.keep[k] == 0u) {
            let c = rem % p.in_dims[k];
            rem = rem / p.in_dims[k];
            off = off + c * p.in_strides[k];
        }
    }
    return off;
}

@compute @workgroup_size(256)
fn sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.y * nwg.x + wid.x;
    let o = g / p.chunks;
    let k = g % p.chunks;
    var s = 0.0;
    if (o < p.n_out) {
        let base = kept_offset(o);
        let start = k * p.chunk_len;
        let end = min(start + p.chunk_len, p.n_red);
        for (var r = start + lid.x; r < end; r = r + WG) {
            s = s + x[base + reduced_offset(r)];
        }
    }
    acc[lid.x] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            acc[lid.x] = acc[lid.x] + acc[lid.x + stride];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u && o < p.n_out) {
        if (p.chunks == 1u) {
            out[o] = acc[0] * p.scale;
        } else {
            out[o * p.chunks + k] = acc[0];
        }
    }
}

// One invocation per output element, looping serially over a short reduced range. Used when
// the reduction is too short to fill a workgroup (e.g. summing 21 channels per pixel), where
// `sum` would leave most of each workgroup idle.
@compute @workgroup_size(256)
fn sum_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (o >= p.n_out) { return; }
    let base = kept_offset(o);
    var s = 0.0;
    for (var r = 0u; r < p.n_red; r = r + 1u) {
        s = s + x[base + reduced_offset(r)];
    }
    out[o] = s * p.scale;
}
