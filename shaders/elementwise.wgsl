// Elementwise kernels: unary maps and their backward, broadcast binary ops, fill.
// Unary/binary op codes are the UN_* / BIN_* constants of shaders/include/codes.wgsl, which
// build.rs also gives to Rust (`advseg::gpu::codes`, used by `UnaryOp` / `BinaryOp`).
//
// Each invocation handles four consecutive elements as one vec4 (buffers are declared as vec4
// arrays; pool buffers are multiples of 16 bytes): on CPU SIMD drivers (lavapipe) a vec4 load
// costs about what a scalar one does, and a quarter of the invocations means a quarter of the
// per-invocation index and bounds work. The last, partial vec4 of a tensor is written per
// component. Every component goes through the same float operations as a scalar kernel would,
// so results do not depend on the vec4 grouping.
//
// The op code and the binary kernel's load kinds are pipeline constants, not uniforms: CPU SIMD
// drivers (lavapipe) run both sides of a branch under a mask unless it folds away, so a `switch`
// on a uniform op code evaluated every op (exp, log, tanh, ...) for every element.

struct Params {
    n: u32,        // output elements
    op: u32,       // op code (informational: kernels read the OP constant)
    a: f32,        // scalar argument (slope, scale, fill value ...)
    b: f32,        // second scalar argument
    out_dims: vec4<u32>,   // output shape, right-aligned to 4 dims
    sa: vec4<u32>,         // strides of input a per output dim (0 = broadcast)
    sb: vec4<u32>,         // strides of input b per output dim
    _pad3: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> g: array<vec4<f32>>;

// @include prelude
// @include codes

// Op code of unary / unary_bwd / binary (mirrors UnaryOp / BinaryOp).
override OP: u32 = 0u;
// binary: how each input's four elements under an output vec4 are read (see load_in).
override KA: u32 = 0u;
override KB: u32 = 0u;
// (LOAD_FLAT, LOAD_ROW, LOAD_SPLAT, LOAD_GATHER: shaders/include/codes.wgsl)

// Writes vec4 i of the output, only the components below n for the last one.
fn store(i: u32, v: vec4<f32>) {
    let e = 4u * i;
    if (e + 4u <= p.n) {
        out[i] = v;
        return;
    }
    out[i].x = v.x;
    if (e + 1u < p.n) { out[i].y = v.y; }
    if (e + 2u < p.n) { out[i].z = v.z; }
}

fn sigm(v: vec4<f32>) -> vec4<f32> {
    // Split by sign so exp never overflows: 1/(1+e^-v) for v ≥ 0, e^v/(1+e^v) below.
    let e = exp(-abs(v));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= vec4<f32>(0.0));
}

fn unary_f(op: u32, v: vec4<f32>) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    switch op {
        case UN_RELU: { return max(v, zero); }
        case UN_LEAKY_RELU: { return select(v * p.a, v, v > zero); }  // leaky_relu(a)
        case UN_SIGMOID: { return sigm(v); }
        case UN_TANH: { return tanh(v); }
        case UN_AFFINE: { return p.a * v + p.b; }  // affine a*x+b
        case UN_EXP: { return exp(v); }
        case UN_LOG: { return log(v); }
        case UN_SQUARE: { return v * v; }
        case UN_SQRT: { return sqrt(v); }
        case UN_ABS: { return abs(v); }
        case UN_CLAMP: { return clamp(v, vec4<f32>(p.a), vec4<f32>(p.b)); }
        case UN_SOFTPLUS: { return max(v, zero) + log(1.0 + exp(-abs(v))); }  // softplus (stable)
        default: { return v; }
    }
}

// d out / d in given input v and output o.
fn unary_d(op: u32, v: vec4<f32>, o: vec4<f32>) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    let one = vec4<f32>(1.0);
    switch op {
        case UN_RELU: { return select(zero, one, v > zero); }
        case UN_LEAKY_RELU: { return select(vec4<f32>(p.a), one, v > zero); }
        case UN_SIGMOID: { return o * (1.0 - o); }
        case UN_TANH: { return 1.0 - o * o; }
        case UN_AFFINE: { return vec4<f32>(p.a); }
        case UN_EXP: { return o; }
        case UN_LOG: { return 1.0 / v; }
        case UN_SQUARE: { return 2.0 * v; }
        case UN_SQRT: { return 0.5 / o; }
        case UN_ABS: { return sign(v); }
        case UN_CLAMP: { return select(zero, one, (v >= vec4<f32>(p.a)) & (v <= vec4<f32>(p.b))); }
        case UN_SOFTPLUS: { return sigm(v); }
        default: { return one; }
    }
}

// out = f(x)
@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (4u * i >= p.n) { return; }
    store(i, unary_f(OP, x[i]));
}

// out = g * f'(x), x = forward input, y = forward output, g = upstream gradient.
@compute @workgroup_size(256)
fn unary_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (4u * i >= p.n) { return; }
    store(i, g[i] * unary_d(OP, x[i], y[i]));
}

fn binary_f(op: u32, u: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
    switch op {
        case BIN_ADD: { return u + v; }
        case BIN_SUB: { return u - v; }
        case BIN_MUL: { return u * v; }
        case BIN_DIV: { return u / v; }
        case BIN_MAX: { return max(u, v); }
        case BIN_GT: { return select(vec4<f32>(0.0), vec4<f32>(1.0), u > v); }  // greater-than mask
        default: { return u; }
    }
}

// Input offset of output element e for per-dim strides s.
fn bcast_offset(e: u32, s: vec4<u32>) -> u32 {
    let d = p.out_dims;
    let c3 = e % d.w;
    let r2 = e / d.w;
    let c2 = r2 % d.z;
    let r1 = r2 / d.z;
    let c1 = r1 % d.y;
    let c0 = r1 / d.y;
    return c0 * s.x + c1 * s.y + c2 * s.z + c3 * s.w;
}

// Element e of input `which` (0: x, 1: y) for strides s.
fn load_one(which: u32, e: u32, s: vec4<u32>) -> f32 {
    let off = bcast_offset(min(e, p.n - 1u), s);
    if (which == 0u) {
        return x[off >> 2u][off & 3u];
    }
    return y[off >> 2u][off & 3u];
}

// The four elements of input `which` under output vec4 i, read as `kind` says. For ROW the
// offset is a multiple of 4 (all strides but w's are multiples of w).
fn load_in(which: u32, kind: u32, i: u32, s: vec4<u32>) -> vec4<f32> {
    if (kind == LOAD_FLAT) {
        if (which == 0u) { return x[i]; }
        return y[i];
    }
    if (kind == LOAD_GATHER) {
        let e = 4u * i;
        return vec4<f32>(load_one(which, e, s), load_one(which, e + 1u, s),
                         load_one(which, e + 2u, s), load_one(which, e + 3u, s));
    }
    let off = bcast_offset(4u * i, s);
    if (kind == LOAD_ROW) {
        if (which == 0u) { return x[off >> 2u]; }
        return y[off >> 2u];
    }
    if (which == 0u) { return vec4<f32>(x[off >> 2u][off & 3u]); }
    return vec4<f32>(y[off >> 2u][off & 3u]);
}

// out[i] = x[bcast a] op y[bcast b]
@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (4u * i >= p.n) { return; }
    store(i, binary_f(OP, load_in(0u, KA, i, p.sa), load_in(1u, KB, i, p.sb)));
}

// out[i] = a
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (4u * i >= p.n) { return; }
    store(i, vec4<f32>(p.a));
}
