//! AdvSemiSeg's FCDiscriminator: 4×4/2 convs C→64→128→256→512→1, LeakyReLU(0.2), logits
//! upsampled bilinearly (align_corners) to the input size.

use super::layers::{Conv2d, ConvCfg};
use super::param::ParamStore;

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
