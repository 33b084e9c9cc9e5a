// Op codes shared by the kernels and their Rust callers: build.rs turns each line into a Rust
// constant of `advseg::gpu::codes`, so neither side spells a bare number. Values are unique
// within a `// @group` (build.rs refuses repeats). Only `const NAME: u32 = Vu;` lines here.

// @group unary ops (elementwise.wgsl `unary_f` / `unary_d`, Rust `UnaryOp`)
const UN_RELU: u32 = 0u;
const UN_LEAKY_RELU: u32 = 1u;
const UN_SIGMOID: u32 = 2u;
const UN_TANH: u32 = 3u;
const UN_AFFINE: u32 = 4u;
const UN_EXP: u32 = 5u;
const UN_LOG: u32 = 6u;
const UN_SQUARE: u32 = 7u;
const UN_SQRT: u32 = 8u;
const UN_ABS: u32 = 9u;
const UN_CLAMP: u32 = 10u;
const UN_SOFTPLUS: u32 = 11u;

// @group binary ops (elementwise.wgsl `binary_f`, Rust `BinaryOp`)
const BIN_ADD: u32 = 0u;
const BIN_SUB: u32 = 1u;
const BIN_MUL: u32 = 2u;
const BIN_DIV: u32 = 3u;
const BIN_MAX: u32 = 4u;
const BIN_GT: u32 = 5u;

// @group how `binary` reads an input (elementwise.wgsl `load_in`, its KA / KB constants)
const LOAD_FLAT: u32 = 0u;      // laid out as the output: the same vec4
const LOAD_ROW: u32 = 1u;       // unit stride along w (w % 4 == 0): one vec4 at a broadcast offset
const LOAD_SPLAT: u32 = 2u;     // broadcast along w (w % 4 == 0): one element for all four
const LOAD_GATHER: u32 = 3u;    // w % 4 != 0: element by element

// @group softmax.wgsl OP
const SOFTMAX: u32 = 0u;
const LOG_SOFTMAX: u32 = 1u;

// @group conv.wgsl MODE (Rust `GemmMode`)
const GEMM_FORWARD: u32 = 0u;
const GEMM_INPUT_GRAD: u32 = 1u;
const GEMM_WEIGHT_GRAD: u32 = 2u;
