//! What the CPU has, ignoring any forced level: run-time detection with `std`, the compile-time
//! target features without. The crate's feature checks (`crate::has_*`, gated by
//! [`crate::Isa::allows`]) and [`crate::Isa::detected`] are built on these; nothing else reads
//! CPU features.

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
