// Histograms of a per-pixel confidence over the labelled pixels, split by whether the argmax
// prediction equals the label, plus exact counts at one gate threshold (the semi gate's own
// comparison, conf >= t). Layout of `hist`: [0, bins) right pixels, [bins, 2·bins) wrong ones,
// 2·bins gated, 2·bins + 1 gated and right. Accumulated across dispatches (a whole split) and
// read back once: a few KB instead of the maps.
//
// Integer atomics: a workgroup counts its chunk into workgroup memory, then adds its non-zero
// bins to `hist`. Integer addition is exact and order-free, so the counts are deterministic
// (the "no atomics" rule of the other kernels is about float sums).

struct Params {
    n: u32,        // pixels
    bins: u32,     // <= MAX_BINS
    ignore: i32,
    classes: i32,
    t: f32,        // gate threshold
    chunk: u32,    // pixels per workgroup
    _pad0: u32,
    _pad1: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> conf: array<f32>;
@group(0) @binding(2) var<storage, read> pred: array<i32>;
@group(0) @binding(3) var<storage, read> label: array<i32>;
@group(0) @binding(4) var<storage, read_write> hist: array<atomic<u32>>;

const WG: u32 = 256u;
const MAX_BINS: u32 = 1024u;
var<workgroup> local: array<atomic<u32>, 2050>; // 2 * MAX_BINS + 2

// Mirrors metrics::signals::bin_of: NaN and values <= 0 in bin 0, values >= 1 in the last.
fn bin_of(c: f32) -> u32 {
    if (c > 0.0) {
        return min(u32(min(c, 1.0) * f32(p.bins)), p.bins - 1u);
    }
    return 0u;
}

@compute @workgroup_size(256)
fn conf_hist(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let slots = 2u * p.bins + 2u;
    for (var i = lid.x; i < slots; i = i + WG) {
        atomicStore(&local[i], 0u);
    }
    workgroupBarrier();
    let g = wid.y * nwg.x + wid.x;
    let start = g * p.chunk;
    let end = min(start + p.chunk, p.n);
    for (var i = start + lid.x; i < end; i = i + WG) {
        let y = label[i];
        if (y != p.ignore && y >= 0 && y < p.classes) {
            let c = conf[i];
            let wrong = select(0u, 1u, pred[i] != y);
            atomicAdd(&local[wrong * p.bins + bin_of(c)], 1u);
            if (c >= p.t) {
                atomicAdd(&local[2u * p.bins], 1u);
                atomicAdd(&local[2u * p.bins + 1u], 1u - wrong);
            }
        }
    }
    workgroupBarrier();
    for (var i = lid.x; i < slots; i = i + WG) {
        let v = atomicLoad(&local[i]);
        if (v > 0u) {
            atomicAdd(&hist[i], v);
        }
    }
}
