"""The model card: everything needed to run a model file correctly, kept with the file.

A checkpoint keeps its card inside the `.pt` dictionary; an ONNX file in its `metadata_props`
under the key `CARD_KEY`; `.pte` files and TensorRT engines in a sidecar `<file>.json`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from deploy.atomic import write_text_atomic
from deploy.errors import EdgevisionError
from deploy.preprocess import Preprocessing
from deploy.version import __version__

CARD_KEY = "edgevision.card"
CARD_SCHEMA = 1


@dataclass
class ModelCard:
    """What a model is, what it expects, and how well it did.

    architecture: registry name of the network (`train.models`), with `model_options` to rebuild it.
    class_names: output index -> label.
    preprocessing: the evaluation preprocessing (see `deploy.preprocess`).
    precision: fp32, fp16 or int8 (of the artifact this card travels with).
    artifact_format: pytorch, onnx, executorch or tensorrt.
    source_sha256: sha256 of the checkpoint an artifact was exported from.
    metrics: evaluation results (top1, top5, ... as fractions).
    parity: agreement of an exported artifact with its PyTorch source.
    """

    architecture: str
    class_names: list[str]
    preprocessing: Preprocessing
    model_options: dict = field(default_factory=dict)
    precision: str = "fp32"
    artifact_format: str = "pytorch"
    dataset: str = ""
    source_sha256: str = ""
    metrics: dict = field(default_factory=dict)
    parity: dict = field(default_factory=dict)
    toolkit_version: str = __version__
    schema: int = CARD_SCHEMA

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["preprocessing"] = self.preprocessing.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        if not isinstance(data, dict) or "architecture" not in data or "class_names" not in data:
            raise EdgevisionError("not an edgevision model card (no architecture/class_names)")
        data = dict(data)
        data["preprocessing"] = Preprocessing.from_dict(data["preprocessing"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise EdgevisionError(f"model card is not valid JSON: {exc}") from None

    def evolve(self, **changes) -> ModelCard:
        """A copy with some fields changed (cards of exported artifacts derive from the source's)."""
        return replace(self, **changes)


def sidecar_path(artifact: str | os.PathLike) -> Path:
    return Path(f"{artifact}.json")


def write_sidecar(artifact: str | os.PathLike, card: ModelCard) -> Path:
    path = sidecar_path(artifact)
    write_text_atomic(path, card.to_json() + "\n")
    return path


def read_sidecar(artifact: str | os.PathLike) -> ModelCard | None:
    """The card beside `artifact`, or None when there is none."""
    path = sidecar_path(artifact)
    if not path.is_file():
        return None
    try:
        return ModelCard.from_json(path.read_text(encoding="utf-8"))
    except EdgevisionError as exc:
        raise EdgevisionError(f"{path}: {exc}") from None
