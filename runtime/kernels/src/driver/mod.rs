//! Generic drivers (tract's `linalg` pattern): one per op, owning the loops over channels,
//! pixel blocks and tails, the plane layouts and the epilogue, over a small per-ISA
//! micro-kernel trait. An ISA's file implements the trait (its registers and instructions)
//! and wraps the driver in a `#[target_feature]` function; the driver is `#[inline(always)]`,
//! so it is compiled once per ISA with that ISA's features.

pub(crate) mod conv_f32;
pub(crate) mod pointwise_f32;
