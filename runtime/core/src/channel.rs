//! Canonical CFA channel indices: the order of the four packed planes (R, Gr, Gb, B), shared by
//! the Bayer packing (`bayer`) and per-channel noise (`noise`), which depend on this module and
//! not on each other's channels.

/// Canonical channel index of red.
pub const R: usize = 0;
/// Canonical channel index of green on red rows.
pub const GR: usize = 1;
/// Canonical channel index of green on blue rows.
pub const GB: usize = 2;
/// Canonical channel index of blue.
pub const B: usize = 3;
