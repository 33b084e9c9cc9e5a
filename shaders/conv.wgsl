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

override MODE: u32 = 0u;
override TM: u32 = 64u;
override TN: u32 = 64u;
override TK: u32 = 16u;
override RM: u32 = 4u;            // ≤ MAXR
override RN: u32 = 4u;            // ≤ MAXR
override WG: u32 = 256u;          // = (TM/RM)·(TN/RN); TM·TK and TK·TN multiples of WG
// Which operand index varies fastest across consecutive threads when loading a slice: chosen
// per shape so global reads are coalesced (e.g. along ow for im2col, along k for linear).
override A_KFAST: bool = true;
override B_KFAST: bool = false;

const MAXR: u32 = 8u;
const MAXL: u32 = 8u;             // ≤ TM·TK/WG and TK·TN/WG elements per thread per slice

// Padded rows (+1) keep the transposing stores of k-fast loads free of bank conflicts.
override SA: u32 = TM + 1u;
override SB: u32 = TN + 1u;
var<workgroup> as_: array<f32, TK * SA>;
var<workgroup> bs_: array<f32, TK * SB>;

// x[b, ci, oh·s − pad + kh·dil, ow·s − pad + kw·dil] or 0 in the padding;
// kidx = (ci, kh, kw) flattened, sidx = (b, oh, ow) flattened.
fn im2col(kidx: u32, sidx: u32) -> f32 {
    let khw = p.kh * p.kw;
    let ohw = p.oh * p.ow;
    let b = sidx / ohw;
    let q = sidx - b * ohw;
    let oy = q / p.ow;
    let ox = q - oy * p.ow;
    let c = kidx / khw;
    let r = kidx - c * khw;
    let ky = r / p.kw;
    let kx = r - ky * p.kw;
    let iy = i32(oy * p.sh + ky * p.dh) - i32(p.ph);
    let ix = i32(ox * p.sw + kx * p.dw) - i32(p.pw);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return 0.0;
    }
    return src_b[((b * p.ci + c) * p.h + u32(iy)) * p.w + u32(ix)];
}

fn load_a(m: u32, k: u32) -> f32 {
    if (m >= p.m || k >= p.k) {
        return 0.0;
    }
    if (MODE == 0u) {
        return src_a[m * p.k + k];
    } else if (MODE == 1u) {
        // weights [co, ci=m, khw] with k = (co, khw)
        let khw = p.kh * p.kw;
        let c = k / khw;
        return src_a[(c * p.ci + m) * khw + (k - c * khw)];
    }
    // dy [b, co=m, ohw] with k = (b, ohw)
    let ohw = p.oh * p.ow;
    let b = k / ohw;
    return src_a[(b * p.co + m) * ohw + (k - b * ohw)];
}

fn load_b(k: u32, n: u32) -> f32 {
    if (k >= p.k || n >= p.n) {
        return 0.0;
    }
    if (MODE == 0u) {
        return im2col(k, n);
    } else if (MODE == 2u) {
        return im2col(n, k);
    }
    // MODE 1: dy[b, co, oh, ow] with k = (co, kh, kw), n = (b, ih, iw), ih = oh·s − pad + kh·dil.
    let hw = p.h * p.w;
    let b = n / hw;
    let q = n - b * hw;
    let iy = q / p.w;
    let ix = q - iy * p.w;
    let khw = p.kh * p.kw;
    let c = k / khw;
    let r = k - c * khw;
    let ky = r / p.kw;
    let kx = r - ky * p.kw;
    let ty = i32(iy + p.ph) - i32(ky * p.dh);
    let tx = i32(ix + p.pw) - i32(kx * p.dw);
    if (ty < 0 || tx < 0) {
        return 0.0;
    }
    let oy = u32(ty) / p.sh;
    let ox = u32(tx) / p.sw;
    if (oy * p.sh != u32(ty) || ox * p.sw != u32(tx) || oy >= p.oh || ox >= p.ow) {
        return 0.0;
    }
    return src_b[((b * p.co + c) * p.oh + oy) * p.ow + ox];
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

    var acc: array<f32, 64>;   // MAXR·MAXR
    for (var i = 0u; i < MAXR * MAXR; i++) {
        acc[i] = 0.0;
    }
    var ra: array<f32, MAXL>;
    var rb: array<f32, MAXL>;

    // Prefetch the first slice.
    for (var e = 0u; e < la; e++) {
        let c = a_coord(lid, e);
        ra[e] = select(0.0, load_a(m0 + c.x, k_begin + c.y), k_begin + c.y < k_end);
    }
    for (var e = 0u; e < lb; e++) {
        let c = b_coord(lid, e);
        rb[e] = select(0.0, load_b(k_begin + c.x, n0 + c.y), k_begin + c.x < k_end);
    }

    for (var k0 = k_begin; k0 < k_end; k0 += TK) {
        workgroupBarrier();
        for (var e = 0u; e < la; e++) {
            let c = a_coord(lid, e);
            as_[c.y * SA + c.x] = ra[e];
        }
        for (var e = 0u; e < lb; e++) {
            let c = b_coord(lid, e);
            bs_[c.x * SB + c.y] = rb[e];
        }
        workgroupBarrier();
        let k1 = k0 + TK;
        if (k1 < k_end) {
            for (var e = 0u; e < la; e++) {
                let c = a_coord(lid, e);
                ra[e] = select(0.0, load_a(m0 + c.x, k1 + c.y), k1 + c.y < k_end);
            }
            for (var e = 0u; e < lb; e++) {
                let c = b_coord(lid, e);
                rb[e] = select(0.0, load_b(k1 + c.x, n0 + c.y), k1 + c.x < k_end);
            }
        }
        for (var kk = 0u; kk < TK; kk++) {
            var av: array<f32, MAXR>;
            var bv: array<f32, MAXR>;
            for (var i = 0u; i < RM; i++) {
                av[i] = as_[kk * SA + ty + i * tmt];
            }
            for (var j = 0u; j < RN; j++) {
                bv[j] = bs_[kk * SB + tx + j * tnt];
            }
            for (var i = 0u; i < RM; i++) {
                for (var j = 0u; j < RN; j++) {
                    acc[i * MAXR + j] = fma(av[i], bv[j], acc[i * MAXR + j]);
                }
            }
        }
    }

    for (var i = 0u; i < RM; i++) {
        let m = m0 + ty + i * tmt;
        if (m >= p.m) {
            continue;
        }
        for (var j = 0u; j < RN; j++) {
            let n = n0 + tx + j * tnt;
            if (n >= p.n) {
                continue;
            }
            if (p.splits > 1u) {
                dst[(z * p.m + m) * p.n + n] = acc[i * MAXR + j];
            } else {
                store_final(m, n, acc[i * MAXR + j]);
            }
        }
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
