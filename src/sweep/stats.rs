//! Statistics of a seed sweep: mean and sample standard deviation, paired differences, and a
//! seeded percentile bootstrap of a mean (deterministic: same values, seed and resample count
//! give the same interval on every platform, since the draws come from the crate's own PRNG).

use crate::rng::Rng;
use serde::Serialize;

/// Resamples of the bootstrap unless `advseg compare --resamples` says otherwise.
pub const DEFAULT_RESAMPLES: usize = 10_000;
/// Bootstrap seed unless `advseg compare --bootstrap-seed` says otherwise.
pub const DEFAULT_BOOTSTRAP_SEED: u64 = 0;

pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Sample standard deviation (n − 1 in the denominator, as `numpy.std(ddof=1)` and
/// `torch.std`); `None` below two values, where it is undefined.
pub fn std(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let m = mean(v)?;
    let ss: f64 = v.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (v.len() - 1) as f64).sqrt())
}

/// Mean ± std of a set of values (over seeds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub std: Option<f64>,
}

impl Summary {
    pub fn of(v: &[f64]) -> Option<Summary> {
        Some(Summary {
            n: v.len(),
            mean: mean(v)?,
            std: std(v),
        })
    }
}

/// `a[i] − b[i]` for every pair.
pub fn paired_differences(a: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(a.len(), b.len(), "paired values come in pairs");
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// A two-sided percentile-bootstrap confidence interval of a mean.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    /// 0.95 for a 95% interval.
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// Percentile bootstrap of the mean of `v`: `resamples` resamples of `v.len()` values drawn with
/// replacement, their means sorted, and the `(1 − level)/2` and `(1 + level)/2` quantiles read
/// with linear interpolation between order statistics (numpy's default `quantile`). With a few
/// seeds the interval is coarse (n = 3 has only 10 distinct resample means): it says how far the
/// seeds disagree, not more. With fewer than two values there is no disagreement to measure,
/// and a point "interval" would read as certainty, so there is none.
pub fn bootstrap_mean_ci(v: &[f64], level: f64, resamples: usize, seed: u64) -> Option<Interval> {
    if v.len() < 2 || resamples == 0 || !(level > 0.0 && level < 1.0) {
        return None;
    }
    let mut rng = Rng::derive(seed, &[0xb007]);
    let n = v.len();
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| v[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Some(Interval {
        lo: quantile_sorted(&means, (1.0 - level) / 2.0),
        hi: quantile_sorted(&means, (1.0 + level) / 2.0),
        level,
        resamples,
        seed,
    })
}

/// Linear-interpolation quantile of sorted values, `q` in [0, 1].
pub fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    match s.get(i + 1) {
        Some(next) => s[i] + frac * (next - s[i]),
        None => s[i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        // numpy: np.mean([2,4,4,4,5,5,7,9]) = 5, np.std(ddof=1) = 2.138089935299395
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&v), Some(5.0));
        assert!((std(&v).unwrap() - 2.138_089_935_299_395).abs() < 1e-12);
        assert_eq!(std(&[1.0]), None);
        assert_eq!(mean(&[]), None);
        assert_eq!(Summary::of(&[]), None);
        let s = Summary::of(&[0.25, 0.35]).unwrap();
        assert_eq!(s.n, 2);
        assert!((s.mean - 0.3).abs() < 1e-12);
        assert!((s.std.unwrap() - 0.1 / 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn paired_difference_per_pair() {
        let d = paired_differences(&[0.30, 0.25, 0.40], &[0.28, 0.27, 0.31]);
        for (x, want) in d.iter().zip([0.02, -0.02, 0.09]) {
            assert!((x - want).abs() < 1e-12, "{d:?}");
        }
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // np.quantile([1,2,3,4], [0, .25, .5, 1]) = [1, 1.75, 2.5, 4]
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&s, 0.0), 1.0);
        assert_eq!(quantile_sorted(&s, 0.25), 1.75);
        assert_eq!(quantile_sorted(&s, 0.5), 2.5);
        assert_eq!(quantile_sorted(&s, 1.0), 4.0);
        assert_eq!(quantile_sorted(&[7.0], 0.3), 7.0);
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_mean() {
        let v = [0.021, -0.004, 0.013, 0.030, 0.008];
        let a = bootstrap_mean_ci(&v, 0.95, 2000, 7).unwrap();
        let b = bootstrap_mean_ci(&v, 0.95, 2000, 7).unwrap();
        assert_eq!(a, b, "same seed, same interval");
        let c = bootstrap_mean_ci(&v, 0.95, 2000, 8).unwrap();
        assert_ne!((a.lo, a.hi), (c.lo, c.hi), "the seed drives the draws");
        let m = mean(&v).unwrap();
        assert!(a.lo < m && m < a.hi, "{a:?} around {m}");
        // Resample means never leave the range of the data.
        assert!(a.lo >= -0.004 && a.hi <= 0.030, "{a:?}");
        // The spread of a mean of 5 draws: ~1.96·σ/√n each side, roughly.
        let half = 1.96 * std(&v).unwrap() / 5f64.sqrt();
        assert!(
            ((a.hi - a.lo) / 2.0 - half).abs() < 0.5 * half,
            "{a:?} vs ±{half}"
        );
    }

    #[test]
    fn bootstrap_of_constant_values_is_a_point() {
        let i = bootstrap_mean_ci(&[0.5, 0.5, 0.5], 0.95, 100, 0).unwrap();
        assert_eq!((i.lo, i.hi), (0.5, 0.5));
        assert!(bootstrap_mean_ci(&[], 0.95, 100, 0).is_none());
        assert!(
            bootstrap_mean_ci(&[1.0], 0.95, 100, 0).is_none(),
            "one seed"
        );
        assert!(bootstrap_mean_ci(&[1.0], 1.0, 100, 0).is_none());
    }
}
