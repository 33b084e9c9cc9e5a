//! How much a method's own per-pixel signals mean, scored against the ground truth.
//!
//! **D's confidence.** Methods with a confidence discriminator give `conf = σ(D)` per pixel
//! (1 = "looks like ground truth"). Over the labelled (non-ignored) pixels of a split we count
//! `conf` in [`BINS`] fixed bins of width 1/BINS, separately for pixels whose argmax
//! prediction is right and wrong ([`ConfidenceHist`]; the GPU fills it with
//! `ops::signals`, this module holds the host mirror). From the two histograms:
//! - **AUROC** of the uncertainty `1 − conf` as a detector of misclassified pixels: the
//!   probability that a random wrong pixel is more uncertain than a random right one, ties
//!   counting ½ (Mann–Whitney). It is exact for the confidence quantised to 1/BINS: two
//!   pixels in the same bin tie. 0.5 = the map says nothing about errors; 1 = every wrong
//!   pixel is more uncertain than every right one; below 0.5 = inverted.
//! - **Semi gate** (`conf ≥ T_semi` keeps a pseudo-label): *precision* = share of gated
//!   pixels whose prediction equals the label, *coverage* = share of labelled pixels that
//!   pass. At the method's own T_semi both are exact counts (the kernel applies the gate's
//!   own comparison); over the grid [`gate_grid`] they come from the bins (T on a bin edge).
//!
//! **Thresholded CAM** (weak methods): the mIoU of the CAM-derived labels against the ground
//! truth is an ordinary [`super::ConfusionMatrix`] score; only the rule that turns CAMs into
//! labels is the method's (see `Method::eval_signals`).

use crate::error::{Error, Result};

/// Bins of the confidence histograms (the gate grid's edges must fall on bin edges).
pub const BINS: usize = 1000;

/// The T_semi values of the gate curve: 0.05, 0.10, …, 0.95.
pub fn gate_grid() -> Vec<f64> {
    (1..20).map(|k| k as f64 * 0.05).collect()
}

/// The bin of a confidence value: `⌊clamp(conf, 0, 1)·bins⌋`, the top edge in the last bin,
/// NaN in bin 0. `shaders/signals.wgsl` computes the same.
pub fn bin_of(conf: f32, bins: usize) -> usize {
    if conf > 0.0 {
        ((conf.min(1.0) * bins as f32) as usize).min(bins - 1)
    } else {
        0
    }
}

/// Exact gate counts at one threshold over the labelled pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GateCounts {
    pub t: f32,
    /// Labelled pixels with `conf ≥ t`.
    pub gated: u64,
    /// … of which the prediction equals the label.
    pub gated_correct: u64,
}

/// Confidence histograms of right and wrong labelled pixels, and the exact gate counts.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfidenceHist {
    pub correct: Vec<u64>,
    pub wrong: Vec<u64>,
    pub gate: Option<GateCounts>,
}

/// One point of the gate curve; precision is `None` where no pixel passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GatePoint {
    pub t: f64,
    pub precision: Option<f64>,
    pub coverage: f64,
}

/// What an evaluation reports about a method's signals (all `None`/empty where the method
/// has no such signal).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignalScores {
    /// AUROC of `1 − σ(D)` as a detector of misclassified labelled pixels.
    pub d_auroc: Option<f64>,
    /// The method's T_semi and the semi gate's precision / coverage there.
    pub gate_t: Option<f64>,
    pub gate_precision: Option<f64>,
    pub gate_coverage: Option<f64>,
    /// Precision / coverage over [`gate_grid`] (methods with a confidence D).
    pub gate_curve: Vec<GatePoint>,
    /// mIoU of the thresholded CAM labels against the ground truth.
    pub cam_miou: Option<f64>,
}

impl SignalScores {
    /// The scores of a confidence histogram (AUROC, gate at its T and the curve).
    /// Nothing is scored when no labelled pixel was counted.
    pub fn from_hist(h: &ConfidenceHist) -> SignalScores {
        if h.total() == 0 {
            return SignalScores::default();
        }
        let (gate_precision, gate_coverage) = match h.gate {
            Some(g) => {
                let total = h.total();
                (
                    (g.gated > 0).then(|| g.gated_correct as f64 / g.gated as f64),
                    (total > 0).then(|| g.gated as f64 / total as f64),
                )
            }
            None => (None, None),
        };
        SignalScores {
            d_auroc: h.auroc(),
            gate_t: h.gate.map(|g| g.t as f64),
            gate_precision,
            gate_coverage,
            gate_curve: h.curve(&gate_grid()),
            cam_miou: None,
        }
    }

    /// Whether any signal was scored.
    pub fn is_empty(&self) -> bool {
        self.d_auroc.is_none()
            && self.gate_curve.is_empty()
            && self.gate_precision.is_none()
            && self.cam_miou.is_none()
    }

    /// The fields of `metrics.jsonl` records: `d_auroc`, `gate_t`, `gate_precision`,
    /// `gate_coverage`, `gate_curve` (`{"t": [..], "precision": [..], "coverage": [..]}`,
    /// null precision where nothing passes) and `cam_miou`, each only when scored.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("d_auroc", self.d_auroc),
            ("gate_t", self.gate_t),
            ("gate_precision", self.gate_precision),
            ("gate_coverage", self.gate_coverage),
            ("cam_miou", self.cam_miou),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        if !self.gate_curve.is_empty() {
            let c = &self.gate_curve;
            m.insert(
                "gate_curve".into(),
                json!({
                    "t": c.iter().map(|p| p.t).collect::<Vec<_>>(),
                    "precision": c.iter().map(|p| p.precision).collect::<Vec<_>>(),
                    "coverage": c.iter().map(|p| p.coverage).collect::<Vec<_>>(),
                }),
            );
        }
        m
    }

    /// Reads what [`SignalScores::to_json`] wrote (missing fields stay `None`/empty).
    pub fn from_json(v: &serde_json::Value) -> SignalScores {
        let c = &v["gate_curve"];
        let list = |k: &str| c[k].as_array().cloned().unwrap_or_default();
        let (t, p, cov) = (list("t"), list("precision"), list("coverage"));
        SignalScores {
            d_auroc: v["d_auroc"].as_f64(),
            gate_t: v["gate_t"].as_f64(),
            gate_precision: v["gate_precision"].as_f64(),
            gate_coverage: v["gate_coverage"].as_f64(),
            gate_curve: t
                .iter()
                .zip(&p)
                .zip(&cov)
                .filter_map(|((t, p), c)| {
                    Some(GatePoint {
                        t: t.as_f64()?,
                        precision: p.as_f64(),
                        coverage: c.as_f64()?,
                    })
                })
                .collect(),
            cam_miou: v["cam_miou"].as_f64(),
        }
    }
}

impl ConfidenceHist {
    pub fn new(bins: usize, gate_t: Option<f32>) -> ConfidenceHist {
        ConfidenceHist {
            correct: vec![0; bins],
            wrong: vec![0; bins],
            gate: gate_t.map(|t| GateCounts {
                t,
                ..GateCounts::default()
            }),
        }
    }

    pub fn bins(&self) -> usize {
        self.correct.len()
    }

    /// Labelled pixels counted.
    pub fn total(&self) -> u64 {
        self.correct.iter().chain(&self.wrong).sum()
    }

    /// Host accumulation (the probes; the reference for the GPU kernel). `conf`, `pred` and
    /// `gt` are per pixel; `gt` pixels equal to `ignore` or outside `0..classes` are skipped.
    pub fn add<G, P>(
        &mut self,
        conf: &[f32],
        pred: &[P],
        gt: &[G],
        ignore: i64,
        classes: usize,
    ) -> Result<()>
    where
        G: Copy + Into<i64>,
        P: Copy + Into<i64>,
    {
        if conf.len() != gt.len() || pred.len() != gt.len() {
            return Err(Error::shape(
                "confidence histogram",
                &[gt.len()],
                &[conf.len(), pred.len()],
                "confidence, prediction and ground truth differ in pixel count",
            ));
        }
        let bins = self.bins();
        for ((&c, &p), &g) in conf.iter().zip(pred).zip(gt) {
            let g: i64 = g.into();
            if g == ignore || !(0..classes as i64).contains(&g) {
                continue;
            }
            let right = p.into() == g;
            let b = bin_of(c, bins);
            if right {
                self.correct[b] += 1;
            } else {
                self.wrong[b] += 1;
            }
            if let Some(gate) = &mut self.gate {
                if c >= gate.t {
                    gate.gated += 1;
                    gate.gated_correct += u64::from(right);
                }
            }
        }
        Ok(())
    }

    pub fn merge(&mut self, other: &ConfidenceHist) -> Result<()> {
        if other.bins() != self.bins() || other.gate.map(|g| g.t) != self.gate.map(|g| g.t) {
            return Err(Error::invalid(
                "confidence histogram merge",
                "bin counts or gate thresholds differ",
            ));
        }
        for (a, b) in self.correct.iter_mut().zip(&other.correct) {
            *a += b;
        }
        for (a, b) in self.wrong.iter_mut().zip(&other.wrong) {
            *a += b;
        }
        if let (Some(a), Some(b)) = (&mut self.gate, other.gate) {
            a.gated += b.gated;
            a.gated_correct += b.gated_correct;
        }
        Ok(())
    }

    /// AUROC of `1 − conf` for "the prediction is wrong": P(conf_wrong < conf_right) +
    /// ½ P(same bin). `None` unless both right and wrong pixels exist.
    pub fn auroc(&self) -> Option<f64> {
        let n_right: u64 = self.correct.iter().sum();
        let n_wrong: u64 = self.wrong.iter().sum();
        if n_right == 0 || n_wrong == 0 {
            return None;
        }
        // Right pixels in bins above the current one, walked from the top (u128: the pair
        // count of a whole split can pass 2^64).
        let mut right_above: u128 = 0;
        let mut twice_pairs: u128 = 0;
        for b in (0..self.bins()).rev() {
            let (r, w) = (self.correct[b] as u128, self.wrong[b] as u128);
            twice_pairs += w * (2 * right_above + r);
            right_above += r;
        }
        Some(twice_pairs as f64 / 2.0 / (n_right as f64 * n_wrong as f64))
    }

    /// Gate precision / coverage at `t` from the bins: pixels in bins from the edge nearest
    /// to `t` upwards pass.
    pub fn gate_at(&self, t: f64) -> GatePoint {
        let bins = self.bins();
        let k = ((t * bins as f64).round().max(0.0) as usize).min(bins);
        let right: u64 = self.correct[k..].iter().sum();
        let gated = right + self.wrong[k..].iter().sum::<u64>();
        let total = self.total();
        GatePoint {
            t,
            precision: (gated > 0).then(|| right as f64 / gated as f64),
            coverage: if total > 0 {
                gated as f64 / total as f64
            } else {
                0.0
            },
        }
    }

    pub fn curve(&self, ts: &[f64]) -> Vec<GatePoint> {
        ts.iter().map(|&t| self.gate_at(t)).collect()
    }
}

/// One probe image's maps for [`probe_scores`]: D's confidence, the gate the method applied
/// (0/1, e.g. `semi_mask`) if any, prediction and ground truth, HxW each.
pub struct ProbeMaps<'a> {
    pub conf: &'a [f32],
    pub gate: Option<&'a [f32]>,
    pub pred: &'a [u8],
    pub gt: &'a [u8],
}

/// The signal scores of a few probe images, on the host (their maps are read back for the
/// snapshot anyway). The gate is read from the method's own gate map, so it is exact without
/// knowing T_semi; `gate_t` stays `None`.
pub fn probe_scores(probes: &[ProbeMaps<'_>], ignore: u8, classes: usize) -> Result<SignalScores> {
    let mut h = ConfidenceHist::new(BINS, None);
    let (mut gated, mut gated_right, mut any_gate) = (0u64, 0u64, false);
    for p in probes {
        h.add(p.conf, p.pred, p.gt, ignore as i64, classes)?;
        if let Some(g) = p.gate {
            if g.len() != p.gt.len() {
                return Err(Error::shape(
                    "probe gate map",
                    &[p.gt.len()],
                    &[g.len()],
                    "gate map and ground truth differ in pixel count",
                ));
            }
            any_gate = true;
            for ((&m, &y), &q) in g.iter().zip(p.gt).zip(p.pred) {
                if y != ignore && (y as usize) < classes && m > 0.5 {
                    gated += 1;
                    gated_right += u64::from(q == y);
                }
            }
        }
    }
    let mut s = SignalScores::from_hist(&h);
    if any_gate {
        let total = h.total();
        s.gate_precision = (gated > 0).then(|| gated_right as f64 / gated as f64);
        s.gate_coverage = (total > 0).then(|| gated as f64 / total as f64);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn bins_clamp_and_nan() {
        assert_eq!(bin_of(0.0, 10), 0);
        assert_eq!(bin_of(0.0999, 10), 0);
        assert_eq!(bin_of(0.1, 10), 1);
        assert_eq!(bin_of(1.0, 10), 9);
        assert_eq!(bin_of(7.0, 10), 9);
        assert_eq!(bin_of(-1.0, 10), 0);
        assert_eq!(bin_of(f32::NAN, 10), 0);
    }

    /// Four labelled pixels and one ignored, by hand:
    /// conf 0.9 right, 0.7 wrong, 0.35 right, 0.15 wrong, (0.5 ignored); 10 bins, T = 0.3.
    fn four() -> ConfidenceHist {
        let mut h = ConfidenceHist::new(10, Some(0.3));
        let conf = [0.9f32, 0.7, 0.35, 0.15, 0.5];
        let gt = [1u8, 1, 0, 2, 255];
        let pred = [1u8, 0, 0, 1, 1];
        h.add(&conf, &pred, &gt, 255, 3).unwrap();
        h
    }

    #[test]
    fn auroc_by_hand() {
        let h = four();
        assert_eq!(h.total(), 4);
        // Pairs (wrong, right): (0.7, 0.9) ordered, (0.7, 0.35) inverted, (0.15, 0.9) and
        // (0.15, 0.35) ordered: 3 of 4.
        close(h.auroc().unwrap(), 0.75);
        // A tie in one bin counts ½: wrong 0.71 and right 0.72 share bin 7.
        let mut t = ConfidenceHist::new(10, None);
        t.add(&[0.71f32, 0.72], &[0u8, 1], &[1u8, 1], 255, 2)
            .unwrap();
        close(t.auroc().unwrap(), 0.5);
        // Perfect and inverted detectors.
        let mut p = ConfidenceHist::new(10, None);
        p.add(&[0.9f32, 0.1], &[1u8, 0], &[1u8, 1], 255, 2).unwrap();
        close(p.auroc().unwrap(), 1.0);
        let mut q = ConfidenceHist::new(10, None);
        q.add(&[0.1f32, 0.9], &[1u8, 0], &[1u8, 1], 255, 2).unwrap();
        close(q.auroc().unwrap(), 0.0);
        // No wrong pixel: undefined.
        let mut r = ConfidenceHist::new(10, None);
        r.add(&[0.1f32], &[1u8], &[1u8], 255, 2).unwrap();
        assert_eq!(r.auroc(), None);
    }

    #[test]
    fn gate_by_hand() {
        let h = four();
        // conf ≥ 0.3: 0.9 (right), 0.7 (wrong), 0.35 (right) → precision 2/3, coverage 3/4.
        let g = h.gate.unwrap();
        assert_eq!((g.gated, g.gated_correct), (3, 2));
        let s = SignalScores::from_hist(&h);
        close(s.gate_precision.unwrap(), 2.0 / 3.0);
        close(s.gate_coverage.unwrap(), 0.75);
        assert_eq!(s.gate_t, Some(0.3f32 as f64));
        // The binned gate at the same T agrees.
        let p = h.gate_at(0.3);
        close(p.precision.unwrap(), 2.0 / 3.0);
        close(p.coverage, 0.75);
        // T = 0.8: only 0.9 → 1/1, 1/4; T = 0.97: nothing passes.
        let p = h.gate_at(0.8);
        close(p.precision.unwrap(), 1.0);
        close(p.coverage, 0.25);
        let p = h.gate_at(0.97);
        assert_eq!(p.precision, None);
        close(p.coverage, 0.0);
        assert_eq!(s.gate_curve.len(), 19);
        close(s.gate_curve[0].t, 0.05);
        close(s.gate_curve[0].coverage, 1.0);
        close(s.gate_curve[0].precision.unwrap(), 0.5);
    }

    #[test]
    fn merge_adds_and_checks() {
        let mut a = four();
        a.merge(&four()).unwrap();
        assert_eq!(a.total(), 8);
        assert_eq!(a.gate.unwrap().gated, 6);
        close(a.auroc().unwrap(), 0.75);
        let err = a.merge(&ConfidenceHist::new(20, Some(0.3))).unwrap_err();
        assert!(err.to_string().contains("differ"), "{err}");
        let err = a
            .add(&[0.5f32], &[0u8, 1], &[0u8], 255, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pixel count"), "{err}");
    }

    #[test]
    fn probes_gate_from_mask() {
        // The `four` pixels as one probe, gated by a mask that passes the first three.
        let conf = [0.9f32, 0.7, 0.35, 0.15, 0.5];
        let gt = [1u8, 1, 0, 2, 255];
        let pred = [1u8, 0, 0, 1, 1];
        let gate = [1.0f32, 1.0, 1.0, 0.0, 1.0];
        let p = ProbeMaps {
            conf: &conf,
            gate: Some(&gate),
            pred: &pred,
            gt: &gt,
        };
        let s = probe_scores(&[p], 255, 3).unwrap();
        close(s.d_auroc.unwrap(), 0.75);
        close(s.gate_precision.unwrap(), 2.0 / 3.0);
        close(s.gate_coverage.unwrap(), 0.75);
        assert_eq!(s.gate_t, None);
        let bad = ProbeMaps {
            conf: &conf,
            gate: Some(&gate[..2]),
            pred: &pred,
            gt: &gt,
        };
        assert!(probe_scores(&[bad], 255, 3).is_err());
    }

    #[test]
    fn empty_is_undefined() {
        let s = SignalScores::from_hist(&ConfidenceHist::new(BINS, Some(0.2)));
        assert_eq!(s.d_auroc, None);
        assert_eq!(s.gate_precision, None);
        assert_eq!(s.gate_coverage, None);
        assert!(s.gate_curve.is_empty());
        assert!(s.is_empty());
        assert!(s.to_json().is_empty());
    }

    #[test]
    fn json_round_trip() {
        let mut s = SignalScores::from_hist(&four());
        s.cam_miou = Some(0.25);
        let v = serde_json::Value::Object(s.to_json());
        assert_eq!(v["gate_curve"]["t"].as_array().unwrap().len(), 19);
        assert!(v["gate_curve"]["precision"][18].is_null());
        assert_eq!(SignalScores::from_json(&v), s);
    }
}
