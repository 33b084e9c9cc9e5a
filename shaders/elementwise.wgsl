// Elementwise kernels: unary maps and their backward, broadcast binary ops, fill.
// Unary/binary op codes mirror `UnaryOp` / `BinaryOp` in src/ops/elementwise.rs.

struct Params {
    n: u32,        // output elements
    op: u32,       // op code
    a: f32,        // scalar argument (slope, scale, fill value ...)
    b: f32,        // second scalar argument
    out_dims: vec4<u32>,   // output shape, right-aligned to 4 dims
    sa: vec4<u32>,         // strides of input a per output dim (0 = broadcast)
    sb: vec4<u32>,         // strides of input b per output dim
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;

const WG: u32 = 256u;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

fn sigm(v: f32) -> f32 {
    // Split by sign so exp never overflows.
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

fn unary_f(op: u32, v: f32) -> f32 {
    switch op {
        case 0u: { return max(v, 0.0); }                       // relu
        case 1u: { return select(v * p.a, v, v > 0.0); }       // leaky_relu(a)
        case 2u: { return sigm(v); }                           // sigmoid
        case 3u: { return tanh(v); }                           // tanh
        case 4u: { return p.a * v + p.b; }                     // affine a*x+b
        case 5u: { return exp(v); }                            // exp
        case 6u: { return log(v); }                            // log
        case 7u: { return v * v; }                             // square
        case 8u: { return sqrt(v); }                           // sqrt
        case 9u: { return abs(v); }                            // abs
        case 10u: { return clamp(v, p.a, p.b); }               // clamp
        case 11u: { return max(v, 0.0) + log(1.0 + exp(-abs(v))); } // softplus (stable)
        default: { return v; }
    }
}

// d out / d in given input v and output o.
fn unary_d(op: u32, v: f32, o: f32) -> f32 {
    switch op {
        case 0u: { return select(0.0, 1.0, v > 0.0); }
        case 1u: { return select(p.a, 1.0, v > 0.0); }
        case 2u: { return o * (1.0 - o); }
        case 3u: { return 1.0 - o * o; }
        case 4u: { return p.a; }
        case 5u: { return o; }
        case 6u: { return 1.0 / v; }
        case 7u: { return 2.0 * v; }
        case 8u: { return 0.5 / o; }
        case 9u: { return sign(v); }
        case 10u: { return select(0.0, 1.0, v >= p.a && v <= p.b); }
        case 11u: { return sigm(v); }
        default: { return 1.0; }
    }
}

// out = f(x)
@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = unary_f(p.op, x[i]);
}

// out = g * f'(x), x = forward input, y = forward output, g = upstream gradient.
@compute @workgroup_size(256)
fn unary_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = g[i] * unary_d(p.op, x[i], y[i]);
}

fn binary_f(op: u32, u: f32, v: f32) -> f32 {
    switch op {
        case 0u: { return u + v; }
        case 1u: { return u - v; }
        case 2u: { return u * v; }
        case 3u: { return u / v; }
        case 4u: { return max(u, v); }
        case 5u: { return select(0.0, 1.0, u > v); }   // greater-than mask
        default: { return u; }
    }
}

// out[i] = x[bcast a] op y[bcast b]
@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let d = p.out_dims;
    let c3 = i % d.w;
    let r2 = i / d.w;
    let c2 = r2 % d.z;
    let r1 = r2 / d.z;
    let c1 = r1 % d.y;
    let c0 = r1 / d.y;
    let ia = c0 * p.sa.x + c1 * p.sa.y + c2 * p.sa.z + c3 * p.sa.w;
    let ib = c0 * p.sb.x + c1 * p.sb.y + c2 * p.sb.z + c3 * p.sb.w;
    out[i] = binary_f(p.op, x[ia], y[ib]);
}

// out[i] = a
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = p.a;
}
