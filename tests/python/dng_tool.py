#!/usr/bin/env python3
"""Independent DNG tooling for rawnr's tests (nothing here shares code with rawnr).

  dng_tool.py make OUT.dng --width W --height H --cfa RGGB --bits 12 [--noise-profile S O] [--seed N]
      Writes a synthetic Bayer DNG with PiDNG (tiled, uncompressed): smooth colour gradients
      with Poisson-Gaussian noise.
  dng_tool.py dump IN.dng OUT.u16
      Opens the DNG with LibRaw (rawpy), writes its full CFA array as little-endian uint16 to
      OUT.u16 and prints JSON metadata (size, CFA pattern, black levels, white level).
"""
import argparse
import json
import sys

import numpy as np


def make(args):
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, Orientation, PhotometricInterpretation
    from pidng.dng import dngTag, Type

    w, h, bits = args.width, args.height, args.bits
    rng = np.random.default_rng(args.seed)
    white = (1 << bits) - 1
    black = 1 << max(bits - 6, 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    clean = 0.15 + 0.6 * (0.5 + 0.5 * np.sin(x / 37.0) * np.cos(y / 23.0))
    k, s2 = 0.004, 2e-5  # normalised Poisson-Gaussian noise
    noisy = k * rng.poisson(clean / k) + rng.normal(0, np.sqrt(s2), clean.shape)
    raw = np.clip(np.round(black + noisy * (white - black)), 0, white).astype(np.uint16)

    patterns = {"RGGB": CFAPattern.RGGB, "BGGR": CFAPattern.BGGR, "GRBG": CFAPattern.GRBG, "GBRG": CFAPattern.GBRG}
    t = DNGTags()
    if args.kind == "linear":
        raw = np.repeat(raw[:, :, None], 3, axis=2).reshape(h, w * 3)
        t.set(Tag.SamplesPerPixel, 3)
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, Orientation.Horizontal)
    if args.kind == "linear":
        t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Linear_Raw)
    else:
        t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
        t.set(Tag.SamplesPerPixel, 1)
    # PiDNG packs 10/12/14-bit samples only for widths it can pack; other widths store the
    # samples in 16-bit containers (WhiteLevel still says the data's bit depth).
    t.set(Tag.BitsPerSample, bits if w % 8 == 0 else 16)
    if args.kind == "xtrans":
        # Fujifilm X-Trans 6x6 pattern (0 = R, 1 = G, 2 = B).
        xt = [1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1, 1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1]
        t.set(Tag.CFARepeatPatternDim, [6, 6])
        t.set(Tag.CFAPattern, xt)
    elif args.kind == "bayer":
        t.set(Tag.CFARepeatPatternDim, [2, 2])
        t.set(Tag.CFAPattern, patterns[args.cfa])
    t.set(Tag.BlackLevel, black)
    t.set(Tag.WhiteLevel, white)
    t.set(Tag.ColorMatrix1, [[19549, 10000], [-7877, 10000], [-2582, 10000], [-5724, 10000], [10121, 10000],
                             [1917, 10000], [-1267, 10000], [3680, 10000], [6000, 10000]])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [[1, 2], [1, 1], [2, 3]])
    t.set(Tag.Make, "rawnr-test")
    t.set(Tag.Model, "synthetic %s %d-bit" % (args.cfa, bits))
    t.set(Tag.ExposureTime, [[1, 50]])
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    if args.noise_profile:
        t.set(Tag.NoiseProfile, [float(v) for v in args.noise_profile])
    r = RAW2DNG()
    r.options(t, path="", compress=False)
    out = args.out[:-4] if args.out.endswith(".dng") else args.out
    r.convert(raw, filename=out)


def dump(args):
    import rawpy

    with rawpy.imread(args.input) as r:
        raw = np.ascontiguousarray(r.raw_image, dtype="<u2")
        raw.tofile(args.out)
        meta = {
            "width": int(raw.shape[1]),
            "height": int(raw.shape[0]),
            "visible": [int(r.sizes.raw_width), int(r.sizes.raw_height), int(r.sizes.width), int(r.sizes.height),
                        int(r.sizes.top_margin), int(r.sizes.left_margin)],
            "pattern": r.raw_pattern.tolist() if r.raw_pattern is not None else None,
            "color_desc": r.color_desc.decode(),
            "black": [int(b) for b in r.black_level_per_channel],
            "white": int(r.white_level),
            "camera_whitebalance": [float(v) for v in r.camera_whitebalance],
        }
    json.dump(meta, sys.stdout)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--width", type=int, required=True)
    m.add_argument("--height", type=int, required=True)
    m.add_argument("--cfa", default="RGGB")
    m.add_argument("--bits", type=int, default=12)
    m.add_argument("--noise-profile", nargs="+", type=float, help="S O pairs: one, or one per plane (R G B)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--kind", choices=["bayer", "linear", "xtrans"], default="bayer")
    d = sub.add_parser("dump")
    d.add_argument("input")
    d.add_argument("out")
    args = p.parse_args()
    {"make": make, "dump": dump}[args.cmd](args)


if __name__ == "__main__":
    main()
