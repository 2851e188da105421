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
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import EdgevisionError


@dataclass(frozen=True)
class FormatOption:
    """One option a format's exporter takes; `edgevision export` offers it as `--NAME`."""

    name: str  # keyword of the exporter's from_torch, e.g. "workspace_gb" (--workspace-gb)
    type: type  # int, float, str or bool (a bool is a flag)
    default: object
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    precisions: tuple[str, ...]
    device: str  # where it builds: "cpu" or "gpu"
    extra: str  # pip extra that brings the exporter's libraries
    requires: tuple[str, ...]  # modules the exporter imports
    card_in: str  # "metadata" or "sidecar"
    exporter: str  # "module:function" taking (model, card, out, precision=, data=, **options)
    options: tuple[FormatOption, ...] = ()


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


def check_request(name: str, precision: str, out: str | os.PathLike | None = None) -> ExportFormat:
    """Refuse a format/precision pair the table does not list, an output path without the format's
    suffix, or a format whose libraries are missing."""
    fmt = get_format(name)
    if out is not None and Path(out).suffix != fmt.suffix:
        raise EdgevisionError(f"{name} artifacts end in {fmt.suffix}; --out {out} does not")
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
    "onnx", ".onnx", ("fp32",), "cpu", "export", ("torch", "onnx", "onnxscript"), "metadata",
    "deploy.export.torch2onnx:from_torch",
    options=(
        FormatOption("opset", int, 18, "ONNX opset (18 or later)"),
        FormatOption("simplify", bool, False, "run onnxslim on the graph"),
    ),
))
register_format(ExportFormat(
    "executorch", ".pte", ("fp32",), "cpu", "export", ("torch", "executorch"), "sidecar",
    "deploy.export.torch2pte:from_torch",
))
register_format(ExportFormat(
    "tensorrt", ".engine", ("fp32", "fp16", "int8"), "gpu", "tensorrt", ("torch", "onnx", "tensorrt"),
    "sidecar", "deploy.export.onnx2trt:from_torch",
    options=(
        FormatOption("workspace_gb", float, 2.0, "builder workspace in GiB"),
        FormatOption("timing_cache", str, None, "TensorRT timing cache file (read and updated)"),
    ),
))

__all__ = ["ExportFormat", "FormatOption", "check_request", "get_exporter", "get_format", "list_formats", "register_format"]
