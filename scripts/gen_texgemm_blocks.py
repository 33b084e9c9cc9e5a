#!/usr/bin/env python3
"""Prints the unrolled register-block code of shaders/texgemm.wgsl and its subgroup variant
(WGSL has no macros, and a private array indexed in loops is spilled by lavapipe).

    python3 scripts/gen_texgemm_blocks.py           # print every block
    python3 scripts/gen_texgemm_blocks.py --check   # each block must appear verbatim in the shaders

Edit a block here, print it, paste it over the old one, and run --check.
"""
import sys
from pathlib import Path

ROWS = 32
FMA = ("{ind}c{i} = fma(vec4<f32>({a}.w), v3, fma(vec4<f32>({a}.z), v2, "
       "fma(vec4<f32>({a}.y), v1, fma(vec4<f32>({a}.x), v0, c{i}))));")
SIG = ("fn acc(ax: i32, ay: i32, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, "
       "sl: u32) {")


def decls():
    return "\n".join(f"var<private> c{i}: vec4<f32>;" for i in range(ROWS))


def zero():
    return "\n".join(["fn zero_acc() {"] + [f"    c{i} = vec4<f32>(0.0);" for i in range(ROWS)] + ["}"])


def guarded(line_of_row):
    """Rows 0..7 always, 8..15 when RM > 8, 16..31 when RM > 16."""
    out = []
    for i in range(8):
        out += line_of_row(i, "    ")
    for lo, hi, cond in ((8, 16, "RM > 8u"), (16, 32, "RM > 16u")):
        out.append(f"    if ({cond}) {{")
        for i in range(lo, hi):
            out += line_of_row(i, "        ")
        out.append("    }")
    return out


def acc_plain():
    def row(i, ind):
        return [f"{ind}let a{i} = textureLoad(ta, vec2<i32>(ax + {i}, ay), 0);",
                FMA.format(ind=ind, i=i, a=f"a{i}")]
    return "\n".join([SIG] + guarded(row) + ["}"])


def acc_subgroup():
    out = [SIG]
    for rm in (8, 16, 32):
        q = rm // 8
        out.append(f"    {'if' if rm == 8 else '} else if'} (RM == {rm}u) {{")
        for j in range(q):
            out.append(f"        let l{j} = textureLoad(ta, vec2<i32>(ax + i32(sl * {q}u) + {j}, ay), 0);")
        for r in range(rm):
            out.append(f"        let a{r} = subgroupBroadcast(l{r % q}, {r // q}u);")
            out.append(FMA.format(ind="        ", i=r, a=f"a{r}"))
    out += ["    }", "}"]
    return "\n".join(out)


def emit_all():
    def row(i, ind):
        return [f"{ind}put(z, m0 + {i}u, col, c{i});"]
    return "\n".join(["fn emit_all(z: u32, m0: u32, col: u32) {"] + guarded(row) + ["}"])


BLOCKS = {
    "shaders/texgemm.wgsl": [decls, zero, acc_plain, emit_all],
    "shaders/variants/texgemm_sg.wgsl": [acc_subgroup],
}


def main():
    root = Path(__file__).resolve().parent.parent
    if "--check" in sys.argv:
        bad = [f"{f}: {g.__name__}" for f, gens in BLOCKS.items()
               for g in gens if g() not in (root / f).read_text()]
        if bad:
            sys.exit("out of date: " + ", ".join(bad))
        print("all generated blocks match")
        return
    for f, gens in BLOCKS.items():
        for g in gens:
            print(f"// ---- {f}: {g.__name__}\n{g()}\n")


if __name__ == "__main__":
    main()
