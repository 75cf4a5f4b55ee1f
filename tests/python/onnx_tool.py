#!/usr/bin/env python3
"""Independent ONNX checks for rawnr's tests.

  onnx_tool.py check MODEL.onnx
      onnx.checker.check_model(full_check=True); prints opset and node count as JSON.
  onnx_tool.py run MODEL.onnx IN.f32 OUT.f32 H W
      Runs the model with ONNX Runtime (CPU) on a [1,4,H,W] float32 little-endian input and
      writes the output the same way.
"""
import json
import sys

import numpy as np


def main():
    cmd = sys.argv[1]
    if cmd == "check":
        import onnx

        m = onnx.load(sys.argv[2])
        onnx.checker.check_model(m, full_check=True)
        print(json.dumps({"opset": [o.version for o in m.opset_import], "nodes": len(m.graph.node),
                          "inputs": [i.name for i in m.graph.input], "outputs": [o.name for o in m.graph.output]}))
    elif cmd == "run":
        import onnxruntime as ort

        path, inp, out, h, w = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        x = np.fromfile(inp, dtype="<f4").reshape(1, 4, h, w)
        y = s.run(None, {"input": x})[0]
        np.ascontiguousarray(y, dtype="<f4").tofile(out)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
