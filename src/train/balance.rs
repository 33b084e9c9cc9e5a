//! G/D balance monitor for the adversarial methods: says when the discriminator is winning,
//! with the numbers, so the CLI log and the app can warn while the run still has time left.
//!
//! The pattern it looks for is the CamVid `advsemi` run of `docs/RESULTS.md`: D learns to call
//! every prediction fake (`d_fake_mean` fell to 0.04), G's adversarial loss climbs
//! (`loss_adv` to 6.5, i.e. −ln 0.0015) and the confidence gate of the semi-supervised loss
//! starves (the share of unlabelled pixels passing T_semi fell from 35% to 13%). Decisions use
//! means over a window of steps, so one noisy batch neither warns nor clears a warning.

use super::event::StepScalars;
use std::collections::VecDeque;

/// Thresholds of the monitor.
#[derive(Clone, Debug)]
pub struct BalanceConfig {
    /// Steps averaged per decision.
    pub window: usize,
    /// D is winning when its mean output on predictions is below this …
    pub d_fake_below: f64,
    /// … and G's adversarial loss is above this (−ln 0.1 ≈ 2.3).
    pub loss_adv_above: f64,
    /// The warning clears once the mean output on predictions is back above this.
    pub recover_above: f64,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            window: 20,
            d_fake_below: 0.1,
            loss_adv_above: 2.3,
            recover_above: 0.2,
        }
    }
}

/// What the monitor saw when it decided D is winning.
#[derive(Clone, Debug, PartialEq)]
pub struct Imbalance {
    pub step: usize,
    /// Window means.
    pub d_fake_mean: f64,
    pub d_real_mean: Option<f64>,
    pub loss_adv: f64,
    /// Share of unlabelled pixels passing the gate now (window mean) and at its best window.
    pub gate_now: Option<f64>,
    pub gate_peak: Option<f64>,
}

impl std::fmt::Display for Imbalance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "D is winning at step {}: d_fake_mean {:.3}",
            self.step, self.d_fake_mean
        )?;
        if let Some(r) = self.d_real_mean {
            write!(f, " (d_real_mean {r:.3})")?;
        }
        write!(f, ", loss_adv {:.2}", self.loss_adv)?;
        if let (Some(now), Some(peak)) = (self.gate_now, self.gate_peak) {
            write!(
                f,
                ", pixels passing the gate {:.0}% (peak {:.0}%)",
                100.0 * now,
                100.0 * peak
            )?;
        }
        write!(
            f,
            "; try a lower lambda_adv or d_lr, or stop at the best checkpoint"
        )
    }
}

/// Feed it every step's scalars; it returns an [`Imbalance`] once per episode of D winning.
#[derive(Clone, Debug, Default)]
pub struct BalanceMonitor {
    cfg: BalanceConfig,
    recent: VecDeque<[Option<f64>; 4]>,
    gate_peak: Option<f64>,
    /// The imbalance being reported, until D's outputs recover.
    pub current: Option<Imbalance>,
}

fn mean(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (s, n) = v.flatten().fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

impl BalanceMonitor {
    pub fn new(cfg: BalanceConfig) -> Self {
        BalanceMonitor {
            cfg,
            ..Default::default()
        }
    }

    /// Takes one step; returns the imbalance when this step starts one.
    pub fn observe(&mut self, s: &StepScalars) -> Option<Imbalance> {
        self.observe_values(s.step, &|k| s.get(k).map(f64::from))
    }

    /// As [`observe`](Self::observe), for scalars read back from a log.
    pub fn observe_values(
        &mut self,
        step: usize,
        get: &dyn Fn(&str) -> Option<f64>,
    ) -> Option<Imbalance> {
        let fake = get("d_fake_mean")?;
        let w = self.cfg.window.max(1);
        self.recent.push_back([
            Some(fake),
            get("loss_adv"),
            get("d_real_mean"),
            get("semi_ratio"),
        ]);
        if self.recent.len() > w {
            self.recent.pop_front();
        }
        let col = |i: usize| mean(self.recent.iter().map(|r| r[i]));
        let gate = col(3);
        if self.recent.len() == w {
            if let Some(g) = gate {
                self.gate_peak = Some(self.gate_peak.map_or(g, |p: f64| p.max(g)));
            }
        }
        let d_fake = col(0)?;
        if self.current.is_some() {
            if d_fake > self.cfg.recover_above {
                self.current = None;
            }
            return None;
        }
        let adv = col(1)?;
        if self.recent.len() < w
            || d_fake >= self.cfg.d_fake_below
            || adv <= self.cfg.loss_adv_above
        {
            return None;
        }
        let found = Imbalance {
            step,
            d_fake_mean: d_fake,
            d_real_mean: col(2),
            loss_adv: adv,
            gate_now: gate,
            gate_peak: self.gate_peak,
        };
        self.current = Some(found.clone());
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: usize, fake: f32, adv: f32, gate: f32) -> StepScalars {
        StepScalars {
            step,
            iters: 1000,
            scalars: vec![
                ("d_fake_mean".into(), fake),
                ("d_real_mean".into(), 0.9),
                ("loss_adv".into(), adv),
                ("semi_ratio".into(), gate),
            ],
            it_per_s: 1.0,
        }
    }

    /// The CamVid run's numbers: balanced at first (gate 35%), then D wins (d_fake 0.04,
    /// loss_adv 6.5, gate 13%): one warning with those numbers, none while balanced, and a
    /// new one only after a recovery.
    #[test]
    fn warns_once_when_d_wins_with_the_numbers() {
        let mut m = BalanceMonitor::default();
        let mut warnings = vec![];
        for s in 1..=100 {
            let (fake, adv, gate) = if s <= 50 {
                (0.45, 0.8, 0.35)
            } else {
                (0.04, 6.5, 0.13)
            };
            warnings.extend(m.observe(&step(s, fake, adv, gate)));
        }
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let w = &warnings[0];
        assert!(w.step > 50 && w.step <= 70, "{w:?}");
        assert!(w.d_fake_mean < 0.1 && w.loss_adv > 2.3);
        assert!((w.gate_peak.unwrap() - 0.35).abs() < 1e-6);
        let text = w.to_string();
        assert!(
            text.contains("d_fake_mean") && text.contains("peak 35%"),
            "{text}"
        );
        // Recovery clears it; winning again warns again.
        for s in 101..=140 {
            assert!(m.observe(&step(s, 0.5, 0.7, 0.3)).is_none());
        }
        assert!(m.current.is_none());
        let again = (141..=180).filter_map(|s| m.observe(&step(s, 0.02, 7.0, 0.1)));
        assert_eq!(again.count(), 1);
    }

    #[test]
    fn methods_without_d_are_ignored() {
        let mut m = BalanceMonitor::default();
        let s = StepScalars {
            step: 1,
            iters: 10,
            scalars: vec![("loss_seg".into(), 1.0)],
            it_per_s: 1.0,
        };
        assert!(m.observe(&s).is_none());
    }
}
