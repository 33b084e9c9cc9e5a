//! Fallback for adapters that allow fewer storage buffers per shader stage than a fused kernel
//! uses (wgpu's downlevel limit is 4): some of the entry point's read-only inputs are merged
//! into one `array<u32>` binding. The WGSL is rewritten so each `NAME[i]` of a merged input
//! reads `_merged` at that input's word offset, and `arrayLength(&NAME)` reads its length; the
//! offsets and lengths come from a small uniform (`_moff`). At dispatch the bound ranges are
//! copied into one temporary buffer (`dispatch.rs`). Slower (a copy per dispatch), but the
//! kernel is the same code, so results are bit-identical.

/// Binding of the `_moff` uniform (offset and length of each merged input, in that order).
pub const MOFF_BINDING: u32 = 15;
/// Bytes of the `_moff` uniform: `array<vec4<u32>, 4>`, room for 8 inputs.
pub const MOFF_BYTES: u64 = 64;
const MAX_INPUTS: usize = 8;

/// How a merged pipeline binds its merged inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merge {
    /// Binding of `_merged`: the lowest merged binding number.
    pub binding: u32,
    /// Merged bindings in `_moff` order, with their element size in 4-byte words.
    pub inputs: Vec<(u32, u32)>,
}

/// A rewritten shader and its merge plan.
#[derive(Clone, Debug)]
pub struct Merged {
    pub source: String,
    pub merge: Merge,
}

/// A read-only storage array that can be merged: binding, name, element type, words/element.
struct Input {
    binding: u32,
    name: String,
    ty: String,
    words: u32,
}

/// WGSL type and words per element of a mergeable array element type (4-byte scalars and
/// vectors of them).
fn element(m: &naga::Module, ty: naga::Handle<naga::Type>) -> Option<(String, u32)> {
    use naga::{ScalarKind, TypeInner};
    let name = |s: naga::Scalar| match (s.kind, s.width) {
        (ScalarKind::Float, 4) => Some("f32"),
        (ScalarKind::Uint, 4) => Some("u32"),
        (ScalarKind::Sint, 4) => Some("i32"),
        _ => None,
    };
    match m.types[ty].inner {
        TypeInner::Scalar(s) => Some((name(s)?.to_string(), 1)),
        TypeInner::Vector { size, scalar } => {
            let n = size as u32;
            Some((format!("vec{n}<{}>", name(scalar)?), n))
        }
        _ => None,
    }
}

/// Merges `k` of the read-only storage bindings `candidates` (those of the entry point bound
/// `Access::Read`) of `source`. Bindings whose type is not a runtime-sized array of 4-byte
/// scalars or vectors, or whose name is used other than as `NAME[i]` or `arrayLength(&NAME)`,
/// are not merged; the highest-numbered mergeable ones are (small per-channel or scalar inputs
/// tend to come last). Errors when fewer than `k` qualify.
pub fn merge(source: &str, candidates: &[u32], k: usize) -> Result<Merged, String> {
    if k > MAX_INPUTS {
        return Err(format!("{k} inputs to merge, at most {MAX_INPUTS}"));
    }
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    let mut inputs = Vec::new();
    for (_, g) in module.global_variables.iter() {
        let Some(name) = g.name.as_deref() else {
            continue;
        };
        if name.starts_with("_m") {
            return Err(format!("global {name:?} collides with the merge's names"));
        }
        let Some(rb) = g.binding.as_ref().filter(|b| b.group == 0) else {
            continue;
        };
        if rb.binding == MOFF_BINDING {
            return Err(format!("binding {MOFF_BINDING} is taken by {name:?}"));
        }
        let naga::AddressSpace::Storage { access } = g.space else {
            continue;
        };
        if access.contains(naga::StorageAccess::STORE) || !candidates.contains(&rb.binding) {
            continue;
        }
        let naga::TypeInner::Array {
            base,
            size: naga::ArraySize::Dynamic,
            ..
        } = module.types[g.ty].inner
        else {
            continue;
        };
        if let Some((ty, words)) = element(&module, base) {
            inputs.push(Input {
                binding: rb.binding,
                name: name.to_string(),
                ty,
                words,
            });
        }
    }
    inputs.sort_by_key(|i| std::cmp::Reverse(i.binding));
    let text = strip_comments(source);
    loop {
        if inputs.len() < k {
            return Err(format!(
                "{} of the read-only inputs can be merged, {k} needed",
                inputs.len()
            ));
        }
        let mut chosen: Vec<&Input> = inputs[..k].iter().collect();
        chosen.sort_by_key(|i| i.binding);
        match rewrite(&text, &chosen) {
            Ok(source) => {
                return Ok(Merged {
                    source,
                    merge: Merge {
                        binding: chosen[0].binding,
                        inputs: chosen.iter().map(|i| (i.binding, i.words)).collect(),
                    },
                })
            }
            // That input is used in a way the rewrite cannot express: try the others.
            Err(bad) => inputs.retain(|i| i.name != bad),
        }
    }
}

/// `source` without `//` and (nested) `/* */` comments (a comment may mention a name).
fn strip_comments(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(b' ');
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("comments end at ASCII boundaries")
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Identifier tokens of `s`: (start, end), skipping member accesses (`v.x`).
fn tokens(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if ident_char(b[i]) {
            let start = i;
            while i < b.len() && ident_char(b[i]) {
                i += 1;
            }
            let prev = s[..start].trim_end().as_bytes().last().copied();
            if !b[start].is_ascii_digit() && prev != Some(b'.') {
                v.push((start, i));
            }
        } else {
            i += 1;
        }
    }
    v
}

fn next_char(s: &str, at: usize) -> Option<(usize, u8)> {
    let rest = &s[at..];
    let t = rest.trim_start();
    t.as_bytes()
        .first()
        .map(|&c| (at + rest.len() - t.len(), c))
}

/// `_moff[a][b]` of flat word `w`.
fn moff(w: usize) -> String {
    format!("_moff[{}][{}]", w / 4, w % 4)
}

/// The rewritten module, or the name of a chosen input used in another way.
fn rewrite(text: &str, chosen: &[&Input]) -> Result<String, String> {
    let mut s = text.to_string();
    // Declarations of the merged inputs go.
    for inp in chosen {
        let decl = tokens(&s).into_iter().find(|&(a, e)| {
            s[a..e] == inp.name
                && s[..a].trim_end().ends_with('>')
                && next_char(&s, e).map(|c| c.1) == Some(b':')
        });
        let Some((a, _)) = decl else {
            return Err(inp.name.clone());
        };
        let start = s[..a].rfind([';', '}']).map_or(0, |p| p + 1);
        let Some(end) = s[a..].find(';').map(|p| a + p + 1) else {
            return Err(inp.name.clone());
        };
        if !s[start..end].contains("var<storage") {
            return Err(inp.name.clone());
        }
        s.replace_range(start..end, "");
    }
    // arrayLength(&NAME) → the length from `_moff`.
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(p) = rest.find("arrayLength") {
        let before_ok = rest.as_bytes()[..p]
            .last()
            .is_none_or(|&c| !ident_char(c) && c != b'.');
        let after = &rest[p + "arrayLength".len()..];
        let parsed = after
            .trim_start()
            .strip_prefix('(')
            .map(str::trim_start)
            .and_then(|t| t.strip_prefix('&'))
            .map(str::trim_start)
            .and_then(|t| {
                let n = t.bytes().take_while(|&c| ident_char(c)).count();
                let name = &t[..n];
                let t = t[n..].trim_start().strip_prefix(')')?;
                Some((name, t))
            });
        match parsed {
            Some((name, tail)) if before_ok => {
                if let Some(j) = chosen.iter().position(|i| i.name == name) {
                    out.push_str(&rest[..p]);
                    out.push_str(&format!("_mlen{j}()"));
                    rest = tail;
                    continue;
                }
            }
            _ => {}
        }
        out.push_str(&rest[..p + "arrayLength".len()]);
        rest = &rest[p + "arrayLength".len()..];
    }
    out.push_str(rest);
    let mut s = index(&out, chosen)?;
    // The merged binding, the offsets uniform and one accessor per input.
    s.push_str(&format!(
        "\n@group(0) @binding({}) var<storage, read> _merged: array<u32>;\n\
         @group(0) @binding({MOFF_BINDING}) var<uniform> _moff: array<vec4<u32>, 4>;\n",
        chosen[0].binding
    ));
    for (j, inp) in chosen.iter().enumerate() {
        let (off, len) = (moff(2 * j), moff(2 * j + 1));
        s.push_str(&format!("fn _mlen{j}() -> u32 {{ return {len}; }}\n"));
        let body = if inp.words == 1 {
            let w = format!("_merged[{off} + min(i, {len} - 1u)]");
            if inp.ty == "u32" {
                w
            } else {
                format!("bitcast<{}>({w})", inp.ty)
            }
        } else {
            let n = inp.words;
            let parts: Vec<String> = (0..n).map(|c| format!("_merged[k + {c}u]")).collect();
            let scalar = &inp.ty[inp.ty.find('<').unwrap_or(0)..];
            return_vec(&inp.ty, n, scalar, &parts, &off, &len)
        };
        let body = if inp.words == 1 {
            format!("return {body};")
        } else {
            body
        };
        s.push_str(&format!("fn _m{j}(i: u32) -> {} {{ {body} }}\n", inp.ty));
    }
    Ok(s)
}

fn return_vec(ty: &str, n: u32, scalar: &str, parts: &[String], off: &str, len: &str) -> String {
    let words = format!("vec{n}<u32>({})", parts.join(", "));
    let value = if scalar == "<u32>" {
        words
    } else {
        format!("bitcast<{ty}>({words})")
    };
    format!("let k = {off} + {n}u * min(i, {len} - 1u); return {value};")
}

/// Every `NAME[expr]` of a chosen input → `_mJ(u32(expr))` (inner indexes rewritten too);
/// any other remaining use of a chosen name is an error naming it.
fn index(s: &str, chosen: &[&Input]) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for (a, e) in tokens(s) {
        if a < at {
            continue; // inside an index already rewritten
        }
        let Some(j) = chosen.iter().position(|i| i.name == s[a..e]) else {
            continue;
        };
        let bad = || chosen[j].name.clone();
        let Some((open, b'[')) = next_char(s, e) else {
            return Err(bad());
        };
        if s[..a].trim_end().ends_with('&') {
            return Err(bad());
        }
        let mut depth = 0;
        let mut close = None;
        for (p, c) in s[open..].bytes().enumerate() {
            match c {
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(open + p);
                        break;
                    }
                }
                _ => {}
            }
        }
        let close = close.ok_or_else(bad)?;
        let inner = index(&s[open + 1..close], chosen)?;
        out.push_str(&s[at..a]);
        out.push_str(&format!("_m{j}(u32({inner}))"));
        at = close + 1;
    }
    out.push_str(&s[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "
        @group(0) @binding(0) var<uniform> p: vec4<u32>;
        // x is read as vec4s; a, b and c as scalars
        @group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
        @group(0) @binding(2) var<storage, read> a: array<f32>;
        @group(0) @binding(3) var<storage, read> b: array<i32>;
        @group(0) @binding(4) var<storage, read> c: array<u32>;
        @group(0) @binding(5) var<storage, read_write> out: array<f32>;
        fn xs(e: u32) -> f32 { return x[e >> 2u][e & 3u]; }
        @compute @workgroup_size(1) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
            let i = g.x + p.x;
            out[i] = xs(i) + a[u32(b[i])] + f32(c[i] + arrayLength(&c)) + f32(arrayLength(&a));
        }";

    #[test]
    fn merges_the_highest_read_only_inputs_and_validates() {
        let m = merge(SRC, &[1, 2, 3, 4], 3).unwrap();
        assert_eq!(
            m.merge,
            Merge {
                binding: 2,
                inputs: vec![(2, 1), (3, 1), (4, 1)]
            }
        );
        let uses = crate::gpu::reflect::analyse(&m.source).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(uses["main"], [0, 1, 2, 5, MOFF_BINDING]);
        assert!(
            m.source.contains("_m0(u32(u32(_m1(u32(i)))))"),
            "{}",
            m.source
        );
        // All four, vec4 included.
        let m = merge(SRC, &[1, 2, 3, 4], 4).unwrap();
        assert_eq!(m.merge.inputs, [(1, 4), (2, 1), (3, 1), (4, 1)]);
        let uses = crate::gpu::reflect::analyse(&m.source).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(uses["main"], [0, 1, 5, MOFF_BINDING]);
    }

    #[test]
    fn other_uses_and_too_few_inputs_are_refused() {
        assert!(merge(SRC, &[1, 2, 3, 4], 5).is_err());
        assert!(merge(SRC, &[2, 3], 3).is_err());
        // A pointer to `a` is another use: only b and c remain.
        let src = SRC.replace("f32(arrayLength(&a))", "(*(&a))[0]");
        let m = merge(&src, &[2, 3, 4], 2).unwrap();
        assert_eq!(m.merge.inputs, [(3, 1), (4, 1)]);
        assert!(merge(&src, &[2, 3, 4], 3).is_err());
    }
}
