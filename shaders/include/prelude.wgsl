// Helpers shared by the 1-d kernels (spliced where a shader says `// @include prelude`).

// Invocations per workgroup of the 1-d kernels (`@workgroup_size(256)`).
const WG: u32 = 256u;

// Flat invocation index of a 2-d grid of 1-d workgroups (grids wider than the 65535
// workgroups-per-dimension limit wrap into y: `Gpu::grid_1d`).
fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}
