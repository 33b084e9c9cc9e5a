//! AdvSemiSeg's FCDiscriminator: 4×4/2 convs C→64→128→256→512→1, LeakyReLU(0.2), logits
//! upsampled bilinearly (align_corners) to the input size.

use super::error::Result;
use super::layers::{Conv2d, ConvCfg};
use super::param::ParamStore;
use crate::ops;
use crate::tensor::Tensor;

#[derive(Clone)]
pub struct FcDiscriminator {
    pub convs: [Conv2d; 4],
    pub classifier: Conv2d,
}

impl FcDiscriminator {
    pub fn new(
        store: &mut ParamStore,
        prefix: &str,
        classes: usize,
        ndf: usize,
    ) -> FcDiscriminator {
        let c = ConvCfg::default().stride(2).padding(1);
        let widths = [classes, ndf, ndf * 2, ndf * 4, ndf * 8];
        let convs = std::array::from_fn(|i| {
            Conv2d::new(
                store,
                &format!("{prefix}conv{}", i + 1),
                widths[i],
                widths[i + 1],
                4,
                c,
            )
        });
        let classifier = Conv2d::new(store, &format!("{prefix}classifier"), ndf * 8, 1, 4, c);
        FcDiscriminator { convs, classifier }
    }
}

impl FcDiscriminator {
    /// Per-pixel real/fake logits at 1/32 resolution [N, 1, h, w].
    pub fn forward_logits(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for c in &self.convs {
            y = ops::leaky_relu(&c.forward(&y)?, 0.2)?;
        }
        self.classifier.forward(&y)
    }

    /// Logits upsampled bilinearly (align_corners) to the input's size [N, 1, H, W].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.shape();
        let size = [s[2], s[3]];
        Ok(ops::upsample_bilinear2d(
            &self.forward_logits(x)?,
            size,
            true,
        )?)
    }
}
