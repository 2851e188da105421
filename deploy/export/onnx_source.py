"""ONNX -> verified artifact on the device, without torch: what `edgevision export --model M.onnx` runs.

The ONNX made on a desktop carries its card (metadata) and, beside it, its reference set: a few
held-out images with PyTorch's logits (`deploy.reference`). The artifact is built under a temporary
name beside `out` from the ONNX's card, then the reference set is replayed through it on this
device (`deploy.verify`, the tolerance of its precision); the result is the card's `parity`, and
the set is stored again beside the artifact with what this artifact measured, for later
`edgevision verify` runs. As with a checkpoint export, only a passing artifact replaces `out`; a
failing one is kept as `<stem>.failed<suffix>`. Without a reference set the artifact is published
unverified (its card has no parity; `deploy.load` warns).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

from deploy.atomic import artifact_lock
from deploy.card import CARD_KEY, ModelCard, Parity, ReferenceNote, publish_artifact, read_sidecar, write_sidecar
from deploy.errors import EdgevisionError
from deploy.export import ExportResult, check_request, get_exporter, get_format
from deploy.reference import ReferenceSet, find_reference, load_reference, reference_path, save_reference, sha256_file
from deploy.version import __version__


def read_onnx_card(onnx_path: str | os.PathLike) -> ModelCard:
    """The card in an ONNX file's metadata (`deploy.card.CARD_KEY`); one line when there is none."""
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise EdgevisionError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for a file that is not ONNX
        raise EdgevisionError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
    meta = {entry.key: entry.value for entry in model.metadata_props}
    if CARD_KEY not in meta:
        raise EdgevisionError(f"{path} has no edgevision card in its metadata; export it with "
                              "`edgevision export --format onnx` (or quantize it with `edgevision quantize`)")
    try:
        return ModelCard.from_json(meta[CARD_KEY])
    except EdgevisionError as exc:
        raise EdgevisionError(f"{path}: metadata {CARD_KEY}: {exc}") from None


def replay_reference(artifact: Path, card: ModelCard, reference: ReferenceSet) -> tuple[Parity, ReferenceSet]:
    """Replay `reference` (PyTorch's logits) through `artifact` here; the card's parity and the set
    to store beside the artifact (what this artifact measured, so later replays build on it)."""
    from deploy.backends import backend_for_path, get_backend
    from deploy.classifier import Classifier
    from deploy.verify import verify

    classifier = Classifier(card, get_backend(backend_for_path(artifact)).load(artifact, {}))
    result = verify(classifier, replace(reference, precision=card.precision))
    parity = Parity(
        passed=result.passed, images=result.images, source=reference.source or "reference set",
        top1_agreement=result.top1_agreement, reference="pytorch", max_abs_logit_diff=result.max_abs_logit_diff,
        required_max_abs_logit_diff=result.tolerance.max_abs_logit_diff,
        required_top1_agreement=result.tolerance.min_top1_agreement,
        backend=classifier.info.get("backend", ""), provider=classifier.info.get("provider", ""),
    )
    stored = replace(reference, precision=card.precision, artifact_sha256="",
                     measured_max_abs_logit_diff=result.max_abs_logit_diff,
                     measured_agreement=result.top1_agreement)
    return parity, stored


def export_onnx(
    onnx_path: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike,
    precision: str | None = None,
    verify: bool = True,
    **format_options,
) -> ExportResult:
    """Build `fmt` from `onnx_path` into `out` and check it against the ONNX's reference set (see the module docstring).

    precision: None takes the ONNX's own; a different one is refused by the format's exporter."""
    check_request(fmt, precision, out, source="onnx")
    if get_format(fmt).card_in != "sidecar":
        raise EdgevisionError(f"format {fmt} keeps its card inside the file; it is not built from an ONNX")
    onnx_path, out = Path(onnx_path), Path(out)
    source_card = read_onnx_card(onnx_path)
    note = source_card.reference
    reference_file = find_reference(onnx_path, note.file if note else None) if verify else None
    reference = load_reference(reference_file) if reference_file else None
    card = source_card.evolve(artifact_format=fmt, toolkit_version=__version__, parity=None, reference=None)
    with artifact_lock(out, "--out"), tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as staging:
        staged = Path(staging) / out.name
        get_exporter(fmt, source="onnx")(onnx_path, card, staged, precision=precision, **format_options)
        card = read_sidecar(staged) or card
        result = ExportResult(out, card)
        if reference is not None:
            parity, stored = replay_reference(staged, card, reference)
            card = card.evolve(parity=parity)
            if parity.passed:
                card = card.evolve(reference=ReferenceNote(reference_path(out.name).name, len(stored)))
            write_sidecar(staged, card)
            if parity.passed:
                stored.artifact_sha256 = sha256_file(staged)
                save_reference(reference_path(staged), stored)
            result = ExportResult(out, card)
        if not result.passed:
            result.path = out.with_name(f"{out.stem}.failed{out.suffix}")
        publish_artifact(staged, result.path)
    return result
