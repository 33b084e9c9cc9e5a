//! FCN-32s on VGG16 (SS-GAN's VGG16-G): torchvision VGG16 `features.*`, then `fc6` (7×7 conv,
//! 4096), `fc7` (1×1, 4096), each followed by ReLU and dropout 0.5, and `score_fr` (1×1 to the
//! classes), as in pytorch-fcn's FCN32s.
//!
//! Differences from the Caffe FCN: no 100-pixel padding on conv1_1 and no learned 32× deconv;
//! instead fc6 has padding 3, so its output keeps the size of pool5 (input / 32) and the net
//! works on small crops; callers upsample the logits bilinearly. torchvision's `classifier.0`
//! / `classifier.3` weights reshaped to [4096, 512, 7, 7] / [4096, 4096, 1, 1] are `fc6` / `fc7`
//! (`scripts/convert_pth.py --vgg-fc-to-conv`).

use super::error::Result;
use super::layers::{Conv2d, ConvCfg};
use super::param::{Init, ParamStore};
use super::vgg::Vgg16;
use crate::ops;
use crate::tensor::Tensor;

pub const FC_WIDTH: usize = 4096;
pub const FC_DROPOUT: f32 = 0.5;

#[derive(Clone)]
pub struct Fcn32 {
    pub vgg: Vgg16,
    pub fc6: Conv2d,
    pub fc7: Conv2d,
    pub score_fr: Conv2d,
}

impl Fcn32 {
    pub fn new(store: &mut ParamStore, classes: usize) -> Fcn32 {
        Self::with_width(store, classes, FC_WIDTH)
    }

    /// `width` replaces 4096 (small nets for tests).
    pub fn with_width(store: &mut ParamStore, classes: usize, width: usize) -> Fcn32 {
        let vgg = Vgg16::new(store, "", None);
        let fc6 = Conv2d::new(store, "fc6", 512, width, 7, ConvCfg::default().padding(3));
        let fc7 = Conv2d::new(store, "fc7", width, width, 1, ConvCfg::default());
        // pytorch-fcn zero-initialises the score layer.
        let score_fr = Conv2d::new(
            store,
            "score_fr",
            width,
            classes,
            1,
            ConvCfg::default().init(Init::Zeros).bias_init(Init::Zeros),
        );
        Fcn32 {
            vgg,
            fc6,
            fc7,
            score_fr,
        }
    }

    /// Class logits at output stride 32. `dropout_seed` turns on the two dropouts (training).
    pub fn forward(&self, x: &Tensor, dropout_seed: Option<u64>) -> Result<Tensor> {
        let drop = |y: Tensor, k: u64| match dropout_seed {
            Some(s) => ops::dropout2d(&y, FC_DROPOUT, true, s.wrapping_mul(2).wrapping_add(k)),
            None => Ok(y),
        };
        let f = self.vgg.features(x)?;
        let y = drop(ops::relu(&self.fc6.forward(&f)?)?, 0)?;
        let y = drop(ops::relu(&self.fc7.forward(&y)?)?, 1)?;
        self.score_fr.forward(&y)
    }

    pub fn out_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (mut h, mut w) = (h, w);
        for _ in 0..5 {
            (h, w) = (h / 2, w / 2);
        }
        (h > 0 && w > 0).then_some((h, w))
    }
}
