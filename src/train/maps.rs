//! Per-pixel maps a method shows (probe images, inference, the last training batch), each
//! declared with its kind so the app, `predict` and the run directory know how to draw and
//! store it without reading its name. A run directory stores the kinds next to the PNGs
//! (`maps.json` in each snapshot folder); [`MapKind::from_legacy_name`] is the one place that
//! guesses a kind from a name, for run directories written before kinds were stored.

use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// What a map's values mean, and so how it is drawn. Every map holds values in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// Any per-pixel score (e.g. CEGU weights): a heat map.
    Scalar,
    /// A confidence or uncertainty (e.g. σ(D)): a heat map.
    Confidence,
    /// A 0/1 selection (e.g. the semi gate, RRM's reliable pixels): a heat map.
    Mask,
    /// A class activation map: a heat map over the input. Per-class CAMs are named `cam_<c>`.
    Cam,
    /// Class ids stored as `id / 255` (1.0 = ignore): drawn in the class colours.
    Labels,
    /// A grey image (e.g. EADER's erased input).
    Image,
}

impl MapKind {
    /// Drawn with the Jet colour scale (and given a colour bar).
    pub fn is_heat(self) -> bool {
        !matches!(self, MapKind::Labels | MapKind::Image)
    }

    /// The kind of a map known only by its name: the naming rule the viewer and `predict`
    /// used before methods declared kinds (`reliable*` labels but `reliable*mask`, `erased*`
    /// images, `*cam*` CAMs, anything else a scalar). Only for run directories without
    /// `maps.json`.
    pub fn from_legacy_name(name: &str) -> MapKind {
        let n = name.to_ascii_lowercase();
        if n.starts_with("reliable") && !n.ends_with("mask") {
            MapKind::Labels
        } else if n.starts_with("erased") {
            MapKind::Image
        } else if n.contains("cam") {
            MapKind::Cam
        } else {
            MapKind::Scalar
        }
    }
}

/// A method's map on the GPU: [N, 1, H, W] in [0, 1].
#[derive(Clone)]
pub struct ProbeMap {
    pub name: String,
    pub kind: MapKind,
    pub tensor: Tensor,
}

impl ProbeMap {
    pub fn new(name: impl Into<String>, kind: MapKind, tensor: Tensor) -> Self {
        ProbeMap {
            name: name.into(),
            kind,
            tensor,
        }
    }
}

/// A map read back to the host: one image's H×W values.
#[derive(Clone, Debug, PartialEq)]
pub struct HostMap {
    pub name: String,
    pub kind: MapKind,
    pub h: usize,
    pub w: usize,
    pub values: Vec<f32>,
}

impl HostMap {
    /// Reads the first image's map back from the GPU.
    pub fn read(m: &ProbeMap) -> crate::error::Result<HostMap> {
        let s = m.tensor.shape();
        let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
        let mut values = m.tensor.to_vec_f32()?;
        values.truncate(h * w);
        Ok(HostMap {
            name: m.name.clone(),
            kind: m.kind,
            h,
            w,
            values,
        })
    }
}

/// The run directory's record of a snapshot's map kinds (`maps.json`): PNG stem → kind.
pub type KindTable = std::collections::BTreeMap<String, MapKind>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_legacy_name() {
        use MapKind::*;
        assert_eq!(MapKind::from_legacy_name("cam_3"), Cam);
        assert_eq!(MapKind::from_legacy_name("reliable_label"), Labels);
        assert_eq!(MapKind::from_legacy_name("reliable_mask"), Scalar);
        assert_eq!(MapKind::from_legacy_name("erased"), Image);
        assert_eq!(MapKind::from_legacy_name("d_confidence"), Scalar);
        assert!(Confidence.is_heat() && Mask.is_heat() && Cam.is_heat());
        assert!(!Labels.is_heat() && !Image.is_heat());
        let t: KindTable = [("train_semi_mask".to_string(), Mask)].into();
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, r#"{"train_semi_mask":"mask"}"#);
        assert_eq!(serde_json::from_str::<KindTable>(&j).unwrap(), t);
    }
}
