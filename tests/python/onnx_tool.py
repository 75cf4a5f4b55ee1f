#!/usr/bin/env python3
"""Independent ONNX checks for rawnr's tests.

  onnx_tool.py check MODEL.onnx
      onnx.checker.check_model(full_check=True); prints opset, node count and the count of
      each op type as JSON.
  onnx_tool.py run MODEL.onnx IN.f32 OUT.f32 H W
      Runs the model with ONNX Runtime (CPU) on a [1,4,H,W] float32 little-endian input and
      writes the output the same way.
  onnx_tool.py serve MODEL.onnx [noopt]
      One ONNX Runtime (CPU) session for many inputs: reads from stdin, until end of file,
      requests of u32 H, u32 W (little-endian) and a [1,4,H,W] float32 input; answers each with
      the [1,4,H,W] float32 output on stdout. `noopt` disables graph optimizations (a QDQ graph
      then runs as written, in float between QuantizeLinear/DequantizeLinear, instead of fused
      into integer kernels).
  onnx_tool.py ortops MODEL.onnx
      Op type counts of the graph ONNX Runtime (CPU, all optimizations) actually runs, as JSON
      (shows whether QDQ groups were fused into QLinearConv and friends).
"""
import collections
import json
import os
import struct
import sys
import tempfile

import numpy as np


def session(path, optimized=None, noopt=False):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    if noopt:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if optimized:
        opts.optimized_model_filepath = optimized
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def read_exact(f, n):
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def main():
    cmd = sys.argv[1]
    if cmd == "check":
        import onnx

        m = onnx.load(sys.argv[2])
        onnx.checker.check_model(m, full_check=True)
        ops = collections.Counter(n.op_type for n in m.graph.node)
        print(json.dumps({"opset": [o.version for o in m.opset_import], "nodes": len(m.graph.node),
                          "inputs": [i.name for i in m.graph.input], "outputs": [o.name for o in m.graph.output],
                          "ops": dict(sorted(ops.items()))}))
    elif cmd == "run":
        path, inp, out, h, w = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
        s = session(path)
        x = np.fromfile(inp, dtype="<f4").reshape(1, 4, h, w)
        y = s.run(None, {"input": x})[0]
        np.ascontiguousarray(y, dtype="<f4").tofile(out)
    elif cmd == "serve":
        s = session(sys.argv[2], noopt=sys.argv[3:] == ["noopt"])
        stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
        while True:
            head = read_exact(stdin, 8)
            if head is None:
                break
            h, w = struct.unpack("<II", head)
            data = read_exact(stdin, 16 * h * w)
            if data is None:
                sys.exit("serve: truncated request")
            x = np.frombuffer(data, dtype="<f4").reshape(1, 4, h, w)
            y = s.run(None, {"input": x})[0]
            stdout.write(np.ascontiguousarray(y, dtype="<f4").tobytes())
            stdout.flush()
    elif cmd == "ortops":
        import onnx

        with tempfile.TemporaryDirectory() as d:
            opt = os.path.join(d, "optimized.onnx")
            session(sys.argv[2], opt)
            m = onnx.load(opt)
        ops = collections.Counter(n.op_type for n in m.graph.node)
        print(json.dumps(dict(sorted(ops.items()))))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
