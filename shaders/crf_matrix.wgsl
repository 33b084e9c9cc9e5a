// Dense CRF, matrix path (small images): the normalised pairwise operator of one image,
//   M = w_a · D_a^{-1/2} K_a D_a^{-1/2} + w_s · D_s^{-1/2} K_s D_s^{-1/2}   [HW, HW],
// is built once (rowsum, build); each mean-field iteration is then one GEMM, msg = Q · M (by
// ops::linear, on the texture GEMM family), and `update`. The per-iteration filters of the
// gather path re-evaluate every kernel value; here each is evaluated twice in all.
//   K_a = exp(−|p_i − p_j|² · inv2sxy_a − |I_i − I_j|² · inv2srgb_a),  K_s = exp(−|p_i − p_j|² · inv2sxy_s)
// Fixed-order sums, no atomics: deterministic.

struct Params {
    n_pos: u32,      // rowsum: N·HW;  update: N'·HW (N' = images × stacks)
    hw: u32,
    w: u32,
    c: u32,          // update: classes per stack
    img: u32,        // build: image index
    flags: u32,      // bit 0: include the self term j = i
    _p0: u32,
    _p1: u32,
    inv2sxy_a: f32,
    inv2srgb_a: f32,
    inv2sxy_s: f32,
    w_app: f32,
    w_smooth: f32,
    _f0: f32,
    _f1: f32,
    _f2: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> img: array<f32>;       // [N, 3, HW], RGB 0–255
@group(0) @binding(2) var<storage, read> nrm: array<f32>;       // [N, 2, HW]: D_a^{-1/2}, D_s^{-1/2}
@group(0) @binding(3) var<storage, read> logp: array<f32>;      // [N', C, HW]
@group(0) @binding(4) var<storage, read> msg: array<f32>;       // [N', C, HW]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// @include prelude
// @include softmax_c

fn rgb(base: u32, j: u32) -> vec3<f32> {
    return vec3<f32>(img[base + j], img[base + p.hw + j], img[base + 2u * p.hw + j]);
}

fn pos(j: u32) -> vec2<f32> {
    return vec2<f32>(f32(j % p.w), f32(j / p.w));
}

// (K_a(i, j), K_s(i, j)) of image `base` for pixel j at `pj`, with the self term dropped unless
// flagged. K_s below e^-30 (|Δp| > 7.7 σ_s) is 0: far under f32's resolution next to the self
// term, and skipping its exp halves the work of the narrow smoothness kernel.
fn kern(base: u32, i: u32, fi: vec3<f32>, pi: vec2<f32>, j: u32, pj: vec2<f32>) -> vec2<f32> {
    if (i == j && (p.flags & 1u) == 0u) { return vec2<f32>(0.0); }
    let dp = pj - pi;
    let dc = rgb(base, j) - fi;
    let d2 = dot(dp, dp);
    let a = exp(-d2 * p.inv2sxy_a - dot(dc, dc) * p.inv2srgb_a);
    let zs = d2 * p.inv2sxy_s;
    var s = 0.0;
    if (zs < 30.0) { s = exp(-zs); }
    return vec2<f32>(a, s);
}

// out = nrm: per (image, pixel) the symmetric normalisers 1 / sqrt(K·1 + 1e-20) of both kernels.
@compute @workgroup_size(256)
fn rowsum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = linear_id(wid, nwg, lid);
    if (t >= p.n_pos) { return; }
    let n = t / p.hw;
    let i = t % p.hw;
    let base = n * 3u * p.hw;
    let fi = rgb(base, i);
    let pi = pos(i);
    var s = vec2<f32>(0.0);
    var pj = vec2<f32>(0.0);
    for (var j = 0u; j < p.hw; j = j + 1u) {
        s = s + kern(base, i, fi, pi, j, pj);
        pj.x = pj.x + 1.0;
        if (pj.x >= f32(p.w)) { pj = vec2<f32>(0.0, pj.y + 1.0); }
    }
    out[(n * 2u) * p.hw + i] = 1.0 / sqrt(s.x + 1e-20);
    out[(n * 2u + 1u) * p.hw + i] = 1.0 / sqrt(s.y + 1e-20);
}

// Rows of M one invocation writes. Lanes run over consecutive columns j, so loads of j's
// colour and the stores are contiguous across a SIMD lane group, while row i's values are the
// same for every lane (CPU drivers vectorise invocations: lavapipe ran this ~4x faster than
// one invocation per element).
const RS: u32 = 16u;

// out = M of image `p.img`, [HW, HW] row-major (symmetric).
@compute @workgroup_size(256)
fn build(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = linear_id(wid, nwg, lid);
    let strips = (p.hw + RS - 1u) / RS;
    if (t >= p.hw * strips) { return; }
    let j = t % p.hw;
    let i0 = (t / p.hw) * RS;
    let base = p.img * 3u * p.hw;
    let na = (p.img * 2u) * p.hw;
    let ns = na + p.hw;
    let fj = rgb(base, j);
    let pj = pos(j);
    let aj = p.w_app * nrm[na + j];
    let sj = p.w_smooth * nrm[ns + j];
    let i1 = min(i0 + RS, p.hw);
    var pi = pos(i0);
    for (var i = i0; i < i1; i = i + 1u) {
        let k = kern(base, j, fj, pj, i, pi);
        pi.x = pi.x + 1.0;
        if (pi.x >= f32(p.w)) { pi = vec2<f32>(0.0, pi.y + 1.0); }
        out[i * p.hw + j] = aj * nrm[na + i] * k.x + sj * nrm[ns + i] * k.y;
    }
}

// out = Q = softmax_c(logp + msg), per (stack entry, pixel).
@compute @workgroup_size(256)
fn update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = linear_id(wid, nwg, lid);
    if (t >= p.n_pos) { return; }
    let base = (t / p.hw) * p.c * p.hw + t % p.hw;
    var m = -3.4e38;
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = base + c * p.hw;
        let z = logp[k] + msg[k];
        out[k] = z;
        m = max(m, z);
    }
    softmax_c_in_place(base, m);
}
