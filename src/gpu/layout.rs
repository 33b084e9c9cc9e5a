//! The byte layout of a kernel's `Params` uniform as Rust lays it out, so a test can hold it
//! against naga's reflection of the WGSL struct (`tests/it/kernel_iface.rs`). Each op module
//! states its mirror with [`params_layout!`], which lists every field (a missing one does not
//! compile) and takes offsets from `offset_of!`; `crate::kernels::params_layouts` collects them.

/// Scalar type of a uniform field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    U32,
    I32,
    F32,
}

/// A Rust type that can sit in a `Params` mirror: its scalar and how many of them.
pub trait WgslField {
    const SCALAR: Scalar;
    const COUNT: usize;
}

impl WgslField for u32 {
    const SCALAR: Scalar = Scalar::U32;
    const COUNT: usize = 1;
}
impl WgslField for i32 {
    const SCALAR: Scalar = Scalar::I32;
    const COUNT: usize = 1;
}
impl WgslField for f32 {
    const SCALAR: Scalar = Scalar::F32;
    const COUNT: usize = 1;
}
impl<T: WgslField, const N: usize> WgslField for [T; N] {
    const SCALAR: Scalar = T::SCALAR;
    const COUNT: usize = T::COUNT * N;
}

/// One field: name, byte offset, scalar type and count (a `vec4<u32>` is (U32, 4)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    pub name: &'static str,
    pub offset: usize,
    pub scalar: Scalar,
    pub count: usize,
}

/// A `Params` mirror: the shader it belongs to, the Rust type, its size and its fields.
#[derive(Clone, Debug)]
pub struct ParamsLayout {
    pub shader: &'static str,
    pub rust_type: &'static str,
    pub size: usize,
    pub fields: Vec<FieldLayout>,
}

/// Builds a [`FieldLayout`]; `get` only fixes the field's type.
pub fn field<S, T: WgslField>(name: &'static str, offset: usize, get: fn(&S) -> &T) -> FieldLayout {
    let _ = get;
    FieldLayout {
        name,
        offset,
        scalar: T::SCALAR,
        count: T::COUNT,
    }
}

/// `params_layout!(pub(crate) fn NAME, "shader", Params { every, field });` defines `NAME()`
/// returning the [`ParamsLayout`] of `Params`.
macro_rules! params_layout {
    ($vis:vis fn $fname:ident, $shader:expr, $ty:ident { $($f:ident),* $(,)? }) => {
        /// Byte layout of this kernel's `Params` mirror (checked against the WGSL by naga).
        $vis fn $fname() -> $crate::gpu::layout::ParamsLayout {
            // Exhaustive: a field added to the struct but not listed here does not compile.
            #[allow(dead_code)]
            fn every_field_listed(p: $ty) {
                let $ty { $($f: _),* } = p;
            }
            $crate::gpu::layout::ParamsLayout {
                shader: $shader,
                rust_type: concat!(module_path!(), "::", stringify!($ty)),
                size: ::std::mem::size_of::<$ty>(),
                fields: vec![$(
                    $crate::gpu::layout::field::<$ty, _>(
                        stringify!($f),
                        ::std::mem::offset_of!($ty, $f),
                        |p| &p.$f,
                    )
                ),*],
            }
        }
    };
}
pub(crate) use params_layout;
