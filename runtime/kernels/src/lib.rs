//! rawnr compute kernels.
//!
//! [`generic`] holds the scalar f32 reference of every op: the oracle that every optimised
//! kernel (per-ISA files added next to it) is tested against. Tensors are CHW `f32` slices;
//! kernels never allocate, and shapes are described by plain structs.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod generic;

/// Activation applied to a kernel's output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// Identity.
    None,
    /// max(x, 0).
    Relu,
    /// x if x >= 0 else alpha * x.
    LeakyRelu(f32),
}

impl Act {
    /// Applies the activation to one value.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            Act::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
        }
    }
}

/// Shape and parameters of a (transposed) 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvShape {
    /// Input channels.
    pub in_c: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Padding: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Groups.
    pub groups: usize,
}

impl ConvShape {
    /// Output (height, width) of a convolution, or `None` if the kernel does not fit.
    pub fn conv_out(&self) -> Option<(usize, usize)> {
        let h = self.in_h + self.pad[0] + self.pad[2];
        let w = self.in_w + self.pad[1] + self.pad[3];
        if h < self.k_h || w < self.k_w || self.stride_h == 0 || self.stride_w == 0 {
            return None;
        }
        Some((
            (h - self.k_h) / self.stride_h + 1,
            (w - self.k_w) / self.stride_w + 1,
        ))
    }

    /// Output (height, width) of a transposed convolution, or `None` if padding crops
    /// everything.
    pub fn conv_transpose_out(&self) -> Option<(usize, usize)> {
        if self.in_h == 0 || self.in_w == 0 {
            return None;
        }
        let h = (self.in_h - 1) * self.stride_h + self.k_h;
        let w = (self.in_w - 1) * self.stride_w + self.k_w;
        let (pv, ph) = (self.pad[0] + self.pad[2], self.pad[1] + self.pad[3]);
        if h <= pv || w <= ph {
            return None;
        }
        Some((h - pv, w - ph))
    }
}
