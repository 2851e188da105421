"""Checkpoint -> verified artifact: the steps `edgevision export` runs, as one function."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from deploy.atomic import artifact_lock
from deploy.card import ModelCard, publish_artifact, read_sidecar, write_sidecar
from deploy.errors import EdgevisionError
from deploy.export import ExportResult, check_request, get_exporter, get_format
from deploy.export.reference import check_count, make_reference, reference_note, store_reference
from deploy.version import __version__


@dataclass(frozen=True)
class ExportSpec:
    """How to export and check an artifact: its `precision`; `verify_images` images of the
    `train.data` spec `data` (generated ones without it; 0 skips the check) for the parity check;
    `reference_images` of them kept as its reference set (`deploy.reference`; 0: none); and the
    format's own `options` (its `deploy.export` table entry's, e.g. `opset`)."""

    precision: str = "fp32"
    data: str | None = None
    verify_images: int = 256
    reference_images: int = 16
    options: Mapping[str, object] = field(default_factory=dict)


def artifact_card(card: ModelCard, fmt: str, precision: str, source_sha256: str) -> ModelCard:
    """The card of an exported artifact: the checkpoint's, with its own format, precision and source."""
    return card.evolve(
        artifact_format=fmt,
        precision=precision,
        source_sha256=source_sha256 or card.source_sha256,
        toolkit_version=__version__,
        parity=None,
        confidence=None,
    )


def write_card(path: Path, fmt: str, card: ModelCard) -> None:
    if get_format(fmt).card_in == "metadata":
        from deploy.export.torch2onnx import rewrite_card

        rewrite_card(path, card)
    else:
        write_sidecar(path, card)


def add_reference(
    model: torch.nn.Module, staged: Path, fmt: str, card: ModelCard, data: str | None, count: int
) -> ModelCard:
    """Store a reference set beside the staged artifact and name it in its card; the card it now has."""
    from deploy.export.verify import parity_images, split_seed

    images, source = parity_images(data, count, split_seed(card))
    reference = make_reference(model, staged, card, images, source)
    card = card.evolve(reference=reference_note(reference, staged))
    write_card(staged, fmt, card)
    store_reference(reference, staged)
    return card


def export_model(
    model: torch.nn.Module,
    card: ModelCard,
    fmt: str,
    out: str | os.PathLike,
    spec: ExportSpec | None = None,
    *,
    source_sha256: str = "",
) -> ExportResult:
    """Export `model` to `out` as `fmt`, check parity and record it in the artifact's card.

    The artifact is built and checked under a temporary name beside `out` and moved into place
    only when it passed (or when `spec.verify_images=0` skips the check: `deploy.load` then warns
    that it is unverified), so a failed export never replaces an earlier, verified one. A failed
    artifact is kept as `<stem>.failed<suffix>`, its card marked failed, and the result's `passed`
    is False. Concurrent exports to one `out` are refused (a lock beside it). A passing (or unchecked)
    artifact gets a reference set of `spec.reference_images` of the parity check's images
    (`deploy.reference`; 0: none).
    """
    spec = spec or ExportSpec()
    precision, data = spec.precision, spec.data
    verify_images, reference_images = spec.verify_images, spec.reference_images
    check_request(fmt, precision, out)
    check_count(reference_images)
    out = Path(out)
    new_card = artifact_card(card, fmt, precision, source_sha256)
    with artifact_lock(out, "--out"), \
            tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as staging:
        staged = Path(staging) / out.name
        get_exporter(fmt)(model, new_card, staged, precision=precision, data=data, **spec.options)
        # the exporter's card may add what only it knows (an engine's built_on)
        if get_format(fmt).card_in == "sidecar":
            new_card = read_sidecar(staged) or new_card
        if verify_images > 0:
            from deploy.export.verify import verify_artifact

            parity, confidence = verify_artifact(model, staged, new_card, data=data, count=verify_images)
            new_card = new_card.evolve(parity=parity, confidence=confidence)
            write_card(staged, fmt, new_card)
        result = ExportResult(out, new_card)
        if result.passed and reference_images > 0:
            result.card = new_card = add_reference(model, staged, fmt, new_card, data, reference_images)
        if not result.passed:
            result.path = out.with_name(f"{out.stem}.failed{out.suffix}")
        publish_artifact(staged, result.path)
    return result


def export_checkpoint(
    checkpoint: str | os.PathLike, fmt: str, out: str | os.PathLike, spec: ExportSpec | None = None
) -> ExportResult:
    """Load a training checkpoint with `train.checkpoint` and export it (see `export_model`)."""
    spec = spec or ExportSpec()
    check_request(fmt, spec.precision)
    try:
        from train.checkpoint import load_model, sha256_file
    except ModuleNotFoundError as exc:
        raise EdgevisionError(f"export needs the training package to read checkpoints ({exc.name} missing)") from None
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise EdgevisionError(f"checkpoint not found: {checkpoint}")
    model, card = load_model(checkpoint)
    return export_model(model, card, fmt, out, spec, source_sha256=sha256_file(checkpoint))
