"""Runtime backends: a registry of names, each loaded only when chosen.

A backend runs a float32 NCHW batch through one kind of model file and returns logits. The
registry maps a name to `"module:Class"` and imports the module only in `get_backend`, so
`import deploy` costs nothing for runtimes you do not use (after ExecuTorch's
`examples/models/model_factory.py`); a name is registered once (after torchvision's
`register_model`), and a file's suffix chooses its backend when you ask for `auto`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from deploy.card import ModelCard
from deploy.errors import EdgevisionError


@runtime_checkable
class Backend(Protocol):
    """What every runtime backend offers.

    info: at least `backend`, `provider`, `precision`, `input_shape` (with None for a dynamic
    dimension), `output_shape` and `max_batch` (None: any batch size).
    card: the model card read from the file (metadata or sidecar), or None when it has none.
    """

    info: dict
    card: ModelCard | None

    @classmethod
    def load(cls, path: Path, options: dict) -> Backend: ...

    def run(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend: where its class lives, which files it takes, what it needs."""

    name: str
    target: str  # "module:Class", imported by get_backend
    suffixes: tuple[str, ...]
    extra: str  # the pip extra that installs its library
    requires: tuple[str, ...]  # top-level modules it imports (a missing one names the extra)
    providers: tuple[str, ...] = ("cpu",)  # what its `provider` option may ask for ("auto" always may)
    precisions: tuple[str, ...] = ()  # what its `precision` option may ask for (compute precision of the file)


_REGISTRY: dict[str, BackendEntry] = {}


def register_backend(
    name: str, target: str, suffixes: tuple[str, ...] = (), extra: str = "", requires: tuple[str, ...] = (),
    providers: tuple[str, ...] = ("cpu",), precisions: tuple[str, ...] = (),
) -> BackendEntry:
    """Register `name` -> `"module:Class"`; a name already taken is refused. `providers`: where it
    can run (the `provider` option), `precisions`: the compute precisions its `precision` option
    takes (none: the file's own precision decides)."""
    if name in _REGISTRY:
        raise ValueError(f"backend {name!r} is already registered ({_REGISTRY[name].target})")
    if ":" not in target:
        raise ValueError(f"backend target must be 'module:Class', got {target!r}")
    entry = BackendEntry(name, target, tuple(s.lower() for s in suffixes), extra, tuple(requires),
                         tuple(providers), tuple(precisions))
    _REGISTRY[name] = entry
    return entry


def list_backends() -> list[str]:
    return sorted(_REGISTRY)


def list_providers() -> list[str]:
    """Every value the `provider` option takes: auto, then what some backend runs on."""
    return ["auto", *sorted({p for entry in _REGISTRY.values() for p in entry.providers})]


def list_precisions() -> list[str]:
    """Every compute precision some backend's `precision` option takes."""
    return sorted({p for entry in _REGISTRY.values() for p in entry.precisions})


def check_options(name: str, options: dict) -> None:
    """Refuse a `provider` or `precision` the backend `name` does not take, in one line naming those that do."""
    entry = backend_entry(name)
    provider = options.get("provider")
    if provider not in (None, "", "auto") and provider not in entry.providers:
        takers = [e.name for e in _REGISTRY.values() if provider in e.providers]
        where = f"; {provider} is for {', '.join(takers)}" if takers else f"; providers: {', '.join(list_providers())}"
        raise EdgevisionError(
            f"backend {name!r} runs on {', '.join(entry.providers)}, not --provider {provider}{where}"
        )
    precision = options.get("precision")
    if precision not in (None, "") and precision not in entry.precisions:
        takers = [e.name for e in _REGISTRY.values() if precision in e.precisions]
        if not entry.precisions:
            raise EdgevisionError(f"backend {name!r} runs a file in the precision it was exported in; --precision "
                                  f"{precision} is for {', '.join(takers) or 'no backend'} (export or quantize to "
                                  "change a file's precision)")
        raise EdgevisionError(f"backend {name!r} takes --precision {', '.join(entry.precisions)}, not {precision}")


def backend_entry(name: str) -> BackendEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EdgevisionError(f"unknown backend {name!r}; choose from {', '.join(list_backends())}") from None


def missing_library(entry: BackendEntry, library: str) -> EdgevisionError:
    hint = f": pip install edgevision[{entry.extra}]" if entry.extra else ""
    return EdgevisionError(f"backend {entry.name!r} needs the Python package {library!r}, which is not installed{hint}")


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as `name`, importing its module now."""
    entry = backend_entry(name)
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root in entry.requires:
            raise missing_library(entry, root) from None
        raise
    return getattr(module, attr)


def backend_for_path(path: str | os.PathLike) -> str:
    """The backend that runs `path`, chosen by its suffix."""
    suffix = Path(path).suffix.lower()
    for entry in _REGISTRY.values():
        if suffix in entry.suffixes:
            return entry.name
    known = sorted(s for e in _REGISTRY.values() for s in e.suffixes)
    raise EdgevisionError(f"cannot tell the backend of {path} from its suffix {suffix!r}; known: {', '.join(known)}")


def import_library(entry_name: str, module: str) -> Any:
    """Import a backend's library, or fail in one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        root = (exc.name or module).split(".")[0]
        if root == module.split(".")[0]:
            raise missing_library(backend_entry(entry_name), root) from None
        raise


def check_classifier_shapes(path: str | os.PathLike, input_shape: list, output_shape: list) -> None:
    """Refuse a model that is not an image classifier: NCHW input with 1 or 3 channels, 2-D output."""
    if len(input_shape) != 4:
        raise EdgevisionError(
            f"{path}: not an image classifier: input has rank {len(input_shape)} (shape {input_shape}), expected NCHW"
        )
    if isinstance(input_shape[1], int) and input_shape[1] not in (1, 3):
        raise EdgevisionError(f"{path}: not an image classifier: input has {input_shape[1]} channels, expected 1 or 3")
    if len(output_shape) != 2:
        raise EdgevisionError(
            f"{path}: not an image classifier: output has rank {len(output_shape)} (shape {output_shape}), "
            "expected (batch, classes)"
        )


register_backend("onnxruntime", "deploy.backends.onnxruntime:OnnxRuntimeBackend", (".onnx",), "runtime",
                 ("onnxruntime",), providers=("cpu", "cuda", "tensorrt"))
register_backend("executorch", "deploy.backends.executorch:ExecuTorchBackend", (".pte",), "export",
                 ("executorch", "torch"))
register_backend("openvino", "deploy.backends.openvino:OpenVinoBackend", (".xml",), "openvino", ("openvino",))
register_backend("tensorrt", "deploy.backends.tensorrt:TensorRTBackend", (".engine", ".plan"), "tensorrt",
                 ("tensorrt",), providers=("cuda",))
register_backend("torch", "deploy.backends.torch:TorchBackend", (".pt", ".pth"), "train",
                 ("torch", "torchvision", "train"), providers=("cpu", "cuda"), precisions=("fp32", "fp16", "bf16"))

__all__ = [
    "Backend",
    "BackendEntry",
    "backend_for_path",
    "check_classifier_shapes",
    "check_options",
    "get_backend",
    "list_backends",
    "list_precisions",
    "list_providers",
    "register_backend",
]
