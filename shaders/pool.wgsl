// 2-d pooling over NCHW planes: max (with saved argmax), average (PyTorch divisor rules) and
// adaptive average. Backward passes are gathers: each input element loops only over the output
// windows that can contain it, in ascending output order, so results are deterministic.

struct Params {
    n: u32,          // elements of the tensor this dispatch writes
    ih: u32,
    iw: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    count_include_pad: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // forward input / upstream grad
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<i32>; // max: argmax written by forward
@group(0) @binding(4) var<storage, read> argr: array<i32>;      // max backward: saved argmax

// @include prelude

// Output rows/cols whose (unclipped) window [o*s - pad, o*s - pad + k) contains input index i:
// returns [first, last] (empty when first > last).
fn window_range(i: u32, k: u32, s: u32, pad: u32, n_out: u32) -> vec2<i32> {
    let t = i32(i) + i32(pad);
    let lo = max((t - i32(k) + i32(s)) / i32(s), 0); // ceil((t - k + 1) / s) for t - k + 1 > -s
    let hi = min(t / i32(s), i32(n_out) - 1);
    return vec2<i32>(lo, hi);
}

@compute @workgroup_size(256)
fn max_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let plane = i / (p.ow * p.oh);
    let base = plane * p.ih * p.iw;
    let hs = i32(oy * p.sh) - i32(p.ph);
    let ws = i32(ox * p.sw) - i32(p.pw);
    let he = min(hs + i32(p.kh), i32(p.ih));
    let we = min(ws + i32(p.kw), i32(p.iw));
    let h0 = max(hs, 0);
    let w0 = max(ws, 0);
    // PyTorch: strict > keeps the first maximum; NaN wins and propagates.
    var best = -bitcast<f32>(0x7f800000u);
    var bi = h0 * i32(p.iw) + w0;
    for (var h = h0; h < he; h = h + 1) {
        for (var w = w0; w < we; w = w + 1) {
            let idx = h * i32(p.iw) + w;
            let v = x[base + u32(idx)];
            if (v > best || v != v) {
                best = v;
                bi = idx;
            }
        }
    }
    out[i] = best;
    arg[i] = bi;
}

// x = upstream gradient (output-shaped), argr = argmax saved by max_fwd, out = input gradient.
@compute @workgroup_size(256)
fn max_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ix = i % p.iw;
    let iy = (i / p.iw) % p.ih;
    let plane = i / (p.iw * p.ih);
    let obase = plane * p.oh * p.ow;
    let me = i32(iy * p.iw + ix);
    let ry = window_range(iy, p.kh, p.sh, p.ph, p.oh);
    let rx = window_range(ix, p.kw, p.sw, p.pw, p.ow);
    var s = 0.0;
    for (var oy = ry.x; oy <= ry.y; oy = oy + 1) {
        for (var ox = rx.x; ox <= rx.y; ox = ox + 1) {
            let o = obase + u32(oy) * p.ow + u32(ox);
            if (argr[o] == me) {
                s = s + x[o];
            }
        }
    }
    out[i] = s;
}

// Clipped window of output (oy, ox) and its divisor, exactly as PyTorch's avg_pool2d:
// the divisor counts padding up to the padded border only (ceil_mode windows past it are cut).
struct AvgWin {
    h0: i32,
    h1: i32,
    w0: i32,
    w1: i32,
    div: f32,
};

fn avg_window(oy: u32, ox: u32) -> AvgWin {
    var hs = i32(oy * p.sh) - i32(p.ph);
    var ws = i32(ox * p.sw) - i32(p.pw);
    var he = min(hs + i32(p.kh), i32(p.ih + p.ph));
    var we = min(ws + i32(p.kw), i32(p.iw + p.pw));
    let pool_size = (he - hs) * (we - ws);
    hs = max(hs, 0);
    ws = max(ws, 0);
    he = min(he, i32(p.ih));
    we = min(we, i32(p.iw));
    var div = f32(pool_size);
    if (p.count_include_pad == 0u) {
        div = f32((he - hs) * (we - ws));
    }
    return AvgWin(hs, he, ws, we, div);
}

@compute @workgroup_size(256)
fn avg_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let plane = i / (p.ow * p.oh);
    let base = plane * p.ih * p.iw;
    let win = avg_window(oy, ox);
    if (win.h0 >= win.h1 || win.w0 >= win.w1) {
        out[i] = 0.0;
        return;
    }
    var s = 0.0;
    for (var h = win.h0; h < win.h1; h = h + 1) {
        for (var w = win.w0; w < win.w1; w = w + 1) {
            s = s + x[base + u32(h) * p.iw + u32(w)];
        }
    }
    out[i] = s / win.div;
}

// x = upstream gradient, out = input gradient.
@compute @workgroup_size(256)
fn avg_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ix = i32(i % p.iw);
    let iy = i32((i / p.iw) % p.ih);
    let plane = i / (p.iw * p.ih);
    let obase = plane * p.oh * p.ow;
    let ry = window_range(u32(iy), p.kh, p.sh, p.ph, p.oh);
    let rx = window_range(u32(ix), p.kw, p.sw, p.pw, p.ow);
    var s = 0.0;
    for (var oy = ry.x; oy <= ry.y; oy = oy + 1) {
        for (var ox = rx.x; ox <= rx.y; ox = ox + 1) {
            let win = avg_window(u32(oy), u32(ox));
            if (iy >= win.h0 && iy < win.h1 && ix >= win.w0 && ix < win.w1) {
                s = s + x[obase + u32(oy) * p.ow + u32(ox)] / win.div;
            }
        }
    }
    out[i] = s;
}

// Adaptive pooling bins: [floor(o*in/out), ceil((o+1)*in/out)).
fn bin_start(o: u32, n_in: u32, n_out: u32) -> u32 {
    return (o * n_in) / n_out;
}
fn bin_end(o: u32, n_in: u32, n_out: u32) -> u32 {
    return ((o + 1u) * n_in + n_out - 1u) / n_out;
}

@compute @workgroup_size(256)
fn adaptive_avg_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let plane = i / (p.ow * p.oh);
    let base = plane * p.ih * p.iw;
    let h0 = bin_start(oy, p.ih, p.oh);
    let h1 = bin_end(oy, p.ih, p.oh);
    let w0 = bin_start(ox, p.iw, p.ow);
    let w1 = bin_end(ox, p.iw, p.ow);
    var s = 0.0;
    for (var h = h0; h < h1; h = h + 1u) {
        for (var w = w0; w < w1; w = w + 1u) {
            s = s + x[base + h * p.iw + w];
        }
    }
    out[i] = s / f32((h1 - h0) * (w1 - w0));
}

// Output bins containing input index i: [floor(i*out/in), ceil((i+1)*out/in) - 1].
fn bins_of(i: u32, n_in: u32, n_out: u32) -> vec2<u32> {
    let lo = (i * n_out) / n_in;
    let hi = min(((i + 1u) * n_out + n_in - 1u) / n_in, n_out) - 1u;
    return vec2<u32>(lo, hi);
}

@compute @workgroup_size(256)
fn adaptive_avg_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ix = i % p.iw;
    let iy = (i / p.iw) % p.ih;
    let plane = i / (p.iw * p.ih);
    let obase = plane * p.oh * p.ow;
    let ry = bins_of(iy, p.ih, p.oh);
    let rx = bins_of(ix, p.iw, p.ow);
    var s = 0.0;
    for (var oy = ry.x; oy <= ry.y; oy = oy + 1u) {
        let h0 = bin_start(oy, p.ih, p.oh);
        let h1 = bin_end(oy, p.ih, p.oh);
        for (var ox = rx.x; ox <= rx.y; ox = ox + 1u) {
            let w0 = bin_start(ox, p.iw, p.ow);
            let w1 = bin_end(ox, p.iw, p.ow);
            if (iy >= h0 && iy < h1 && ix >= w0 && ix < w1) {
                s = s + x[obase + oy * p.ow + ox] / f32((h1 - h0) * (w1 - w0));
            }
        }
    }
    out[i] = s;
}
