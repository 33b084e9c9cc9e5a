//! Learning-rate schedules.

/// Polynomial decay `base·(1 − step/max_steps)^power`, 0 from `max_steps` on (and for
/// `max_steps == 0`).
pub fn poly_lr(base: f32, step: usize, max_steps: usize, power: f32) -> f32 {
    if step >= max_steps {
        return 0.0;
    }
    let frac = 1.0 - step as f64 / max_steps as f64;
    (base as f64 * frac.powf(power as f64)) as f32
}

#[cfg(test)]
mod tests {
    use super::poly_lr;
    #[test]
    fn poly_decays_to_zero() {
        assert_eq!(poly_lr(0.01, 0, 100, 0.9), 0.01);
        assert!((poly_lr(0.01, 50, 100, 1.0) - 0.005).abs() < 1e-9);
        assert!((poly_lr(2.5e-4, 10, 20, 0.9) - 2.5e-4 * 0.5f32.powf(0.9)).abs() < 1e-9);
        assert_eq!(poly_lr(0.01, 100, 100, 0.9), 0.0);
        assert_eq!(poly_lr(0.01, 150, 100, 0.9), 0.0);
        assert_eq!(poly_lr(0.01, 0, 0, 0.9), 0.0);
    }
}
