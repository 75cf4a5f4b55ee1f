# Sourced by .ci/test (and usable by hand: `source .ci/pyenv.sh`): the Python packages the tests
# use to check rawnr's output with readers it did not write, in a virtual environment under
# target/pyenv (nothing goes into the system Python): rawpy (LibRaw), pidng, numpy, onnx and
# onnxruntime (whose libonnxruntime is also what `--backend ort` loads). Puts the environment's
# python3 first on PATH and points ORT_DYLIB_PATH at its ONNX Runtime library.
rawnr_pyenv="${RAWNR_PYENV:-$(pwd)/target/pyenv}"
if ! "$rawnr_pyenv/bin/python3" -c "import rawpy, pidng, numpy, onnx, onnxruntime" 2>/dev/null; then
    echo "installing the test readers into $rawnr_pyenv (rawpy, pidng, numpy, onnx, onnxruntime)"
    python3 -m venv "$rawnr_pyenv"
    "$rawnr_pyenv/bin/python3" -m pip install --quiet --disable-pip-version-check \
        "rawpy==0.28.0" "pidng==4.0.9" "numpy<3" "onnx==1.23.2" "onnxruntime==1.32.0"
fi
export PATH="$rawnr_pyenv/bin:$PATH"
ORT_DYLIB_PATH="$(ls "$rawnr_pyenv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* | head -n 1)"
export ORT_DYLIB_PATH
