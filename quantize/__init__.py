"""quantize: structured pruning and int8/fp16 quantization under an accuracy budget.

Modules (imported on demand, so `import quantize` stays light):
- `quantize.prune`: Torch-Pruning channel pruning, MACs/params, the JSON pruned structure
  (`pruned_structure`, `apply_pruned_structure`, `rebuild_pruned`, `STRUCTURE_KEY`).
- `quantize.calibration`: class-balanced calibration/evaluation arrays from a data spec.
- `quantize.ptq_onnx`: onnxruntime static int8 (QDQ/QOperator), fp16, per-layer error analysis.
- `quantize.ptq_executorch`: PT2E + XNNPACK int8 `.pte`, and QAT.
- `quantize.guard`: the accuracy budget, every attempt recorded, misses refused.
- `quantize.pipeline`: the steps of `edgevision prune` / `edgevision quantize` as functions.
- `quantize.cli`: the two commands (`python -m quantize prune|quantize ...`).
"""
