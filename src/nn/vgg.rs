//! torchvision VGG16 (features + classifier), parameter names `features.N` / `classifier.N`.

use super::error::{NnError, Result};
use super::layers::{Conv2d, ConvCfg, Linear};
use super::param::{Init, ParamStore};
use crate::ops;
use crate::tensor::Tensor;

/// Conv widths with `0` for max-pool, as torchvision's cfg "D".
pub const VGG16_CFG: [usize; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

#[derive(Clone)]
pub enum Feature {
    /// 3×3 conv (padding 1) followed by ReLU.
    Conv(Conv2d),
    /// 2×2/2 max-pool.
    Pool,
}

#[derive(Clone)]
pub struct Vgg16 {
    pub features: Vec<Feature>,
    /// classifier.0, .3, .6 (fc layers with ReLU + dropout between, as torchvision).
    pub classifier: Option<[Linear; 3]>,
}

impl Vgg16 {
    pub fn new(store: &mut ParamStore, prefix: &str, classes: Option<usize>) -> Vgg16 {
        let mut features = Vec::new();
        let mut idx = 0;
        let mut cin = 3;
        let cfg = ConvCfg::default()
            .padding(1)
            .init(Init::KaimingNormalFanOut)
            .bias_init(Init::Zeros);
        for &c in &VGG16_CFG {
            if c == 0 {
                features.push(Feature::Pool);
                idx += 1;
            } else {
                features.push(Feature::Conv(Conv2d::new(
                    store,
                    &format!("{prefix}features.{idx}"),
                    cin,
                    c,
                    3,
                    cfg,
                )));
                cin = c;
                idx += 2;
            }
        }
        let classifier = classes.map(|c| {
            [
                Linear::new(
                    store,
                    &format!("{prefix}classifier.0"),
                    512 * 7 * 7,
                    4096,
                    true,
                ),
                Linear::new(store, &format!("{prefix}classifier.3"), 4096, 4096, true),
                Linear::new(store, &format!("{prefix}classifier.6"), 4096, c, true),
            ]
        });
        Vgg16 {
            features,
            classifier,
        }
    }
}

impl Vgg16 {
    /// Convolutional features (after the last pool).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for f in &self.features {
            y = match f {
                Feature::Conv(c) => ops::relu(&c.forward(&y)?)?,
                Feature::Pool => ops::max_pool2d(&y, [2, 2], [2, 2], [0, 0], false)?,
            };
        }
        Ok(y)
    }

    /// Classification logits; the input must give 7×7 features (224×224 images), as
    /// torchvision's adaptive pool to 7×7 is then the identity. Dropout is off (eval).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let f = self.features(x)?;
        let s = f.shape().to_vec();
        let [fc0, fc1, fc2] = self
            .classifier
            .as_ref()
            .ok_or_else(|| NnError::invalid("vgg16", "built without a classifier"))?;
        let f = if s[2] == 7 && s[3] == 7 {
            f
        } else {
            ops::adaptive_avg_pool2d(&f, [7, 7])?
        };
        let flat = f.reshape(&[s[0], 512 * 49])?;
        let y = ops::relu(&fc0.forward(&flat)?)?;
        let y = ops::relu(&fc1.forward(&y)?)?;
        fc2.forward(&y)
    }
}
