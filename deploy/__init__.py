"""deploy: the contract between training time and run time.

Preprocessing, model cards, runtime backends and the `Classifier` live here and import no
torch, so `pip install edgevision[runtime]` runs any exported model on a Raspberry Pi. The
torch side (exporters, parity checks) is `deploy.export`, imported only when exporting.

    import deploy
    clf = deploy.load("model.onnx")              # backend chosen by suffix, card from the file
    print(clf.predict("cat.jpg", top_k=3).top)   # [("cats", 0.97), ("dogs", 0.03)]
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import deploy.limits  # noqa: F401  (before any cv2 import: OpenCV reads its image-size limit once)
from deploy.version import __version__

if TYPE_CHECKING:
    from deploy.card import ModelCard
    from deploy.classifier import Classifier

log = logging.getLogger("edgevision.deploy")

DEFAULT_INPUT = 224


def default_card(backend, labels: list[str], source: str) -> ModelCard:
    """A card for a model that has none: ImageNet conventions, input size from the model."""
    from deploy.card import ModelCard
    from deploy.errors import EdgevisionError
    from deploy.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

    shape = backend.info["input_shape"]
    channels = shape[1] or 3
    height = shape[2] or DEFAULT_INPUT
    width = shape[3] or DEFAULT_INPUT
    resize = int(min(height, width) * 256 / 224)
    try:
        if channels == 1:
            spec = Preprocessing((height, width), resize, (sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,), "GRAY")
        else:
            spec = Preprocessing((height, width), resize, IMAGENET_MEAN, IMAGENET_STD, "RGB")
    except EdgevisionError as exc:  # a model that declares a 12000 x 12000 input
        raise EdgevisionError(f"{source}: the model's input {height}x{width}: {exc}") from None
    message = (
        f"{source} has no model card; assuming {spec.color} input {height}x{width}"
        f"{' (from the model)' if shape[2] else ' (default)'}, resize short side to {resize}, "
        f"mean {tuple(round(m, 3) for m in spec.mean)}, std {tuple(round(s, 3) for s in spec.std)}"
    )
    warnings.warn(message, stacklevel=3)
    log.warning(message)
    return ModelCard(architecture="unknown", class_names=labels, preprocessing=spec,
                     precision=backend.info.get("precision", "fp32"), artifact_format=backend.name)


def check_model_path(path: str | os.PathLike) -> Path:
    """`path` as a Path when it is a regular file; else a one-line error saying what it is."""
    from deploy.errors import EdgevisionError

    path = Path(path)
    if not path.exists():
        raise EdgevisionError(f"model file not found: {path}")
    if path.is_dir():
        raise EdgevisionError(f"{path} is a folder, not a model file")
    if not path.is_file():
        raise EdgevisionError(f"{path} is not a regular file (a device, FIFO or socket), not a model file")
    return path


def load(
    path: str | os.PathLike, backend: str = "auto", labels: str | os.PathLike | None = None, **options
) -> Classifier:
    """Open a model file (.onnx, .pte, .engine, .pt) as a `Classifier`.

    backend: a registered name (`deploy.backends.list_backends()`) or `auto` (by suffix).
    labels: a file with one class name per line; replaces the card's names, and is required for a
    model without a card. options: passed to the backend (`threads`, `spin_wait`, `provider`: auto,
    cpu, cuda or tensorrt, `precision`: the torch backend's fp32, fp16 or bf16); a provider or
    precision the backend does not take is refused in one line (`deploy.backends.check_options`);
    onnxruntime on the CPU times what `threads`/`spin_wait` leave open (`deploy.backends.tune`).
    """
    from deploy.backends import backend_for_path, check_options, get_backend
    from deploy.classifier import Classifier
    from deploy.errors import EdgevisionError
    from deploy.labels import check_label_count, read_labels
    from deploy.limits import check_threads

    path = check_model_path(path)
    check_threads(options.get("threads"), "threads")
    name = backend_for_path(path) if backend == "auto" else backend
    check_options(name, options)
    runner = get_backend(name).load(path, options)
    card = runner.card
    names = None
    if labels is not None:
        names = read_labels(labels)
        check_label_count(names, runner.info["output_shape"][-1], f"labels file {labels}")
    if card is None:
        if names is None:
            raise EdgevisionError(
                f"{path} has no model card; pass a labels file (one class name per line) with --labels"
            )
        card = default_card(runner, names, str(path))
    elif names is not None:
        card = card.evolve(class_names=names)
    if card.parity is not None and not card.parity.passed:
        warnings.warn(f"{path}: its card records a failed parity check: {card.parity.line()}", stacklevel=2)
    elif card.parity is None and card.artifact_format != "pytorch" and runner.card is not None:
        warnings.warn(f"{path}: unverified: its card records no parity check against the model it came from "
                      "(exported with --verify-images 0?)", stacklevel=2)
    return Classifier(card, runner)


__all__ = ["__version__", "check_model_path", "load"]
