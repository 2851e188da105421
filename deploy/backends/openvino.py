"""OpenVINO backend: `.onnx` files (fp32 and Q/DQ int8) and OpenVINO IR `.xml` on the CPU, no torch.

OpenVINO reads our ONNX files as they are and runs a Q/DQ int8 file with its own int8 kernels.
Options: `threads` (INFERENCE_NUM_THREADS; default `deploy.backends.cpu.default_threads()`, 0 for
OpenVINO's own choice) and `inference_precision` (`f32`, `bf16`, `f16`). OpenVINO would run an
fp32 model in bf16 on a CPU that has bf16 instructions; here fp32 stays f32 unless you ask,
so the numbers match the file's card. PERFORMANCE_HINT is LATENCY (one stream), and a dynamic
batch dimension is fixed to 1 (when height and width are fixed).

The card: OpenVINO keeps an ONNX file's `metadata_props` in the model's rt_info under
`framework`, and `openvino.save_model` writes them into the IR, so an `.xml` converted from our
ONNX carries its card too. An `.xml` without one may have a sidecar `<file>.json`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.backends import check_classifier_shapes, import_library
from deploy.backends.cpu import default_threads
from deploy.card import CARD_KEY, ModelCard, read_sidecar
from deploy.errors import EdgevisionError, first_line
from deploy.onnx_scan import check_external_data

SUFFIXES = (".onnx", ".xml")
PRECISIONS = ("f32", "bf16", "f16")


def _dims(partial_shape) -> list[int | None]:
    return [d.get_length() if d.is_static else None for d in partial_shape]


def read_card(path: Path, model) -> ModelCard | None:
    """The card from the model's rt_info (ONNX metadata), else a sidecar beside an `.xml`."""
    key = ["framework", CARD_KEY]
    if model.has_rt_info(key):
        try:
            return ModelCard.from_json(model.get_rt_info(key).astype(str))
        except EdgevisionError as exc:
            raise EdgevisionError(f"{path}: metadata {CARD_KEY}: {exc}") from None
    return read_sidecar(path) if path.suffix.lower() == ".xml" else None


def compile_config(options: dict) -> dict:
    """OpenVINO CPU properties for `options` (threads, inference_precision)."""
    threads = options.get("threads")
    threads = default_threads() if threads is None else int(threads)
    precision = options.get("inference_precision", "f32")
    if precision not in PRECISIONS:
        raise EdgevisionError(f"unknown inference_precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, path: Path, compiled, card: ModelCard | None, input_shape: list, output_shape: list) -> None:
        self.path = path
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.card = card
        self.info = {
            "backend": self.name,
            "provider": "CPU",
            "precision": card.precision if card else "fp32",
            "input_name": compiled.input(0).get_any_name(),
            "input_shape": input_shape,
            "output_shape": output_shape,
            "max_batch": input_shape[0],
            "threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
            "inference_precision": compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
        }

    @classmethod
    def load(cls, path: Path, options: dict) -> OpenVinoBackend:
        ov = import_library("openvino", "openvino")
        path = Path(path)
        if not path.is_file():
            raise EdgevisionError(f"model file not found: {path}")
        if path.suffix.lower() not in SUFFIXES:
            raise EdgevisionError(f"{path}: the openvino backend reads {' and '.join(SUFFIXES)} files")
        if path.suffix.lower() == ".onnx":
            check_external_data(path)
        config = compile_config(options)
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError with a multi-line report for a bad file
            raise EdgevisionError(f"{path}: OpenVINO cannot read this model: {first_line(exc)}") from None
        if len(model.inputs) != 1:
            raise EdgevisionError(f"{path}: not an image classifier: it has {len(model.inputs)} inputs, expected 1")
        input_shape = _dims(model.input(0).get_partial_shape())
        check_classifier_shapes(path, input_shape, _dims(model.output(0).get_partial_shape()))
        if input_shape[0] is None and None not in input_shape[1:]:
            # A fixed batch of 1 compiles to static kernels (10-20 % faster at batch 1 here);
            # the Classifier loops over larger batches.
            model.reshape({0: [1, *input_shape[1:]]})
            input_shape = [1, *input_shape[1:]]
        output_shape = _dims(model.output(0).get_partial_shape())
        card = read_card(path, model)
        try:
            compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise EdgevisionError(
                f"{path}: OpenVINO cannot compile this model for the CPU: {first_line(exc)}"
            ) from None
        return cls(path, compiled, card, input_shape, output_shape)

    def run(self, batch: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(batch, dtype=np.float32)
        self.request.infer({0: feed})
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)
