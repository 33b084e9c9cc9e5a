//! DeepLab-v2 (AdvSemiSeg's `Res_Deeplab`): Caffe-style dilated ResNet trunk, output stride 8,
//! and the `layer5` ASPP of four dilated 3×3 convs whose outputs are summed.

use super::error::Result;
use super::layers::{BnMode, Conv2d, ConvCfg};
use super::param::{Init, ParamStore};
use super::resnet::{ResNet, ResNetCfg};
use crate::ops;
use crate::tensor::Tensor;

pub const ASPP_V2_RATES: [usize; 4] = [6, 12, 18, 24];

#[derive(Clone)]
pub struct AsppV2 {
    pub branches: Vec<Conv2d>,
    /// Sum only the first two branches, as the official code's early `return` does
    /// (methods.md §3.2); the other branches keep their parameters.
    pub official_quirk: bool,
}

impl AsppV2 {
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        cin: usize,
        classes: usize,
        rates: &[usize],
    ) -> AsppV2 {
        let branches = rates
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                let cfg = ConvCfg::default()
                    .padding(r)
                    .dilation(r)
                    .init(Init::Normal(0.01));
                Conv2d::new(
                    store,
                    &format!("{name}.conv2d_list.{i}"),
                    cin,
                    classes,
                    3,
                    cfg,
                )
            })
            .collect();
        AsppV2 {
            branches,
            official_quirk: false,
        }
    }
}

#[derive(Clone)]
pub struct DeepLabV2 {
    pub trunk: ResNet,
    pub layer5: AsppV2,
}

impl DeepLabV2 {
    pub fn new(store: &mut ParamStore, depth: usize, classes: usize) -> Option<DeepLabV2> {
        let trunk = ResNet::new(
            store,
            "",
            ResNetCfg {
                depth,
                output_stride: Some(8),
                stride_on_1x1: true,
                fc_classes: None,
            },
        )?;
        let layer5 = AsppV2::new(store, "layer5", trunk.out_channels, classes, &ASPP_V2_RATES);
        Some(DeepLabV2 { trunk, layer5 })
    }
}

impl AsppV2 {
    /// Sum of the branch outputs (the first two only with `official_quirk`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let n = if self.official_quirk {
            2.min(self.branches.len())
        } else {
            self.branches.len()
        };
        let mut out = self.branches[0].forward(x)?;
        for b in &self.branches[1..n] {
            out = ops::add(&out, &b.forward(x)?)?;
        }
        Ok(out)
    }
}

impl DeepLabV2 {
    /// Class logits at output stride 8 (321×321 → 41×41); callers upsample.
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let f = self.trunk.features(x, mode)?.pop().expect("four stages");
        self.layer5.forward(&f)
    }
}
