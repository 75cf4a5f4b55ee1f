//! rawnr runtime core: the `.rnm` model format (zero-copy parse and validation), Bayer
//! packing for all four CFA phases, black/white level normalisation and the Poisson-Gaussian
//! k-sigma noise transform.
//!
//! `#![no_std]`, no allocation needed; the `alloc` feature adds [`builder::ModelBuilder`],
//! which writes `.rnm` files.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod bayer;
#[cfg(feature = "alloc")]
pub mod builder;
pub mod channel;
pub mod crc32;
pub mod error;
pub mod format;
pub mod noise;

pub use error::Error;
