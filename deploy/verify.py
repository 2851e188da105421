"""Does this artifact, on this device, compute what PyTorch computed? Replay its reference set.

`verify(classifier, reference)` preprocesses the stored images with the classifier's own card
(`deploy.preprocess`), runs them through its backend and compares the logits with PyTorch's.
The tolerance depends on the precision. `scale` is the spread of the reference logits
(max - min over the set, at least 1) and `measured` the largest difference the artifact itself
showed on these images where it was made (stored in the set):

    fp32  max |logit diff| <= max(1e-3 * scale, 2 * measured)
    fp16  max |logit diff| <= max(1e-2 * scale, 2 * measured)
    bf16  max |logit diff| <= max(8e-2 * scale, 2 * measured)   (fp16's bound, 8x: 3 fewer mantissa bits)
    int8  max |logit diff| <= max(5e-2 * scale, 2 * measured), and top-1 agreement with PyTorch
          >= 90 % of the agreement it had where it was made (int8 may flip a near-tie)

The precision is the reference set's, or the backend's compute precision where that is coarser
(the torch backend running a checkpoint at `precision="fp16"` against an fp32 set).

For fp32 and fp16 the logit bound implies the same top-1 on every image whose reference lead is
more than twice the tolerance, so agreement is reported but not required separately.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.classifier import Classifier
from deploy.errors import EdgevisionError
from deploy.preprocess import preprocess_batch
from deploy.reference import ReferenceSet, find_reference, load_reference, sha256_file

RELATIVE_TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2, "int8": 5e-2, "bf16": 8e-2}
MEASURED_FACTOR = 2.0  # how far beyond the difference measured where it was made a device may go
INT8_AGREEMENT_SHARE = 0.9
CHUNK = 32  # images preprocessed and run at a time

HOW_TO_MAKE = ("make one with `edgevision export ... --reference-images 16` or "
               "`edgevision quantize ... --reference-images 16`")


@dataclass(frozen=True)
class Tolerance:
    max_abs_logit_diff: float
    min_top1_agreement: float | None  # None: implied by the logit bound (fp32, fp16)


@dataclass
class VerifyResult:
    """The outcome of one replay. same_file: whether the model file is byte for byte the one the set
    was made for (None when not checked); numbers decide `passed`, a different file is only reported."""

    passed: bool
    top1_agreement: float
    max_abs_logit_diff: float
    tolerance: Tolerance
    images: int
    precision: str
    same_file: bool | None = None

    def line(self) -> str:
        agreed = round(self.top1_agreement * self.images)
        required = self.tolerance.min_top1_agreement
        need = "" if required is None else f", required {required:.0%}"
        text = (f"top-1 agreement {agreed}/{self.images} ({self.top1_agreement:.2%}{need}), "
                f"max |logit diff| {self.max_abs_logit_diff:.3g} (allowed {self.tolerance.max_abs_logit_diff:.3g}, "
                f"{self.precision}) -> {'passed' if self.passed else 'FAILED'}")
        if self.same_file is False:
            text += "; the model file is not the one the reference set was made for"
        return text


def judged_precision(reference: ReferenceSet, runtime: str | None = None) -> str:
    """The precision the replay is judged at: the reference set's, or `runtime` (the backend's
    compute precision) where that allows more."""
    if runtime in RELATIVE_TOLERANCE and RELATIVE_TOLERANCE[runtime] > RELATIVE_TOLERANCE[reference.precision]:
        return runtime
    return reference.precision


def tolerance(reference: ReferenceSet, runtime: str | None = None) -> Tolerance:
    """The bounds `reference`'s precision allows, or `runtime`'s where coarser (see the module docstring)."""
    logits = reference.logits
    scale = max(1.0, float(logits.max() - logits.min()))
    measured = reference.measured_max_abs_logit_diff
    bound = max(RELATIVE_TOLERANCE[judged_precision(reference, runtime)] * scale, MEASURED_FACTOR * measured)
    agreement = INT8_AGREEMENT_SHARE * reference.measured_agreement if reference.precision == "int8" else None
    return Tolerance(bound, agreement)


def replay_logits(classifier: Classifier, images: np.ndarray) -> np.ndarray:
    """The classifier's logits for stored images, through its own preprocessing and backend."""
    spec = classifier.card.preprocessing
    chunks = [classifier.run(preprocess_batch(list(images[i : i + CHUNK]), spec)) for i in range(0, len(images), CHUNK)]
    return np.concatenate(chunks).astype(np.float64)


def verify(classifier: Classifier, reference: ReferenceSet,
           model_path: str | os.PathLike | None = None) -> VerifyResult:
    """Replay `reference` on `classifier`; `model_path` (optional) is hashed to say whether it is
    the file the set was made for."""
    classes = classifier.card.num_classes
    if reference.logits.shape[1] != classes:
        raise EdgevisionError(f"the reference set has {reference.logits.shape[1]} classes, the model {classes}")
    channels = reference.images.shape[3]
    if channels != classifier.card.preprocessing.channels:
        raise EdgevisionError(f"the reference images have {channels} channel(s), the model takes "
                              f"{classifier.card.preprocessing.color}")
    logits = replay_logits(classifier, reference.images)
    diff = np.abs(logits - reference.logits.astype(np.float64))
    max_diff = float(diff.max()) if np.all(np.isfinite(diff)) else float("inf")
    agreement = float(np.mean(logits.argmax(1) == reference.top_k[:, 0]))
    runtime = classifier.backend.info.get("precision")
    bounds = tolerance(reference, runtime)
    passed = max_diff <= bounds.max_abs_logit_diff and (
        bounds.min_top1_agreement is None or agreement >= bounds.min_top1_agreement)
    same = None
    if model_path is not None and reference.artifact_sha256:
        same = sha256_file(model_path) == reference.artifact_sha256
    return VerifyResult(bool(passed), agreement, max_diff, bounds, len(reference),
                        judged_precision(reference, runtime), same)


def reference_of(model_path: str | os.PathLike, classifier: Classifier,
                 explicit: str | os.PathLike | None = None) -> ReferenceSet:
    """The reference set to replay: `explicit`, else the one the card names beside the model, else
    `<model>.ref.npz`; a one-line error saying how to make one when there is none."""
    if explicit is not None:
        return load_reference(explicit)
    note = classifier.card.reference
    path = find_reference(model_path, note.file if note else None)
    if path is None:
        raise EdgevisionError(f"{Path(model_path).name} has no reference set beside it; {HOW_TO_MAKE}")
    return load_reference(path)


def verify_file(model_path: str | os.PathLike, backend: str = "auto", reference: str | os.PathLike | None = None,
                **options) -> VerifyResult:
    """Load `model_path` with `deploy.load` and replay its reference set."""
    import deploy

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unverified", category=UserWarning)  # this is the check
        classifier = deploy.load(model_path, backend=backend, **options)
    return verify(classifier, reference_of(model_path, classifier, reference), model_path)
