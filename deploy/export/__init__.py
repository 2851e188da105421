"""deploy.export: the torch side. Checkpoint -> ONNX / ExecuTorch / TensorRT artifact, each verified.

Formats are registered by name with what they can do (precisions, where they build), and a request
is checked against that table before any work starts (after Ultralytics' `export_formats()`). Each
format is a module of its own (`torch2onnx`, `torch2pte`, `onnx2trt`) with a `from_torch(model,
card, out, precision=..., data=..., **options)` function, imported only when that format is asked
for. A format that can also be built from an ONNX file without torch (TensorRT, on the device)
names a `from_onnx(onnx_path, card, out, precision=..., **options)` too. Only this subpackage
imports torch (never on the ONNX path), and nothing in the runtime imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploy.card import ModelCard
from deploy.errors import EdgevisionError

# what `edgevision export --model` takes: a .pt, or an .onnx for formats that build from one
SOURCES = ("checkpoint", "onnx")


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
    checkpoint_precisions: tuple[str, ...] | None = None  # from a checkpoint, when fewer than `precisions`
    onnx_exporter: str = ""  # "module:function" taking (onnx_path, card, out, precision=, **options); "": none
    onnx_requires: tuple[str, ...] = ()  # modules the ONNX path imports (no torch)

    def precisions_from(self, source: str) -> tuple[str, ...]:
        if source == "onnx":
            return self.precisions
        return self.checkpoint_precisions or self.precisions


@dataclass
class ExportResult:
    """An export's outcome: where the artifact went (STEM.failed.SUFFIX when its check failed) and its card."""

    path: Path
    card: ModelCard

    @property
    def passed(self) -> bool:
        return self.card.parity is None or self.card.parity.passed


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


def check_request(name: str, precision: str | None, out: str | os.PathLike | None = None,
                  source: str = "checkpoint") -> ExportFormat:
    """Refuse a format/precision pair the table does not list (for this `source`: "checkpoint" or
    "onnx"; precision None: the ONNX's own), an output path without the format's suffix, a format
    that cannot be built from an ONNX, or a format whose libraries are missing."""
    fmt = get_format(name)
    if out is not None and Path(out).suffix != fmt.suffix:
        raise EdgevisionError(f"{name} artifacts end in {fmt.suffix}; --out {out} does not")
    if source == "onnx" and not fmt.onnx_exporter:
        onnx_formats = ", ".join(f for f in list_formats() if _FORMATS[f].onnx_exporter)
        raise EdgevisionError(
            f"format {name} is exported from a checkpoint (.pt), not an ONNX; from an ONNX: {onnx_formats}"
        )
    allowed = fmt.precisions_from(source)
    if precision is not None and precision not in allowed:
        hint = ""
        if source == "checkpoint" and fmt.onnx_exporter and precision in fmt.precisions:
            hint = (f" from a checkpoint (a {precision} {name} artifact is built from a {precision} ONNX, made with "
                    "`edgevision quantize`: pass it as --model)")
        elif precision == "int8":
            hint = " (int8 models come from `edgevision quantize`)"
        raise EdgevisionError(f"format {name} takes precision {', '.join(allowed)}, not {precision}{hint}")
    for module in fmt.onnx_requires if source == "onnx" else fmt.requires:
        if importlib.util.find_spec(module) is None:
            raise EdgevisionError(f"exporting to {name} needs {module!r}: pip install edgevision[{fmt.extra}]")
    return fmt


def get_exporter(name: str, source: str = "checkpoint") -> Callable:
    """The `from_torch` (or, for source "onnx", `from_onnx`) function of format `name`, importing its module now."""
    fmt = get_format(name)
    module_name, _, function = (fmt.onnx_exporter if source == "onnx" else fmt.exporter).partition(":")
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
        FormatOption("max_batch", int, 8, "largest batch of a dynamic-batch ONNX (the profile covers 1..N)"),
    ),
    checkpoint_precisions=("fp32",),  # fp16/int8 engines come from an fp16 or Q/DQ ONNX: precision is the graph's
    onnx_exporter="deploy.export.onnx2trt:from_onnx",
    onnx_requires=("onnx", "tensorrt"),
))

__all__ = [
    "ExportFormat", "ExportResult", "FormatOption", "SOURCES", "check_request", "get_exporter", "get_format",
    "list_formats", "register_format",
]
