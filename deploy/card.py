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
from deploy.confidence import ConfidenceHistogram
from deploy.errors import EdgevisionError
from deploy.fields import check_bool, check_int, check_list, check_mapping, check_number, check_str
from deploy.preprocess import Preprocessing
from deploy.reference import reference_path
from deploy.version import __version__

CARD_KEY = "edgevision.card"
CARD_SCHEMA = 1
MAX_CARD_BYTES = 1 << 20  # a card with ImageNet's 1000 class names is about 30 kB


@dataclass
class Parity:
    """How closely an artifact reproduces the model it was made from, checked when it was written.

    `edgevision export` compares logits with PyTorch on the same images (`required_*` say what it
    had to reach); `edgevision quantize` scores the artifact and its float reference on labelled
    held-out images, so it adds both accuracies and the allowed drop. Every field that is an
    accuracy or an agreement is a fraction (0.97, not 97). `deploy.load` warns when `passed` is False.

    passed: the artifact met the requirements.
    images: how many images the check ran on; source: where they came from (a folder, a data
        spec's split, or "generated").
    reference: what the artifact was compared with ("pytorch", or "fp32 onnx" for ONNX quantization).
    top1_agreement: fraction of images on which artifact and reference pick the same class.
    top1, reference_top1: top-1 accuracy of the artifact and of the reference (labelled images only).
    """

    passed: bool
    images: int
    source: str
    top1_agreement: float | None  # None only in an old record that did not keep it
    reference: str = "pytorch"
    max_abs_logit_diff: float | None = None
    mean_abs_logit_diff: float | None = None
    required_top1_agreement: float | None = None
    required_max_abs_logit_diff: float | None = None
    top1: float | None = None
    reference_top1: float | None = None
    allowed_top1_drop: float | None = None
    backend: str = ""
    provider: str = ""

    def line(self) -> str:
        """One line for logs and warnings, accuracies in percent."""
        agreement = "?" if self.top1_agreement is None else f"{self.top1_agreement:.2%}"
        text = f"top-1 agreement {agreement} with {self.reference} on {self.images} images ({self.source})"
        if self.max_abs_logit_diff is not None:
            text += f", max |logit diff| {self.max_abs_logit_diff:.3g}"
        if self.top1 is not None and self.reference_top1 is not None:
            text += f", top-1 {self.top1:.2%} vs {self.reference_top1:.2%}"
        return f"{text} -> {'passed' if self.passed else 'FAILED'}"

    @classmethod
    def from_dict(cls, data: dict | None) -> Parity | None:
        """Read a card's `parity`, also as older toolkits wrote it: `{}` (none), export's dict of the
        same names, or quantize's `{"top1_agreement_fp32", "quantization"}` (written only when passed)."""
        if data is None or data == {}:
            return None
        data = dict(check_mapping(data, "parity"))
        if "top1_agreement_fp32" in data:  # quantize before the typed record
            data.setdefault("top1_agreement", data["top1_agreement_fp32"])
            data.setdefault("reference", "fp32")
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("passed", True)  # an old record without a verdict was never a failure
        values.setdefault("images", 0)
        values.setdefault("source", "")
        values.setdefault("top1_agreement", None)
        for name, value in values.items():
            kind = cls.__dataclass_fields__[name].type
            if kind == "bool":
                check_bool(value, f"parity.{name}")
            elif kind == "int":
                check_int(value, f"parity.{name}")
            elif kind == "str":
                check_str(value, f"parity.{name}")
            else:  # "float | None"
                check_number(value, f"parity.{name}", optional=True)
        return cls(**values)


@dataclass
class ReferenceNote:
    """The reference set stored beside an artifact (`deploy.reference`): its file name, in the
    artifact's folder, and how many images it holds. `edgevision verify` replays it."""

    file: str
    images: int

    @classmethod
    def from_dict(cls, data: dict | None) -> ReferenceNote | None:
        if data is None:
            return None
        data = check_mapping(data, "reference")
        name = check_str(data.get("file"), "reference.file")
        if not name or Path(name).name != name or name in (".", ".."):
            raise EdgevisionError(f"card field reference.file must be a file name beside the model, got {name[:40]!r}")
        return cls(name, check_int(data.get("images"), "reference.images"))


@dataclass
class BuiltOn:
    """Where a TensorRT engine was built: it runs only with that TensorRT version on that GPU.

    tensorrt: TensorRT's `__version__` ("10.3.0", "11.4.0.106"); gpu: the CUDA device's name;
    compute_capability: "MAJOR.MINOR" ("8.7" for Orin); l4t_release: JetPack's L4T release
    ("36.4.3", `deploy.jetson.l4t_release`), None off a Jetson."""

    tensorrt: str
    gpu: str
    compute_capability: str
    l4t_release: str | None = None

    def line(self) -> str:
        """"TensorRT 10.3.0 on Orin (compute capability 8.7, L4T 36.4.3)", for messages."""
        l4t = f", L4T {self.l4t_release}" if self.l4t_release else ""
        return f"TensorRT {self.tensorrt} on {self.gpu} (compute capability {self.compute_capability}{l4t})"

    @classmethod
    def from_dict(cls, data: dict | None) -> BuiltOn | None:
        if data is None:
            return None
        data = check_mapping(data, "built_on")
        l4t = data.get("l4t_release")
        return cls(
            tensorrt=check_str(data.get("tensorrt"), "built_on.tensorrt"),
            gpu=check_str(data.get("gpu"), "built_on.gpu"),
            compute_capability=check_str(data.get("compute_capability"), "built_on.compute_capability"),
            l4t_release=None if l4t is None else check_str(l4t, "built_on.l4t_release"),
        )


@dataclass
class ModelCard:
    """What a model is, what it expects, and how well it did.

    architecture: registry name of the network (`train.models`), with `model_options` to rebuild it.
    class_names: output index -> label.
    preprocessing: the evaluation preprocessing (see `deploy.preprocess`).
    precision: fp32, fp16 or int8 (of the artifact this card travels with).
    artifact_format: pytorch, onnx, executorch or tensorrt.
    dataset: the data spec it was trained on, by name only ("digits", "folder:cats_vs_dogs"): never
        where it lay on the training machine.
    dataset_info: what recognises that data and its split: `sha256` (`deploy.image_folder.tree_fingerprint`
        of a folder; "" for a built-in set), `class_counts`, `split_seed` and `split_sizes` (train/val/test).
    source_sha256: sha256 of the checkpoint an artifact was exported from.
    reference: the reference set stored beside the artifact (`ReferenceNote`), None when there is none.
    metrics: evaluation results (top1, top5, ... as fractions).
    parity: how closely the artifact reproduces its source (`Parity`), None for a checkpoint.
    confidence: the artifact's top-1 probability on held-out images (`deploy.confidence.ConfidenceHistogram`),
        written by export and quantize; None in a checkpoint and in cards written before it existed.
    built_on: the TensorRT version and GPU a TensorRT engine was built with (`BuiltOn`); None for
        every other format. The tensorrt backend refuses an engine whose card names another.
    """

    architecture: str
    class_names: list[str]
    preprocessing: Preprocessing
    model_options: dict = field(default_factory=dict)
    precision: str = "fp32"
    artifact_format: str = "pytorch"
    dataset: str = ""
    dataset_info: dict = field(default_factory=dict)
    source_sha256: str = ""
    reference: ReferenceNote | None = None
    metrics: dict = field(default_factory=dict)
    parity: Parity | None = None
    confidence: ConfidenceHistogram | None = None
    built_on: BuiltOn | None = None
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
        """Read a card, checking the type of every field: a one-line error names the first wrong one."""
        if not isinstance(data, dict) or "architecture" not in data or "class_names" not in data:
            raise EdgevisionError("not an edgevision model card (no architecture/class_names)")
        if "preprocessing" not in data:
            raise EdgevisionError("card field preprocessing is missing")
        known = set(cls.__dataclass_fields__)
        data = {k: v for k, v in data.items() if k in known}
        names = check_list(data["class_names"], "class_names", "str")
        if not names:
            raise EdgevisionError("card field class_names is empty")
        data.update(
            architecture=check_str(data["architecture"], "architecture"),
            class_names=names,
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            parity=Parity.from_dict(data.get("parity")),
            confidence=ConfidenceHistogram.from_dict(data.get("confidence")),
        )
        data["reference"] = ReferenceNote.from_dict(data.get("reference"))
        data["built_on"] = BuiltOn.from_dict(data.get("built_on"))
        for name in ("model_options", "metrics", "dataset_info"):
            if name in data:
                check_mapping(data[name], name)
        for name in ("precision", "artifact_format", "dataset", "source_sha256", "toolkit_version"):
            if name in data:
                check_str(data[name], name)
        if "schema" in data:
            check_int(data["schema"], "schema")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        check_card_size(len(text))
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise EdgevisionError(f"model card is not valid JSON: {exc}") from None

    def evolve(self, **changes) -> ModelCard:
        """A copy with some fields changed (cards of exported artifacts derive from the source's)."""
        return replace(self, **changes)


def check_card_size(size: int) -> None:
    """Refuse a card larger than `MAX_CARD_BYTES`: a real one is a few kB; a huge one only costs memory."""
    if size > MAX_CARD_BYTES:
        raise EdgevisionError(f"model card of {size:,} bytes is larger than the {MAX_CARD_BYTES:,} a card may have")


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
        check_card_size(path.stat().st_size)
        return ModelCard.from_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise EdgevisionError(f"{path}: model card is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except EdgevisionError as exc:
        raise EdgevisionError(f"{path}: {exc}") from None


def publish_artifact(staged: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move a staged artifact and its sidecar card (if any) into place, the card first, so that a
    reader of `path` never meets the new artifact with the old card. Stage beside `path` (one file
    system: each move is one atomic rename) and hold `deploy.atomic.artifact_lock(path)` meanwhile.
    A staged reference set (`deploy.reference`) goes first of all; without one, the old artifact's is removed."""
    staged, path = Path(staged), Path(path)
    if reference_path(staged).exists():
        os.replace(reference_path(staged), reference_path(path))
    else:
        reference_path(path).unlink(missing_ok=True)
    sidecar = sidecar_path(staged)
    if sidecar.exists():
        os.replace(sidecar, sidecar_path(path))
    os.replace(staged, path)
