//! torchvision ResNets (18/50/101), with the segmentation options: output stride 8/16 by
//! dilating the last stages, and DeepLab-v2's Caffe-style "stride on the first 1×1 conv".

use super::error::Result;
use super::layers::{conv_bn_relu, BatchNorm2d, BnMode, Conv2d, ConvCfg, Linear};
use super::param::{Init, ParamStore};
use crate::ops;
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Basic,
    Bottleneck,
}

/// ResNet construction options.
#[derive(Clone, Copy, Debug)]
pub struct ResNetCfg {
    pub depth: usize,
    /// None = 32 (classification), Some(16) dilates layer4, Some(8) layer3 and layer4.
    pub output_stride: Option<usize>,
    /// Put the stride on the first 1×1 conv of a bottleneck (DeepLab-v2 / Caffe) instead of the 3×3.
    pub stride_on_1x1: bool,
    /// Classification head `fc` with this many classes.
    pub fc_classes: Option<usize>,
}

#[derive(Clone)]
pub struct Block {
    pub kind: BlockKind,
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    pub conv2: Conv2d,
    pub bn2: BatchNorm2d,
    pub conv3: Option<(Conv2d, BatchNorm2d)>,
    pub downsample: Option<(Conv2d, BatchNorm2d)>,
}

#[derive(Clone)]
pub struct ResNet {
    pub cfg: ResNetCfg,
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    pub layers: Vec<Vec<Block>>,
    pub fc: Option<Linear>,
    /// Channels of the last stage's output.
    pub out_channels: usize,
}

pub fn blocks_for(depth: usize) -> Option<(BlockKind, [usize; 4])> {
    Some(match depth {
        18 => (BlockKind::Basic, [2, 2, 2, 2]),
        34 => (BlockKind::Basic, [3, 4, 6, 3]),
        50 => (BlockKind::Bottleneck, [3, 4, 6, 3]),
        101 => (BlockKind::Bottleneck, [3, 4, 23, 3]),
        152 => (BlockKind::Bottleneck, [3, 8, 36, 3]),
        _ => return None,
    })
}

impl ResNet {
    /// Registers all parameters under `prefix` (e.g. "" or "backbone.").
    pub fn new(store: &mut ParamStore, prefix: &str, cfg: ResNetCfg) -> Option<ResNet> {
        let (kind, counts) = blocks_for(cfg.depth)?;
        let expansion = if kind == BlockKind::Basic { 1 } else { 4 };
        let conv1 = Conv2d::new(
            store,
            &format!("{prefix}conv1"),
            3,
            64,
            7,
            kconv(2).padding(3),
        );
        let bn1 = BatchNorm2d::new(store, &format!("{prefix}bn1"), 64);
        // (stride, dilation) per stage for the requested output stride.
        let sd: [(usize, usize); 4] = match cfg.output_stride {
            Some(8) => [(1, 1), (2, 1), (1, 2), (1, 4)],
            Some(16) => [(1, 1), (2, 1), (2, 1), (1, 2)],
            _ => [(1, 1), (2, 1), (2, 1), (2, 1)],
        };
        let mut inplanes = 64;
        let mut layers = Vec::new();
        for (li, (&n, &(stride, dil))) in counts.iter().zip(sd.iter()).enumerate() {
            let planes = 64 << li;
            let mut blocks = Vec::new();
            for bi in 0..n {
                let name = format!("{prefix}layer{}.{bi}", li + 1);
                let s = if bi == 0 { stride } else { 1 };
                let block = Block::new(
                    store,
                    &name,
                    kind,
                    inplanes,
                    planes,
                    BlockGeom {
                        stride: s,
                        dilation: dil,
                        stride_on_1x1: cfg.stride_on_1x1,
                    },
                );
                inplanes = planes * expansion;
                blocks.push(block);
            }
            layers.push(blocks);
        }
        let fc = cfg
            .fc_classes
            .map(|c| Linear::new(store, &format!("{prefix}fc"), inplanes, c, true));
        Some(ResNet {
            cfg,
            conv1,
            bn1,
            layers,
            fc,
            out_channels: inplanes,
        })
    }
}

/// Stride and dilation of one residual block.
#[derive(Clone, Copy, Debug)]
pub struct BlockGeom {
    pub stride: usize,
    pub dilation: usize,
    /// Caffe / DeepLab-v2 bottleneck: stride on the first 1×1 conv instead of the 3×3.
    pub stride_on_1x1: bool,
}

fn kconv(s: usize) -> ConvCfg {
    ConvCfg::default()
        .no_bias()
        .init(Init::KaimingNormalFanOut)
        .stride(s)
}

impl Block {
    /// Registers one torchvision block under `name` (e.g. "layer3.0"); a `downsample` (1×1 conv
    /// + BN) is added when the stride or the channel count changes.
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        kind: BlockKind,
        inplanes: usize,
        planes: usize,
        g: BlockGeom,
    ) -> Block {
        let expansion = if kind == BlockKind::Basic { 1 } else { 4 };
        let (s, dil) = (g.stride, g.dilation);
        // Registered after the convs so the store follows PyTorch's state_dict order.
        let mut block = match kind {
            BlockKind::Basic => Block {
                kind,
                conv1: Conv2d::new(
                    store,
                    &format!("{name}.conv1"),
                    inplanes,
                    planes,
                    3,
                    kconv(s).padding(dil).dilation(dil),
                ),
                bn1: BatchNorm2d::new(store, &format!("{name}.bn1"), planes),
                conv2: Conv2d::new(
                    store,
                    &format!("{name}.conv2"),
                    planes,
                    planes,
                    3,
                    kconv(1).padding(dil).dilation(dil),
                ),
                bn2: BatchNorm2d::new(store, &format!("{name}.bn2"), planes),
                conv3: None,
                downsample: None,
            },
            BlockKind::Bottleneck => {
                let (s1, s2) = if g.stride_on_1x1 { (s, 1) } else { (1, s) };
                Block {
                    kind,
                    conv1: Conv2d::new(
                        store,
                        &format!("{name}.conv1"),
                        inplanes,
                        planes,
                        1,
                        kconv(s1),
                    ),
                    bn1: BatchNorm2d::new(store, &format!("{name}.bn1"), planes),
                    conv2: Conv2d::new(
                        store,
                        &format!("{name}.conv2"),
                        planes,
                        planes,
                        3,
                        kconv(s2).padding(dil).dilation(dil),
                    ),
                    bn2: BatchNorm2d::new(store, &format!("{name}.bn2"), planes),
                    conv3: Some((
                        Conv2d::new(
                            store,
                            &format!("{name}.conv3"),
                            planes,
                            planes * 4,
                            1,
                            kconv(1),
                        ),
                        BatchNorm2d::new(store, &format!("{name}.bn3"), planes * 4),
                    )),
                    downsample: None,
                }
            }
        };
        block.downsample = (s != 1 || inplanes != planes * expansion).then(|| {
            (
                Conv2d::new(
                    store,
                    &format!("{name}.downsample.0"),
                    inplanes,
                    planes * expansion,
                    1,
                    kconv(s),
                ),
                BatchNorm2d::new(store, &format!("{name}.downsample.1"), planes * expansion),
            )
        });
        block
    }

    /// Output spatial size for an input size (shape inference without running the block).
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let (h, w) = self.conv1.out_size(h, w);
        self.conv2.out_size(h, w)
    }

    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let mut out = conv_bn_relu(&self.conv1, &self.bn1, x, mode)?;
        out = self.bn2.forward(&self.conv2.forward(&out)?, mode)?;
        if let Some((c3, b3)) = &self.conv3 {
            out = b3.forward(&c3.forward(&ops::relu(&out)?)?, mode)?;
        }
        let identity = match &self.downsample {
            Some((c, b)) => b.forward(&c.forward(x)?, mode)?,
            None => x.clone(),
        };
        Ok(ops::relu(&ops::add(&out, &identity)?)?)
    }

    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        let mut v = vec![&self.bn1, &self.bn2];
        if let Some((_, b)) = &self.conv3 {
            v.push(b);
        }
        if let Some((_, b)) = &self.downsample {
            v.push(b);
        }
        v
    }
}

impl ResNet {
    /// Stem: conv 7×7/2, BN, ReLU, max-pool 3×3/2 pad 1 (ceil_mode in the DeepLab-v2 variant).
    pub fn stem(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let y = conv_bn_relu(&self.conv1, &self.bn1, x, mode)?;
        Ok(ops::max_pool2d(
            &y,
            [3, 3],
            [2, 2],
            [1, 1],
            self.cfg.stride_on_1x1,
        )?)
    }

    /// Feature maps after each of layer1..layer4.
    pub fn features(&self, x: &Tensor, mode: BnMode) -> Result<Vec<Tensor>> {
        let mut y = self.stem(x, mode)?;
        let mut outs = Vec::with_capacity(4);
        for layer in &self.layers {
            for b in layer {
                y = b.forward(&y, mode)?;
            }
            outs.push(y.clone());
        }
        Ok(outs)
    }

    /// Spatial size of layer4's output for an input size, by the same layer geometry the
    /// forward uses but without running anything (None when the input is too small).
    pub fn out_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (h, w) = self.conv1.out_size(h, w);
        if h == 0 || w == 0 {
            return None;
        }
        let pool = |x| ops::pool::pool_out_size(x, 3, 2, 1, self.cfg.stride_on_1x1);
        let (mut h, mut w) = (pool(h)?, pool(w)?);
        for b in self.layers.iter().flatten() {
            (h, w) = b.out_size(h, w);
        }
        (h > 0 && w > 0).then_some((h, w))
    }

    /// Classification logits [N, classes] (global average pooling + fc).
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let f = self.features(x, mode)?.pop().expect("four stages");
        self.head(&f)
    }

    /// GAP + fc on layer4 features: logits [N, classes] (pooled features without an fc).
    pub fn head(&self, f: &Tensor) -> Result<Tensor> {
        let pooled = ops::adaptive_avg_pool2d(f, [1, 1])?;
        let n = pooled.shape()[0];
        let flat = pooled.reshape(&[n, self.out_channels])?;
        match &self.fc {
            Some(fc) => fc.forward(&flat),
            None => Ok(flat),
        }
    }

    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        let mut v = vec![&self.bn1];
        for l in &self.layers {
            for b in l {
                v.extend(b.batch_norms());
            }
        }
        v
    }
}
