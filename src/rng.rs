//! A small seeded PRNG (SplitMix64) owned by the crate, so every random decision of the data
//! pipeline is reproducible across platforms and crate upgrades.

/// SplitMix64: tiny state, passes BigCrush, and `Rng::derive` makes independent streams from
/// (seed, a, b) without sharing state between loader threads.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng {
            state: mix(seed ^ 0x9e37_79b9_7f4a_7c15),
        }
    }

    /// An independent stream keyed by `seed` and a path of integers (split, epoch, index, …).
    pub fn derive(seed: u64, path: &[u64]) -> Self {
        let mut h = mix(seed.wrapping_add(0x6a09_e667_f3bc_c909));
        for &p in path {
            h = mix(h ^ mix(p.wrapping_add(0x9e37_79b9_7f4a_7c15)));
        }
        Rng { state: h }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// An independent stream keyed by `seed` and a name (e.g. a parameter's state_dict key).
    pub fn derive_named(seed: u64, name: &str) -> Self {
        // FNV-1a of the name.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Self::derive(seed, &[h])
    }

    /// Uniform in [0, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.f32()
    }

    /// Uniform integer in [0, n); n must be > 0.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    pub fn bool(&mut self, p: f32) -> bool {
        self.f32() < p
    }

    /// Standard normal (Box–Muller; one value per call keeps the stream position simple).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.f32();
        let u2 = self.f32();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// A seeded permutation of 0..n.
pub fn permutation(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::Rng;
    #[test]
    fn moments_and_determinism() {
        let mut r = Rng::new(7);
        let xs: Vec<f64> = (0..100_000).map(|_| r.normal() as f64).collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64;
        assert!(m.abs() < 0.02 && (v - 1.0).abs() < 0.02, "{m} {v}");
        assert_eq!(Rng::new(3).next_u64(), Rng::new(3).next_u64());
        assert_ne!(
            Rng::derive_named(3, "a").next_u64(),
            Rng::derive_named(3, "b").next_u64()
        );
    }
}
