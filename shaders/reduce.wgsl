// Deterministic sum reduction of a 4-d tensor onto a 4-d output whose dims are either equal to
// the input's or 1 (sum_to_shape, per-channel sums, whole-tensor sums). Every invocation sums a
// fixed set of elements and the partial sums are combined in a fixed order, so results are
// identical run to run. Large reductions run in two passes via `chunks` > 1.
//
// Most reductions (bias gradients [N, C, H, W] → [C], whole-tensor sums and means, row sums) have,
// after merging adjacent dims and dropping size-1 ones, the form x[A, B, C] → out[B]: summed,
// kept, summed. `sum_rows` / `sum_rows4` handle that form with no integer division in the loop
// (division is scalarised on CPU SIMD drivers such as lavapipe, and costs a lot on GPUs too),
// 64-wide workgroups and one barrier; `sum_rows4` reads vec4s when C % 4 == 0. `sum_cols` covers
// x[A, B] → out[B] with many outputs. `sum` / `sum_serial` are the general fallbacks.

struct Params {
    in_dims: vec4<u32>,
    in_strides: vec4<u32>,
    keep: vec4<u32>,        // 1 where the output keeps the dim, 0 where it is summed
    n_out: u32,
    n_red: u32,             // product of summed dims
    chunks: u32,            // workgroups per output element
    chunk_len: u32,         // reduced indices per chunk (vec4s for sum_rows4)
    scale: f32,             // multiplies the result (1/n for means) when chunks == 1
    // sum_rows / sum_cols: the merged form x[A, B, C] (C counted in vec4s for sum_rows4)
    a: u32,
    b: u32,
    c: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
// Declared as vec4s so `sum_rows4` loads four floats at once; scalar reads go through `ld`.
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
var<workgroup> acc: array<f32, WG>;

fn ld(i: u32) -> f32 {
    return x[i >> 2u][i & 3u];
}

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
            s = s + ld(base + reduced_offset(r));
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
        s = s + ld(base + reduced_offset(r));
    }
    out[o] = s * p.scale;
}

// x[A, B] → out[B], one invocation per output: lanes read neighbouring elements, no division.
@compute @workgroup_size(256)
fn sum_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (o >= p.b) { return; }
    var s = 0.0;
    var i = o;
    for (var r = 0u; r < p.a; r = r + 1u) {
        s = s + ld(i);
        i = i + p.b;
    }
    out[o] = s * p.scale;
}

const RW: u32 = 64u;
var<workgroup> part: array<f32, RW>;

// The reduced index r = a·C + c of chunk k of output o, walked by lane l in steps of RW with
// (a, c) carried along instead of divided out per element. Returns (first a, first c, count).
fn rows_start(k: u32, l: u32) -> vec3<u32> {
    let start = k * p.chunk_len + l;
    let end = min((k + 1u) * p.chunk_len, p.n_red);
    var count = 0u;
    if (start < end) {
        count = (end - start + RW - 1u) / RW;
    }
    return vec3<u32>(start / p.c, start % p.c, count);
}

// Lane partials summed in lane order (every lane gets the same total; deterministic).
fn rows_finish(o: u32, k: u32, l: u32, s: f32) {
    // Every lane reaches the barrier; only a workgroup with a real output writes.
    part[l] = s;
    workgroupBarrier();
    if (l == 0u && o < p.b) {
        var t = 0.0;
        for (var j = 0u; j < RW; j = j + 1u) {
            t = t + part[j];
        }
        if (p.chunks == 1u) {
            out[o] = t * p.scale;
        } else {
            out[o * p.chunks + k] = t;
        }
    }
}

@compute @workgroup_size(64)
fn sum_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.y * nwg.x + wid.x;
    let o = g / p.chunks;
    let k = g % p.chunks;
    let l = lid.x;
    var s = 0.0;
    if (o < p.b) {
        let st = rows_start(k, l);
        var a = st.x;
        var c = st.y;
        let da = RW / p.c;
        let dc = RW % p.c;
        let row = p.b * p.c;
        let base = o * p.c;
        for (var j = 0u; j < st.z; j = j + 1u) {
            s = s + ld(a * row + base + c);
            c = c + dc;
            a = a + da;
            if (c >= p.c) {
                c = c - p.c;
                a = a + 1u;
            }
        }
    }
    rows_finish(o, k, l, s);
}

// As sum_rows with C, chunk_len and n_red counted in vec4s; each lane's vec4 partial is reduced
// as (x + y) + (z + w).
@compute @workgroup_size(64)
fn sum_rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.y * nwg.x + wid.x;
    let o = g / p.chunks;
    let k = g % p.chunks;
    let l = lid.x;
    var s = vec4<f32>(0.0);
    if (o < p.b) {
        let st = rows_start(k, l);
        var a = st.x;
        var c = st.y;
        let da = RW / p.c;
        let dc = RW % p.c;
        let row = p.b * p.c;
        let base = o * p.c;
        for (var j = 0u; j < st.z; j = j + 1u) {
            s = s + x[a * row + base + c];
            c = c + dc;
            a = a + da;
            if (c >= p.c) {
                c = c - p.c;
                a = a + 1u;
            }
        }
    }
    rows_finish(o, k, l, (s.x + s.y) + (s.z + s.w));
}
