//! rawnr engine: runs a `.rnm` graph on caller-provided scratch memory, and denoises Bayer
//! frames in tiles or row-streamed stripes.
//!
//! - [`graph::Engine`] infers shapes, plans one arena for all activations of a given input size
//!   ([`graph::Engine::plan`], whose `scratch_len` is the memory a caller must provide) and
//!   executes the nodes. Nothing is allocated while running.
//! - [`ops`] turns a node into its kernel call (class, operands, output), for the whole-plane
//!   node loop, the fused bands of separable blocks (`fuse`) and the row-streamed calls
//!   ([`stream`]).
//! - [`denoiser::Denoiser`] packs a Bayer frame into 4 half-resolution planes, applies the
//!   black/white and k-sigma transforms, runs the network on tiles ([`denoiser::tiles`]) or
//!   row-streamed stripes ([`denoiser::stripes`]) and writes each piece's centre back. With a
//!   halo of at least the receptive field the result is bit-identical to running the whole
//!   frame at once; memory does not grow with the frame. [`row_stream`] takes raw rows as a
//!   sensor reads them out.
//!
//! `no_std`. The `alloc` feature adds owned plans ([`graph::Plan`],
//! [`denoiser::Denoiser::prepare`], [`denoiser::Denoiser::denoise`]); without it every table
//! lives in caller memory ([`graph::Engine::plan_in`], [`denoiser::Denoiser::prepare_in`]). The
//! `std` feature (default, implies `alloc`) adds threads, row-streamed stripes in
//! [`denoiser::Denoiser::denoise`] and model files (`file`).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod denoiser;
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

#[cfg(test)]
mod band_tests;

pub use rawnr_core::Error;
