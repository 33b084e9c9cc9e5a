// The texture GEMM family of the convolution core: C[M, cols] = A[M, K]·B[K, cols] with both
// operands read as rgba32float textures written by texpack.wgsl (4 consecutive reduction
// elements per texel), no workgroup memory and no barriers. Each invocation owns an RM×4 block
// of C in RM vec4 registers (RM ∈ {8, 16, 32}) and walks the reduction one texel (4 elements)
// at a time: RM texel fetches of A plus 4 of B feed 16·RM FMAs. Chosen on CPU drivers
// (lavapipe), where texel fetches are several times cheaper than storage-buffer or workgroup
// loads and barriers stall SIMD threads; the tiled kernel of conv.wgsl stays the choice for
// discrete GPUs (see src/ops/conv_tex.rs for the choice).
//
//   MODE 0 (forward, input gradient per stride phase): A[k = (tap, cg)][m] = weights, one
//          column per output pixel q of a grid qh×qw; B = image texture (NHWC4, padded),
//          pixel q's operand for tap t at texel base(q) + tap(t).x + cg. The lane's 4
//          columns are 4 consecutive pixels; their texels are transposed into v0..v3.
//   MODE 1 (weight gradient): A[k = (view row, x/4)][m] = dy, 4 pixels per texel; a lane's
//          column is (tap t, channel group cg) and its 4 values are the 4 channels of the image
//          texel at pixel base + tap(t).x + cg: v_j is the texel of pixel j, no transpose.
// Split-K: lane z sums reduction texels [z·kchunk, (z+1)·kchunk) and writes partials
// [splits, M, nn]; `splitk` sums them in split order (deterministic, no atomics).
// Sizes mirror `GemmParams` in src/ops/conv_tex.rs. The unrolled register-block code (c0..c31,
// zero_acc, acc, emit_all) comes from scripts/gen_texgemm_blocks.py (`--check` verifies it).

struct Params {
    m: u32,        // GEMM rows (output channels)
    mp: u32,       // rows padded to RM: row stride of the A texture
    ncol: u32,     // lane columns (4 output columns each)
    nn: u32,       // output columns: pixels (MODE 0) or taps·4·cg (MODE 1)
    splits: u32,
    kt: u32,       // reduction length in texels
    kchunk: u32,   // texels per split
    c4: u32,       // channel groups of the image texture
    hp: u32,       // padded image height
    wp: u32,       // padded image width
    sy: u32,       // image rows per output row (stride)
    sx: u32,       // image columns per output column
    oy0: u32,      // image position of output (0, 0) (MODE 0)
    ox0: u32,
    qh: u32,       // output grid (MODE 0)
    qw: u32,
    out_c: u32,    // destination tensor [b, out_c, out_h, out_w] (MODE 0)
    out_h: u32,
    out_w: u32,
    osy: u32,      // destination row = qy·osy + ory (MODE 0)
    osx: u32,
    ory: u32,
    orx: u32,
    has_bias: u32,
    vrows: u32,    // MODE 1: view rows per image (OH, or 1 for flat views)
    w4: u32,       // MODE 1: texels per view row
    ci: u32,       // MODE 1: image channels (destination [m, ci, khw])
    khw: u32,      // MODE 1: taps of the destination
    // Tap t is taps[t/2].xy (t even) or .zw: x = texel offset of the tap in the image texture,
    // y = tap index in the destination (MODE 1). At most 64 taps.
    taps: array<vec4<i32>, 32>,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var ta: texture_2d<f32>;
@group(0) @binding(4) var tb: texture_2d<f32>;
@group(0) @binding(5) var<storage, read> part: array<f32>;

override MODE: u32 = 0u;
override RM: u32 = 32u;
override TWS: u32 = 12u;

fn texel(l: u32) -> vec2<i32> {
    return vec2<i32>(i32(l & ((1u << TWS) - 1u)), i32(l >> TWS));
}

fn tap(t: u32) -> vec2<i32> {
    let v = p.taps[t / 2u];
    if ((t & 1u) == 0u) {
        return v.xy;
    }
    return v.zw;
}

fn ld(l: u32) -> vec4<f32> {
    return textureLoad(tb, texel(l), 0);
}

var<private> c0: vec4<f32>;
var<private> c1: vec4<f32>;
var<private> c2: vec4<f32>;
var<private> c3: vec4<f32>;
var<private> c4: vec4<f32>;
var<private> c5: vec4<f32>;
var<private> c6: vec4<f32>;
var<private> c7: vec4<f32>;
var<private> c8: vec4<f32>;
var<private> c9: vec4<f32>;
var<private> c10: vec4<f32>;
var<private> c11: vec4<f32>;
var<private> c12: vec4<f32>;
var<private> c13: vec4<f32>;
var<private> c14: vec4<f32>;
var<private> c15: vec4<f32>;
var<private> c16: vec4<f32>;
var<private> c17: vec4<f32>;
var<private> c18: vec4<f32>;
var<private> c19: vec4<f32>;
var<private> c20: vec4<f32>;
var<private> c21: vec4<f32>;
var<private> c22: vec4<f32>;
var<private> c23: vec4<f32>;
var<private> c24: vec4<f32>;
var<private> c25: vec4<f32>;
var<private> c26: vec4<f32>;
var<private> c27: vec4<f32>;
var<private> c28: vec4<f32>;
var<private> c29: vec4<f32>;
var<private> c30: vec4<f32>;
var<private> c31: vec4<f32>;

fn zero_acc() {
    c0 = vec4<f32>(0.0);
    c1 = vec4<f32>(0.0);
    c2 = vec4<f32>(0.0);
    c3 = vec4<f32>(0.0);
    c4 = vec4<f32>(0.0);
    c5 = vec4<f32>(0.0);
    c6 = vec4<f32>(0.0);
    c7 = vec4<f32>(0.0);
    c8 = vec4<f32>(0.0);
    c9 = vec4<f32>(0.0);
    c10 = vec4<f32>(0.0);
    c11 = vec4<f32>(0.0);
    c12 = vec4<f32>(0.0);
    c13 = vec4<f32>(0.0);
    c14 = vec4<f32>(0.0);
    c15 = vec4<f32>(0.0);
    c16 = vec4<f32>(0.0);
    c17 = vec4<f32>(0.0);
    c18 = vec4<f32>(0.0);
    c19 = vec4<f32>(0.0);
    c20 = vec4<f32>(0.0);
    c21 = vec4<f32>(0.0);
    c22 = vec4<f32>(0.0);
    c23 = vec4<f32>(0.0);
    c24 = vec4<f32>(0.0);
    c25 = vec4<f32>(0.0);
    c26 = vec4<f32>(0.0);
    c27 = vec4<f32>(0.0);
    c28 = vec4<f32>(0.0);
    c29 = vec4<f32>(0.0);
    c30 = vec4<f32>(0.0);
    c31 = vec4<f32>(0.0);
}

// @region acc: the subgroup variant (shaders/variants/texgemm_sg.wgsl) replaces it.
// Loads the RM rows of A at texel (ax, ay) onwards and accumulates c_i += Σ_kk a_i[kk]·v_kk.
fn acc(ax: i32, ay: i32, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, sl: u32) {
    let a0 = textureLoad(ta, vec2<i32>(ax + 0, ay), 0);
    c0 = fma(vec4<f32>(a0.w), v3, fma(vec4<f32>(a0.z), v2, fma(vec4<f32>(a0.y), v1, fma(vec4<f32>(a0.x), v0, c0))));
    let a1 = textureLoad(ta, vec2<i32>(ax + 1, ay), 0);
    c1 = fma(vec4<f32>(a1.w), v3, fma(vec4<f32>(a1.z), v2, fma(vec4<f32>(a1.y), v1, fma(vec4<f32>(a1.x), v0, c1))));
    let a2 = textureLoad(ta, vec2<i32>(ax + 2, ay), 0);
    c2 = fma(vec4<f32>(a2.w), v3, fma(vec4<f32>(a2.z), v2, fma(vec4<f32>(a2.y), v1, fma(vec4<f32>(a2.x), v0, c2))));
    let a3 = textureLoad(ta, vec2<i32>(ax + 3, ay), 0);
    c3 = fma(vec4<f32>(a3.w), v3, fma(vec4<f32>(a3.z), v2, fma(vec4<f32>(a3.y), v1, fma(vec4<f32>(a3.x), v0, c3))));
    let a4 = textureLoad(ta, vec2<i32>(ax + 4, ay), 0);
    c4 = fma(vec4<f32>(a4.w), v3, fma(vec4<f32>(a4.z), v2, fma(vec4<f32>(a4.y), v1, fma(vec4<f32>(a4.x), v0, c4))));
    let a5 = textureLoad(ta, vec2<i32>(ax + 5, ay), 0);
    c5 = fma(vec4<f32>(a5.w), v3, fma(vec4<f32>(a5.z), v2, fma(vec4<f32>(a5.y), v1, fma(vec4<f32>(a5.x), v0, c5))));
    let a6 = textureLoad(ta, vec2<i32>(ax + 6, ay), 0);
    c6 = fma(vec4<f32>(a6.w), v3, fma(vec4<f32>(a6.z), v2, fma(vec4<f32>(a6.y), v1, fma(vec4<f32>(a6.x), v0, c6))));
    let a7 = textureLoad(ta, vec2<i32>(ax + 7, ay), 0);
    c7 = fma(vec4<f32>(a7.w), v3, fma(vec4<f32>(a7.z), v2, fma(vec4<f32>(a7.y), v1, fma(vec4<f32>(a7.x), v0, c7))));
    if (RM > 8u) {
        let a8 = textureLoad(ta, vec2<i32>(ax + 8, ay), 0);
        c8 = fma(vec4<f32>(a8.w), v3, fma(vec4<f32>(a8.z), v2, fma(vec4<f32>(a8.y), v1, fma(vec4<f32>(a8.x), v0, c8))));
        let a9 = textureLoad(ta, vec2<i32>(ax + 9, ay), 0);
        c9 = fma(vec4<f32>(a9.w), v3, fma(vec4<f32>(a9.z), v2, fma(vec4<f32>(a9.y), v1, fma(vec4<f32>(a9.x), v0, c9))));
        let a10 = textureLoad(ta, vec2<i32>(ax + 10, ay), 0);
        c10 = fma(vec4<f32>(a10.w), v3, fma(vec4<f32>(a10.z), v2, fma(vec4<f32>(a10.y), v1, fma(vec4<f32>(a10.x), v0, c10))));
        let a11 = textureLoad(ta, vec2<i32>(ax + 11, ay), 0);
        c11 = fma(vec4<f32>(a11.w), v3, fma(vec4<f32>(a11.z), v2, fma(vec4<f32>(a11.y), v1, fma(vec4<f32>(a11.x), v0, c11))));
        let a12 = textureLoad(ta, vec2<i32>(ax + 12, ay), 0);
        c12 = fma(vec4<f32>(a12.w), v3, fma(vec4<f32>(a12.z), v2, fma(vec4<f32>(a12.y), v1, fma(vec4<f32>(a12.x), v0, c12))));
        let a13 = textureLoad(ta, vec2<i32>(ax + 13, ay), 0);
        c13 = fma(vec4<f32>(a13.w), v3, fma(vec4<f32>(a13.z), v2, fma(vec4<f32>(a13.y), v1, fma(vec4<f32>(a13.x), v0, c13))));
        let a14 = textureLoad(ta, vec2<i32>(ax + 14, ay), 0);
        c14 = fma(vec4<f32>(a14.w), v3, fma(vec4<f32>(a14.z), v2, fma(vec4<f32>(a14.y), v1, fma(vec4<f32>(a14.x), v0, c14))));
        let a15 = textureLoad(ta, vec2<i32>(ax + 15, ay), 0);
        c15 = fma(vec4<f32>(a15.w), v3, fma(vec4<f32>(a15.z), v2, fma(vec4<f32>(a15.y), v1, fma(vec4<f32>(a15.x), v0, c15))));
    }
    if (RM > 16u) {
        let a16 = textureLoad(ta, vec2<i32>(ax + 16, ay), 0);
        c16 = fma(vec4<f32>(a16.w), v3, fma(vec4<f32>(a16.z), v2, fma(vec4<f32>(a16.y), v1, fma(vec4<f32>(a16.x), v0, c16))));
        let a17 = textureLoad(ta, vec2<i32>(ax + 17, ay), 0);
        c17 = fma(vec4<f32>(a17.w), v3, fma(vec4<f32>(a17.z), v2, fma(vec4<f32>(a17.y), v1, fma(vec4<f32>(a17.x), v0, c17))));
        let a18 = textureLoad(ta, vec2<i32>(ax + 18, ay), 0);
        c18 = fma(vec4<f32>(a18.w), v3, fma(vec4<f32>(a18.z), v2, fma(vec4<f32>(a18.y), v1, fma(vec4<f32>(a18.x), v0, c18))));
        let a19 = textureLoad(ta, vec2<i32>(ax + 19, ay), 0);
        c19 = fma(vec4<f32>(a19.w), v3, fma(vec4<f32>(a19.z), v2, fma(vec4<f32>(a19.y), v1, fma(vec4<f32>(a19.x), v0, c19))));
        let a20 = textureLoad(ta, vec2<i32>(ax + 20, ay), 0);
        c20 = fma(vec4<f32>(a20.w), v3, fma(vec4<f32>(a20.z), v2, fma(vec4<f32>(a20.y), v1, fma(vec4<f32>(a20.x), v0, c20))));
        let a21 = textureLoad(ta, vec2<i32>(ax + 21, ay), 0);
        c21 = fma(vec4<f32>(a21.w), v3, fma(vec4<f32>(a21.z), v2, fma(vec4<f32>(a21.y), v1, fma(vec4<f32>(a21.x), v0, c21))));
        let a22 = textureLoad(ta, vec2<i32>(ax + 22, ay), 0);
        c22 = fma(vec4<f32>(a22.w), v3, fma(vec4<f32>(a22.z), v2, fma(vec4<f32>(a22.y), v1, fma(vec4<f32>(a22.x), v0, c22))));
        let a23 = textureLoad(ta, vec2<i32>(ax + 23, ay), 0);
        c23 = fma(vec4<f32>(a23.w), v3, fma(vec4<f32>(a23.z), v2, fma(vec4<f32>(a23.y), v1, fma(vec4<f32>(a23.x), v0, c23))));
        let a24 = textureLoad(ta, vec2<i32>(ax + 24, ay), 0);
        c24 = fma(vec4<f32>(a24.w), v3, fma(vec4<f32>(a24.z), v2, fma(vec4<f32>(a24.y), v1, fma(vec4<f32>(a24.x), v0, c24))));
        let a25 = textureLoad(ta, vec2<i32>(ax + 25, ay), 0);
        c25 = fma(vec4<f32>(a25.w), v3, fma(vec4<f32>(a25.z), v2, fma(vec4<f32>(a25.y), v1, fma(vec4<f32>(a25.x), v0, c25))));
        let a26 = textureLoad(ta, vec2<i32>(ax + 26, ay), 0);
        c26 = fma(vec4<f32>(a26.w), v3, fma(vec4<f32>(a26.z), v2, fma(vec4<f32>(a26.y), v1, fma(vec4<f32>(a26.x), v0, c26))));
        let a27 = textureLoad(ta, vec2<i32>(ax + 27, ay), 0);
        c27 = fma(vec4<f32>(a27.w), v3, fma(vec4<f32>(a27.z), v2, fma(vec4<f32>(a27.y), v1, fma(vec4<f32>(a27.x), v0, c27))));
        let a28 = textureLoad(ta, vec2<i32>(ax + 28, ay), 0);
        c28 = fma(vec4<f32>(a28.w), v3, fma(vec4<f32>(a28.z), v2, fma(vec4<f32>(a28.y), v1, fma(vec4<f32>(a28.x), v0, c28))));
        let a29 = textureLoad(ta, vec2<i32>(ax + 29, ay), 0);
        c29 = fma(vec4<f32>(a29.w), v3, fma(vec4<f32>(a29.z), v2, fma(vec4<f32>(a29.y), v1, fma(vec4<f32>(a29.x), v0, c29))));
        let a30 = textureLoad(ta, vec2<i32>(ax + 30, ay), 0);
        c30 = fma(vec4<f32>(a30.w), v3, fma(vec4<f32>(a30.z), v2, fma(vec4<f32>(a30.y), v1, fma(vec4<f32>(a30.x), v0, c30))));
        let a31 = textureLoad(ta, vec2<i32>(ax + 31, ay), 0);
        c31 = fma(vec4<f32>(a31.w), v3, fma(vec4<f32>(a31.z), v2, fma(vec4<f32>(a31.y), v1, fma(vec4<f32>(a31.x), v0, c31))));
    }
}
// @end-region

// Stores every row of the register block through `put` (rows past M are skipped there).
fn emit_all(z: u32, m0: u32, col: u32) {
    put(z, m0 + 0u, col, c0);
    put(z, m0 + 1u, col, c1);
    put(z, m0 + 2u, col, c2);
    put(z, m0 + 3u, col, c3);
    put(z, m0 + 4u, col, c4);
    put(z, m0 + 5u, col, c5);
    put(z, m0 + 6u, col, c6);
    put(z, m0 + 7u, col, c7);
    if (RM > 8u) {
        put(z, m0 + 8u, col, c8);
        put(z, m0 + 9u, col, c9);
        put(z, m0 + 10u, col, c10);
        put(z, m0 + 11u, col, c11);
        put(z, m0 + 12u, col, c12);
        put(z, m0 + 13u, col, c13);
        put(z, m0 + 14u, col, c14);
        put(z, m0 + 15u, col, c15);
    }
    if (RM > 16u) {
        put(z, m0 + 16u, col, c16);
        put(z, m0 + 17u, col, c17);
        put(z, m0 + 18u, col, c18);
        put(z, m0 + 19u, col, c19);
        put(z, m0 + 20u, col, c20);
        put(z, m0 + 21u, col, c21);
        put(z, m0 + 22u, col, c22);
        put(z, m0 + 23u, col, c23);
        put(z, m0 + 24u, col, c24);
        put(z, m0 + 25u, col, c25);
        put(z, m0 + 26u, col, c26);
        put(z, m0 + 27u, col, c27);
        put(z, m0 + 28u, col, c28);
        put(z, m0 + 29u, col, c29);
        put(z, m0 + 30u, col, c30);
        put(z, m0 + 31u, col, c31);
    }
}

// MODE 0 destination of (row m, output pixel pix of the qh×qw grid).
fn store0(m: u32, pix: u32, v: f32) {
    let qhw = p.qh * p.qw;
    let b = pix / qhw;
    let q = pix - b * qhw;
    let qy = q / p.qw;
    let qx = q - qy * p.qw;
    var val = v;
    if (p.has_bias == 1u) {
        val = val + bias[m];
    }
    dst[((b * p.out_c + m) * p.out_h + qy * p.osy + p.ory) * p.out_w + qx * p.osx + p.orx] = val;
}

// MODE 1 destination of (row m, output column n = 4·(t·c4 + cg) + j) = dw[m, 4·cg + j, tap].
fn store1(m: u32, n: u32, v: f32) {
    let col = n / 4u;
    let t = col / p.c4;
    let ch = 4u * (col - t * p.c4) + (n & 3u);
    if (ch < p.ci) {
        dst[(m * p.ci + ch) * p.khw + u32(tap(t).y)] = v;
    }
}

fn put(z: u32, m: u32, col: u32, v: vec4<f32>) {
    if (m >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let n = col * 4u + j;
        if (n < p.nn) {
            if (p.splits > 1u) {
                dst[(z * p.m + m) * p.nn + n] = v[j];
            } else if (MODE == 0u) {
                store0(m, n, v[j]);
            } else {
                store1(m, n, v[j]);
            }
        }
    }
}

fn lane(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lid.x;
}

@compute @workgroup_size(64)
// @region entry
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // Lane within the subgroup (used by the subgroup variant only).
    let sl = 0u;
// @end-region
    let g = lane(wid, nwg, lid);
    let blocks = p.mp / RM;
    let per = p.ncol * blocks;
    if (g >= per * p.splits) {
        return;
    }
    // Columns vary fastest across lanes: neighbours share A's texels and read adjacent B.
    let z = g / per;
    let r = g - z * per;
    let mb = r / p.ncol;
    let col = r - mb * p.ncol;
    let m0 = mb * RM;
    let k_begin = z * p.kchunk;
    let k_end = min(k_begin + p.kchunk, p.kt);
    zero_acc();
    if (MODE == 0u) {
        // Image texel of each of the lane's 4 pixels at tap offset 0 (pixels past the end read
        // texel 0; their results are never stored).
        var base = vec4<u32>(0u);
        let qhw = p.qh * p.qw;
        for (var j = 0u; j < 4u; j++) {
            let pix = col * 4u + j;
            if (pix < p.nn) {
                let b = pix / qhw;
                let q = pix - b * qhw;
                let qy = q / p.qw;
                let qx = q - qy * p.qw;
                base[j] = ((b * p.hp + qy * p.sy + p.oy0) * p.wp + qx * p.sx + p.ox0) * p.c4;
            }
        }
        var k = k_begin;
        var t = k / p.c4;
        var cg = k - t * p.c4;
        while (k < k_end) {
            let span = min(p.c4 - cg, k_end - k);
            let bb = vec4<u32>(vec4<i32>(base) + vec4<i32>(tap(t).x)) + vec4<u32>(cg);
            var al = k * p.mp + m0;
            for (var s = 0u; s < span; s++) {
                let b0 = ld(bb.x + s);
                let b1 = ld(bb.y + s);
                let b2 = ld(bb.z + s);
                let b3 = ld(bb.w + s);
                let at = texel(al);
                acc(at.x, at.y,
                    vec4<f32>(b0.x, b1.x, b2.x, b3.x), vec4<f32>(b0.y, b1.y, b2.y, b3.y),
                    vec4<f32>(b0.z, b1.z, b2.z, b3.z), vec4<f32>(b0.w, b1.w, b2.w, b3.w), sl);
                al += p.mp;
            }
            k += span;
            t += 1u;
            cg = 0u;
        }
    } else {
        let t = col / p.c4;
        let off = u32(i32((col - t * p.c4)) + tap(t).x);
        let step = p.sx * p.c4;
        var k = k_begin;
        while (k < k_end) {
            let row = k / p.w4;
            let x4 = k - row * p.w4;
            let span = min(p.w4 - x4, k_end - k);
            let b = row / p.vrows;
            let oy = row - b * p.vrows;
            var bl = ((b * p.hp + oy * p.sy) * p.wp) * p.c4 + 4u * x4 * step + off;
            var al = k * p.mp + m0;
            for (var s = 0u; s < span; s++) {
                let at = texel(al);
                acc(at.x, at.y, ld(bl), ld(bl + step), ld(bl + 2u * step), ld(bl + 3u * step), sl);
                bl += 4u * step;
                al += p.mp;
            }
            k += span;
        }
    }
    emit_all(z, m0, col);
}

// dst = final layout of the sum over splits of `part`, summed in split order.
@compute @workgroup_size(64)
fn splitk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = lane(wid, nwg, lid);
    let mn = p.m * p.nn;
    if (i >= mn) {
        return;
    }
    var s = 0.0;
    for (var z = 0u; z < p.splits; z++) {
        s = s + part[z * mn + i];
    }
    let m = i / p.nn;
    let n = i - m * p.nn;
    if (MODE == 0u) {
        store0(m, n, s);
    } else {
        store1(m, n, s);
    }
}
