// The end of a softmax over channels at one pixel, in place in `out`: the logits are already at
// out[base + c·hw] (c < p.c) and `m` is their max. Spliced (`// @include softmax_c`) by the
// dense CRF's gather and matrix paths, whose update kernels must normalise exactly alike: their
// results are compared with each other (tests/it/crf.rs). The including shader declares `out`
// and a uniform `p` with `c` and `hw`.
fn softmax_c_in_place(base: u32, m: f32) {
    var s = 0.0;
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = base + c * p.hw;
        let e = exp(out[k] - m);
        out[k] = e;
        s = s + e;
    }
    for (var c = 0u; c < p.c; c = c + 1u) {
        let k = base + c * p.hw;
        out[k] = out[k] / s;
    }
}
