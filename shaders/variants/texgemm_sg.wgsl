// Subgroup variant of texgemm.wgsl, composed by build.rs into the shader `texgemm_sg`: each
// `@region NAME` below replaces the region of that name in the base shader. Used where the
// adapter has wgpu's SUBGROUP feature with subgroups of exactly 8 lanes (lavapipe on AVX2);
// the lanes of a subgroup then share one row block (src/ops/conv_tex.rs pads the columns to a
// multiple of 8), and the arithmetic per row is unchanged, so the bits equal the base's.
// @variant-of texgemm
// @region acc
// Subgroup variant: the 8 lanes of a subgroup share their RM rows of A; lane l fetches rows
// l·q .. l·q + q − 1 (q = RM/8) and every lane takes row r from lane r/q by broadcast.
fn acc(ax: i32, ay: i32, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, sl: u32) {
    if (RM == 8u) {
        let l0 = textureLoad(ta, vec2<i32>(ax + i32(sl * 1u) + 0, ay), 0);
        let a0 = subgroupBroadcast(l0, 0u);
        c0 = fma(vec4<f32>(a0.w), v3, fma(vec4<f32>(a0.z), v2, fma(vec4<f32>(a0.y), v1, fma(vec4<f32>(a0.x), v0, c0))));
        let a1 = subgroupBroadcast(l0, 1u);
        c1 = fma(vec4<f32>(a1.w), v3, fma(vec4<f32>(a1.z), v2, fma(vec4<f32>(a1.y), v1, fma(vec4<f32>(a1.x), v0, c1))));
        let a2 = subgroupBroadcast(l0, 2u);
        c2 = fma(vec4<f32>(a2.w), v3, fma(vec4<f32>(a2.z), v2, fma(vec4<f32>(a2.y), v1, fma(vec4<f32>(a2.x), v0, c2))));
        let a3 = subgroupBroadcast(l0, 3u);
        c3 = fma(vec4<f32>(a3.w), v3, fma(vec4<f32>(a3.z), v2, fma(vec4<f32>(a3.y), v1, fma(vec4<f32>(a3.x), v0, c3))));
        let a4 = subgroupBroadcast(l0, 4u);
        c4 = fma(vec4<f32>(a4.w), v3, fma(vec4<f32>(a4.z), v2, fma(vec4<f32>(a4.y), v1, fma(vec4<f32>(a4.x), v0, c4))));
        let a5 = subgroupBroadcast(l0, 5u);
        c5 = fma(vec4<f32>(a5.w), v3, fma(vec4<f32>(a5.z), v2, fma(vec4<f32>(a5.y), v1, fma(vec4<f32>(a5.x), v0, c5))));
        let a6 = subgroupBroadcast(l0, 6u);
        c6 = fma(vec4<f32>(a6.w), v3, fma(vec4<f32>(a6.z), v2, fma(vec4<f32>(a6.y), v1, fma(vec4<f32>(a6.x), v0, c6))));
        let a7 = subgroupBroadcast(l0, 7u);
        c7 = fma(vec4<f32>(a7.w), v3, fma(vec4<f32>(a7.z), v2, fma(vec4<f32>(a7.y), v1, fma(vec4<f32>(a7.x), v0, c7))));
    } else if (RM == 16u) {
        let l0 = textureLoad(ta, vec2<i32>(ax + i32(sl * 2u) + 0, ay), 0);
        let l1 = textureLoad(ta, vec2<i32>(ax + i32(sl * 2u) + 1, ay), 0);
        let a0 = subgroupBroadcast(l0, 0u);
        c0 = fma(vec4<f32>(a0.w), v3, fma(vec4<f32>(a0.z), v2, fma(vec4<f32>(a0.y), v1, fma(vec4<f32>(a0.x), v0, c0))));
        let a1 = subgroupBroadcast(l1, 0u);
        c1 = fma(vec4<f32>(a1.w), v3, fma(vec4<f32>(a1.z), v2, fma(vec4<f32>(a1.y), v1, fma(vec4<f32>(a1.x), v0, c1))));
        let a2 = subgroupBroadcast(l0, 1u);
        c2 = fma(vec4<f32>(a2.w), v3, fma(vec4<f32>(a2.z), v2, fma(vec4<f32>(a2.y), v1, fma(vec4<f32>(a2.x), v0, c2))));
        let a3 = subgroupBroadcast(l1, 1u);
        c3 = fma(vec4<f32>(a3.w), v3, fma(vec4<f32>(a3.z), v2, fma(vec4<f32>(a3.y), v1, fma(vec4<f32>(a3.x), v0, c3))));
        let a4 = subgroupBroadcast(l0, 2u);
        c4 = fma(vec4<f32>(a4.w), v3, fma(vec4<f32>(a4.z), v2, fma(vec4<f32>(a4.y), v1, fma(vec4<f32>(a4.x), v0, c4))));
        let a5 = subgroupBroadcast(l1, 2u);
        c5 = fma(vec4<f32>(a5.w), v3, fma(vec4<f32>(a5.z), v2, fma(vec4<f32>(a5.y), v1, fma(vec4<f32>(a5.x), v0, c5))));
        let a6 = subgroupBroadcast(l0, 3u);
        c6 = fma(vec4<f32>(a6.w), v3, fma(vec4<f32>(a6.z), v2, fma(vec4<f32>(a6.y), v1, fma(vec4<f32>(a6.x), v0, c6))));
        let a7 = subgroupBroadcast(l1, 3u);
        c7 = fma(vec4<f32>(a7.w), v3, fma(vec4<f32>(a7.z), v2, fma(vec4<f32>(a7.y), v1, fma(vec4<f32>(a7.x), v0, c7))));
        let a8 = subgroupBroadcast(l0, 4u);
        c8 = fma(vec4<f32>(a8.w), v3, fma(vec4<f32>(a8.z), v2, fma(vec4<f32>(a8.y), v1, fma(vec4<f32>(a8.x), v0, c8))));
        let a9 = subgroupBroadcast(l1, 4u);
        c9 = fma(vec4<f32>(a9.w), v3, fma(vec4<f32>(a9.z), v2, fma(vec4<f32>(a9.y), v1, fma(vec4<f32>(a9.x), v0, c9))));
        let a10 = subgroupBroadcast(l0, 5u);
        c10 = fma(vec4<f32>(a10.w), v3, fma(vec4<f32>(a10.z), v2, fma(vec4<f32>(a10.y), v1, fma(vec4<f32>(a10.x), v0, c10))));
        let a11 = subgroupBroadcast(l1, 5u);
        c11 = fma(vec4<f32>(a11.w), v3, fma(vec4<f32>(a11.z), v2, fma(vec4<f32>(a11.y), v1, fma(vec4<f32>(a11.x), v0, c11))));
        let a12 = subgroupBroadcast(l0, 6u);
        c12 = fma(vec4<f32>(a12.w), v3, fma(vec4<f32>(a12.z), v2, fma(vec4<f32>(a12.y), v1, fma(vec4<f32>(a12.x), v0, c12))));
        let a13 = subgroupBroadcast(l1, 6u);
        c13 = fma(vec4<f32>(a13.w), v3, fma(vec4<f32>(a13.z), v2, fma(vec4<f32>(a13.y), v1, fma(vec4<f32>(a13.x), v0, c13))));
        let a14 = subgroupBroadcast(l0, 7u);
        c14 = fma(vec4<f32>(a14.w), v3, fma(vec4<f32>(a14.z), v2, fma(vec4<f32>(a14.y), v1, fma(vec4<f32>(a14.x), v0, c14))));
        let a15 = subgroupBroadcast(l1, 7u);
        c15 = fma(vec4<f32>(a15.w), v3, fma(vec4<f32>(a15.z), v2, fma(vec4<f32>(a15.y), v1, fma(vec4<f32>(a15.x), v0, c15))));
    } else if (RM == 32u) {
        let l0 = textureLoad(ta, vec2<i32>(ax + i32(sl * 4u) + 0, ay), 0);
        let l1 = textureLoad(ta, vec2<i32>(ax + i32(sl * 4u) + 1, ay), 0);
        let l2 = textureLoad(ta, vec2<i32>(ax + i32(sl * 4u) + 2, ay), 0);
        let l3 = textureLoad(ta, vec2<i32>(ax + i32(sl * 4u) + 3, ay), 0);
        let a0 = subgroupBroadcast(l0, 0u);
        c0 = fma(vec4<f32>(a0.w), v3, fma(vec4<f32>(a0.z), v2, fma(vec4<f32>(a0.y), v1, fma(vec4<f32>(a0.x), v0, c0))));
        let a1 = subgroupBroadcast(l1, 0u);
        c1 = fma(vec4<f32>(a1.w), v3, fma(vec4<f32>(a1.z), v2, fma(vec4<f32>(a1.y), v1, fma(vec4<f32>(a1.x), v0, c1))));
        let a2 = subgroupBroadcast(l2, 0u);
        c2 = fma(vec4<f32>(a2.w), v3, fma(vec4<f32>(a2.z), v2, fma(vec4<f32>(a2.y), v1, fma(vec4<f32>(a2.x), v0, c2))));
        let a3 = subgroupBroadcast(l3, 0u);
        c3 = fma(vec4<f32>(a3.w), v3, fma(vec4<f32>(a3.z), v2, fma(vec4<f32>(a3.y), v1, fma(vec4<f32>(a3.x), v0, c3))));
        let a4 = subgroupBroadcast(l0, 1u);
        c4 = fma(vec4<f32>(a4.w), v3, fma(vec4<f32>(a4.z), v2, fma(vec4<f32>(a4.y), v1, fma(vec4<f32>(a4.x), v0, c4))));
        let a5 = subgroupBroadcast(l1, 1u);
        c5 = fma(vec4<f32>(a5.w), v3, fma(vec4<f32>(a5.z), v2, fma(vec4<f32>(a5.y), v1, fma(vec4<f32>(a5.x), v0, c5))));
        let a6 = subgroupBroadcast(l2, 1u);
        c6 = fma(vec4<f32>(a6.w), v3, fma(vec4<f32>(a6.z), v2, fma(vec4<f32>(a6.y), v1, fma(vec4<f32>(a6.x), v0, c6))));
        let a7 = subgroupBroadcast(l3, 1u);
        c7 = fma(vec4<f32>(a7.w), v3, fma(vec4<f32>(a7.z), v2, fma(vec4<f32>(a7.y), v1, fma(vec4<f32>(a7.x), v0, c7))));
        let a8 = subgroupBroadcast(l0, 2u);
        c8 = fma(vec4<f32>(a8.w), v3, fma(vec4<f32>(a8.z), v2, fma(vec4<f32>(a8.y), v1, fma(vec4<f32>(a8.x), v0, c8))));
        let a9 = subgroupBroadcast(l1, 2u);
        c9 = fma(vec4<f32>(a9.w), v3, fma(vec4<f32>(a9.z), v2, fma(vec4<f32>(a9.y), v1, fma(vec4<f32>(a9.x), v0, c9))));
        let a10 = subgroupBroadcast(l2, 2u);
        c10 = fma(vec4<f32>(a10.w), v3, fma(vec4<f32>(a10.z), v2, fma(vec4<f32>(a10.y), v1, fma(vec4<f32>(a10.x), v0, c10))));
        let a11 = subgroupBroadcast(l3, 2u);
        c11 = fma(vec4<f32>(a11.w), v3, fma(vec4<f32>(a11.z), v2, fma(vec4<f32>(a11.y), v1, fma(vec4<f32>(a11.x), v0, c11))));
        let a12 = subgroupBroadcast(l0, 3u);
        c12 = fma(vec4<f32>(a12.w), v3, fma(vec4<f32>(a12.z), v2, fma(vec4<f32>(a12.y), v1, fma(vec4<f32>(a12.x), v0, c12))));
        let a13 = subgroupBroadcast(l1, 3u);
        c13 = fma(vec4<f32>(a13.w), v3, fma(vec4<f32>(a13.z), v2, fma(vec4<f32>(a13.y), v1, fma(vec4<f32>(a13.x), v0, c13))));
        let a14 = subgroupBroadcast(l2, 3u);
        c14 = fma(vec4<f32>(a14.w), v3, fma(vec4<f32>(a14.z), v2, fma(vec4<f32>(a14.y), v1, fma(vec4<f32>(a14.x), v0, c14))));
        let a15 = subgroupBroadcast(l3, 3u);
        c15 = fma(vec4<f32>(a15.w), v3, fma(vec4<f32>(a15.z), v2, fma(vec4<f32>(a15.y), v1, fma(vec4<f32>(a15.x), v0, c15))));
        let a16 = subgroupBroadcast(l0, 4u);
        c16 = fma(vec4<f32>(a16.w), v3, fma(vec4<f32>(a16.z), v2, fma(vec4<f32>(a16.y), v1, fma(vec4<f32>(a16.x), v0, c16))));
        let a17 = subgroupBroadcast(l1, 4u);
        c17 = fma(vec4<f32>(a17.w), v3, fma(vec4<f32>(a17.z), v2, fma(vec4<f32>(a17.y), v1, fma(vec4<f32>(a17.x), v0, c17))));
        let a18 = subgroupBroadcast(l2, 4u);
        c18 = fma(vec4<f32>(a18.w), v3, fma(vec4<f32>(a18.z), v2, fma(vec4<f32>(a18.y), v1, fma(vec4<f32>(a18.x), v0, c18))));
        let a19 = subgroupBroadcast(l3, 4u);
        c19 = fma(vec4<f32>(a19.w), v3, fma(vec4<f32>(a19.z), v2, fma(vec4<f32>(a19.y), v1, fma(vec4<f32>(a19.x), v0, c19))));
        let a20 = subgroupBroadcast(l0, 5u);
        c20 = fma(vec4<f32>(a20.w), v3, fma(vec4<f32>(a20.z), v2, fma(vec4<f32>(a20.y), v1, fma(vec4<f32>(a20.x), v0, c20))));
        let a21 = subgroupBroadcast(l1, 5u);
        c21 = fma(vec4<f32>(a21.w), v3, fma(vec4<f32>(a21.z), v2, fma(vec4<f32>(a21.y), v1, fma(vec4<f32>(a21.x), v0, c21))));
        let a22 = subgroupBroadcast(l2, 5u);
        c22 = fma(vec4<f32>(a22.w), v3, fma(vec4<f32>(a22.z), v2, fma(vec4<f32>(a22.y), v1, fma(vec4<f32>(a22.x), v0, c22))));
        let a23 = subgroupBroadcast(l3, 5u);
        c23 = fma(vec4<f32>(a23.w), v3, fma(vec4<f32>(a23.z), v2, fma(vec4<f32>(a23.y), v1, fma(vec4<f32>(a23.x), v0, c23))));
        let a24 = subgroupBroadcast(l0, 6u);
        c24 = fma(vec4<f32>(a24.w), v3, fma(vec4<f32>(a24.z), v2, fma(vec4<f32>(a24.y), v1, fma(vec4<f32>(a24.x), v0, c24))));
        let a25 = subgroupBroadcast(l1, 6u);
        c25 = fma(vec4<f32>(a25.w), v3, fma(vec4<f32>(a25.z), v2, fma(vec4<f32>(a25.y), v1, fma(vec4<f32>(a25.x), v0, c25))));
        let a26 = subgroupBroadcast(l2, 6u);
        c26 = fma(vec4<f32>(a26.w), v3, fma(vec4<f32>(a26.z), v2, fma(vec4<f32>(a26.y), v1, fma(vec4<f32>(a26.x), v0, c26))));
        let a27 = subgroupBroadcast(l3, 6u);
        c27 = fma(vec4<f32>(a27.w), v3, fma(vec4<f32>(a27.z), v2, fma(vec4<f32>(a27.y), v1, fma(vec4<f32>(a27.x), v0, c27))));
        let a28 = subgroupBroadcast(l0, 7u);
        c28 = fma(vec4<f32>(a28.w), v3, fma(vec4<f32>(a28.z), v2, fma(vec4<f32>(a28.y), v1, fma(vec4<f32>(a28.x), v0, c28))));
        let a29 = subgroupBroadcast(l1, 7u);
        c29 = fma(vec4<f32>(a29.w), v3, fma(vec4<f32>(a29.z), v2, fma(vec4<f32>(a29.y), v1, fma(vec4<f32>(a29.x), v0, c29))));
        let a30 = subgroupBroadcast(l2, 7u);
        c30 = fma(vec4<f32>(a30.w), v3, fma(vec4<f32>(a30.z), v2, fma(vec4<f32>(a30.y), v1, fma(vec4<f32>(a30.x), v0, c30))));
        let a31 = subgroupBroadcast(l3, 7u);
        c31 = fma(vec4<f32>(a31.w), v3, fma(vec4<f32>(a31.z), v2, fma(vec4<f32>(a31.y), v1, fma(vec4<f32>(a31.x), v0, c31))));
    }
}
// @region entry
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
