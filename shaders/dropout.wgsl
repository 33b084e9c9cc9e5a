// Dropout with a counter-based hash RNG: the keep decision of element (or channel) i is a pure
// function of (seed, i), so the backward regenerates the forward's mask instead of storing it
// and results are reproducible across runs and devices.

struct Params {
    n: u32,          // elements
    group: u32,      // elements sharing one decision: 1 (dropout) or H*W (dropout2d)
    seed_lo: u32,
    seed_hi: u32,
    threshold: u32,  // drop when the 24-bit hash is below this (p * 2^24)
    scale: f32,      // 1 / (1 - p) for kept elements
    base: u32,       // index of this dispatch's first element (tensors bound in pieces)
    _pad1: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;

// PCG-RXS-M-XS output permutation (Jarzynski & Olano, "Hash Functions for GPU Rendering").
fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn keep(unit: u32) -> bool {
    let k1 = pcg(p.seed_lo);
    let k2 = pcg(p.seed_hi ^ 0x9e3779b9u);
    let h = pcg(pcg(unit + k1) ^ k2) >> 8u;
    return h >= p.threshold;
}

// out = x * mask * scale; applied to the upstream gradient it is the backward.
@compute @workgroup_size(256)
fn apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) { return; }
    out[i] = select(0.0, x[i] * p.scale, keep((p.base + i) / p.group));
}
