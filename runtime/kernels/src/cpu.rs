//! What the CPU has, ignoring any forced level: run-time detection with `std`, the compile-time
//! target features without. The crate's feature checks (`crate::has_*`, gated by
//! [`crate::Isa::allows`]) and [`crate::Isa::detected`] are built on these, and so is
//! [`x86_vnni`], which the CLI asks about ONNX Runtime's kernels; nothing else in rawnr reads
//! CPU features.

/// Whether this CPU has x86 VNNI int8 dot products in either form (AVX-512 VNNI with AVX-512BW,
/// or AVX-VNNI), whatever level is forced (`false` on other architectures). ONNX Runtime's CPU
/// kernels for u8 x s8 products follow this: with it they sum in 32 bits, without it in 16.
pub fn x86_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        x86::avx512vnni() || x86::avxvnni()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// x86-64 features.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(rawnr_no_simd, allow(dead_code))]
pub(crate) mod x86 {
    /// Detects `$f` (feature names as `is_x86_feature_detected!` takes them).
    macro_rules! have {
        ($($f:tt),+) => {{
            #[cfg(feature = "std")]
            {
                $(std::is_x86_feature_detected!($f))&&+
            }
            #[cfg(not(feature = "std"))]
            {
                cfg!(all($(target_feature = $f),+))
            }
        }};
    }

    /// AVX2 and FMA.
    pub(crate) fn avx2_fma() -> bool {
        have!("avx2", "fma")
    }
    /// AVX2.
    pub(crate) fn avx2() -> bool {
        have!("avx2")
    }
    /// AVX-512F.
    pub(crate) fn avx512f() -> bool {
        have!("avx512f")
    }
    /// AVX-512F, BW and VNNI.
    pub(crate) fn avx512vnni() -> bool {
        have!("avx512f", "avx512bw", "avx512vnni")
    }
    /// AVX and F16C.
    pub(crate) fn f16c() -> bool {
        have!("avx", "f16c")
    }
    /// AVX-VNNI (the VEX-encoded `vpdpbusd` of AVX2-class CPUs).
    pub(crate) fn avxvnni() -> bool {
        have!("avxvnni")
    }
}

/// AArch64 features.
#[cfg(target_arch = "aarch64")]
pub(crate) mod arm {
    /// NEON.
    pub(crate) fn neon() -> bool {
        #[cfg(feature = "std")]
        {
            std::arch::is_aarch64_feature_detected!("neon")
        }
        #[cfg(not(feature = "std"))]
        {
            cfg!(target_feature = "neon")
        }
    }
    /// NEON and the dot-product instructions.
    pub(crate) fn dotprod() -> bool {
        #[cfg(feature = "std")]
        {
            std::arch::is_aarch64_feature_detected!("neon")
                && std::arch::is_aarch64_feature_detected!("dotprod")
        }
        #[cfg(not(feature = "std"))]
        {
            cfg!(all(target_feature = "neon", target_feature = "dotprod"))
        }
    }
}
