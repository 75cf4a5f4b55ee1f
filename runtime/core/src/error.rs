//! The core's error type.

use core::fmt;

/// Everything that can go wrong when parsing a model, validating a frame or a noise profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Error {
    /// The buffer is shorter than the structure it must hold.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        got: u64,
    },
    /// The file does not start with the `.rnm` magic.
    BadMagic,
    /// The file has a format version this build cannot read.
    UnsupportedVersion {
        /// Version found in the file.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// A header field is inconsistent (names the field).
    BadHeader(&'static str),
    /// The payload checksum does not match: the file is corrupt.
    ChecksumMismatch {
        /// CRC-32 stored in the header.
        stored: u32,
        /// CRC-32 computed over the payload.
        computed: u32,
    },
    /// The model buffer is not 4-byte aligned, so weights cannot be used in place.
    Misaligned,
    /// The model file is little-endian; this target is big-endian.
    BigEndianTarget,
    /// A tensor record is invalid (names the tensor index and the reason).
    BadTensor {
        /// Tensor index.
        tensor: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A tensor uses a precision this build does not support.
    UnsupportedDtype {
        /// Tensor index.
        tensor: u32,
        /// Precision code found.
        code: u8,
    },
    /// A node has an op code this build does not know.
    UnknownOp {
        /// Node index.
        node: u32,
        /// Op code found.
        code: u16,
    },
    /// A node is inconsistent with the graph (names the node and the reason).
    BadNode {
        /// Node index.
        node: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// The model's info record is inconsistent (names the field).
    BadInfo(&'static str),
    /// Tensor shapes do not fit together at run time (names the node and the reason).
    ShapeMismatch {
        /// Node index.
        node: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A Bayer frame description is invalid (names the reason).
    BadFrame(&'static str),
    /// A caller-provided buffer is too small.
    BufferTooSmall {
        /// Elements needed.
        needed: usize,
        /// Elements provided.
        got: usize,
    },
    /// A noise profile or noise parameter is invalid (names the reason).
    BadNoise(&'static str),
    /// A size computation overflowed (absurd dimensions).
    Overflow,
    /// The working memory a model's plan needs for this frame could not be allocated.
    ScratchTooLarge {
        /// Bytes asked for.
        bytes: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, got } => {
                write!(f, "truncated: needs {needed} bytes, has {got}")
            }
            Error::BadMagic => write!(f, "not a rawnr model (bad magic)"),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "model format version {found} is not supported (this build reads up to {supported})"
            ),
            Error::BadHeader(what) => write!(f, "invalid model header: {what}"),
            Error::ChecksumMismatch { stored, computed } => write!(
                f,
                "model checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): file is corrupt"
            ),
            Error::Misaligned => write!(f, "model buffer must be at least 4-byte aligned"),
            Error::BigEndianTarget => write!(f, "rawnr models are little-endian; big-endian targets are not supported"),
            Error::BadTensor { tensor, reason } => write!(f, "invalid tensor {tensor}: {reason}"),
            Error::UnsupportedDtype { tensor, code } => {
                write!(f, "tensor {tensor} has unsupported precision code {code}")
            }
            Error::UnknownOp { node, code } => write!(f, "node {node} has unknown op code {code}"),
            Error::BadNode { node, reason } => write!(f, "invalid node {node}: {reason}"),
            Error::BadInfo(what) => write!(f, "invalid model info: {what}"),
            Error::ShapeMismatch { node, reason } => {
                write!(f, "shape mismatch at node {node}: {reason}")
            }
            Error::BadFrame(what) => write!(f, "invalid Bayer frame: {what}"),
            Error::BufferTooSmall { needed, got } => {
                write!(f, "buffer too small: needs {needed} elements, got {got}")
            }
            Error::BadNoise(what) => write!(f, "invalid noise parameters: {what}"),
            Error::Overflow => write!(f, "size computation overflowed (absurd dimensions)"),
            Error::ScratchTooLarge { bytes } => write!(
                f,
                "the model needs {:.1} GiB of working memory for this frame, which cannot be allocated",
                *bytes as f64 / (1u64 << 30) as f64
            ),
        }
    }
}

impl core::error::Error for Error {}
