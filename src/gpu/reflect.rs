//! Which bindings each entry point uses, from naga's analysis of its (composed) shader.
//! Pipelines lay out and bind only those: a kernel that shares a shader's binding list but
//! reads two of its buffers no longer pays for the others against the storage-buffer limit
//! (4 per stage in wgpu's downlevel limits, 8 in WebGPU's). Callers still pass every slot in
//! order; the unused ones (`Gpu::unused()` placeholders) are skipped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Entry point → sorted binding numbers (group 0) it reads or writes.
type Uses = HashMap<String, Vec<u32>>;

/// Per shader, computed once per process (the sources are compiled in).
fn cache() -> &'static Mutex<HashMap<String, Arc<Uses>>> {
    static C: OnceLock<Mutex<HashMap<String, Arc<Uses>>>> = OnceLock::new();
    C.get_or_init(Mutex::default)
}

/// Bindings used by each entry point of `source`.
pub fn analyse(source: &str) -> Result<Uses, String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    // Every capability: this is analysis, not a check of what the adapter supports (wgpu
    // validates the pipeline against the device itself).
    let mut v = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    );
    v.subgroup_stages(naga::valid::ShaderStages::all());
    v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
    let info = v.validate(&module).map_err(|e| e.emit_to_string(source))?;
    let mut uses = Uses::new();
    for (i, ep) in module.entry_points.iter().enumerate() {
        let f = info.get_entry_point(i);
        let mut b: Vec<u32> = module
            .global_variables
            .iter()
            .filter(|(h, _)| !f[*h].is_empty())
            .filter_map(|(_, g)| g.binding.as_ref().filter(|r| r.group == 0))
            .map(|r| r.binding)
            .collect();
        b.sort_unstable();
        uses.insert(ep.name.clone(), b);
    }
    Ok(uses)
}

/// Bindings `entry` of shader `name` (WGSL `source`) uses, sorted.
pub fn used_bindings(name: &str, source: &str, entry: &str) -> Result<Vec<u32>, String> {
    let uses = {
        let mut c = cache().lock().unwrap_or_else(|p| p.into_inner());
        match c.get(name) {
            Some(u) => u.clone(),
            None => {
                let u = Arc::new(analyse(source).map_err(|e| format!("shaders/{name}: {e}"))?);
                c.insert(name.to_string(), u.clone());
                u
            }
        }
    };
    uses.get(entry)
        .cloned()
        .ok_or_else(|| format!("shaders/{name}.wgsl has no entry point {entry:?}"))
}
