// Counts NaN/inf elements of a tensor, chunk by chunk: workgroup g counts elements
// [g * chunk, (g + 1) * chunk) with a fixed tree and writes its count to counts[base + g].
// Checking every parameter and optimiser buffer before a checkpoint is written then costs one
// dispatch per tensor and one small read-back of the counts, never of the tensors.

struct Params {
    n: u32,       // elements of x
    chunk: u32,   // elements per workgroup
    base: u32,    // first slot of this tensor in `counts`
    _pad: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> counts: array<u32>;

const WG: u32 = 256u;
var<workgroup> acc: array<u32, WG>;

// By bits: an all-ones exponent is inf or NaN. Comparisons such as `v != v` may be folded
// away by shader compilers that assume finite math.
fn non_finite(v: f32) -> u32 {
    return select(0u, 1u, (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u);
}

@compute @workgroup_size(256)
fn count_non_finite(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.y * nwg.x + wid.x;
    let start = g * p.chunk;
    let end = min(start + p.chunk, p.n);
    var c = 0u;
    for (var i = start + lid.x; i < end; i = i + WG) {
        c = c + non_finite(x[i]);
    }
    acc[lid.x] = c;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            acc[lid.x] = acc[lid.x] + acc[lid.x + stride];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u && start < p.n) {
        counts[p.base + g] = acc[0];
    }
}
