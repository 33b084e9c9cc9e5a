//! Differentiable ops. Each module keeps an op's forward, its backward and the kernels they
//! dispatch side by side; the WGSL lives in `shaders/<module>.wgsl` unless noted.

pub mod batchnorm;
pub mod bilateral;
pub mod cases;
pub mod concat;
pub mod conv;
mod conv_config;
mod conv_geom;
pub mod conv_tex;
pub mod crf;
pub mod crf_matrix;
pub mod dropout;
pub mod elementwise;
pub mod energy;
pub mod finite;
pub mod loss;
pub mod minmax;
pub mod pool;
pub mod reduce;
pub mod resize;
pub mod signals;
pub mod softmax;
pub mod split;
pub mod split_act;
pub(crate) mod split_grad;
pub mod tune;

pub use batchnorm::batch_norm2d;
pub use bilateral::{bilateral_filter, FilterCfg};
pub use conv::{conv2d, linear, Conv2dParams};
pub use crf::{dense_crf, CrfCfg};
pub use dropout::{dropout, dropout2d};
pub use elementwise::*;
pub use energy::{dense_energy_loss, DenseEnergyCfg};
pub use finite::count_non_finite;
pub use minmax::{max_spatial, min_spatial};
pub use pool::{adaptive_avg_pool2d, avg_pool2d, max_pool2d, max_pool2d_with_indices};
pub use reduce::{mean, mean_dims, sum, sum_dims, sum_to_shape};
pub use resize::{upsample_bilinear2d, upsample_nearest2d};

/// Right-aligns a shape of up to 4 dims into 4 (leading 1s).
pub(crate) fn dims4(op: &'static str, s: &[usize]) -> crate::Result<[usize; 4]> {
    if s.len() > 4 {
        return Err(crate::Error::invalid(
            op,
            format!("tensors of more than 4 dims are not supported, got {s:?}"),
        ));
    }
    let mut d = [1usize; 4];
    d[4 - s.len()..].copy_from_slice(s);
    Ok(d)
}

/// Row-major strides of a 4-d shape.
pub(crate) fn strides4(d: [usize; 4]) -> [u32; 4] {
    [
        (d[1] * d[2] * d[3]) as u32,
        (d[2] * d[3]) as u32,
        d[3] as u32,
        1,
    ]
}
