"""rawnr for Python: the rawnr C library (``librawnr_capi.so``) through ``ctypes``.

For ISP tuning scripts on a host: load a ``.rnm`` model, denoise a Bayer frame held in a
NumPy ``uint16`` array (or any buffer of ``uint16`` rows), read the model's and the
denoiser's info. Every C error becomes a :class:`RawnrError` carrying the status code and
the library's message. Nothing is copied into the library's memory beyond what the C API
itself allocates (``rawnr_model_open``, ``rawnr_denoiser_new``).

The library is found from ``RAWNR_LIB`` (a path), else ``target/release`` then
``target/debug`` of the repository this file sits in (``cargo build --release -p
rawnr-capi`` builds it).

Example::

    import numpy as np, rawnr
    model = rawnr.Model("models/pmrid.rnm")
    d = rawnr.Denoiser(model, width=2592, height=304, cfa="grbg", black=25, white=1023,
                       iso=3200)
    clean = d.denoise(noisy)            # noisy: np.uint16 array of shape (304, 2592)
"""

import ctypes
import os
import pathlib

__all__ = ["RawnrError", "Model", "Denoiser", "version", "CFA"]

#: CFA phases of the top-left 2x2 block (``RAWNR_CFA_*``).
CFA = {"rggb": 0, "bggr": 1, "grbg": 2, "gbrg": 3}


class RawnrError(Exception):
    """A rawnr call failed: ``status`` is the ``RAWNR_ERR_*`` code, ``what`` the call."""

    def __init__(self, status, what):
        self.status = status
        self.what = what
        msg = _lib.rawnr_status_string(status).decode("utf-8", "replace")
        super().__init__(f"{what}: {msg} (status {status})")


class _ModelInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 40),
        ("size_multiple", ctypes.c_uint32),
        ("halo", ctypes.c_uint32),
        ("receptive_field", ctypes.c_uint32),
        ("n_nodes", ctypes.c_uint32),
        ("n_values", ctypes.c_uint32),
        ("noise_conditioning", ctypes.c_uint32),
        ("anchor_iso", ctypes.c_float),
        ("default_k", ctypes.c_float * 2),
        ("default_sigma2", ctypes.c_float * 3),
        ("clip_below_black", ctypes.c_uint32),
        ("noise_channels", ctypes.c_uint32),
        ("noise_bands", ctypes.c_uint32),
        ("precision", ctypes.c_uint32),
        ("macs_per_megapixel", ctypes.c_uint64),
    ]


#: ``rawnr_model_info.precision`` codes (``RAWNR_PRECISION_*``).
PRECISION = {0: "f32", 1: "f16", 2: "int8"}


class _Config(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("cfa", ctypes.c_uint32),
        ("black", ctypes.c_float * 4),
        ("white", ctypes.c_float),
        ("noise_k", ctypes.c_float),
        ("noise_sigma2", ctypes.c_float),
        ("iso", ctypes.c_float),
        ("tile", ctypes.c_uint32),
        ("halo", ctypes.c_int32),
        ("detail_restore", ctypes.c_uint32),
    ]


class _DenoiserInfo(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("tile", ctypes.c_uint32),
        ("halo", ctypes.c_uint32),
        ("tile_rows", ctypes.c_uint32),
        ("tile_cols", ctypes.c_uint32),
        ("scratch_size", ctypes.c_uint64),
        ("noise_band", ctypes.c_uint32),
        ("latency_rows", ctypes.c_uint32),
    ]


def _find_library():
    env = os.environ.get("RAWNR_LIB")
    if env:
        return env
    root = pathlib.Path(__file__).resolve().parents[2]
    for profile in ("release", "debug"):
        cand = root / "target" / profile / "librawnr_capi.so"
        if cand.exists():
            return str(cand)
    raise OSError(
        "librawnr_capi.so not found: set RAWNR_LIB or run `cargo build --release -p rawnr-capi`"
    )


def _load():
    lib = ctypes.CDLL(_find_library())
    p, sz = ctypes.c_void_p, ctypes.c_size_t
    sigs = {
        "rawnr_version": ([], ctypes.c_char_p),
        "rawnr_status_string": ([ctypes.c_int32], ctypes.c_char_p),
        "rawnr_model_open": ([ctypes.c_char_p, ctypes.POINTER(p)], ctypes.c_int32),
        "rawnr_model_load": ([p, sz, ctypes.POINTER(p)], ctypes.c_int32),
        "rawnr_model_free": ([p], None),
        "rawnr_model_get_info": ([p, ctypes.POINTER(_ModelInfo)], ctypes.c_int32),
        "rawnr_config_default": ([ctypes.POINTER(_Config)], ctypes.c_int32),
        "rawnr_denoiser_new": ([p, ctypes.POINTER(_Config), ctypes.POINTER(p)], ctypes.c_int32),
        "rawnr_denoiser_free": ([p], None),
        "rawnr_denoiser_scratch_size": ([p, ctypes.POINTER(sz)], ctypes.c_int32),
        "rawnr_denoiser_get_info": ([p, ctypes.POINTER(_DenoiserInfo)], ctypes.c_int32),
        "rawnr_denoise_frame": ([p, p, sz, sz, p, sz, sz, p, sz], ctypes.c_int32),
    }
    for name, (args, res) in sigs.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = res
    return lib


_lib = _load()


def _check(status, what):
    if status != 0:
        raise RawnrError(status, what)


def _row_stride(a, width):
    strides = getattr(a, "strides", None)
    if strides is not None and len(strides) == 2:
        return strides[0]
    return 2 * width


def version():
    """The library's version string."""
    return _lib.rawnr_version().decode()


class Model:
    """A ``.rnm`` model: from a file path, or from the file's bytes (``data=``)."""

    def __init__(self, path=None, *, data=None):
        self._h = ctypes.c_void_p()
        if (path is None) == (data is None):
            raise ValueError("give a path or data, not both")
        if path is not None:
            _check(_lib.rawnr_model_open(os.fsencode(path), ctypes.byref(self._h)), "rawnr_model_open")
        else:
            # The C library uses the bytes in place, 4-byte aligned: an aligned copy kept
            # alive as long as the model.
            self._words = (ctypes.c_uint32 * ((len(data) + 3) // 4))()
            ctypes.memmove(self._words, bytes(data), len(data))
            _check(
                _lib.rawnr_model_load(self._words, len(data), ctypes.byref(self._h)),
                "rawnr_model_load",
            )

    def info(self):
        """The model's info (``rawnr_model_info``) as a dict."""
        i = _ModelInfo()
        _check(_lib.rawnr_model_get_info(self._h, ctypes.byref(i)), "rawnr_model_get_info")
        return {
            "name": i.name.decode("utf-8", "replace"),
            "size_multiple": i.size_multiple,
            "halo": i.halo,
            "receptive_field": i.receptive_field,
            "n_nodes": i.n_nodes,
            "n_values": i.n_values,
            "noise_conditioning": "k-sigma" if i.noise_conditioning == 1 else "none",
            "anchor_iso": i.anchor_iso,
            "default_k": list(i.default_k),
            "default_sigma2": list(i.default_sigma2),
            "clip_below_black": bool(i.clip_below_black),
            "noise_channels": "pooled" if i.noise_channels == 1 else "per-plane",
            "noise_bands": i.noise_bands,
            "precision": PRECISION.get(i.precision, str(i.precision)),
            "macs_per_megapixel": i.macs_per_megapixel,
        }

    def close(self):
        """Frees the model (denoisers made from it must be closed first)."""
        if self._h:
            _lib.rawnr_model_free(self._h)
            self._h = ctypes.c_void_p()

    def __del__(self):
        self.close()


class Denoiser:
    """A model planned for one frame size, CFA, levels and noise (``rawnr_denoiser_new``).

    ``black`` is one level or four (R, Gr, Gb, B). Noise: ``iso`` (the model's default
    profile at that ISO) or ``noise=(k, sigma2)`` in normalised units. ``tile`` in packed
    pixels (0: whole frame), ``halo`` (-1: the model's), ``detail_restore`` as ``denoise-raw``.
    """

    def __init__(self, model, *, width, height, cfa, black, white, iso=None, noise=None,
                 tile=256, halo=-1, detail_restore=False):
        cfg = _Config()
        _check(_lib.rawnr_config_default(ctypes.byref(cfg)), "rawnr_config_default")
        if cfa not in CFA:
            raise ValueError(f"cfa must be one of {sorted(CFA)}")
        blacks = [black] * 4 if isinstance(black, (int, float)) else list(black)
        if len(blacks) != 4:
            raise ValueError("black: one level or four (R, Gr, Gb, B)")
        if (iso is None) == (noise is None):
            raise ValueError("give iso or noise=(k, sigma2)")
        cfg.width, cfg.height, cfg.cfa = width, height, CFA[cfa]
        for i, b in enumerate(blacks):
            cfg.black[i] = b
        cfg.white = white
        if noise is not None:
            cfg.noise_k, cfg.noise_sigma2 = noise
        else:
            cfg.noise_k, cfg.iso = 0.0, iso
        cfg.tile, cfg.halo, cfg.detail_restore = tile, halo, int(bool(detail_restore))
        self.model = model
        self.width, self.height = width, height
        self._h = ctypes.c_void_p()
        _check(
            _lib.rawnr_denoiser_new(model._h, ctypes.byref(cfg), ctypes.byref(self._h)),
            "rawnr_denoiser_new",
        )
        n = ctypes.c_size_t()
        _check(_lib.rawnr_denoiser_scratch_size(self._h, ctypes.byref(n)), "rawnr_denoiser_scratch_size")
        self.scratch_size = n.value

    def info(self):
        """The denoiser's info (``rawnr_denoiser_info``) as a dict."""
        i = _DenoiserInfo()
        _check(_lib.rawnr_denoiser_get_info(self._h, ctypes.byref(i)), "rawnr_denoiser_get_info")
        return {f: getattr(i, f) for f, _ in _DenoiserInfo._fields_}

    def denoise(self, frame, out=None):
        """Denoises ``frame`` (a C-contiguous ``uint16`` array of shape (height, width), or
        any buffer of that many ``uint16``) into ``out`` (same kind; a new NumPy array, or a
        ``bytearray`` without NumPy, when None) and returns ``out``. A frame of another size
        is a :class:`RawnrError` from the library."""
        src = memoryview(frame).cast("B")
        if out is None:
            try:
                import numpy as np

                out = np.empty((self.height, self.width), dtype=np.uint16)
            except ImportError:
                out = bytearray(2 * self.width * self.height)
        dst = memoryview(out).cast("B")
        if dst.readonly:
            raise ValueError("out must be writable")
        in_buf = (ctypes.c_char * src.nbytes).from_buffer_copy(src) if src.readonly else (
            ctypes.c_char * src.nbytes).from_buffer(src)
        out_buf = (ctypes.c_char * dst.nbytes).from_buffer(dst)
        scratch = ctypes.create_string_buffer(self.scratch_size)
        # A 2-D array's row pitch, else rows of exactly `width` samples.
        stride = _row_stride(frame, self.width)
        out_stride = _row_stride(out, self.width)
        _check(
            _lib.rawnr_denoise_frame(
                self._h, in_buf, src.nbytes, stride, out_buf, dst.nbytes, out_stride,
                scratch, self.scratch_size,
            ),
            "rawnr_denoise_frame",
        )
        return out

    def close(self):
        """Frees the denoiser."""
        if self._h:
            _lib.rawnr_denoiser_free(self._h)
            self._h = ctypes.c_void_p()

    def __del__(self):
        self.close()
