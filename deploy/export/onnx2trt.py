"""ONNX -> TensorRT engine with the TensorRT 10 builder (fp32, fp16, int8), card in a sidecar.

int8 comes either from a Q/DQ ONNX (explicit quantization, as `quantize/` writes) or from an
entropy calibrator over `calibration_images` (float32 NCHW, already preprocessed). An engine runs
only on the GPU model and TensorRT version that built it: build it on the device (a Jetson with
JetPack's TensorRT), or there with `trtexec --onnx=model.onnx --saveEngine=model.engine --fp16`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deploy.atomic import write_bytes_atomic
from deploy.backends import import_library
from deploy.card import ModelCard, write_sidecar
from deploy.errors import EdgevisionError


def has_qdq(onnx_path: str | os.PathLike) -> bool:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node)


def make_calibrator(trt, images: np.ndarray, batch_size: int, cache_path: Path | None):
    """An IInt8EntropyCalibrator2 over preprocessed images (device memory through torch CUDA)."""
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.images = np.ascontiguousarray(images, dtype=np.float32)
            self.index = 0
            self.device = torch.empty((batch_size, *self.images.shape[1:]), dtype=torch.float32, device="cuda")

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names):
            if self.index + batch_size > len(self.images):
                return None
            chunk = torch.from_numpy(self.images[self.index : self.index + batch_size])
            self.device.copy_(chunk)
            self.index += batch_size
            return [int(self.device.data_ptr())]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path and cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            if cache_path:
                write_bytes_atomic(cache_path, bytes(cache))

    return Calibrator()


def onnx2trt(
    onnx_path: str | os.PathLike,
    card: ModelCard,
    path: str | os.PathLike,
    precision: str = "fp16",
    calibration_images: np.ndarray | None = None,
    workspace_gb: float = 2.0,
    timing_cache: str | os.PathLike | None = None,
    max_batch: int = 8,
) -> Path:
    """Build a TensorRT engine from `onnx_path` and write it (and its card) to `path`."""
    trt = import_library("tensorrt", "tensorrt")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgevisionError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    input_tensor = network.get_input(0)
    shape = tuple(input_tensor.shape)
    if shape[0] == -1:
        profile = builder.create_optimization_profile()
        chw = shape[1:]
        profile.set_shape(input_tensor.name, (1, *chw), (1, *chw), (max_batch, *chw))
        config.add_optimization_profile(profile)
        if precision == "int8" and calibration_images is not None:
            config.set_calibration_profile(profile)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers left unquantized may still use fp16
        if not has_qdq(onnx_path):
            if calibration_images is None or len(calibration_images) == 0:
                raise EdgevisionError(
                    "int8 needs a Q/DQ ONNX (from `edgevision quantize`) or calibration images (--data)"
                )
            cache = Path(f"{path}.calib")
            config.int8_calibrator = make_calibrator(trt, calibration_images, 1, cache)
    elif precision != "fp32":
        raise EdgevisionError(f"TensorRT precision must be fp32, fp16 or int8, got {precision}")
    cache_file = Path(timing_cache) if timing_cache else None
    if cache_file is not None:
        cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgevisionError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    if cache_file is not None:
        write_bytes_atomic(cache_file, bytes(config.get_timing_cache().serialize()))
    write_bytes_atomic(path, bytes(serialized))
    write_sidecar(path, card)
    return Path(path)


def from_torch(model, card: ModelCard, out: str | os.PathLike, precision: str = "fp16", data: str | None = None,
               **options) -> Path:
    """The registry's entry point (see `deploy.export`): torch -> ONNX (temporary) -> engine; int8
    calibrates on 256 images of `data`."""
    import tempfile

    from deploy.export.torch2onnx import torch2onnx
    from deploy.export.verify import parity_inputs

    calibration = parity_inputs(card, data, 256)[0] if precision == "int8" else None
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = torch2onnx(model, card, Path(tmp) / "model.onnx")
        return onnx2trt(onnx_path, card, out, precision, calibration_images=calibration, **options)
