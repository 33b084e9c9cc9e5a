//! The kernel interface in one place: every kernel's `Params` mirror
//! ([`crate::gpu::layout::ParamsLayout`], one per shader) and the op codes
//! ([`crate::gpu::codes`]). `tests/it/kernel_iface.rs` holds both against naga's reflection of
//! the composed WGSL; a shader with a uniform but no entry here fails that test.

use crate::gpu::layout::ParamsLayout;
use crate::ops;

/// The `Params` layout of every shader's Rust mirror.
pub fn params_layouts() -> Vec<ParamsLayout> {
    vec![
        ops::batchnorm::params_layout(),
        ops::bilateral::params_layout(),
        ops::concat::params_layout(),
        ops::conv::params_layout(),
        ops::conv_tex::pack_params_layout(),
        ops::conv_tex::gemm_params_layout(),
        ops::crf::params_layout(),
        ops::crf_matrix::params_layout(),
        ops::dropout::params_layout(),
        crate::tensor::kernels::params_layout(),
        ops::energy::params_layout(),
        ops::finite::params_layout(),
        ops::loss::params_layout(),
        ops::minmax::params_layout(),
        ops::pool::params_layout(),
        ops::reduce::params_layout(),
        ops::resize::params_layout(),
        ops::signals::params_layout(),
        ops::softmax::params_layout(),
        crate::optim::params_layout(),
    ]
}
