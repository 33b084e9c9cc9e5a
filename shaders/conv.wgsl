// Convolution and linear layers as ONE tiled shared-memory GEMM, C[M,N] = sum_k A[M,K]·B[K,N],
// whose operands are never materialised: MODE (a pipeline constant) selects loaders that read
// them straight from the tensors (implicit im2col, no im2col buffer in global memory).
//
//   MODE 0 forward      A = weights [Co, Ci·KH·KW],  B = im2col(x) [Ci·KH·KW, N·OH·OW]
//   MODE 1 input-grad   A = weights viewed [Ci, Co·KH·KW],  B = gather of dy [Co·KH·KW, N·H·W]
//                       (transposed conv as a gather: oh = (ih + pad − kh·dil)/stride when exact)
//   MODE 2 weight-grad  A = dy [Co, N·OH·OW],  B = im2col(x) transposed [N·OH·OW, Ci·KH·KW]
//
// Each workgroup computes a TM×TN output tile; each thread an RM×RN register block of it with
// rows ty + i·(TM/RM) and columns tx + j·(TN/RN), so shared-memory reads are broadcasts or
// consecutive and global stores are coalesced along n. K is walked in TK slices staged in
// workgroup arrays; the next slice is fetched into registers while the current one is used.
// Split-K: workgroup z sums K range [z·kchunk, (z+1)·kchunk) and, when splits > 1, writes
// partials [splits, M, N] that `splitk_reduce` sums in fixed order (deterministic, no atomics).
// Sizes mirror `Params` in src/ops/conv.rs.

struct Params {
    m: u32,          // GEMM rows
    n: u32,          // GEMM columns
    k: u32,          // reduction length
    splits: u32,     // split-K factor (workgroups along the reduction)
    kchunk: u32,     // reduction length per split, a multiple of TK
    pix: u32,        // columns per image in the output layout (OH·OW, H·W, or N for MODE 2)
    has_bias: u32,   // 1: add bias[m] in the epilogue
    tiles_n: u32,    // ceil(n / TN)
    tiles_m: u32,    // ceil(m / TM)
    batch: u32,
    ci: u32,
    h: u32,
    w: u32,
    co: u32,
    kh: u32,
    kw: u32,
    oh: u32,
    ow: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src_a: array<f32>;   // MODE 0/1: weights; MODE 2: dy; reduce: partials
@group(0) @binding(2) var<storage, read> src_b: array<f32>;   // MODE 0/2: x; MODE 1: dy
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// @include codes
override MODE: u32 = 0u;   // GEMM_FORWARD, GEMM_INPUT_GRAD or GEMM_WEIGHT_GRAD
override TM: u32 = 64u;
override TN: u32 = 64u;
override TK: u32 = 16u;
override RM: u32 = 4u;            // 4 or 8
override RN: u32 = 4u;            // 4 or 8
override WG: u32 = 256u;          // = (TM/RM)·(TN/RN); TM·TK and TK·TN multiples of WG
// Which operand index varies fastest across consecutive threads when loading a slice: chosen
// per shape so global reads are coalesced (e.g. along ow for im2col, along k for linear).
override A_KFAST: bool = true;
override B_KFAST: bool = false;

const MAXL: u32 = 8u;             // ≤ TM·TK/WG and TK·TN/WG elements per thread per slice

// Padded rows (+1) keep the transposing stores of k-fast loads free of bank conflicts.
override SA: u32 = TM + 1u;
override SB: u32 = TN + 1u;
var<workgroup> as_: array<f32, TK * SA>;
var<workgroup> bs_: array<f32, TK * SB>;
// Reduction-index parts of the slice being fetched (see `k_entry`).
var<workgroup> ktab: array<vec4<i32>, TK>;

// Index arithmetic is split so that no division happens per loaded element: the part that
// depends on the thread's row/column is computed once per thread, the part that depends on the
// reduction index once per K slice per workgroup (table `ktab`), and a load only adds the two.

// Kernel-tap part of an im2col index: kidx = (ci, kh, kw) → (ci·H·W, kh·dil_h, kw·dil_w).
fn tap_part(kidx: u32) -> vec3<i32> {
    let khw = p.kh * p.kw;
    let c = kidx / khw;
    let r = kidx - c * khw;
    let ky = r / p.kw;
    let kx = r - ky * p.kw;
    return vec3<i32>(i32(c * p.h * p.w), i32(ky * p.dh), i32(kx * p.dw));
}

// Output-position part of an im2col index: sidx = (b, oh, ow) → (b·Ci·H·W, oh·s − pad, ow·s − pad).
fn pos_part(sidx: u32) -> vec3<i32> {
    let ohw = p.oh * p.ow;
    let b = sidx / ohw;
    let q = sidx - b * ohw;
    let oy = q / p.ow;
    let ox = q - oy * p.ow;
    return vec3<i32>(i32(b * p.ci * p.h * p.w), i32(oy * p.sh) - i32(p.ph), i32(ox * p.sw) - i32(p.pw));
}

// Reduction-index part of both operands for global k: xyz for B, w the A offset (−1: k out of range).
fn k_entry(k: u32, k_end: u32) -> vec4<i32> {
    if (k >= k_end) {
        return vec4<i32>(0, 0, 0, -1);
    }
    if (MODE == GEMM_FORWARD) {
        return vec4<i32>(tap_part(k), i32(k));
    } else if (MODE == GEMM_INPUT_GRAD) {
        // k = (co, kh, kw): dy channel offset, negated tap offsets (oh·s = ih + pad − kh·dil).
        let khw = p.kh * p.kw;
        let c = k / khw;
        let t = tap_part(k);
        return vec4<i32>(i32(c * p.oh * p.ow), -t.y, -t.z, i32(c * p.ci * khw + (k - c * khw)));
    }
    // k = (b, oh, ow)
    let ohw = p.oh * p.ow;
    let b = k / ohw;
    return vec4<i32>(pos_part(k), i32(b * p.co * ohw + (k - b * ohw)));
}

// Row part of A for GEMM row m (−1: out of range).
fn a_row(m: u32) -> i32 {
    if (m >= p.m) {
        return -1;
    }
    if (MODE == GEMM_FORWARD) {
        return i32(m * p.k);          // weights [co, (ci, kh, kw)]
    } else if (MODE == GEMM_INPUT_GRAD) {
        return i32(m * p.kh * p.kw);  // weights [co, ci = m, kh, kw]
    }
    return i32(m * p.oh * p.ow);      // dy [b, co = m, oh, ow]
}

// Column part of B for GEMM column n (x = −1: out of range).
fn b_col(n: u32) -> vec3<i32> {
    if (n >= p.n) {
        return vec3<i32>(-1, 0, 0);
    }
    if (MODE == GEMM_FORWARD) {
        return pos_part(n);
    } else if (MODE == GEMM_WEIGHT_GRAD) {
        return tap_part(n);
    }
    // n = (b, ih, iw)
    let hw = p.h * p.w;
    let b = n / hw;
    let q = n - b * hw;
    let iy = q / p.w;
    let ix = q - iy * p.w;
    return vec3<i32>(i32(b * p.co * p.oh * p.ow), i32(iy + p.ph), i32(ix + p.pw));
}

fn a_val(row: i32, kt: vec4<i32>) -> f32 {
    if (row < 0 || kt.w < 0) {
        return 0.0;
    }
    return src_a[u32(row + kt.w)];
}

fn b_val(col: vec3<i32>, kt: vec4<i32>) -> f32 {
    if (col.x < 0 || kt.w < 0) {
        return 0.0;
    }
    let ty = col.y + kt.y;
    let tx = col.z + kt.z;
    if (ty < 0 || tx < 0) {
        return 0.0;
    }
    if (MODE == GEMM_INPUT_GRAD) {
        // Input position reached by output (oy, ox) only when the stride divides exactly.
        var oy = u32(ty);
        var ox = u32(tx);
        if (p.sh != 1u) {
            oy = oy / p.sh;
            if (oy * p.sh != u32(ty)) {
                return 0.0;
            }
        }
        if (p.sw != 1u) {
            ox = ox / p.sw;
            if (ox * p.sw != u32(tx)) {
                return 0.0;
            }
        }
        if (oy >= p.oh || ox >= p.ow) {
            return 0.0;
        }
        return src_b[u32(col.x + kt.x) + oy * p.ow + ox];
    }
    if (u32(ty) >= p.h || u32(tx) >= p.w) {
        return 0.0;
    }
    return src_b[u32(col.x + kt.x) + u32(ty) * p.w + u32(tx)];
}

// Final layout [b, m, q] with n = (b, q): NCHW for MODE 0/1 (pix = spatial size), [M, N] for
// MODE 2 (pix = N).
fn store_final(m: u32, n: u32, v: f32) {
    let b = n / p.pix;
    let q = n - b * p.pix;
    var val = v;
    if (p.has_bias == 1u) {
        val = val + bias[m];
    }
    dst[(b * p.m + m) * p.pix + q] = val;
}

// Operand (row, k) of element e of this thread's share of an A slice, or (k, col) of B.
fn a_coord(lid: u32, e: u32) -> vec2<u32> {
    let idx = lid + e * WG;
    if (A_KFAST) {
        return vec2<u32>(idx / TK, idx % TK);
    }
    return vec2<u32>(idx % TM, idx / TM);
}

fn b_coord(lid: u32, e: u32) -> vec2<u32> {
    let idx = lid + e * WG;
    if (B_KFAST) {
        return vec2<u32>(idx % TK, idx / TK);
    }
    return vec2<u32>(idx / TN, idx % TN);
}

// Stores one register-block row (columns nx + j·tnt, j < RN) to the split-K partials or, with
// one split, to the final layout.
fn emit_row(z: u32, m: u32, nx: u32, tnt: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (m >= p.m) {
        return;
    }
    for (var j = 0u; j < RN; j++) {
        let n = nx + j * tnt;
        var v = hi[j & 3u];
        if (j < 4u) {
            v = lo[j];
        }
        if (n < p.n) {
            if (p.splits > 1u) {
                dst[(z * p.m + m) * p.n + n] = v;
            } else {
                store_final(m, n, v);
            }
        }
    }
}

@compute @workgroup_size(WG)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    // Tiles are numbered n fastest, then m, then split; the grid may be folded into y.
    let g = wid.y * nwg.x + wid.x;
    let tiles = p.tiles_n * p.tiles_m;
    if (g >= tiles * p.splits) {
        return;
    }
    let z = g / tiles;
    let t = g - z * tiles;
    let m0 = (t / p.tiles_n) * TM;
    let n0 = (t % p.tiles_n) * TN;
    let k_begin = z * p.kchunk;
    let k_end = min(k_begin + p.kchunk, p.k);

    let tnt = TN / RN;
    let tmt = TM / RM;
    let tx = lid % tnt;
    let ty = lid / tnt;
    let la = TM * TK / WG;
    let lb = TK * TN / WG;

    // Register block as named vec4s (row i, column half h): a private array indexed in loops
    // is not reliably kept in registers (lavapipe spills it: 7× slower).
    var c00 = vec4<f32>(0.0);
    var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0);
    var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0);
    var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0);
    var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0);
    var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0);
    var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0);
    var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0);
    var c71 = vec4<f32>(0.0);
    var ra: array<f32, MAXL>;
    var rb: array<f32, MAXL>;
    // Per-thread invariant parts of this thread's slice elements.
    var arow: array<i32, MAXL>;
    var bcol: array<vec3<i32>, MAXL>;
    for (var e = 0u; e < la; e++) {
        arow[e] = a_row(m0 + a_coord(lid, e).x);
    }
    for (var e = 0u; e < lb; e++) {
        bcol[e] = b_col(n0 + b_coord(lid, e).y);
    }

    // Prefetch the first slice.
    if (lid < TK) {
        ktab[lid] = k_entry(k_begin + lid, k_end);
    }
    workgroupBarrier();
    for (var e = 0u; e < la; e++) {
        ra[e] = a_val(arow[e], ktab[a_coord(lid, e).y]);
    }
    for (var e = 0u; e < lb; e++) {
        rb[e] = b_val(bcol[e], ktab[b_coord(lid, e).x]);
    }

    for (var k0 = k_begin; k0 < k_end; k0 += TK) {
        // Everyone is done reading the previous slice and the previous table.
        workgroupBarrier();
        for (var e = 0u; e < la; e++) {
            let c = a_coord(lid, e);
            as_[c.y * SA + c.x] = ra[e];
        }
        for (var e = 0u; e < lb; e++) {
            let c = b_coord(lid, e);
            bs_[c.x * SB + c.y] = rb[e];
        }
        let k1 = k0 + TK;
        if (lid < TK) {
            ktab[lid] = k_entry(k1 + lid, k_end);
        }
        workgroupBarrier();
        if (k1 < k_end) {
            for (var e = 0u; e < la; e++) {
                ra[e] = a_val(arow[e], ktab[a_coord(lid, e).y]);
            }
            for (var e = 0u; e < lb; e++) {
                rb[e] = b_val(bcol[e], ktab[b_coord(lid, e).x]);
            }
        }
        for (var kk = 0u; kk < TK; kk++) {
            let o = kk * SA;
            let q = kk * SB;
            let a0 = vec4<f32>(as_[o + ty], as_[o + ty + tmt], as_[o + ty + 2u * tmt], as_[o + ty + 3u * tmt]);
            let b0 = vec4<f32>(bs_[q + tx], bs_[q + tx + tnt], bs_[q + tx + 2u * tnt], bs_[q + tx + 3u * tnt]);
            var a1 = vec4<f32>(0.0);
            var b1 = vec4<f32>(0.0);
            if (RM > 4u) {
                a1 = vec4<f32>(as_[o + ty + 4u * tmt], as_[o + ty + 5u * tmt], as_[o + ty + 6u * tmt], as_[o + ty + 7u * tmt]);
            }
            if (RN > 4u) {
                b1 = vec4<f32>(bs_[q + tx + 4u * tnt], bs_[q + tx + 5u * tnt], bs_[q + tx + 6u * tnt], bs_[q + tx + 7u * tnt]);
            }
            c00 = fma(vec4<f32>(a0.x), b0, c00);
            c10 = fma(vec4<f32>(a0.y), b0, c10);
            c20 = fma(vec4<f32>(a0.z), b0, c20);
            c30 = fma(vec4<f32>(a0.w), b0, c30);
            if (RN > 4u) {
                c01 = fma(vec4<f32>(a0.x), b1, c01);
                c11 = fma(vec4<f32>(a0.y), b1, c11);
                c21 = fma(vec4<f32>(a0.z), b1, c21);
                c31 = fma(vec4<f32>(a0.w), b1, c31);
            }
            if (RM > 4u) {
                c40 = fma(vec4<f32>(a1.x), b0, c40);
                c50 = fma(vec4<f32>(a1.y), b0, c50);
                c60 = fma(vec4<f32>(a1.z), b0, c60);
                c70 = fma(vec4<f32>(a1.w), b0, c70);
                if (RN > 4u) {
                    c41 = fma(vec4<f32>(a1.x), b1, c41);
                    c51 = fma(vec4<f32>(a1.y), b1, c51);
                    c61 = fma(vec4<f32>(a1.z), b1, c61);
                    c71 = fma(vec4<f32>(a1.w), b1, c71);
                }
            }
        }
    }

    // Rows ty + i·(TM/RM), columns tx + j·(TN/RN).
    let nx = n0 + tx;
    emit_row(z, m0 + ty, nx, tnt, c00, c01);
    emit_row(z, m0 + ty + tmt, nx, tnt, c10, c11);
    emit_row(z, m0 + ty + 2u * tmt, nx, tnt, c20, c21);
    emit_row(z, m0 + ty + 3u * tmt, nx, tnt, c30, c31);
    if (RM > 4u) {
        emit_row(z, m0 + ty + 4u * tmt, nx, tnt, c40, c41);
        emit_row(z, m0 + ty + 5u * tmt, nx, tnt, c50, c51);
        emit_row(z, m0 + ty + 6u * tmt, nx, tnt, c60, c61);
        emit_row(z, m0 + ty + 7u * tmt, nx, tnt, c70, c71);
    }
}

// dst = epilogue(sum over splits of partials in src_a), summed in split order.
@compute @workgroup_size(256)
fn splitk_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    let mn = p.m * p.n;
    if (i >= mn) {
        return;
    }
    var s = 0.0;
    for (var z = 0u; z < p.splits; z++) {
        s = s + src_a[z * mn + i];
    }
    store_final(i / p.n, i % p.n, s);
}
