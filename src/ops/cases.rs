//! The ops' named evaluations for test cases: each op module lists its ops under the names
//! the PyTorch parity files use (`CASES`: name → evaluation) and [`REGISTRY`] gathers the
//! lists. The case runner (`testing::parity`) looks names up here and supplies inputs and
//! params through [`CaseArgs`], so the ops know this interface and nothing of the test support
//! above them.

use crate::error::Result;
use crate::tensor::Tensor;

/// Inputs and params of one case as an op evaluation reads them. Implemented by the case
/// runner, which fails a case whose params or inputs were never read.
pub trait CaseArgs {
    /// A required input.
    fn input(&self, name: &str) -> Result<Tensor>;
    /// An optional input.
    fn opt_input(&self, name: &str) -> Result<Option<Tensor>>;
    /// Whether a param is present and not null.
    fn has(&self, k: &str) -> bool;
    fn f32(&self, k: &str, default: Option<f32>) -> Result<f32>;
    fn i64(&self, k: &str, default: Option<i64>) -> Result<i64>;
    fn bool(&self, k: &str, default: Option<bool>) -> Result<bool>;
    fn str(&self, k: &str, default: Option<&str>) -> Result<String>;
    /// A list of non-negative integers (a single integer is a list of one).
    fn usize_list(&self, k: &str) -> Result<Option<Vec<usize>>>;
    /// A pair `[h, w]`; a single integer `k` means `[k, k]` (PyTorch's convention).
    fn pair(&self, k: &str, default: Option<[usize; 2]>) -> Result<[usize; 2]>;
}

/// What an op evaluation gives back: the main output and named extra outputs.
pub struct Outputs {
    pub out: Tensor,
    pub extra: Vec<(String, Tensor)>,
}

impl From<Tensor> for Outputs {
    fn from(out: Tensor) -> Self {
        Outputs { out, extra: vec![] }
    }
}

/// Evaluates one op on a case's inputs and params.
pub type OpFn = fn(&dyn CaseArgs) -> Result<Outputs>;

/// One op module's cases: (case op name, evaluation).
pub type Cases = &'static [(&'static str, OpFn)];

/// Every op module's cases. A module with parity cases adds its `CASES` here.
pub const REGISTRY: &[(&str, Cases)] = &[
    ("elementwise", super::elementwise::CASES),
    ("reduce", super::reduce::CASES),
    ("softmax", super::softmax::CASES),
    ("loss", super::loss::CASES),
    ("concat", super::concat::CASES),
    ("pool", super::pool::CASES),
    ("resize", super::resize::CASES),
    ("batchnorm", super::batchnorm::CASES),
    ("conv", super::conv::CASES),
    ("minmax", super::minmax::CASES),
];

/// The evaluation registered under `name`, if any.
pub fn find(name: &str) -> Option<OpFn> {
    REGISTRY
        .iter()
        .flat_map(|(_, cases)| cases.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// Every registered name with its module, in registry order.
pub fn names() -> impl Iterator<Item = (&'static str, &'static str)> {
    REGISTRY
        .iter()
        .flat_map(|(m, cases)| cases.iter().map(move |(n, _)| (*m, *n)))
}

#[cfg(test)]
mod tests {
    /// Two modules registering one name would leave the later one unreachable.
    #[test]
    fn case_names_are_unique() {
        let mut seen = std::collections::BTreeMap::new();
        for (module, name) in super::names() {
            if let Some(first) = seen.insert(name, module) {
                panic!("case op {name:?} is registered by {first} and {module}");
            }
        }
        assert!(seen.len() >= 25, "{seen:?}");
        assert!(super::find("conv2d").is_some() && super::find("no_such_op").is_none());
    }
}
