//! RRM's reliable-label rules (methods.md §4.2, `tool/myTool.py`) on host slices, one image at
//! a time. The maps are small (label-sized) and the rules are sorts and per-pixel selections,
//! so they run on the CPU after the GPU has produced the normalised CAMs and both CRF results.
//!
//! Layouts: per-class maps are `[K or C, HW]` row-major planes; `K` = foreground classes,
//! `C = K + 1` with background at index 0. Labels are class ids or `ignore`.

/// Thresholds of the rules; defaults are RRM's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelRules {
    /// α of the low- and high-α background scores (4 and 32).
    pub alpha_low: f32,
    pub alpha_high: f32,
    /// Quantile of a class's sorted CAM values whose value is its confidence threshold (0.6:
    /// about the top 40% are confident).
    pub top_quantile: f32,
    /// CAM values at or below this do not enter the sorted list (0.1).
    pub cam_floor: f32,
    /// Background is CAM-confident where the high-α score exceeds this (0.8).
    pub bg_conf: f32,
    /// A pixel is CRF-confident where its best CRF probability reaches this (0.8).
    pub crf_conf: f32,
    pub ignore: i32,
}

impl Default for LabelRules {
    fn default() -> Self {
        LabelRules {
            alpha_low: 4.0,
            alpha_high: 32.0,
            top_quantile: 0.6,
            cam_floor: 0.1,
            bg_conf: 0.8,
            crf_conf: 0.8,
            ignore: 255,
        }
    }
}

/// Background score `(1 − max_c N_c)^α` per pixel; `norm` is [K, HW] (K may be 0: all 1).
pub fn bg_score(norm: &[f32], hw: usize, alpha: f32) -> Vec<f32> {
    (0..hw)
        .map(|i| {
            let m = norm.chunks_exact(hw).map(|p| p[i]).fold(0.0f32, f32::max);
            (1.0 - m).max(0.0).powf(alpha)
        })
        .collect()
}

/// Per-pixel argmax of [C, HW] scores over the `allowed` channels (all when `None`); the first
/// maximum wins, as `np.argmax`.
pub fn argmax_allowed(scores: &[f32], hw: usize, allowed: Option<&[bool]>) -> Vec<usize> {
    let c = scores.len() / hw.max(1);
    (0..hw)
        .map(|i| {
            let mut best = (usize::MAX, f32::NEG_INFINITY);
            for k in 0..c {
                if allowed.is_some_and(|a| !a[k]) {
                    continue;
                }
                let v = scores[k * hw + i];
                if best.0 == usize::MAX || v > best.1 {
                    best = (k, v);
                }
            }
            if best.0 == usize::MAX {
                0
            } else {
                best.0
            }
        })
        .collect()
}

/// The CAM argmax map `argmax([B_high, N_1..N_K])` → 0..=K.
pub fn cam_argmax(bg_high: &[f32], norm: &[f32], hw: usize) -> Vec<usize> {
    let mut stack = bg_high.to_vec();
    stack.extend_from_slice(norm);
    argmax_allowed(&stack, hw, None)
}

/// The top-(1 − q) rule's threshold: the values above `floor`, sorted ascending, at index
/// ⌊q·count⌋. `None` when no value passes the floor (the official code indexes an empty list
/// there and fails).
pub fn quantile_threshold(values: &[f32], q: f32, floor: f32) -> Option<f32> {
    let mut v: Vec<f32> = values.iter().copied().filter(|&x| x > floor).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let i = ((q * v.len() as f32).floor() as usize).min(v.len() - 1);
    Some(v[i])
}

/// The initial label from the argmaxes of the low-α (`la`, generous background) and high-α
/// (`ha`, small background) CRFs: la's class where la says foreground, `ignore` where la says
/// background, then background wherever even ha says background (PSA's rule; ha wins).
pub fn combine_la_ha(la: &[usize], ha: &[usize], ignore: i32) -> Vec<i32> {
    la.iter()
        .zip(ha)
        .map(|(&l, &h)| match (l, h) {
            (_, 0) => 0,
            (0, _) => ignore,
            (l, _) => l as i32,
        })
        .collect()
}

/// CAM-confident pixels (§4.2 step 5): for each foreground class `c` in la's label set
/// (`in_la` [C]), the pixels whose CAM argmax is `c` and whose `N_c` exceeds that class's
/// [`quantile_threshold`]; background (if in the set) where the CAM argmax is background and
/// `B_high > bg_conf`.
pub fn cam_confident(
    norm: &[f32],
    bg_high: &[f32],
    cam_arg: &[usize],
    in_la: &[bool],
    rules: &LabelRules,
) -> Vec<bool> {
    let hw = bg_high.len();
    let mut conf = vec![false; hw];
    if in_la.first() == Some(&true) {
        for i in 0..hw {
            conf[i] |= cam_arg[i] == 0 && bg_high[i] > rules.bg_conf;
        }
    }
    for (c, _) in in_la.iter().enumerate().skip(1).filter(|(_, &on)| on) {
        let Some(plane) = norm.get((c - 1) * hw..c * hw) else {
            continue;
        };
        let vals: Vec<f32> = (0..hw)
            .filter(|&i| cam_arg[i] == c)
            .map(|i| plane[i])
            .collect();
        if let Some(th) = quantile_threshold(&vals, rules.top_quantile, rules.cam_floor) {
            for i in 0..hw {
                conf[i] |= cam_arg[i] == c && plane[i] > th;
            }
        }
    }
    conf
}

/// CRF-confident pixels (§4.2 step 6): `max(ha[0], la[1..C]) ≥ conf` for [C, HW] CRF
/// probabilities.
pub fn crf_confident(la: &[f32], ha: &[f32], hw: usize, conf: f32) -> Vec<bool> {
    (0..hw)
        .map(|i| {
            let fg = la.chunks_exact(hw).skip(1).map(|p| p[i]);
            fg.fold(ha[i], f32::max) >= conf
        })
        .collect()
}

/// Final reliable label (§4.2 step 7): `ignore` wherever either confidence fails.
pub fn merge(initial: &[i32], cam_conf: &[bool], crf_conf: &[bool], ignore: i32) -> Vec<i32> {
    initial
        .iter()
        .zip(cam_conf.iter().zip(crf_conf))
        .map(|(&l, (&a, &b))| if a && b { l } else { ignore })
        .collect()
}

/// All of §4.2 for one image: `norm` [K, HW] max-normalised CAMs of the present classes (0 for
/// absent ones), `la` / `ha` [C, HW] CRF probabilities of the low- / high-α score stacks,
/// `present` [K] the image-level labels.
pub fn reliable_labels(
    norm: &[f32],
    la: &[f32],
    ha: &[f32],
    present: &[bool],
    hw: usize,
    rules: &LabelRules,
) -> Vec<i32> {
    let c = present.len() + 1;
    let allowed: Vec<bool> = std::iter::once(true)
        .chain(present.iter().copied())
        .collect();
    let la_arg = argmax_allowed(la, hw, Some(&allowed));
    let ha_arg = argmax_allowed(ha, hw, Some(&allowed));
    let initial = combine_la_ha(&la_arg, &ha_arg, rules.ignore);
    let mut in_la = vec![false; c];
    la_arg.iter().for_each(|&l| in_la[l] = true);
    let bg_high = bg_score(norm, hw, rules.alpha_high);
    let arg = cam_argmax(&bg_high, norm, hw);
    let cam_conf = cam_confident(norm, &bg_high, &arg, &in_la, rules);
    let crf_conf = crf_confident(la, ha, hw, rules.crf_conf);
    merge(&initial, &cam_conf, &crf_conf, rules.ignore)
}

/// Reliable pixels' share of a label map.
pub fn reliable_fraction(labels: &[i32], ignore: i32) -> f32 {
    if labels.is_empty() {
        return 0.0;
    }
    labels.iter().filter(|&&l| l != ignore).count() as f32 / labels.len() as f32
}

/// Share of a label map's pixels with a reliable foreground label (neither background 0 nor
/// `ignore`): rrm's failure on background-dominated crops is this share staying at 0, which
/// `reliable_fraction` hides behind the background pixels.
pub fn reliable_fg_fraction(labels: &[i32], ignore: i32) -> f32 {
    if labels.is_empty() {
        return 0.0;
    }
    labels.iter().filter(|&&l| l != ignore && l != 0).count() as f32 / labels.len() as f32
}

/// Nearest-neighbour resize of [N, H, W] planes with PyTorch's `mode="nearest"` index rule
/// (`floor(dst · in/out)` in f32), matching `ops::upsample_nearest2d` on the image.
pub fn resize_nearest_planes<T: Copy>(
    x: &[T],
    n: usize,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
) -> Vec<T> {
    let (sh, sw) = (h as f32 / oh as f32, w as f32 / ow as f32);
    let mut out = Vec::with_capacity(n * oh * ow);
    for b in 0..n {
        for y in 0..oh {
            let sy = ((y as f32 * sh).floor() as usize).min(h - 1);
            for xx in 0..ow {
                let sx = ((xx as f32 * sw).floor() as usize).min(w - 1);
                out.push(x[(b * h + sy) * w + sx]);
            }
        }
    }
    out
}
