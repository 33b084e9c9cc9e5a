// Resizing of NCHW planes: bilinear (PyTorch's source-index formula, both align_corners modes)
// and nearest. Backward passes are the exact transposes written as gathers: each input pixel
// loops over the few output pixels whose interpolation touches it and recomputes the forward
// weights, so no atomics are needed and results are deterministic.

struct Params {
    n: u32,            // elements of the tensor this dispatch writes
    ih: u32,
    iw: u32,
    oh: u32,
    ow: u32,
    align_corners: u32, // mirrored by the ALIGN constant, which the kernels read
    scale_h: f32,      // source step per output pixel (see area_pixel_compute_scale)
    scale_w: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // forward input / upstream grad
// vec4s so bilinear_fwd can store four outputs at once; scalar stores index a component.
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

// @include prelude
// Pipeline constants: CPU SIMD drivers (lavapipe) run both sides of a uniform branch under a
// mask, so align_corners as a uniform cost both source-index formulas.
override ALIGN: u32 = 0u;   // align_corners
override X4: u32 = 0u;      // bilinear_fwd: ow % 4 == 0, four outputs of a row per invocation

fn put(i: u32, v: f32) {
    out[i >> 2u][i & 3u] = v;
}

// One axis of a bilinear tap: lower source index, step to the upper one (0 at the last
// pixel) and the weights of lower and upper.
struct Tap {
    i0: u32,
    step: u32,
    l0: f32,
    l1: f32,
};

fn tap(dst: u32, scale: f32, n_in: u32) -> Tap {
    var src: f32;
    if (ALIGN == 1u) {
        src = scale * f32(dst);
    } else {
        src = max(scale * (f32(dst) + 0.5) - 0.5, 0.0);
    }
    let i0 = min(u32(src), n_in - 1u);
    let step = select(0u, 1u, i0 < n_in - 1u);
    let l1 = src - f32(i0);
    return Tap(i0, step, 1.0 - l1, l1);
}

// Weight of input index i in output dst's interpolation along one axis.
fn weight_of(t: Tap, i: u32) -> f32 {
    var wt = 0.0;
    if (t.i0 == i) {
        wt = wt + t.l0;
    }
    if (t.i0 + t.step == i) {
        wt = wt + t.l1;
    }
    return wt;
}

// Output indices whose taps can reach input index i: src(dst) in (i - 1, i + 1), widened by
// one on each side against rounding; exact membership is re-checked with `weight_of`.
fn reach(i: u32, scale: f32, n_out: u32) -> vec2<u32> {
    if (scale <= 0.0) {
        return vec2<u32>(0u, n_out - 1u);
    }
    var lo: f32;
    var hi: f32;
    if (ALIGN == 1u) {
        lo = (f32(i) - 1.0) / scale;
        hi = (f32(i) + 1.0) / scale;
    } else {
        lo = (f32(i) - 0.5) / scale - 0.5;
        hi = (f32(i) + 1.5) / scale - 0.5;
    }
    let a = u32(max(floor(lo) - 1.0, 0.0));
    let b = u32(clamp(ceil(hi) + 1.0, 0.0, f32(n_out - 1u)));
    return vec2<u32>(a, b);
}

// Output i of the plane starting at input offset base, row taps ty, column ox.
fn bilinear_at(base: u32, ty: Tap, ox: u32) -> f32 {
    let tx = tap(ox, p.scale_w, p.iw);
    let r0 = base + ty.i0 * p.iw;
    let r1 = base + (ty.i0 + ty.step) * p.iw;
    let top = tx.l0 * x[r0 + tx.i0] + tx.l1 * x[r0 + tx.i0 + tx.step];
    let bot = tx.l0 * x[r1 + tx.i0] + tx.l1 * x[r1 + tx.i0 + tx.step];
    return ty.l0 * top + ty.l1 * bot;
}

@compute @workgroup_size(256)
fn bilinear_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    var i = linear_id(wid, nwg, lid);
    if (X4 == 1u) {
        i = 4u * i;
    }
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let plane = i / (p.ow * p.oh);
    let base = plane * p.ih * p.iw;
    let ty = tap(oy, p.scale_h, p.ih);
    if (X4 == 1u) {
        // The row and plane are shared by the four outputs; only the column taps differ.
        out[i >> 2u] = vec4<f32>(bilinear_at(base, ty, ox), bilinear_at(base, ty, ox + 1u),
                                 bilinear_at(base, ty, ox + 2u), bilinear_at(base, ty, ox + 3u));
    } else {
        put(i, bilinear_at(base, ty, ox));
    }
}

// x = upstream gradient (output-shaped), out = input gradient.
@compute @workgroup_size(256)
fn bilinear_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ix = i % p.iw;
    let iy = (i / p.iw) % p.ih;
    let plane = i / (p.iw * p.ih);
    let obase = plane * p.oh * p.ow;
    let ry = reach(iy, p.scale_h, p.oh);
    let rx = reach(ix, p.scale_w, p.ow);
    var s = 0.0;
    for (var oy = ry.x; oy <= ry.y; oy = oy + 1u) {
        let wy = weight_of(tap(oy, p.scale_h, p.ih), iy);
        if (wy == 0.0) { continue; }
        var row = 0.0;
        for (var ox = rx.x; ox <= rx.y; ox = ox + 1u) {
            let wx = weight_of(tap(ox, p.scale_w, p.iw), ix);
            row = row + wx * x[obase + oy * p.ow + ox];
        }
        s = s + wy * row;
    }
    put(i, s);
}

// PyTorch 'nearest': src = min(floor(dst * (in / out)), in - 1) in f32 arithmetic.
fn nearest_src(dst: u32, scale: f32, n_in: u32) -> u32 {
    return min(u32(floor(f32(dst) * scale)), n_in - 1u);
}

@compute @workgroup_size(256)
fn nearest_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let plane = i / (p.ow * p.oh);
    let sy = nearest_src(oy, p.scale_h, p.ih);
    let sx = nearest_src(ox, p.scale_w, p.iw);
    put(i, x[plane * p.ih * p.iw + sy * p.iw + sx]);
}

// Output indices that may map to input index i: dst in [i / scale, (i + 1) / scale), widened
// against rounding; exact membership is re-checked.
fn nearest_reach(i: u32, scale: f32, n_out: u32) -> vec2<u32> {
    let a = u32(max(floor(f32(i) / scale) - 2.0, 0.0));
    let b = u32(clamp(ceil(f32(i + 1u) / scale) + 1.0, 0.0, f32(n_out - 1u)));
    return vec2<u32>(a, b);
}

@compute @workgroup_size(256)
fn nearest_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ix = i % p.iw;
    let iy = (i / p.iw) % p.ih;
    let plane = i / (p.iw * p.ih);
    let obase = plane * p.oh * p.ow;
    // The last input row/col also collects every output clamped onto it.
    var ry = nearest_reach(iy, p.scale_h, p.oh);
    var rx = nearest_reach(ix, p.scale_w, p.ow);
    if (iy == p.ih - 1u) { ry.y = p.oh - 1u; }
    if (ix == p.iw - 1u) { rx.y = p.ow - 1u; }
    var s = 0.0;
    for (var oy = ry.x; oy <= ry.y; oy = oy + 1u) {
        if (nearest_src(oy, p.scale_h, p.ih) != iy) { continue; }
        for (var ox = rx.x; ox <= rx.y; ox = ox + 1u) {
            if (nearest_src(ox, p.scale_w, p.iw) == ix) {
                s = s + x[obase + oy * p.ow + ox];
            }
        }
    }
    put(i, s);
}
