"""quantize: structured pruning and int8/fp16 quantization under an accuracy budget."""
