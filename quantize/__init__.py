"""quantize: structured pruning and int8/fp16 quantization under an accuracy budget.

Modules (imported on demand, so `import quantize` stays light):
- `quantize.prune`: Torch-Pruning channel pruning, MACs/params (the JSON record that rebuilds a
  pruned network is `train.pruned`, so that loading a checkpoint never needs this package).
- `quantize.reconstruct`, `quantize.distill`: least-squares re-fitting and distillation after pruning.
- `quantize.calibration`: class-balanced calibration/evaluation arrays from a data spec.
- `quantize.ptq_onnx`: onnxruntime static int8 (QDQ/QOperator, and TensorRT's Q/DQ form with its
  `check_tensorrt_form`), fp16, per-layer error analysis; `ONNX_LADDER`, `ONNX_TRT_LADDER`.
- `quantize.ptq_executorch`: PT2E + XNNPACK int8 `.pte`, and QAT; `PTE_LADDER`.
- `quantize.guard`: the accuracy budget, every attempt recorded, misses refused.
- `quantize.scoring`: logits and latency of an artifact through deploy's own backends.
- `quantize.prune_pipeline`: `prune_checkpoint`, what `edgevision prune` runs.
- `quantize.quantize_pipeline`: `quantize_checkpoint` and the one ladder runner (`climb`), what
  `edgevision quantize` runs.
- `quantize.cli`: the two commands (`python -m quantize prune|quantize ...`), a thin layer that
  shows the "edgevision.quantize" log lines on stderr.
"""

import deploy.limits  # noqa: F401  (before any cv2 import: OpenCV reads its image-size limit once)
