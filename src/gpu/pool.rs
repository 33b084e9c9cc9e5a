//! Buffer pool: storage buffers are recycled by size class when their tensors drop, so a
//! training loop in steady state creates no new buffers.

use std::collections::HashMap;

/// Size class a request is rounded up to. Small buffers round to 256 bytes; large ones to an
/// eighth of their power of two, which bounds waste at 12.5% while letting nearby sizes share.
pub fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(16);
    if b <= 65536 {
        return b.div_ceil(256) * 256;
    }
    // Step of an eighth of the power of two at or below b: at most 12.5% waste.
    let p = if b.is_power_of_two() {
        b
    } else {
        b.next_power_of_two() / 2
    };
    let step = p / 8;
    b.div_ceil(step) * step
}

#[derive(Default)]
pub struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
}

impl Pool {
    pub fn take(&mut self, class: u64) -> Option<wgpu::Buffer> {
        self.free.get_mut(&class).and_then(|v| v.pop())
    }
    pub fn give(&mut self, class: u64, buf: wgpu::Buffer) {
        self.free.entry(class).or_default().push(buf);
    }
    /// Drops every cached buffer (frees GPU memory); live tensors are unaffected.
    pub fn clear(&mut self) -> u64 {
        let mut n = 0;
        for (class, v) in self.free.drain() {
            n += class * v.len() as u64;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;
    #[test]
    fn classes_bound_waste() {
        assert_eq!(size_class(1), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 512);
        for b in [70_000u64, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let c = size_class(b);
            assert!(c >= b && (c as f64) <= b as f64 * 1.125 + 1.0, "{b} -> {c}");
        }
    }
}
