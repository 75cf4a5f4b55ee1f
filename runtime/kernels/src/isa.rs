//! Instruction-set levels: what the CPU has ([`Isa::detected`]) and what the kernels may use
//! ([`Isa::active`]), which can be forced lower so that one machine runs and tests the kernel
//! sets of smaller CPUs (an AVX-512 machine the AVX2 set, any machine the generic one).
//!
//! Forcing: [`Isa::force`] from the program, or, with `std`, the environment variable
//! `RAWNR_ISA` (a level name: `generic`, `avx2`, `avx512`, `avx512vnni`, `neon`, `dotprod`; or
//! `native` for no forcing), read once at the first kernel selection. A level is a ceiling: every
//! feature check of the crate (the dispatch in [`crate::Kernels::best`] and each kernel's own
//! fallback check) answers "absent" for features above it, so no kernel of a higher level runs.

use core::sync::atomic::{AtomicU8, Ordering};

/// A kernel set level, lowest first within each architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// The scalar reference kernels (every CPU).
    Generic,
    /// x86-64: AVX2 + FMA f32 kernels, AVX2 int8 kernels (`vpmaddwd`), F16C.
    Avx2,
    /// x86-64: AVX-512F f32 kernels and element-wise ops; int8 stays on AVX2.
    Avx512,
    /// x86-64: AVX-512F plus AVX-512 BW/VNNI int8 kernels (`vpdpbusd`, `vpdpwssd`).
    Avx512Vnni,
    /// AArch64: NEON f32 and int8 kernels.
    Neon,
    /// AArch64: NEON plus the dot-product int8 kernels (`sdot`).
    NeonDotprod,
}

/// Why a level cannot be forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsaError {
    /// The name is not a level (see [`Isa::parse`]).
    Unknown,
    /// The level belongs to another architecture.
    OtherArchitecture(Isa),
    /// This CPU lacks the level's features.
    Unsupported {
        /// The level asked for.
        requested: Isa,
        /// The highest level this CPU has.
        detected: Isa,
    },
}

impl core::fmt::Display for IsaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IsaError::Unknown => write!(
                f,
                "unknown instruction-set level (expected one of: native, {})",
                LevelNames
            ),
            IsaError::OtherArchitecture(i) => write!(
                f,
                "{} is not a level of this architecture (expected one of: native, {})",
                i.name(),
                LevelNames
            ),
            IsaError::Unsupported {
                requested,
                detected,
            } => write!(
                f,
                "this CPU cannot run the {} kernels (its highest level is {})",
                requested.name(),
                detected.name()
            ),
        }
    }
}

/// This architecture's level names, comma-separated.
struct LevelNames;

impl core::fmt::Display for LevelNames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, l) in Isa::levels().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(l.name())?;
        }
        Ok(())
    }
}

/// The forced ceiling: `UNREAD` until the environment was read (or a level forced), `NONE` for
/// no ceiling, else the level's [`Isa::code`].
static FORCED: AtomicU8 = AtomicU8::new(UNREAD);
/// [`Isa::active`]'s answer once worked out (`UNREAD` before, and again after [`Isa::force`]):
/// every kernel call's feature check reads it, so it is one load, not a CPU query.
static ACTIVE: AtomicU8 = AtomicU8::new(UNREAD);
const UNREAD: u8 = 0;
const NONE: u8 = 0xff;
const ALL: [Isa; 6] = [
    Isa::Generic,
    Isa::Avx2,
    Isa::Avx512,
    Isa::Avx512Vnni,
    Isa::Neon,
    Isa::NeonDotprod,
];
// [`Isa::code`] is the discriminant: `ALL` lists the levels in declaration order.
const _: () = {
    let mut i = 0;
    while i < ALL.len() {
        assert!(ALL[i] as usize == i);
        i += 1;
    }
};

impl Isa {
    /// The level's name, as [`Isa::parse`] and `RAWNR_ISA` take it.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Neon => "neon",
            Isa::NeonDotprod => "dotprod",
        }
    }

    /// The level named `s` (case-insensitive; `-`, `_` and `+` ignored, so `AVX512-VNNI` and
    /// `neon+dotprod` work), or `None`.
    pub fn parse(s: &str) -> Option<Isa> {
        let mut buf = [0u8; 16];
        let mut n = 0;
        for b in s
            .trim()
            .bytes()
            .filter(|b| !matches!(b, b'-' | b'_' | b'+'))
        {
            if n == buf.len() {
                return None;
            }
            buf[n] = b.to_ascii_lowercase();
            n += 1;
        }
        match &buf[..n] {
            b"generic" | b"scalar" => Some(Isa::Generic),
            b"avx2" | b"avx2fma" => Some(Isa::Avx2),
            b"avx512" | b"avx512f" => Some(Isa::Avx512),
            b"avx512vnni" | b"vnni" => Some(Isa::Avx512Vnni),
            b"neon" => Some(Isa::Neon),
            b"dotprod" | b"neondotprod" => Some(Isa::NeonDotprod),
            _ => None,
        }
    }

    /// This architecture's levels, lowest first.
    pub fn levels() -> &'static [Isa] {
        #[cfg(target_arch = "x86_64")]
        {
            &[Isa::Generic, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni]
        }
        #[cfg(target_arch = "aarch64")]
        {
            &[Isa::Generic, Isa::Neon, Isa::NeonDotprod]
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            &[Isa::Generic]
        }
    }

    /// Position in [`Isa::levels`], or `None` on another architecture.
    fn rank(self) -> Option<usize> {
        Isa::levels().iter().position(|&l| l == self)
    }

    /// The levels this CPU runs, lowest first (up to [`Isa::detected`]).
    pub fn available() -> &'static [Isa] {
        let top = Isa::detected().rank().unwrap_or(0);
        &Isa::levels()[..=top]
    }

    /// The level's code in [`FORCED`] and [`ACTIVE`] (1 + its index in [`ALL`]).
    const fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The level of a code, `None` for `UNREAD` and `NONE`.
    fn from_code(code: u8) -> Option<Isa> {
        ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// `Ok(self)` if this CPU runs the level, else why not.
    fn require(self) -> Result<Isa, IsaError> {
        match (self.rank(), Isa::detected().rank()) {
            (Some(r), Some(d)) if r <= d => Ok(self),
            (Some(_), Some(_)) => Err(IsaError::Unsupported {
                requested: self,
                detected: Isa::detected(),
            }),
            _ => Err(IsaError::OtherArchitecture(self)),
        }
    }

    /// The highest level this CPU has (run-time detection with `std`, compile-time target
    /// features without), whatever is forced.
    pub fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::cpu::x86 as c;
            if c::avx512f() && c::avx512vnni() && c::avx2_fma() {
                Isa::Avx512Vnni
            } else if c::avx512f() && c::avx2_fma() {
                Isa::Avx512
            } else if c::avx2_fma() {
                Isa::Avx2
            } else {
                Isa::Generic
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            use crate::cpu::arm as c;
            if c::neon() && c::dotprod() {
                Isa::NeonDotprod
            } else if c::neon() {
                Isa::Neon
            } else {
                Isa::Generic
            }
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            Isa::Generic
        }
    }

    /// The forced ceiling, if any (reads `RAWNR_ISA` the first time, with `std`).
    pub fn forced() -> Option<Isa> {
        let mut v = FORCED.load(Ordering::Relaxed);
        if v == UNREAD {
            v = from_env();
            // A concurrent `force` wins over the environment.
            let _ = FORCED.compare_exchange(UNREAD, v, Ordering::Relaxed, Ordering::Relaxed);
            v = FORCED.load(Ordering::Relaxed);
        }
        Isa::from_code(v)
    }

    /// The level the kernels use: the detected one, or the forced one below it (worked out
    /// once, and again after [`Isa::force`]).
    pub fn active() -> Isa {
        if let Some(a) = Isa::from_code(ACTIVE.load(Ordering::Relaxed)) {
            return a;
        }
        let d = Isa::detected();
        let a = match Isa::forced() {
            Some(f) if f.rank() < d.rank() => f,
            _ => d,
        };
        ACTIVE.store(a.code(), Ordering::Relaxed);
        a
    }

    /// Whether the kernels of `level` may run: this CPU has it and nothing forced is below it.
    pub fn allows(level: Isa) -> bool {
        match (level.rank(), Isa::active().rank()) {
            (Some(l), Some(a)) => l <= a,
            _ => false,
        }
    }

    /// Forces the kernels to `level` and below for the rest of the process (kernel sets made
    /// before keep theirs; [`crate::Kernels::best`] made after follows). `None` lifts the
    /// ceiling. Fails for a level this CPU lacks or of another architecture.
    pub fn force(level: Option<Isa>) -> Result<(), IsaError> {
        let v = match level {
            None => NONE,
            Some(l) => l.require()?.code(),
        };
        FORCED.store(v, Ordering::Relaxed);
        ACTIVE.store(UNREAD, Ordering::Relaxed);
        Ok(())
    }

    /// Checks a level name the way `RAWNR_ISA` is read: `native` (or empty) is no ceiling, else
    /// a level this CPU has.
    pub fn check_name(s: &str) -> Result<Option<Isa>, IsaError> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("native") {
            return Ok(None);
        }
        Isa::parse(s).ok_or(IsaError::Unknown)?.require().map(Some)
    }
}

impl core::fmt::Display for Isa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// `RAWNR_ISA` as a [`FORCED`] value; a value that is not a level this CPU has is reported on
/// stderr once and ignored (programs that take the level from users check it first with
/// [`Isa::check_name`] and fail cleanly).
fn from_env() -> u8 {
    #[cfg(feature = "std")]
    {
        if let Some(v) = std::env::var_os("RAWNR_ISA") {
            let s = v.to_string_lossy();
            return match Isa::check_name(&s) {
                Ok(None) => NONE,
                Ok(Some(l)) => l.code(),
                Err(e) => {
                    std::eprintln!("rawnr: RAWNR_ISA={s} ignored: {e}");
                    NONE
                }
            };
        }
    }
    NONE
}
