//! Neural-network building blocks: named parameters, checkpoints, layers and architectures.

pub mod checkpoint;
pub mod error;
pub mod param;

pub use checkpoint::{read_safetensors, write_atomic, LoadReport};
pub use error::NnError;
pub use param::{Init, Kind, Param, ParamStore};
pub mod layers;
pub mod resnet;

pub use layers::{BatchNorm2d, BnMode, Conv2d, ConvCfg, Linear};
pub mod arch;
pub mod cam;
pub mod deeplab;
pub mod deeplabv3;
pub mod disc;
pub mod fcn;
pub mod imgdisc;
pub mod registry;
pub mod rrm;
pub mod tiny;
pub mod vgg;
