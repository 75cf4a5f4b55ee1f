//! Denoising Bayer frames: a [`Denoiser`] packs a frame into 4 half-resolution planes,
//! applies the black/white and noise transforms, runs the network on pieces of the frame and
//! writes each piece's centre back. Two ways to cut a frame, each in its own module, chosen
//! with one options value ([`Cut`], inside [`DenoiseOptions`]):
//!
//! - [`tiles`]: square tiles with a halo on all sides, each run as whole planes
//!   ([`crate::graph`]); any number of tile rows at once, line-buffer callers run them one by
//!   one ([`Denoiser::denoise_band_rows`]), other backends through [`Denoiser::denoise_via`].
//! - [`stripes`]: full-height stripes with a halo at their sides, each row-streamed
//!   ([`crate::stream`]): no row is computed twice and there is no vertical halo.
//!
//! The frame is packed into 4 planes (`ceil(H/2) x ceil(W/2)`), padded by edge replication up to
//! the model's size multiple `M`; tile and stripe origins are multiples of `M`, and a halo (also a
//! multiple of `M`, clipped at the padded frame's border) of at least the receptive field gives
//! bitwise the output of one whole-frame pass. Row-by-row pushing from a sensor readout is
//! [`crate::row_stream`].

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use rawnr_core::bayer::{FrameLayout, Levels, PixelTransform};
use rawnr_core::format::{InputConvention, NoiseChannels, NoiseConditioning};
use rawnr_core::noise::{Affine, ChannelNoise, NoiseParams};
use rawnr_core::Error;

use crate::graph::{Engine, Shape};

pub mod stripes;
pub mod tiles;

pub use stripes::StripeOptions;
pub use tiles::{DefaultPlan, FramePlan, Tile, TileGrid, TileOptions, ViaError};

/// How a frame is cut for the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Square tiles with a halo on all sides ([`tiles`]).
    Tiles(TileOptions),
    /// Full-height stripes with a halo at their sides, row-streamed ([`stripes`]; needs the
    /// `std` feature).
    Stripes(StripeOptions),
}

/// Progress of a run: `(done, total)`, in bands of tiles for [`Cut::Tiles`] and in packed rows
/// of all stripes for [`Cut::Stripes`]; called from worker threads.
pub type Progress<'a> = dyn Fn(usize, usize) + Sync + 'a;

/// How [`Denoiser::denoise`] runs a frame: the cut, the threads and a progress callback.
#[derive(Clone, Copy)]
pub struct DenoiseOptions<'a> {
    /// Tiles or stripes, and their sizes.
    pub cut: Cut,
    /// Worker threads (tile rows or stripes are spread over them; ignored without `std`).
    pub threads: usize,
    /// Called as the run advances.
    pub progress: Option<&'a Progress<'a>>,
}

impl core::fmt::Debug for DenoiseOptions<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DenoiseOptions")
            .field("cut", &self.cut)
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl<'a> DenoiseOptions<'a> {
    /// Tiles cut as `tiles` say, on `threads` threads.
    pub fn tiles(tiles: TileOptions, threads: usize) -> Self {
        DenoiseOptions {
            cut: Cut::Tiles(tiles),
            threads,
            progress: None,
        }
    }

    /// Stripes cut as `stripes` say, row-streamed on `threads` threads.
    pub fn stripes(stripes: StripeOptions, threads: usize) -> Self {
        DenoiseOptions {
            cut: Cut::Stripes(stripes),
            threads,
            progress: None,
        }
    }

    /// The same options reporting progress to `progress`.
    pub fn with_progress(self, progress: &'a Progress<'a>) -> Self {
        DenoiseOptions {
            progress: Some(progress),
            ..self
        }
    }
}

/// Denoises Bayer frames with one model.
#[derive(Debug, Clone)]
pub struct Denoiser<'m> {
    engine: Engine<'m>,
    input: InputConvention,
}

/// One frame run of [`Denoiser::denoise`], its frames checked: what the tile and stripe runs
/// take.
#[cfg(feature = "alloc")]
pub(super) struct FrameJob<'a, 'o> {
    input: &'a [u16],
    layout: &'a FrameLayout,
    output: &'o mut [u16],
    out_layout: &'a FrameLayout,
    levels: &'a Levels,
    noise: ChannelNoise,
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    threads: usize,
    progress: &'a Progress<'a>,
}

impl<'m> Denoiser<'m> {
    /// A denoiser for a validated model, with the input convention the model declares.
    pub fn new(engine: Engine<'m>) -> Self {
        let input = engine.model().info().input;
        Denoiser { engine, input }
    }

    /// The same denoiser with another input convention than the model declares (for
    /// measuring the choices, `denoise-raw eval`); results then differ from the model's.
    pub fn with_input_convention(self, input: InputConvention) -> Self {
        Denoiser { input, ..self }
    }

    /// The input convention in effect.
    pub fn input_convention(&self) -> InputConvention {
        self.input
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<'m> {
        &self.engine
    }

    /// Noise parameters at `iso` from the model's default profile.
    pub fn default_noise(&self, iso: f32) -> Result<NoiseParams, Error> {
        self.engine.model().info().default_noise.at(iso)
    }

    /// The normalised-domain transform applied before the network for noise `noise`.
    pub fn noise_transform(&self, noise: NoiseParams) -> Result<Affine, Error> {
        let info = self.engine.model().info();
        match info.noise {
            NoiseConditioning::None => Ok(Affine::IDENTITY),
            NoiseConditioning::KSigma { anchor_iso } => {
                Affine::k_sigma(noise, info.default_noise.at(anchor_iso)?)
            }
        }
    }

    /// Denoises `input` (a frame of `layout`) into `output` (a frame of `out_layout`: the same
    /// size and CFA, its own stride) as `opts` say: cut into tiles or row-streamed stripes,
    /// spread over threads, one scratch arena per worker allocated here (an error, not an
    /// abort, where the allocator refuses). `noise` is the frame's noise (one for all planes,
    /// or per plane).
    #[cfg(feature = "alloc")]
    #[allow(clippy::too_many_arguments)]
    pub fn denoise(
        &self,
        input: &[u16],
        layout: &FrameLayout,
        output: &mut [u16],
        out_layout: &FrameLayout,
        levels: &Levels,
        noise: impl Into<ChannelNoise>,
        opts: &DenoiseOptions<'_>,
    ) -> Result<(), Error> {
        Self::check_output(layout, input, out_layout, output)?;
        let quiet = |_: usize, _: usize| {};
        let job = FrameJob {
            input,
            layout,
            output,
            out_layout,
            levels,
            noise: noise.into(),
            threads: opts.threads,
            progress: opts.progress.unwrap_or(&quiet),
        };
        match &opts.cut {
            Cut::Tiles(t) => self.denoise_tiles(job, t),
            #[cfg(feature = "std")]
            Cut::Stripes(s) => self.denoise_stripes(job, s),
            #[cfg(not(feature = "std"))]
            Cut::Stripes(_) => Err(Error::BadInfo(
                "row-streamed stripes need the std feature (use tiles)",
            )),
        }
    }

    /// The tile (or stripe) grid of frames of `layout`'s size.
    pub(crate) fn frame_grid(
        &self,
        layout: &FrameLayout,
        opts: &TileOptions,
    ) -> Result<TileGrid, Error> {
        if layout.width < 2 || layout.height < 2 {
            return Err(Error::BadFrame("a Bayer frame needs at least 2x2 pixels"));
        }
        let info = self.engine.model().info();
        TileGrid::new(
            layout.packed_height(),
            layout.packed_width(),
            info.size_multiple as usize,
            opts,
            info.halo as usize,
        )
    }

    /// Errors unless `input` and `output` hold frames of their layouts and the layouts are
    /// one frame's (see [`Denoiser::check_same_frame`]).
    fn check_output(
        layout: &FrameLayout,
        input: &[u16],
        out_layout: &FrameLayout,
        output: &[u16],
    ) -> Result<(), Error> {
        layout.validate(input.len())?;
        out_layout.validate(output.len())?;
        Self::check_same_frame(layout, out_layout)
    }

    /// Errors unless the output layout has the input's size and CFA (its stride may differ).
    fn check_same_frame(layout: &FrameLayout, out_layout: &FrameLayout) -> Result<(), Error> {
        if (layout.width, layout.height, layout.cfa)
            != (out_layout.width, out_layout.height, out_layout.cfa)
        {
            return Err(Error::BadFrame(
                "output frame differs from the input in size or CFA",
            ));
        }
        Ok(())
    }

    /// Errors unless the network output of a plan's value `shapes` has the size `input` of
    /// its input.
    fn check_output_size(&self, shapes: &[Shape], input: (usize, usize)) -> Result<(), Error> {
        let v = self.engine.model().info().output_value;
        let out = shapes[v as usize];
        if (out.h, out.w) != input {
            return Err(Error::ShapeMismatch {
                node: v,
                reason: "network output size differs from its input",
            });
        }
        Ok(())
    }

    /// The pixel transforms before and after the network for `levels` and `noise`, as the
    /// model's input convention says (pooled or per-plane noise, clipping below black).
    pub(crate) fn transforms(
        &self,
        levels: &Levels,
        noise: &ChannelNoise,
    ) -> Result<(PixelTransform, PixelTransform), Error> {
        let info = self.engine.model().info();
        let t = self.plane_transforms(noise)?;
        let forward = PixelTransform::forward_channels(levels, &t, info.input_scale);
        Ok((
            if self.input.clip_below_black {
                forward.clipped_below_black(levels)
            } else {
                forward
            },
            PixelTransform::inverse_channels(levels, &t, info.input_scale),
        ))
    }

    /// What a streamed run of frames with `levels` and `noise` runs with: the forward and
    /// inverse pixel transforms and the engine at the noise's band.
    #[cfg(feature = "alloc")]
    pub(crate) fn stream_tuning(
        &self,
        levels: &Levels,
        noise: &ChannelNoise,
    ) -> Result<(PixelTransform, PixelTransform, Engine<'m>), Error> {
        let (forward, inverse) = self.transforms(levels, noise)?;
        let engine = self.engine.at_noise_band(self.noise_band(noise)?)?;
        Ok((forward, inverse, engine))
    }

    /// The noise transform of each plane under the input convention (pooled or per plane).
    fn plane_transforms(&self, noise: &ChannelNoise) -> Result<[Affine; 4], Error> {
        let noise = match self.input.noise_channels {
            NoiseChannels::PerPlane => *noise,
            NoiseChannels::Pooled => noise.pooled().into(),
        };
        let mut t = [Affine::IDENTITY; 4];
        for (tc, &n) in t.iter_mut().zip(&noise.0) {
            *tc = self.noise_transform(n)?;
        }
        Ok(t)
    }

    /// The model's noise band for frames with `noise`: the band of the mean gain of the four
    /// planes' noise transforms ([`rawnr_core::format::Model::noise_band_for_gain`]; always 0
    /// for a model without bands).
    pub fn noise_band(&self, noise: &ChannelNoise) -> Result<usize, Error> {
        let m = self.engine.model();
        if m.noise_bands() == 1 {
            return Ok(0);
        }
        Ok(m.noise_band_for_gain(self.noise_gain(noise)?))
    }

    /// The key of the noise bands: the mean gain of the four planes' noise transforms for
    /// `noise` under the input convention (1 without noise conditioning; for a k-sigma model
    /// `k_anchor / k`, above 1 for frames less noisy than the anchor).
    pub fn noise_gain(&self, noise: &ChannelNoise) -> Result<f32, Error> {
        let t = self.plane_transforms(noise)?;
        Ok((t.iter().map(|a| a.gain).sum::<f64>() / 4.0) as f32)
    }
}

/// A zeroed scratch arena of `len` f32s, or [`Error::ScratchTooLarge`] where the allocator
/// refuses (a hostile model's plan can ask for more than the machine has: an error, not an
/// abort).
#[cfg(feature = "alloc")]
fn scratch_vec(len: usize) -> Result<Vec<f32>, Error> {
    let too_large = Error::ScratchTooLarge {
        bytes: len.saturating_mul(4),
    };
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_large)?;
    v.resize(len, 0.0);
    Ok(v)
}

/// Runs `worker` on `n` scoped threads (on the calling thread when `n` is 1) and returns the
/// first error, a panicking worker being one.
#[cfg(feature = "std")]
fn run_workers(n: usize, worker: impl Fn() -> Result<(), Error> + Sync) -> Result<(), Error> {
    if n <= 1 {
        return worker();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(&worker)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(Err(Error::BadFrame("a worker thread panicked")))
            })
            .collect::<Result<Vec<()>, Error>>()
            .map(|_| ())
    })
}
