"""Checks the Python binding against the Rust API's output (run by
`runtime/capi/tests/c_examples.rs`, which builds the library and the reference).

usage: test_rawnr.py MODEL.rnm CROP.pgm WANT.u16 (little-endian, ISO 3200, GRBG, 25/1023)
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import rawnr  # noqa: E402

checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    checks += 1


def raises(status, what, f):
    try:
        f()
    except rawnr.RawnrError as e:
        check(e.status == status, f"{what}: status {e.status} ({e}), expected {status}")
        return
    check(False, f"{what}: no error")


def read_pgm(path):
    data = pathlib.Path(path).read_bytes()
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P5"
    w, h, maxval = int(parts[1]), int(parts[2]), int(parts[3])
    assert maxval > 255
    pixels = data[len(data) - 2 * w * h:]
    # Big-endian 16-bit samples to native uint16.
    return w, h, bytes(pixels[i ^ 1] for i in range(len(pixels)))


def main():
    model_path, crop, want_path = sys.argv[1:4]
    w, h, frame = read_pgm(crop)
    want = pathlib.Path(want_path).read_bytes()
    check(len(want) == 2 * w * h, "reference size")

    check(rawnr.version().startswith("0."), f"version {rawnr.version()}")
    model = rawnr.Model(model_path)
    info = model.info()
    check(info["name"].startswith("PMRID"), f"model name {info['name']}")
    check(info["noise_conditioning"] == "k-sigma" and info["size_multiple"] == 32, str(info))
    # PMRID: about 60 GMAC for a 3472x4624 frame (16.05 MP), 3.7 GMAC per megapixel.
    check(info["precision"] == "f32" and 3.5e9 < info["macs_per_megapixel"] < 4e9, str(info))
    int8 = rawnr.Model(pathlib.Path(model_path).with_name("pmrid-int8.rnm")).info()
    f16 = rawnr.Model(pathlib.Path(model_path).with_name("pmrid-f16.rnm")).info()
    check(int8["precision"] == "int8" and int8["noise_bands"] > 1, str(int8))
    check(f16["precision"] == "f16" and f16["noise_bands"] == 1, str(f16))
    check(int8["macs_per_megapixel"] == info["macs_per_megapixel"], "int8 MACs")
    # The same model from bytes.
    same = rawnr.Model(data=pathlib.Path(model_path).read_bytes())
    check(same.info() == info, "model from bytes")

    d = rawnr.Denoiser(model, width=w, height=h, cfa="grbg", black=25, white=1023, iso=3200)
    di = d.info()
    check(di["width"] == w and di["height"] == h and di["scratch_size"] == d.scratch_size, str(di))

    # Without NumPy: bytes in, bytearray out.
    out = d.denoise(bytearray(frame), out=bytearray(2 * w * h))
    check(bytes(out) == want, "bytearray output equals the Rust API's")
    try:
        import numpy as np
    except ImportError:
        np = None
    if np is not None:
        a = np.frombuffer(frame, dtype=np.uint16).reshape(h, w)
        got = d.denoise(a)
        check(got.shape == (h, w) and got.dtype == np.uint16, "array output shape")
        check(got.tobytes() == want, "NumPy output equals the Rust API's")
        # Frames of the wrong size are the library's errors.
        raises(2, "short frame", lambda: d.denoise(a[: h // 2]))
        raises(3, "narrow frame", lambda: d.denoise(np.zeros((h, w - 2), dtype=np.uint16)))
    # The model's default noise at ISO 3200 given as (k, sigma2): the same output.
    k = info["default_k"][0] * 3200 + info["default_k"][1]
    s2 = (info["default_sigma2"][0] * 3200 + info["default_sigma2"][1]) * 3200 + info[
        "default_sigma2"
    ][2]
    dn = rawnr.Denoiser(model, width=w, height=h, cfa="grbg", black=25, white=1023, noise=(k, s2))
    out2 = dn.denoise(bytearray(frame), out=bytearray(2 * w * h))
    check(bytes(out2) == want, "(k, sigma2) of ISO 3200 equals iso=3200")

    raises(12, "missing model file", lambda: rawnr.Model("/nonexistent/model.rnm"))
    raises(4, "garbage model bytes", lambda: rawnr.Model(data=b"RAWNRMDL" + bytes(100)))
    raises(5, "white below black", lambda: rawnr.Denoiser(
        model, width=w, height=h, cfa="grbg", black=25, white=20, iso=3200))
    raises(6, "negative noise", lambda: rawnr.Denoiser(
        model, width=w, height=h, cfa="grbg", black=25, white=1023, noise=(-1.0, 0.0)))
    dn.close()
    d.close()
    same.close()
    model.close()
    print(f"python binding: {checks} checks passed (NumPy: {'yes' if np is not None else 'no'})")


main()
