"""`edgevision quantize` as functions: a checkpoint (or model) in, an int8/fp16 artifact out.

Every target walks a ladder of configurations through one runner, `climb`: a `Rung` writes a
candidate artifact into a temporary folder, deploy's own backend scores it on held-out images
(`quantize.scoring`) and the guard records it; an exception in a rung becomes a failed attempt
with a one-line reason and the ladder goes on. The best passing candidate is written once,
atomically, with its card (the check in `card.parity`, a `deploy.card.Parity`); when none passes,
`BudgetMissed` is raised and nothing is written. Progress goes to the "edgevision.quantize" logger.

torch is imported inside the functions, so that reading `TARGETS` (the CLI does) stays light.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deploy.atomic import artifact_lock
from deploy.card import ModelCard, Parity
from deploy.confidence import split_label
from deploy.errors import EdgevisionError, first_line
from deploy.limits import check_threads
from quantize import ptq_onnx
from quantize.guard import DEFAULT_BUDGET, Attempt, Guard
from quantize.scoring import artifact_latency_ms, artifact_logits

if TYPE_CHECKING:
    from torch import nn

    from deploy.reference import ReferenceSet
    from quantize.ptq_executorch import PteQuantConfig

log = logging.getLogger("edgevision.quantize")

# What `edgevision quantize --to` makes, and the suffix of the file it writes.
TARGETS = {
    "onnx-int8": ".onnx",
    "onnx-int8-trt": ".onnx",
    "pte-int8": ".pte",
    "onnx-fp16": ".onnx",
    "calib-data": ".npy",
}
# The int8 ONNX targets and their default ladders: onnxruntime's CPU form, and TensorRT's Q/DQ form
# (an ONNX that `edgevision export --format tensorrt` builds an int8 engine from on the device).
ONNX_LADDERS = {"onnx-int8": ptq_onnx.ONNX_LADDER, "onnx-int8-trt": ptq_onnx.ONNX_TRT_LADDER}


@dataclass(frozen=True)
class QuantizeSpec:
    """How to quantize, under the accuracy guard: the options of `quantize_checkpoint`, the
    `quantize_to_*` functions and `edgevision quantize`, written once.

    target: "onnx-int8", "onnx-int8-trt", "pte-int8" or "onnx-fp16" (a key of TARGETS).
    calib_size, seed: class-balanced training images for calibration, and the seed drawing them.
    eval_split, eval_size: the guard's images (default all of the split); `budget`: the top-1
        points they may drop below fp32.
    exhaustive: try every rung and keep the best, instead of the first that passes.
    onnx_ladder (default: the target's in ONNX_LADDERS), exclude_sensitive, fp16_fallback: the
        ONNX ladder; pte_ladder (default `ptq_executorch.PTE_LADDER`) and qat_epochs, qat_lr,
        qat_size (quantization-aware training on that many training images) the `.pte` one.
    measure_latency, threads: time the chosen artifact (onnxruntime threads for scoring and timing).
    reference_images: guard images stored as the artifact's reference set (`deploy.reference`; 0: none).
    """

    target: str = "onnx-int8"
    calib_size: int = 256
    eval_split: str = "val"
    eval_size: int | None = None
    seed: int = 0
    budget: float = DEFAULT_BUDGET
    exhaustive: bool = False
    onnx_ladder: tuple[ptq_onnx.OnnxQuantConfig, ...] | None = None
    pte_ladder: tuple[PteQuantConfig, ...] | None = None
    exclude_sensitive: int = 3
    fp16_fallback: bool = True
    qat_epochs: int = 0
    qat_lr: float = 1e-4
    qat_size: int = 512
    measure_latency: bool = True
    threads: int = 2
    reference_images: int = 16


@dataclass(frozen=True)
class QuantImages:
    """The images a quantization sees: the guard's (`val_images`, `val_labels`, from `source`),
    preprocessed training images for `calibration` (the int8 targets), raw `held_out` images for
    the reference set, and QAT's training images and labels (`.pte` with `qat_epochs` > 0)."""

    val_images: np.ndarray
    val_labels: np.ndarray
    calibration: np.ndarray | None = None
    source: str = "held-out images"
    held_out: Sequence[np.ndarray] = ()
    qat_images: np.ndarray | None = None
    qat_labels: np.ndarray | None = None


@dataclass
class QuantResult:
    """The artifact written, the attempt chosen, the guard's report (every attempt) and the card."""

    path: Path
    chosen: Attempt
    report: dict
    card: ModelCard


# --- the ladder runner -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rung:
    """One configuration of a ladder: name, precision and settings (for the report), and how to
    write its candidate artifact at a given path."""

    name: str
    precision: str
    config: dict
    write: Callable[[Path], object]


def try_rung(guard: Guard, rung: Rung, path: Path, score: Callable[[Path], np.ndarray]) -> Attempt:
    """Write `rung`'s candidate at `path` and let `guard` judge the logits `score(path)` gives."""
    trial = Attempt(rung.name, rung.precision, rung.config, path=path)
    try:
        rung.write(path)
        guard.judge(trial, score(path))
    except Exception as exc:  # a quantizer, lowering or runtime failure of one configuration: record it, go on
        guard.failed(trial, f"{type(exc).__name__}: {first_line(exc)}")
    log.info(trial.line())
    return trial


def climb(
    guard: Guard,
    rungs: Iterable[Rung],
    folder: Path,
    suffix: str,
    score: Callable[[Path], np.ndarray],
    exhaustive: bool = False,
) -> Attempt | None:
    """Try `rungs` in order (candidates written into `folder`), stopping at the first that passes
    unless `exhaustive`; the best passing attempt so far, or None."""
    for rung in rungs:
        trial = try_rung(guard, rung, folder / f"try{len(guard.attempts)}{suffix}", score)
        if trial.passed and not exhaustive:
            break
    return guard.best()


def start_guard(fp32_logits: np.ndarray, labels: np.ndarray, budget: float, source: str) -> Guard:
    """The guard on `labels` (images from `source`, e.g. "val split of digits"), logging fp32's top-1."""
    guard = Guard(fp32_logits, labels, budget)
    log.info("fp32 top-1 %.2f%% on %d images (%s); budget %s points", guard.fp32_top1 * 100, len(labels), source,
             budget)
    return guard


# --- cards and files -------------------------------------------------------------------------


def quantized_card(
    card: ModelCard, guard: Guard, chosen: Attempt, fmt: str, reference: str, source: str = ""
) -> ModelCard:
    """The card of a quantized artifact: its precision and format, `metrics.top1` and the chosen
    configuration (`metrics.quantization`), the guard's check as its `parity` and the chosen
    attempt's top-1 probabilities on the guard's images (`source`) as its `confidence`."""
    metrics = {k: v for k, v in card.metrics.items() if k != "pruning"}
    metrics.update(top1=chosen.top1, quantization={"name": chosen.name, **chosen.config})
    parity = Parity(
        passed=chosen.passed,
        images=int(len(guard.labels)),
        source=source,
        top1_agreement=chosen.agreement,
        reference=reference,
        top1=chosen.top1,
        reference_top1=guard.fp32_top1,
        allowed_top1_drop=guard.budget / 100.0,
    )
    confidence = None if chosen.confidence is None else replace(chosen.confidence, split=source)
    return card.evolve(precision=chosen.precision, artifact_format=fmt, metrics=metrics, parity=parity,
                       confidence=confidence)


def _write_onnx(src: Path, out: Path, card: ModelCard) -> None:
    import onnx

    from deploy.export.torch2onnx import save_onnx, set_card

    proto = onnx.load(str(src))
    set_card(proto, card)
    save_onnx(proto, out)


def _reference(model: nn.Module, artifact: Path, card: ModelCard, held_out: Sequence[np.ndarray], source: str,
               threads: int) -> ReferenceSet | None:
    """The chosen artifact's reference set (`deploy.reference`) on the raw `held_out` images, if any."""
    if not len(held_out):
        return None
    from deploy.export.reference import make_reference

    return make_reference(model, artifact, card, held_out, source, threads=threads)


def _publish(out: Path, card: ModelCard, reference: ReferenceSet | None,
             write: Callable[[Path, ModelCard], object]) -> ModelCard:
    """`write(path, card)` the artifact beside `out` under a temporary name, store its reference set
    (named in the card) beside it, and move them into place; the card written."""
    from deploy.card import publish_artifact
    from deploy.export.reference import reference_note, store_reference

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as staging:
        staged = Path(staging) / out.name
        if reference is not None:
            card = card.evolve(reference=reference_note(reference, staged))
        write(staged, card)
        if reference is not None:
            store_reference(reference, staged)
        publish_artifact(staged, out)
    return card


def _fp16_rung(fp32: Path) -> Rung:
    return Rung("fp16", "fp16", {"quant_format": "fp16"}, lambda path: ptq_onnx.convert_fp16(fp32, path))


def _fp32_onnx(model: nn.Module, card: ModelCard, path: Path) -> Path:
    from deploy.export.torch2onnx import torch2onnx

    return torch2onnx(copy.deepcopy(model).eval(), card, path)


# --- the targets -----------------------------------------------------------------------------


def quantize_to_onnx(
    model: nn.Module, card: ModelCard, out: str | os.PathLike, images: QuantImages, spec: QuantizeSpec | None = None
) -> QuantResult:
    """int8 ONNX under the accuracy guard: try the ladder (`spec.onnx_ladder`, else the target's) in
    order, then the closest miss with its most sensitive nodes kept in float, then fp16; write the
    best passing model to `out`."""
    spec = spec or QuantizeSpec()
    calibration, val_images, val_labels = images.calibration, images.val_images, images.val_labels
    source, held_out, threads = images.source, images.held_out, spec.threads
    ladder = spec.onnx_ladder if spec.onnx_ladder is not None else ONNX_LADDERS.get(spec.target, ptq_onnx.ONNX_LADDER)
    # TensorRT's form is timed on the device (`edgevision bench` of its engine): onnxruntime's CPU
    # kernels run signed activations no faster than fp32, so a CPU time here would only mislead
    measure_latency = spec.measure_latency and spec.target != "onnx-int8-trt"
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="edgevision-quant-") as tmp_name:
        tmp = Path(tmp_name)
        pre = ptq_onnx.preprocess_for_quantization(_fp32_onnx(model, card, tmp / "fp32.onnx"), tmp / "pre.onnx")

        def score(path: Path) -> np.ndarray:
            return artifact_logits(path, val_images, threads)

        def int8(config: ptq_onnx.OnnxQuantConfig) -> Rung:
            return Rung(config.name, "int8", config.to_dict(),
                        lambda path: ptq_onnx.quantize_onnx(pre, path, calibration, config))

        guard = start_guard(score(pre), val_labels, spec.budget, source)
        best = climb(guard, map(int8, ladder), tmp, ".onnx", score, spec.exhaustive)
        if best is None and spec.exclude_sensitive > 0:
            scored = [a for a in guard.attempts if a.top1 is not None and a.config.get("quant_format") == "qdq"]
            if scored:
                closest = max(scored, key=lambda a: a.top1)
                config = next(c for c in ladder if c.name == closest.name)
                sample = calibration[: min(8, len(calibration))]
                readers = ptq_onnx.TENSORRT_OP_TYPES if config.form == "tensorrt" else ()
                nodes = ptq_onnx.sensitive_nodes(pre, closest.path, sample, spec.exclude_sensitive, readers)
                log.info("  most sensitive nodes: %s", ", ".join(f"{n} ({db:.1f} dB)" for n, db in nodes))
                excluded = ptq_onnx.with_exclusions(config, [n for n, _ in nodes])
                best = climb(guard, [int8(excluded)], tmp, ".onnx", score)
        if best is None and spec.fp16_fallback:
            climb(guard, [_fp16_rung(pre)], tmp, ".onnx", score)
        chosen = guard.require_best()
        report = guard.report()
        if measure_latency:
            report["latency_ms"] = artifact_latency_ms({"fp32": pre, chosen.name: chosen.path}, val_images[0], threads)
            chosen.latency_ms = report["latency_ms"][chosen.name]
            report["speedup"] = report["latency_ms"]["fp32"] / chosen.latency_ms
        new_card = quantized_card(card, guard, chosen, "onnx", "fp32 onnx", source)
        reference = _reference(model, chosen.path, new_card, held_out, source, threads)
        new_card = _publish(out, new_card, reference, lambda path, c: _write_onnx(chosen.path, path, c))
    chosen.path = out
    return QuantResult(out, chosen, report, new_card)


def quantize_to_pte(
    model: nn.Module, card: ModelCard, out: str | os.PathLike, images: QuantImages, spec: QuantizeSpec | None = None
) -> QuantResult:
    """int8 ExecuTorch (XNNPACK) under the guard: the rungs of `spec.pte_ladder` (default
    `ptq_executorch.PTE_LADDER`; its QAT rungs only when `spec.qat_epochs` > 0); writes `out` and
    its sidecar card."""
    from deploy.card import write_sidecar
    from quantize import ptq_executorch as pte
    from train.engine import torch_logits

    spec = spec or QuantizeSpec()
    calibration, val_images, val_labels = images.calibration, images.val_images, images.val_labels
    qat_images, qat_labels, qat_epochs, qat_lr = images.qat_images, images.qat_labels, spec.qat_epochs, spec.qat_lr
    source, held_out, threads, ladder = images.source, images.held_out, spec.threads, spec.pte_ladder
    if qat_epochs > 0 and (qat_images is None or qat_labels is None):
        raise EdgevisionError("QAT needs training images and labels (qat_images, qat_labels)")
    out = Path(out)

    def rung(config: PteQuantConfig) -> Rung:
        skip = pte.edge_layers(model) if config.skip_edges else []
        settings = config.to_dict()
        if config.skip_edges:
            settings["skip"] = skip
        if config.qat:
            settings.update(qat_epochs=qat_epochs, lr=qat_lr)

        def write(path: Path) -> None:
            if config.qat:
                quantized = pte.qat_pt2e(copy.deepcopy(model), qat_images, qat_labels,
                                         pte.QatSpec(qat_epochs, qat_lr, per_channel=config.per_channel))
            else:
                quantized = pte.ptq_pt2e(copy.deepcopy(model), calibration, config.per_channel, skip)
            path.write_bytes(pte.lower_to_pte(quantized, calibration))

        return Rung(config.name, "int8", settings, write)

    def score(path: Path) -> np.ndarray:
        return artifact_logits(path, val_images, threads)

    rungs = [rung(c) for c in (pte.PTE_LADDER if ladder is None else ladder) if not c.qat or qat_epochs > 0]
    guard = start_guard(torch_logits(model, val_images), val_labels, spec.budget, source)
    with tempfile.TemporaryDirectory(prefix="edgevision-pte-") as tmp_name:
        climb(guard, rungs, Path(tmp_name), ".pte", score, spec.exhaustive)
        chosen = guard.require_best()
        report = guard.report()
        if spec.measure_latency:
            report["latency_ms"] = artifact_latency_ms({chosen.name: chosen.path}, val_images[0], threads)
            chosen.latency_ms = report["latency_ms"][chosen.name]
        new_card = quantized_card(card, guard, chosen, "executorch", "pytorch", source)
        reference = _reference(model, chosen.path, new_card, held_out, source, threads)

        def write(path: Path, final: ModelCard) -> None:
            shutil.copyfile(chosen.path, path)
            write_sidecar(path, final)

        new_card = _publish(out, new_card, reference, write)  # artifact, card and reference set together
    chosen.path = out
    return QuantResult(out, chosen, report, new_card)


def quantize_to_fp16(
    model: nn.Module, card: ModelCard, out: str | os.PathLike, images: QuantImages, spec: QuantizeSpec | None = None
) -> QuantResult:
    """fp16 ONNX (for GPUs), scored like any other attempt before it is written (`images.calibration`
    is not needed)."""
    spec = spec or QuantizeSpec()
    val_images, val_labels, source, held_out = images.val_images, images.val_labels, images.source, images.held_out
    threads = spec.threads
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="edgevision-fp16-") as tmp_name:
        tmp = Path(tmp_name)
        fp32 = _fp32_onnx(model, card, tmp / "fp32.onnx")

        def score(path: Path) -> np.ndarray:
            return artifact_logits(path, val_images, threads)

        guard = start_guard(score(fp32), val_labels, spec.budget, source)
        climb(guard, [_fp16_rung(fp32)], tmp, ".onnx", score)
        chosen = guard.require_best()
        new_card = quantized_card(card, guard, chosen, "onnx", "fp32 onnx", source)
        reference = _reference(model, chosen.path, new_card, held_out, source, threads)
        new_card = _publish(out, new_card, reference, lambda path, c: _write_onnx(chosen.path, path, c))
    chosen.path = out
    return QuantResult(out, chosen, guard.report(), new_card)


# --- from a checkpoint -----------------------------------------------------------------------


def check_target(target: str, out: str | os.PathLike) -> Path:
    """`out` as a Path, when it is a file name `target` can write."""
    out = Path(out)
    if target not in TARGETS:
        raise EdgevisionError(f"unknown quantize target {target!r}; choose from {', '.join(TARGETS)}")
    if out.suffix != TARGETS[target]:
        raise EdgevisionError(f"--to {target} writes a {TARGETS[target]} file, got --out {out.name}")
    if out.is_dir():
        raise EdgevisionError(f"--out {out} is a folder")
    return out


def _load(checkpoint: str | os.PathLike, data: str, calib_size: int, seed: int):
    """(model, card, calibration images, their labels) of a checkpoint and a data spec's training split."""
    from quantize.calibration import SplitDraw, check_calibration_set, load_split, training_split_seed
    from train.checkpoint import load_model

    if not Path(checkpoint).is_file():
        raise EdgevisionError(f"checkpoint not found: {checkpoint}")
    if calib_size < 1:
        raise EdgevisionError(f"--calib-size must be positive, got {calib_size}")
    model, card = load_model(checkpoint)
    calibration = SplitDraw(data, "train", calib_size, seed, split_seed=training_split_seed(card))
    calib, calib_labels, _ = load_split(calibration, card.preprocessing, class_names=card.class_names)
    check_calibration_set(calib_labels)
    return model, card, calib, calib_labels


def calibration_from_checkpoint(
    checkpoint: str | os.PathLike, out: str | os.PathLike, *, data: str, calib_size: int = 256, seed: int = 0
) -> Path:
    """Write `calib_size` class-balanced training images of `data`, preprocessed as the checkpoint's
    card says, to `out` (`.npy`, labels beside it): calibration data for TensorRT int8."""
    from quantize.calibration import write_calibration

    out = check_target("calib-data", out)
    with artifact_lock(out):
        _, _, calib, calib_labels = _load(checkpoint, data, calib_size, seed)
        return write_calibration(out, calib, calib_labels)


def quantize_checkpoint(
    checkpoint: str | os.PathLike, out: str | os.PathLike, spec: QuantizeSpec | None = None, *, data: str
) -> QuantResult:
    """Quantize a checkpoint to `spec.target` under the guard, calibrated and guarded on the
    `train.data` spec `data` (calibration from its training split, the guard on `spec.eval_split`;
    see `QuantizeSpec`). Raises `BudgetMissed` (its `report` holds every attempt) when no
    configuration passes.
    """
    spec = spec or QuantizeSpec()
    target, seed, eval_split, eval_size = spec.target, spec.seed, spec.eval_split, spec.eval_size
    out = check_target(target, out)
    if target == "calib-data":
        raise EdgevisionError("calib-data is written by calibration_from_checkpoint, not quantize_checkpoint")
    if spec.budget < 0:
        raise EdgevisionError(f"--max-drop is the allowed top-1 drop in points and must be >= 0, got {spec.budget}")
    check_threads(spec.threads, minimum=1)
    from deploy.export.reference import check_count

    check_count(spec.reference_images)
    with artifact_lock(out):  # a second quantize to the same file is refused before any work
        from quantize.calibration import (
            SplitDraw,
            check_calibration_set,
            held_out_images,
            load_split,
            training_split_seed,
        )

        model, card, calib, _ = _load(checkpoint, data, spec.calib_size, seed)
        guarded = SplitDraw(data, eval_split, eval_size, seed, split_seed=training_split_seed(card))
        val, val_labels, _ = load_split(guarded, card.preprocessing, class_names=card.class_names)
        check_calibration_set(val_labels, minimum=8, what="evaluation")
        images = QuantImages(val, val_labels, calib, source=split_label(eval_split, data))
        if spec.reference_images:
            images = replace(images, held_out=held_out_images(guarded, spec.reference_images))
        if target in ONNX_LADDERS:
            return quantize_to_onnx(model, card, out, images, spec)
        if target == "pte-int8":
            if spec.qat_epochs:
                qat_draw = SplitDraw(data, "train", spec.qat_size, seed + 1, split_seed=training_split_seed(card))
                qat_images, qat_labels, _ = load_split(qat_draw, card.preprocessing, class_names=card.class_names)
                images = replace(images, qat_images=qat_images, qat_labels=qat_labels)
            return quantize_to_pte(model, card, out, images, spec)
        return quantize_to_fp16(model, card, out, images, spec)
