//! Image-conditioned adversary of SS-GAN / Luc et al. (methods.md §2): d(S, x) on a
//! class-probability map S [N, C, h, w] and the RGB image x.
//!
//! Input encodings (`--encoding`):
//! - `basic`: S alone (C channels; Luc found the image did not help);
//! - `product`: every class channel times every RGB channel, 3C channels ordered k-major
//!   (channel k·C + c is S_c ⊙ x_k);
//! - `concat`: S and x concatenated (C + 3 channels).
//!
//! The image is resized bilinearly (align_corners=False) to S's size when the sizes differ;
//! the caller is expected to pass it mean-subtracted.
//!
//! Net: SS-GAN's partly legible Table 2 with the plausible fill-in of methods.md §2.1:
//! conv3×3 ndf → conv3×3 2ndf → avgpool 2/2 → conv3×3 4ndf → avgpool 2/2 → conv3×3 8ndf →
//! conv3×3 1, LeakyReLU(0.2) between, all with bias (padding 1). Output: one logit per position
//! at 1/4 of S's size [N, 1, h/4, w/4]; the losses average over positions (SS-GAN eq. 7).
//! Names `conv1..conv4`, `classifier` as the FCDiscriminator's.

use super::error::{NnError, Result};
use super::layers::{Conv2d, ConvCfg};
use super::param::ParamStore;
use crate::ops;
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Basic,
    Product,
    Concat,
}

impl Encoding {
    pub fn parse(s: &str) -> Result<Encoding> {
        Ok(match s {
            "basic" => Encoding::Basic,
            "product" => Encoding::Product,
            "concat" => Encoding::Concat,
            _ => {
                return Err(NnError::invalid(
                    "imgdisc",
                    format!("unknown encoding {s:?}; known: basic, product, concat"),
                ))
            }
        })
    }

    pub fn channels(self, classes: usize) -> usize {
        match self {
            Encoding::Basic => classes,
            Encoding::Product => 3 * classes,
            Encoding::Concat => classes + 3,
        }
    }
}

pub const IMGDISC_NDF: usize = 64;

#[derive(Clone)]
pub struct ImgDisc {
    pub encoding: Encoding,
    pub classes: usize,
    pub convs: [Conv2d; 4],
    pub classifier: Conv2d,
}

impl ImgDisc {
    pub fn new(
        store: &mut ParamStore,
        prefix: &str,
        classes: usize,
        ndf: usize,
        encoding: Encoding,
    ) -> ImgDisc {
        let c = ConvCfg::default().padding(1);
        let widths = [encoding.channels(classes), ndf, ndf * 2, ndf * 4, ndf * 8];
        let convs = std::array::from_fn(|i| {
            Conv2d::new(
                store,
                &format!("{prefix}conv{}", i + 1),
                widths[i],
                widths[i + 1],
                3,
                c,
            )
        });
        let classifier = Conv2d::new(store, &format!("{prefix}classifier"), ndf * 8, 1, 3, c);
        ImgDisc {
            encoding,
            classes,
            convs,
            classifier,
        }
    }

    /// The encoded adversary input for probabilities `s` and image `x` (`x` unused by `basic`).
    pub fn encode(&self, s: &Tensor, x: Option<&Tensor>) -> Result<Tensor> {
        if s.ndim() != 4 || s.shape()[1] != self.classes {
            return Err(NnError::invalid(
                "imgdisc",
                format!(
                    "expected probabilities [N, {}, h, w], got {:?}",
                    self.classes,
                    s.shape()
                ),
            ));
        }
        if self.encoding == Encoding::Basic {
            return Ok(s.clone());
        }
        let x = x.ok_or_else(|| {
            NnError::invalid(
                "imgdisc",
                format!("the {:?} encoding needs the image", self.encoding),
            )
        })?;
        let (ss, xs) = (s.shape(), x.shape());
        if x.ndim() != 4 || xs[1] != 3 || xs[0] != ss[0] {
            return Err(NnError::shape(
                "imgdisc",
                ss,
                xs,
                "image must be [N, 3, H, W] with the probabilities' batch",
            ));
        }
        let x = if xs[2..] == ss[2..] {
            x.clone()
        } else {
            ops::upsample_bilinear2d(x, [ss[2], ss[3]], false)?
        };
        match self.encoding {
            Encoding::Concat => Ok(ops::concat::concat(&[s, &x], 1)?),
            _ => {
                let rgb = ops::concat::split(&x, &[1, 1, 1], 1)?;
                let prods = rgb
                    .iter()
                    .map(|k| ops::mul(s, k))
                    .collect::<crate::Result<Vec<_>>>()?;
                let refs: Vec<&Tensor> = prods.iter().collect();
                Ok(ops::concat::concat(&refs, 1)?)
            }
        }
    }

    /// Logits [N, 1, h/4, w/4] for probabilities `s` and image `x`.
    pub fn forward(&self, s: &Tensor, x: Option<&Tensor>) -> Result<Tensor> {
        let mut y = self.encode(s, x)?;
        for (i, c) in self.convs.iter().enumerate() {
            y = ops::leaky_relu(&c.forward(&y)?, 0.2)?;
            if i == 1 || i == 2 {
                y = ops::avg_pool2d(&y, [2, 2], [2, 2], [0, 0], false, true)?;
            }
        }
        self.classifier.forward(&y)
    }

    /// `forward` on one tensor holding the probabilities then the image along channels
    /// ([N, C + 3, h, w]; [N, C, ...] suffices for `basic`), so [`super::arch::Model::forward`]
    /// can serve it.
    pub fn forward_packed(&self, sx: &Tensor) -> Result<Tensor> {
        let c = sx.shape().get(1).copied().unwrap_or(0);
        if c == self.classes {
            return self.forward(sx, None);
        }
        if c != self.classes + 3 {
            return Err(NnError::invalid(
                "imgdisc",
                format!(
                    "expected [N, {} (+3 image), h, w], got {:?}",
                    self.classes,
                    sx.shape()
                ),
            ));
        }
        let parts = ops::concat::split(sx, &[self.classes, 3], 1)?;
        self.forward(&parts[0], Some(&parts[1]))
    }
}
