"""deploy.export: the torch side. Checkpoint -> ONNX / ExecuTorch / TensorRT artifact, each verified.

Formats are registered by name with what they can do (precisions, where they build), and a request
is checked against that table before any work starts (after Ultralytics' `export_formats()`). Each
format is a module of its own (`torch2onnx`, `torch2pte`, `onnx2trt`) with a `from_torch(model,
card, out, precision=..., data=..., **options)` function, imported only when that format is asked
for. Only this subpackage imports torch, and nothing in the runtime imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from deploy.errors import EdgevisionError


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    precisions: tuple[str, ...]
    device: str  # where it builds: "cpu" or "gpu"
    runtime_backend: str  # deploy.backends name that runs the artifact
    extra: str  # pip extra that brings the exporter's libraries
    requires: tuple[str, ...]  # modules the exporter imports
    card_in: str  # "metadata" or "sidecar"
    exporter: str  # "module:function" taking (model, card, out, precision=, data=, **options)


_FORMATS: dict[str, ExportFormat] = {}


def register_format(fmt: ExportFormat) -> ExportFormat:
    if fmt.name in _FORMATS:
        raise ValueError(f"export format {fmt.name!r} is already registered")
    _FORMATS[fmt.name] = fmt
    return fmt


def list_formats() -> list[str]:
    return sorted(_FORMATS)


def get_format(name: str) -> ExportFormat:
    try:
        return _FORMATS[name]
    except KeyError:
        raise EdgevisionError(f"unknown export format {name!r}; choose from {', '.join(list_formats())}") from None


def check_request(name: str, precision: str) -> ExportFormat:
    """Refuse a format/precision pair the table does not list, or one whose libraries are missing."""
    fmt = get_format(name)
    if precision not in fmt.precisions:
        raise EdgevisionError(
            f"format {name} takes precision {', '.join(fmt.precisions)}, not {precision}"
            + (" (int8 models come from `edgevision quantize`)" if precision == "int8" else "")
        )
    for module in fmt.requires:
        if importlib.util.find_spec(module) is None:
            raise EdgevisionError(f"exporting to {name} needs {module!r}: pip install edgevision[{fmt.extra}]")
    return fmt


def get_exporter(name: str) -> Callable:
    """The `from_torch` function of format `name`, importing its module now."""
    module_name, _, function = get_format(name).exporter.partition(":")
    return getattr(importlib.import_module(module_name), function)


register_format(ExportFormat(
    "onnx", ".onnx", ("fp32",), "cpu", "onnxruntime", "export", ("torch", "onnx", "onnxscript"), "metadata",
    "deploy.export.torch2onnx:from_torch",
))
register_format(ExportFormat(
    "executorch", ".pte", ("fp32",), "cpu", "executorch", "export", ("torch", "executorch"), "sidecar",
    "deploy.export.torch2pte:from_torch",
))
register_format(ExportFormat(
    "tensorrt", ".engine", ("fp32", "fp16", "int8"), "gpu", "tensorrt", "tensorrt", ("torch", "onnx", "tensorrt"),
    "sidecar", "deploy.export.onnx2trt:from_torch",
))

__all__ = ["ExportFormat", "check_request", "get_exporter", "get_format", "list_formats", "register_format"]
