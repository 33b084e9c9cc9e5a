//! torchvision VGG16 (features + classifier), parameter names `features.N` / `classifier.N`.

use super::layers::{Conv2d, ConvCfg, Linear};
use super::param::{Init, ParamStore};

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
