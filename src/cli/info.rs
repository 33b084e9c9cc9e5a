//! `advseg info`: adapters and the chosen one.

use advseg::gpu::device;
use anyhow::Result;

pub fn run() -> Result<()> {
    let (adapters, chosen) = device::survey()?;
    if adapters.is_empty() {
        outln!("no adapters found")?;
    }
    for (i, s) in adapters.iter().enumerate() {
        let mark = if chosen.as_ref().ok() == Some(&i) {
            "*"
        } else {
            " "
        };
        outln!("{mark} [{i}] {} ({}, {})", s.name, s.backend, s.device_type)?;
        outln!("      driver: {}", s.driver)?;
        outln!(
            "      max_storage_buffer_binding_size {} MiB, max_buffer_size {} MiB, workgroup storage {} KiB, invocations/workgroup {}, workgroups/dim {}, storage buffers/stage {}",
            s.max_storage_buffer_binding_size >> 20,
            s.max_buffer_size >> 20,
            s.max_compute_workgroup_storage_size >> 10,
            s.max_compute_invocations_per_workgroup,
            s.max_compute_workgroups_per_dimension,
            s.max_storage_buffers_per_shader_stage,
        )?;
    }
    match chosen {
        Ok(i) => outln!("advseg would use adapter [{i}] (* above)")?,
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
