//! rawnr engine: runs a `.rnm` graph on caller-provided scratch memory, and denoises Bayer
//! frames tile by tile with a halo.
//!
//! - [`graph::Engine`] infers shapes, plans one arena for all activations of a given input size
//!   ([`graph::Engine::plan`], whose `scratch_len` is the memory a caller must provide) and executes
//!   the nodes with the kernels of `rawnr-kernels`. Nothing is allocated while running.
//! - [`tiling::Denoiser`] packs a Bayer frame into tiles of 4 half-resolution planes, applies the
//!   black/white and k-sigma transforms, runs the network and writes each tile's centre back.
//!   With a halo of at least the receptive field the result is bit-identical to running the
//!   whole frame at once; memory does not grow with the frame.
//!
//! `no_std`. The `alloc` feature adds owned plans ([`graph::Plan`], [`tiling::Denoiser::prepare`],
//! [`tiling::Denoiser::denoise`]); without it every table lives in caller memory
//! ([`graph::Engine::plan_in`], [`tiling::Denoiser::prepare_in`]). The `std` feature (default,
//! implies `alloc`) adds threads over tiles and model files (`file`).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod detail;
#[cfg(feature = "std")]
pub mod file;
mod fuse;
pub mod graph;
pub mod ops;
#[cfg(feature = "alloc")]
pub mod row_stream;
#[cfg(feature = "alloc")]
pub mod stream;
pub mod tiling;

#[cfg(test)]
mod band_tests;

pub use rawnr_core::Error;
