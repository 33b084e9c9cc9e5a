// Gaussian / bilateral filtering of a multi-channel map q [N, C, H, W] guided by an image
// img [N, 3, H, W]:  out_i = Σ_j k(i, j) q_j,
//   k = exp(−|p_i − p_j|² · inv2sxy − |I_i − I_j|² · inv2srgb)   (colour term only if RGB flag).
//
// The grid of pixels is cut into stride×stride cells. Cells within `near` cells of the one
// holding pixel i (the near field) are summed exactly. Every other cell within `radius` cells is
// summarised once per call (cell_stats, cell_sums) as two colour clusters, each a Gaussian blob
// of colours (mean, covariance) at its centroid carrying Σ q of its pixels; the gather uses the
// kernel's expectation over that blob. Exact: stride 1 and near = radius ≥ max(H, W).
// Pure gathers: deterministic, no atomics.
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
// Far-field cell summaries: per (n, cell) two colour clusters of SW floats: count, mean r, g, b,
// the symmetric A = (1 + Σ/σ_rgb²)⁻¹ (a00 a01 a02 a11 a12 a22), sqrt(det A), centroid x, y.
@group(0) @binding(4) var<storage, read> stats: array<f32>;
// Per (n, channel, cell, cluster): Σ q over the cluster's pixels.
@group(0) @binding(5) var<storage, read> sums: array<f32>;
// Per pixel: its cluster (0 or 1) within its cell.
@group(0) @binding(6) var<storage, read> assign: array<u32>;
@group(0) @binding(7) var<storage, read_write> stats_w: array<f32>;
@group(0) @binding(8) var<storage, read_write> assign_w: array<u32>;

// @include prelude
const CG: u32 = 8u;
const SW: u32 = 16u;

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
            let near = near_y && cx + p.near >= ocx && cx <= ocx + p.near;
            if (!near) {
                // Far cell: each colour cluster as a Gaussian blob of colours (count, mean μ,
                // covariance Σ) at its centroid; over I_j ~ N(μ, Σ),
                // E[exp(−|I_i − I_j|²/2σ²)] = sqrt(det A) · exp(−dᵀ A d / 2σ²), d = I_i − μ.
                let cell = cy * ncx + cx;
                for (var cl = 0u; cl < 2u; cl = cl + 1u) {
                    let sb = ((n * ncx * ncy + cell) * 2u + cl) * SW;
                    if (stats[sb] == 0.0) { continue; }
                    let dx = stats[sb + 11u] - f32(xi);
                    let dy = stats[sb + 12u] - f32(yi);
                    var e = (dx * dx + dy * dy) * p.inv2sxy;
                    var amp = 1.0;
                    if (rgb) {
                        let d = vec3<f32>(stats[sb + 1u], stats[sb + 2u], stats[sb + 3u]) - fi;
                        let a = mat3x3<f32>(
                            stats[sb + 4u], stats[sb + 5u], stats[sb + 6u],
                            stats[sb + 5u], stats[sb + 7u], stats[sb + 8u],
                            stats[sb + 6u], stats[sb + 8u], stats[sb + 9u]);
                        e = e + dot(d, a * d) * p.inv2srgb;
                        amp = stats[sb + 10u];
                    }
                    let kv = amp * exp(-e);
                    let ncell = ncx * ncy;
                    for (var k = 0u; k < CG; k = k + 1u) {
                        if (k < cn) {
                            acc[k] = acc[k] + kv * sums[(((n * p.c + c0 + k) * ncell) + cell) * 2u + cl];
                        }
                    }
                }
                continue;
            }
            // Near cells: every pixel, weight 1.
            for (var yj = y0; yj < y0 + ch; yj = yj + 1u) {
                let dy = f32(yj) - f32(yi);
                for (var xj = x0; xj < x0 + cw; xj = xj + 1u) {
                    let dx = f32(xj) - f32(xi);
                    let j = yj * p.w + xj;
                    var e = (dx * dx + dy * dy) * p.inv2sxy;
                    if (rgb) {
                        let d = colour(ibase, hw, j) - fi;
                        e = e + dot(d, d) * p.inv2srgb;
                    }
                    let kv = exp(-e);
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

fn cell_colour(n: u32, hw: u32, j: u32) -> vec3<f32> {
    return colour(n * 3u * hw, hw, j);
}

// One invocation per (n, cell): split the cell's pixels into two colour clusters (farthest-point
// seeds, then two 2-means rounds) and write their summaries and each pixel's cluster.
@compute @workgroup_size(256)
fn cell_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = linear_id(wid, nwg, lid);
    let f = p.stride;
    let ncx = (p.w + f - 1u) / f;
    let ncy = (p.h + f - 1u) / f;
    if (t >= p.n * ncx * ncy) { return; }
    let cell = t % (ncx * ncy);
    let n = t / (ncx * ncy);
    let hw = p.h * p.w;
    let x0 = (cell % ncx) * f;
    let y0 = (cell / ncx) * f;
    let x1 = min(x0 + f, p.w);
    let y1 = min(y0 + f, p.h);
    var mu = vec3<f32>(0.0);
    for (var y = y0; y < y1; y = y + 1u) {
        for (var x = x0; x < x1; x = x + 1u) { mu = mu + cell_colour(n, hw, y * p.w + x); }
    }
    mu = mu / f32((x1 - x0) * (y1 - y0));
    var ca = mu;
    var best = -1.0;
    for (var y = y0; y < y1; y = y + 1u) {
        for (var x = x0; x < x1; x = x + 1u) {
            let c = cell_colour(n, hw, y * p.w + x);
            let d = dot(c - mu, c - mu);
            if (d > best) { best = d; ca = c; }
        }
    }
    var cb = ca;
    best = -1.0;
    for (var y = y0; y < y1; y = y + 1u) {
        for (var x = x0; x < x1; x = x + 1u) {
            let c = cell_colour(n, hw, y * p.w + x);
            let d = dot(c - ca, c - ca);
            if (d > best) { best = d; cb = c; }
        }
    }
    for (var it = 0u; it < 2u; it = it + 1u) {
        var sa = vec3<f32>(0.0);
        var sb = vec3<f32>(0.0);
        var na = 0.0;
        var nb = 0.0;
        for (var y = y0; y < y1; y = y + 1u) {
            for (var x = x0; x < x1; x = x + 1u) {
                let c = cell_colour(n, hw, y * p.w + x);
                if (dot(c - cb, c - cb) < dot(c - ca, c - ca)) { sb = sb + c; nb = nb + 1.0; } else { sa = sa + c; na = na + 1.0; }
            }
        }
        if (na > 0.0) { ca = sa / na; }
        if (nb > 0.0) { cb = sb / nb; }
    }
    var cnt = array<f32, 2>(0.0, 0.0);
    var sc = array<vec3<f32>, 2>(vec3<f32>(0.0), vec3<f32>(0.0));
    var sd = array<vec3<f32>, 2>(vec3<f32>(0.0), vec3<f32>(0.0)); // Σ r², g², b²
    var so = array<vec3<f32>, 2>(vec3<f32>(0.0), vec3<f32>(0.0)); // Σ rg, rb, gb
    var sp = array<vec2<f32>, 2>(vec2<f32>(0.0), vec2<f32>(0.0));
    for (var y = y0; y < y1; y = y + 1u) {
        for (var x = x0; x < x1; x = x + 1u) {
            let j = y * p.w + x;
            let c = cell_colour(n, hw, j);
            let k = select(0u, 1u, dot(c - cb, c - cb) < dot(c - ca, c - ca));
            assign_w[n * hw + j] = k;
            cnt[k] = cnt[k] + 1.0;
            sc[k] = sc[k] + c;
            sd[k] = sd[k] + c * c;
            so[k] = so[k] + vec3<f32>(c.x * c.y, c.x * c.z, c.y * c.z);
            sp[k] = sp[k] + vec2<f32>(f32(x), f32(y));
        }
    }
    // 1/σ_rgb² (0 for a spatial-only kernel: A = 1 then, and the gather ignores colour).
    let is2 = 2.0 * p.inv2srgb;
    for (var k = 0u; k < 2u; k = k + 1u) {
        let b = (t * 2u + k) * SW;
        for (var z = 0u; z < SW; z = z + 1u) { stats_w[b + z] = 0.0; }
        if (cnt[k] == 0.0) { continue; }
        let m = sc[k] / cnt[k];
        let dd = sd[k] / cnt[k] - m * m;
        let oo = so[k] / cnt[k] - vec3<f32>(m.x * m.y, m.x * m.z, m.y * m.z);
        // B = 1 + Σ/σ², A = B⁻¹ by the adjugate.
        let b00 = 1.0 + max(dd.x, 0.0) * is2;
        let b11 = 1.0 + max(dd.y, 0.0) * is2;
        let b22 = 1.0 + max(dd.z, 0.0) * is2;
        let b01 = oo.x * is2;
        let b02 = oo.y * is2;
        let b12 = oo.z * is2;
        let c00 = b11 * b22 - b12 * b12;
        let c01 = b02 * b12 - b01 * b22;
        let c02 = b01 * b12 - b02 * b11;
        let det = max(b00 * c00 + b01 * c01 + b02 * c02, 1.0);
        stats_w[b] = cnt[k];
        stats_w[b + 1u] = m.x;
        stats_w[b + 2u] = m.y;
        stats_w[b + 3u] = m.z;
        stats_w[b + 4u] = c00 / det;
        stats_w[b + 5u] = c01 / det;
        stats_w[b + 6u] = c02 / det;
        stats_w[b + 7u] = (b00 * b22 - b02 * b02) / det;
        stats_w[b + 8u] = (b01 * b02 - b00 * b12) / det;
        stats_w[b + 9u] = (b00 * b11 - b01 * b01) / det;
        stats_w[b + 10u] = 1.0 / sqrt(det);
        stats_w[b + 11u] = sp[k].x / cnt[k];
        stats_w[b + 12u] = sp[k].y / cnt[k];
    }
}

// One invocation per (n, channel, cell): Σ q per colour cluster → out.
@compute @workgroup_size(256)
fn cell_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = linear_id(wid, nwg, lid);
    let f = p.stride;
    let ncx = (p.w + f - 1u) / f;
    let ncy = (p.h + f - 1u) / f;
    let ncell = ncx * ncy;
    if (t >= p.n * p.c * ncell) { return; }
    let cell = t % ncell;
    let nc = t / ncell;
    let n = nc / p.c;
    let hw = p.h * p.w;
    let x0 = (cell % ncx) * f;
    let y0 = (cell / ncx) * f;
    var s0 = 0.0;
    var s1 = 0.0;
    for (var y = y0; y < min(y0 + f, p.h); y = y + 1u) {
        for (var x = x0; x < min(x0 + f, p.w); x = x + 1u) {
            let j = y * p.w + x;
            let v = q[nc * hw + j];
            if (assign[n * hw + j] == 1u) { s1 = s1 + v; } else { s0 = s0 + v; }
        }
    }
    out[t * 2u] = s0;
    out[t * 2u + 1u] = s1;
}
