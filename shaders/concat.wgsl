// Channel copies for concat / split / narrow over [N, C, inner] layouts (inner = H*W, or 1 for
// [N, C]). Every kernel is a gather or a write to a disjoint slice, so no atomics are needed.

struct Params {
    n: u32,         // invocations (elements written)
    inner: u32,     // H * W
    c_src: u32,     // channels of the source
    c_dst: u32,     // channels of the destination
    off: u32,       // channel offset (into dst for insert/place, into src for narrow)
    len: u32,       // channels of the slice
    _pad0: u32,
    _pad1: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// @include prelude

// dst[n, off + c, s] = src[n, c, s] for every src element (writes one input's slice of a concat).
@compute @workgroup_size(256)
fn insert(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let s = i % p.inner;
    let c = (i / p.inner) % p.c_src;
    let n = i / (p.inner * p.c_src);
    dst[(n * p.c_dst + p.off + c) * p.inner + s] = src[i];
}

// dst[n, c, s] = src[n, off + c, s] for every dst element ([N, len, inner]).
@compute @workgroup_size(256)
fn narrow(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let s = i % p.inner;
    let c = (i / p.inner) % p.len;
    let n = i / (p.inner * p.len);
    dst[i] = src[(n * p.c_src + p.off + c) * p.inner + s];
}

// dst[n, c, s] = src[n, c − off, s] inside the slice [off, off + len), 0 elsewhere: the backward
// of narrow, written as a gather over the full destination.
@compute @workgroup_size(256)
fn place(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let s = i % p.inner;
    let c = (i / p.inner) % p.c_dst;
    let n = i / (p.inner * p.c_dst);
    if (c >= p.off && c < p.off + p.len) {
        dst[i] = src[(n * p.len + c - p.off) * p.inner + s];
    } else {
        dst[i] = 0.0;
    }
}
