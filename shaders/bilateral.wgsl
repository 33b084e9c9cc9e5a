// Gaussian / bilateral filtering of a multi-channel map q [N, C, H, W] guided by an image
// img [N, 3, H, W]:  out_i = Σ_j k(i, j) q_j,
//   k = exp(−|p_i − p_j|² · inv2sxy − |I_i − I_j|² · inv2srgb)   (colour term only if RGB flag).
//
// The grid of pixels is cut into stride×stride cells. Cells within `near` cells of the one
// holding pixel i (the near field) are summed exactly; every other cell within `radius` cells is
// represented by its centre pixel, weighted by its pixel count (midpoint quadrature, unbiased
// for odd strides). stride 1 with radius ≥ max(H, W) is the exact brute-force filter. Pure
// gathers: deterministic, no atomics.
//
// One invocation owns one (n, channel group of CG, pixel); the kernel value is recomputed per
// channel group, which keeps the per-invocation accumulator array small.

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    groups: u32,     // ceil(c / CG)
    stride: u32,     // cell side in pixels (1 = every pixel)
    radius: u32,     // window half-size in cells
    flags: u32,      // bit 0: use the colour term, bit 1: include the self term j = i
    inv2sxy: f32,    // 1 / (2 σ_xy²)
    inv2srgb: f32,   // 1 / (2 σ_rgb²)
    near: u32,       // cells within this Chebyshev distance of i's cell are summed exactly
    _pad1: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> img: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
const CG: u32 = 8u;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

fn colour(base: u32, hw: u32, j: u32) -> vec3<f32> {
    return vec3<f32>(img[base + j], img[base + hw + j], img[base + 2u * hw + j]);
}

@compute @workgroup_size(256)
fn filter_map(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = linear_id(wid, nwg, lid);
    let hw = p.h * p.w;
    if (t >= p.n * p.groups * hw) { return; }
    let pix = t % hw;
    let ng = t / hw;
    let g = ng % p.groups;
    let n = ng / p.groups;
    let xi = pix % p.w;
    let yi = pix / p.w;
    let c0 = g * CG;
    let cn = min(CG, p.c - c0);
    let qbase = (n * p.c + c0) * hw;
    let ibase = n * 3u * hw;
    let rgb = (p.flags & 1u) != 0u;
    var fi = vec3<f32>(0.0);
    if (rgb) { fi = colour(ibase, hw, pix); }

    var acc: array<f32, 8>;
    for (var k = 0u; k < CG; k = k + 1u) { acc[k] = 0.0; }

    let f = p.stride;
    let ncx = (p.w + f - 1u) / f;
    let ncy = (p.h + f - 1u) / f;
    let ocx = xi / f;
    let ocy = yi / f;
    let cx0 = select(0u, ocx - p.radius, ocx >= p.radius);
    let cy0 = select(0u, ocy - p.radius, ocy >= p.radius);
    let cx1 = min(ncx - 1u, ocx + p.radius);
    let cy1 = min(ncy - 1u, ocy + p.radius);

    for (var cy = cy0; cy <= cy1; cy = cy + 1u) {
        let y0 = cy * f;
        let ch = min(f, p.h - y0);
        let near_y = cy + p.near >= ocy && cy <= ocy + p.near;
        for (var cx = cx0; cx <= cx1; cx = cx + 1u) {
            let x0 = cx * f;
            let cw = min(f, p.w - x0);
            // Near cells: every pixel, weight 1. Far cells: the centre pixel, weight = pixel count.
            var ya = y0 + (ch - 1u) / 2u;
            var yb = ya;
            var xa = x0 + (cw - 1u) / 2u;
            var xb = xa;
            var wt = f32(cw * ch);
            if (near_y && cx + p.near >= ocx && cx <= ocx + p.near) {
                ya = y0; yb = y0 + ch - 1u; xa = x0; xb = x0 + cw - 1u; wt = 1.0;
            }
            for (var yj = ya; yj <= yb; yj = yj + 1u) {
                let dy = f32(yj) - f32(yi);
                for (var xj = xa; xj <= xb; xj = xj + 1u) {
                    let dx = f32(xj) - f32(xi);
                    let j = yj * p.w + xj;
                    var e = (dx * dx + dy * dy) * p.inv2sxy;
                    if (rgb) {
                        let d = colour(ibase, hw, j) - fi;
                        e = e + dot(d, d) * p.inv2srgb;
                    }
                    let kv = wt * exp(-e);
                    for (var k = 0u; k < CG; k = k + 1u) {
                        if (k < cn) { acc[k] = acc[k] + kv * q[qbase + k * hw + j]; }
                    }
                }
            }
        }
    }
    let self_in = (p.flags & 2u) != 0u;
    for (var k = 0u; k < CG; k = k + 1u) {
        if (k < cn) {
            var v = acc[k];
            // k(i, i) = 1 was summed exactly in the near field; removing it is exact too.
            if (!self_in) { v = v - q[qbase + k * hw + pix]; }
            out[qbase + k * hw + pix] = v;
        }
    }
}
