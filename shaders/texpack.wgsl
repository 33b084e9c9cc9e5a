// Relayout passes that feed the texture GEMM family (texgemm.wgsl): tensors in storage buffers
// are rewritten as rgba32float textures, 4 consecutive reduction elements per texel, because on
// CPU drivers (lavapipe) texel fetches cost several times less than storage-buffer loads.
// Every texture is addressed linearly: texel L sits at (L & (TW-1), L >> TWS), TW = 1 << TWS.
// Texels past the tensor (channel or row padding) are written as zeros, so the GEMM needs no
// bounds checks on its reduction. Sizes mirror `PackParams` in src/ops/conv_tex.rs.

struct Params {
    total: u32,   // texels to write
    c: u32,       // channels (img) / reduction channels (rows) / rows m (pix)
    c4: u32,      // ceil(c / 4) (img, rows); padded rows mp (pix)
    h: u32,       // img: source height; rows: taps; pix: view row length (pixels)
    w: u32,       // img: source width; pix: texels per view row (ceil(len / 4))
    hp: u32,      // img: padded height
    wp: u32,      // img: padded width
    oy: i32,      // img: source row of padded row 0 is −oy
    ox: i32,      // img: source column of padded column 0 is −ox
    sm: u32,      // rows: source stride of a GEMM row m; pix: pixels per image (OH·OW)
    sr: u32,      // rows: source stride of a reduction channel
    mp: u32,      // rows: GEMM rows padded to the register block
    m: u32,       // rows: real GEMM rows
    pad0: u32,
    pad1: u32,
    pad2: u32,
    // rows: source offset of tap t is taps[t/2].y (t even) or .w. At most 64 taps.
    taps: array<vec4<i32>, 32>,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;

override TWS: u32 = 12u;

fn texel(l: u32) -> vec2<i32> {
    return vec2<i32>(i32(l & ((1u << TWS) - 1u)), i32(l >> TWS));
}

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lid.x;
}

// Image operand: NCHW [b, c, h, w] → texels ((b·hp + y)·wp + x)·c4 + c/4, zero-padded by the
// offsets (oy, ox) and channel-padded to a multiple of 4.
@compute @workgroup_size(64)
fn pack_img(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let l = index(wid, nwg, lid);
    if (l >= p.total) {
        return;
    }
    let g = l % p.c4;
    let pix = l / p.c4;
    let x = pix % p.wp;
    let yy = pix / p.wp;
    let y = yy % p.hp;
    let b = yy / p.hp;
    let sy = i32(y) - p.oy;
    let sx = i32(x) - p.ox;
    var v = vec4<f32>(0.0);
    if (sy >= 0 && sx >= 0 && u32(sy) < p.h && u32(sx) < p.w) {
        let hw = p.h * p.w;
        let base = (b * p.c + 4u * g) * hw + u32(sy) * p.w + u32(sx);
        for (var i = 0u; i < 4u; i++) {
            if (4u * g + i < p.c) {
                v[i] = src[base + i * hw];
            }
        }
    }
    textureStore(dst, texel(l), v);
}

// Weight operand A[k][m] with k = (tap t, channel group): texel (k·mp + m) holds
// src[m·sm + (4·g + i)·sr + taps[t].y] for i < 4. Rows m ≥ m and channels ≥ c are zero.
@compute @workgroup_size(64)
fn pack_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let l = index(wid, nwg, lid);
    if (l >= p.total) {
        return;
    }
    let m = l % p.mp;
    let k = l / p.mp;
    let t = k / p.c4;
    let g = k - t * p.c4;
    var v = vec4<f32>(0.0);
    if (m < p.m) {
        let tv = p.taps[t / 2u];
        var off = tv.y;
        if ((t & 1u) == 1u) {
            off = tv.w;
        }
        let base = i32(m * p.sm + 4u * g * p.sr) + off;
        for (var i = 0u; i < 4u; i++) {
            if (4u * g + i < p.c) {
                v[i] = src[u32(base) + i * p.sr];
            }
        }
    }
    textureStore(dst, texel(l), v);
}

// Pixel operand of the weight gradient: dy NCHW [b, m, OH, OW] viewed as rows of `h` pixels
// (flat pixel P = row·h + x, P = b·sm + q) → texel (k·mp + m), k = (row, x/4), holding 4
// consecutive pixels of channel m; pixels past a row's end are zero.
@compute @workgroup_size(64)
fn pack_pix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let l = index(wid, nwg, lid);
    if (l >= p.total) {
        return;
    }
    let m = l % p.c4;
    let k = l / p.c4;
    let row = k / p.w;
    let x4 = k - row * p.w;
    var v = vec4<f32>(0.0);
    if (m < p.c) {
        for (var i = 0u; i < 4u; i++) {
            let x = 4u * x4 + i;
            if (x < p.h) {
                let pix = row * p.h + x;
                let b = pix / p.sm;
                let q = pix - b * p.sm;
                v[i] = src[(b * p.c + m) * p.sm + q];
            }
        }
    }
    textureStore(dst, texel(l), v);
}
