//! Layers holding named parameters: Conv2d, BatchNorm2d, Linear. Forward passes call `ops`.

use super::error::Result;
use super::param::{Init, Kind, Param, ParamStore};
use crate::ops;
use crate::tensor::Tensor;

/// How BatchNorm layers of a model behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum BnMode {
    /// Batch statistics, running stats update, affine trained.
    #[default]
    Train,
    /// Batch statistics and running-stat updates, affine frozen (AdvSemiSeg's DeepLab quirk).
    FrozenAffine,
    /// Running statistics, nothing trained (RRM; also inference).
    Frozen,
}

#[derive(Clone)]
pub struct Conv2d {
    pub weight: Param,
    pub bias: Option<Param>,
    pub cin: usize,
    pub cout: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

/// Conv2d options beyond channels and kernel (PyTorch defaults: stride 1, padding 0, dilation 1,
/// bias, default init).
#[derive(Clone, Copy, Debug)]
pub struct ConvCfg {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub bias: bool,
    pub init: Init,
    pub bias_init: Option<Init>,
}

impl Default for ConvCfg {
    fn default() -> Self {
        ConvCfg {
            stride: 1,
            padding: 0,
            dilation: 1,
            bias: true,
            init: Init::TorchDefaultWeight,
            bias_init: None,
        }
    }
}

impl ConvCfg {
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
        self
    }
    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
    pub fn init(mut self, i: Init) -> Self {
        self.init = i;
        self
    }
    pub fn bias_init(mut self, i: Init) -> Self {
        self.bias_init = Some(i);
        self
    }
}

impl Conv2d {
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        cfg: ConvCfg,
    ) -> Conv2d {
        let weight = store.add(
            format!("{name}.weight"),
            &[cout, cin, k, k],
            cfg.init,
            Kind::Param,
        );
        let bias = cfg.bias.then(|| {
            let bi = cfg.bias_init.unwrap_or(Init::TorchDefaultBias {
                fan_in: cin * k * k,
            });
            store.add(format!("{name}.bias"), &[cout], bi, Kind::Param)
        });
        Conv2d {
            weight,
            bias,
            cin,
            cout,
            kernel: [k, k],
            stride: [cfg.stride; 2],
            padding: [cfg.padding; 2],
            dilation: [cfg.dilation; 2],
        }
    }

    /// Output spatial size for an input size (PyTorch's formula); 0 where the input is
    /// smaller than the dilated kernel.
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let f = |x: usize, i: usize| {
            (x + 2 * self.padding[i])
                .checked_sub(self.dilation[i] * (self.kernel[i] - 1) + 1)
                .map_or(0, |span| span / self.stride[i] + 1)
        };
        (f(h, 0), f(w, 1))
    }
}

#[derive(Clone)]
pub struct BatchNorm2d {
    pub weight: Param,
    pub bias: Param,
    pub running_mean: Param,
    pub running_var: Param,
    pub eps: f32,
    pub momentum: f32,
}

impl BatchNorm2d {
    pub fn new(store: &mut ParamStore, name: &str, c: usize) -> BatchNorm2d {
        BatchNorm2d {
            weight: store.add(format!("{name}.weight"), &[c], Init::Ones, Kind::Param),
            bias: store.add(format!("{name}.bias"), &[c], Init::Zeros, Kind::Param),
            running_mean: store.add(
                format!("{name}.running_mean"),
                &[c],
                Init::Zeros,
                Kind::Buffer,
            ),
            running_var: store.add(
                format!("{name}.running_var"),
                &[c],
                Init::Ones,
                Kind::Buffer,
            ),
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

#[derive(Clone)]
pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
}

impl Linear {
    pub fn new(store: &mut ParamStore, name: &str, fin: usize, fout: usize, bias: bool) -> Linear {
        Linear {
            weight: store.add(
                format!("{name}.weight"),
                &[fout, fin],
                Init::TorchDefaultWeight,
                Kind::Param,
            ),
            bias: bias.then(|| {
                store.add(
                    format!("{name}.bias"),
                    &[fout],
                    Init::TorchDefaultBias { fan_in: fin },
                    Kind::Param,
                )
            }),
        }
    }
}

fn opt(p: &Option<Param>) -> Result<Option<Tensor>> {
    p.as_ref().map(|b| b.get()).transpose()
}

impl Conv2d {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let p = ops::Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        };
        Ok(ops::conv2d(
            x,
            &self.weight.get()?,
            opt(&self.bias)?.as_ref(),
            &p,
        )?)
    }
}

impl BatchNorm2d {
    /// `Train` and `FrozenAffine` use batch statistics and update the running ones; `Frozen`
    /// uses the running statistics. Freezing the affine parameters themselves is
    /// [`BatchNorm2d::apply_mode`]'s job, so gradients still flow to the input either way.
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let w = self.weight.get()?;
        let b = self.bias.get()?;
        Ok(ops::batch_norm2d(
            x,
            Some(&w),
            Some(&b),
            &self.running_mean.get()?,
            &self.running_var.get()?,
            mode != BnMode::Frozen,
            self.momentum,
            self.eps,
        )?)
    }

    /// Makes weight and bias trainable only in `Train` mode.
    pub fn apply_mode(&self, mode: BnMode) -> Result<()> {
        self.weight.set_trainable(mode == BnMode::Train)?;
        self.bias.set_trainable(mode == BnMode::Train)
    }
}

impl Linear {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(ops::linear(
            x,
            &self.weight.get()?,
            opt(&self.bias)?.as_ref(),
        )?)
    }
}

/// conv → BN → ReLU, the most common triple.
pub fn conv_bn_relu(conv: &Conv2d, bn: &BatchNorm2d, x: &Tensor, mode: BnMode) -> Result<Tensor> {
    Ok(ops::relu(&bn.forward(&conv.forward(x)?, mode)?)?)
}
