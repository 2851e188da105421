"""The steps `edgevision prune` and `edgevision quantize` run, as functions usable from Python.

Checkpoints are read and written through `train.checkpoint`; a pruned checkpoint carries its
structure in `card.model_options[STRUCTURE_KEY]` (see `quantize.prune`). ONNX export goes through
`deploy.export.torch2onnx`. Every artifact is written once, atomically, after the guard passed.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deploy.atomic import write_text_atomic
from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from quantize import ptq_onnx
from quantize.distill import Distilled, DistillLoss
from quantize.guard import DEFAULT_BUDGET, Attempt, Guard
from quantize.prune import STRUCTURE_KEY, PruneReport, classifier_layers, prune_model, pruned_structure
from quantize.reconstruct import reconstruct
from quantize.scoring import artifact_latency_ms, artifact_logits
from train.checkpoint import load_model


# --- checkpoints -----------------------------------------------------------------------------


def example_input(card: ModelCard, batch: int = 1) -> torch.Tensor:
    height, width = card.preprocessing.input_size
    return torch.randn(batch, card.preprocessing.channels, height, width)


def torch_logits(model: nn.Module, images: np.ndarray, batch: int = 32) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = [model(torch.from_numpy(images[i : i + batch])).numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out).astype(np.float32)


# --- pruning ---------------------------------------------------------------------------------


@dataclass
class FinetuneSpec:
    """Fine-tuning between and after pruning steps, on the training split of `data`."""

    data: str
    epochs_per_step: int = 1
    epochs_after: int = 0
    lr: float = 1e-3
    optimizer: str = "adamw"
    batch_size: int = 32
    augment: str | None = None
    seed: int = 0
    limit: int | None = None
    distill: str = "logits"  # one of quantize.distill.DISTILL_MODES
    temperature: float = 2.0
    alpha: float = 0.7
    feature_weight: float = 1.0
    device: str = "auto"
    amp: str = "off"
    workers: int = 0
    log: list = field(default_factory=list)
    progress: Callable[[str], None] | None = None  # gets a line per epoch


def finetuner(spec: FinetuneSpec, card: ModelCard, teacher: nn.Module | None = None):
    """A `finetune(model, epochs)` function built on `train.engine.train_one_epoch`.

    With a `teacher` (the unpruned model) and `spec.distill` other than "none", the loss adds
    knowledge distillation (see `quantize.distill`), which recovers pruned accuracy faster on
    small data sets.
    """
    from train.data import load_data
    from train.ddp import pick_device
    from train.engine import Schedule, build_optimizer, train_one_epoch
    from train.loaders import make_loader
    from train.transforms import train_transform

    from quantize.calibration import balanced_indices

    splits = load_data(spec.data, seed=0)
    dataset = splits.train
    if spec.limit:
        dataset = dataset.subset(balanced_indices(np.asarray(dataset.targets), spec.limit, spec.seed))
    policy = spec.augment or splits.augment
    loader = make_loader(
        dataset, train_transform(card.preprocessing, policy), spec.batch_size, True, spec.seed, workers=spec.workers
    )
    device = pick_device(spec.device)
    if spec.distill == "none":
        teacher = None
    # only feature matching needs the classifier's name (found with one forward of the teacher)
    head = None
    if teacher is not None and spec.distill == "features":
        head = classifier_layers(teacher, example_input(card))[0]

    def finetune(model: nn.Module, epochs: int) -> None:
        """Train `model` for `epochs` on `device`; it comes back on the CPU (pruning works there)."""
        if epochs < 1:
            return
        model.to(device)
        if teacher is not None:
            teacher.to(device)
        trained, loss_fn = model, nn.CrossEntropyLoss()
        if teacher is not None:
            trained = Distilled(model, teacher, spec.distill, head)
            loss_fn = DistillLoss(trained, spec.temperature, spec.alpha, spec.feature_weight)
        params = [p for p in trained.parameters() if p.requires_grad]
        optimizer = build_optimizer([{"params": params}], spec.optimizer, spec.lr, 1e-4)
        steps = epochs * len(loader)
        schedule = Schedule(total_steps=steps, warmup_steps=min(len(loader), steps // 10))
        trained.train()
        for epoch in range(1, epochs + 1):
            tic = time.perf_counter()
            stats = train_one_epoch(trained, loader, loss_fn, optimizer, schedule, device, spec.amp)
            spec.log.append(stats)
            if spec.progress:
                spec.progress(
                    f"fine-tune epoch {epoch}/{epochs}: loss {stats['loss']:.4f}, "
                    f"train top-1 {stats['top1'] * 100:.2f}% ({time.perf_counter() - tic:.0f}s)"
                )
        if isinstance(trained, Distilled):
            trained.close()
        model.cpu().eval()
        if teacher is not None:
            teacher.cpu()

    return finetune


def prune_checkpoint(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    ratio: float | None = None,
    target_macs: float | None = None,
    steps: int = 1,
    global_pruning: bool = False,
    round_to: int | None = 8,
    ignored: tuple[str, ...] = (),
    importance: str = "magnitude",
    finetune: FinetuneSpec | None = None,
    eval_data: str | None = None,
    eval_split: str = "val",
    eval_limit: int | None = None,
    budget: float | None = None,
    reconstruct_data: str | None = None,
    reconstruct_images: int = 256,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Prune a checkpoint (with optional fine-tuning) and save it; returns the report.

    With `eval_data`, top-1 before and after is measured on `eval_split`; with `budget` (points)
    a pruned model that falls further than that below the original is refused, nothing written.
    With `reconstruct_data`, after each pruning step the layers that lost input channels are
    re-fitted by least squares on `reconstruct_images` class-balanced training images (see
    `quantize.reconstruct`) before any fine-tuning.
    """
    from train.checkpoint import save_checkpoint

    from quantize.calibration import load_split

    model, card = load_model(source)
    example = example_input(card)
    before = STRUCTURE_KEY in card.model_options
    scores: dict = {}
    if eval_data:
        images, labels, _ = load_split(eval_data, eval_split, card.preprocessing, eval_limit)
        scores["top1_before"] = float(np.mean(torch_logits(model, images).argmax(1) == labels) * 100)
    repair = bool(reconstruct_data and reconstruct_images > 0)
    teacher = copy.deepcopy(model).eval() if finetune or repair else None  # the unpruned model
    tune = finetuner(finetune, card, teacher=teacher) if finetune else None
    if repair:
        calib, _, _ = load_split(reconstruct_data, "train", card.preprocessing, reconstruct_images)
        calib_images = torch.from_numpy(calib)
        scores["reconstruction_errors"] = []

    def after_step(m: nn.Module, step: int) -> None:
        if repair:
            scores["reconstruction_errors"].append(reconstruct(m, teacher, calib_images, progress=progress))
        if tune and steps > 1:
            tune(m, finetune.epochs_per_step)

    report: PruneReport = prune_model(
        model,
        example,
        ratio=ratio,
        target_macs=target_macs,
        steps=steps,
        global_pruning=global_pruning,
        round_to=round_to,
        ignored=ignored,
        importance=importance,
        finetune=after_step if repair or (tune and steps > 1) else None,
    )
    if tune:
        tune(model, finetune.epochs_after if steps > 1 else max(finetune.epochs_after, finetune.epochs_per_step))
    model.eval()
    if eval_data:
        scores["top1_after"] = float(np.mean(torch_logits(model, images).argmax(1) == labels) * 100)
        scores["eval_images"] = int(len(labels))
        if budget is not None and scores["top1_before"] - scores["top1_after"] > budget:
            raise EdgevisionError(
                f"pruned top-1 {scores['top1_after']:.2f}% is more than {budget} points below "
                f"{scores['top1_before']:.2f}% (MACs -{report.macs_reduction * 100:.1f}%); nothing written. "
                "Fine-tune longer (--finetune-epochs) or prune less"
            )
    structure = pruned_structure(model)
    options = {**{k: v for k, v in card.model_options.items() if k != STRUCTURE_KEY}, STRUCTURE_KEY: structure}
    metrics = dict(card.metrics)
    if "top1_after" in scores:
        metrics["top1"] = scores["top1_after"] / 100.0
    metrics["pruning"] = {**report.to_dict(), **scores, "repruned": before}
    new_card = card.evolve(model_options=options, metrics=metrics)
    save_checkpoint(out, new_card, model.state_dict())
    return {**report.to_dict(), **scores, "out": str(out)}


# --- quantization ----------------------------------------------------------------------------


@dataclass
class QuantResult:
    path: Path
    chosen: Attempt
    report: dict


def _write_onnx(src: Path, out: Path, card: ModelCard) -> None:
    import onnx

    from deploy.export.torch2onnx import save_onnx, set_card

    proto = onnx.load(str(src))
    set_card(proto, card)
    save_onnx(proto, out)


def _card_for(card: ModelCard, guard: Guard, chosen: Attempt, fmt: str) -> ModelCard:
    metrics = {k: v for k, v in card.metrics.items() if k != "pruning"}
    metrics.update(
        {"top1": chosen.top1 / 100.0, "top1_fp32": guard.fp32_top1 / 100.0, "eval_images": len(guard.labels)}
    )
    parity = {"top1_agreement_fp32": chosen.agreement / 100.0, "quantization": {"name": chosen.name, **chosen.config}}
    return card.evolve(precision=chosen.precision, artifact_format=fmt, metrics=metrics, parity=parity)


def quantize_to_onnx(
    model: nn.Module,
    card: ModelCard,
    out: str | os.PathLike,
    calibration: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    *,
    budget: float = DEFAULT_BUDGET,
    ladder: tuple[ptq_onnx.OnnxQuantConfig, ...] = ptq_onnx.DEFAULT_LADDER,
    exhaustive: bool = False,
    exclude_sensitive: int = 3,
    fp16_fallback: bool = True,
    measure_latency: bool = True,
    threads: int = 2,
    progress=print,
) -> QuantResult:
    """int8 ONNX under the accuracy guard: try `ladder` in order, then the same with the most
    sensitive nodes kept in float, then fp16; write the best passing model to `out`."""
    from deploy.export.torch2onnx import torch2onnx

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="edgevision-quant-") as tmp_name:
        tmp = Path(tmp_name)
        fp32 = tmp / "fp32.onnx"
        torch2onnx(copy.deepcopy(model).eval(), card, fp32)
        pre = ptq_onnx.preprocess_for_quantization(fp32, tmp / "pre.onnx")
        guard = Guard(artifact_logits(pre, val_images, threads), val_labels, budget)
        progress(f"fp32 top-1 {guard.fp32_top1:.2f}% on {len(val_labels)} images; budget {budget} points")

        def attempt(config: ptq_onnx.OnnxQuantConfig, index: int) -> Attempt:
            path = tmp / f"try{index}.onnx"
            trial = Attempt(config.name, "int8", config.to_dict(), path=path)
            try:
                ptq_onnx.quantize_onnx(pre, path, calibration, config)
                guard.judge(trial, artifact_logits(path, val_images, threads))
            except EdgevisionError:
                raise
            except Exception as exc:  # an onnxruntime failure on one config: record it, try the next
                guard.failed(trial, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
            progress(trial.line())
            return trial

        for index, config in enumerate(ladder):
            if attempt(config, index).passed and not exhaustive:
                break
        if guard.best() is None and exclude_sensitive > 0:
            scored = [a for a in guard.attempts if a.top1 is not None and a.config.get("quant_format") == "qdq"]
            if scored:
                worst = max(scored, key=lambda a: a.top1)
                config = next(c for c in ladder if c.name == worst.name)
                sample = calibration[: min(8, len(calibration))]
                nodes = ptq_onnx.sensitive_nodes(pre, worst.path, sample, exclude_sensitive)
                progress(f"  most sensitive nodes: {', '.join(f'{n} ({db:.1f} dB)' for n, db in nodes)}")
                attempt(ptq_onnx.with_exclusions(config, [n for n, _ in nodes]), len(guard.attempts))
        if guard.best() is None and fp16_fallback:
            path = tmp / "fp16.onnx"
            trial = Attempt("fp16", "fp16", {"quant_format": "fp16"}, path=path)
            ptq_onnx.convert_fp16(pre, path)
            progress(guard.judge(trial, artifact_logits(path, val_images, threads)).line())
        chosen = guard.require_best()
        report = guard.report()
        if measure_latency:
            report["latency_ms"] = artifact_latency_ms({"fp32": pre, chosen.name: chosen.path}, val_images[0], threads)
            chosen.latency_ms = report["latency_ms"][chosen.name]
            report["speedup"] = report["latency_ms"]["fp32"] / chosen.latency_ms
        _write_onnx(chosen.path, out, _card_for(card, guard, chosen, "onnx"))
    chosen.path = out
    return QuantResult(out, chosen, report)


def quantize_to_pte(
    model: nn.Module,
    card: ModelCard,
    out: str | os.PathLike,
    calibration: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    *,
    budget: float = DEFAULT_BUDGET,
    qat_images: np.ndarray | None = None,
    qat_labels: np.ndarray | None = None,
    qat_epochs: int = 0,
    qat_lr: float = 1e-4,
    exhaustive: bool = False,
    measure_latency: bool = True,
    progress=print,
) -> QuantResult:
    """int8 ExecuTorch (XNNPACK) under the guard: PTQ per-channel, then PTQ with the first and
    last layers in float, then QAT when `qat_epochs` > 0; writes `out` and its sidecar card."""
    from deploy.atomic import write_bytes_atomic
    from deploy.card import write_sidecar
    from quantize import ptq_executorch as pte

    out = Path(out)
    guard = Guard(torch_logits(model, val_images), val_labels, budget)
    progress(f"fp32 top-1 {guard.fp32_top1:.2f}% on {len(val_labels)} images; budget {budget} points")
    with tempfile.TemporaryDirectory(prefix="edgevision-pte-") as tmp_name:
        tmp = Path(tmp_name)
        plans = [
            ("pt2e-xnnpack-pc", {"per_channel": True, "skip": []}),
            ("pt2e-xnnpack-pc-skip-edges", {"per_channel": True, "skip": pte.edge_layers(model)}),
        ]
        if qat_epochs > 0:
            plans.append(("qat-pt2e-xnnpack-pc", {"per_channel": True, "qat_epochs": qat_epochs, "lr": qat_lr}))
        for index, (name, config) in enumerate(plans):
            path = tmp / f"try{index}.pte"
            trial = Attempt(name, "int8", config, path=path)
            try:
                if "qat_epochs" in config:
                    if qat_images is None:
                        raise EdgevisionError("QAT needs training images")
                    quantized = pte.qat_pt2e(copy.deepcopy(model), qat_images, qat_labels, qat_epochs, qat_lr)
                else:
                    quantized = pte.ptq_pt2e(copy.deepcopy(model), calibration, config["per_channel"], config["skip"])
                path.write_bytes(pte.lower_to_pte(quantized, calibration))
                guard.judge(trial, artifact_logits(path, val_images))
            except Exception as exc:
                guard.failed(trial, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
            progress(trial.line())
            if trial.passed and not exhaustive:
                break
        chosen = guard.require_best()
        report = guard.report()
        if measure_latency:
            report["latency_ms"] = artifact_latency_ms({chosen.name: chosen.path}, val_images[0])
            chosen.latency_ms = report["latency_ms"][chosen.name]
        write_bytes_atomic(out, chosen.path.read_bytes())
        write_sidecar(out, _card_for(card, guard, chosen, "executorch"))
    chosen.path = out
    return QuantResult(out, chosen, report)


def quantize_to_fp16(
    model: nn.Module, card: ModelCard, out: str | os.PathLike, val_images: np.ndarray, val_labels: np.ndarray,
    *, budget: float = DEFAULT_BUDGET, progress=print,
) -> QuantResult:
    """fp16 ONNX (for GPUs), scored like any other attempt before it is written."""
    from deploy.export.torch2onnx import torch2onnx

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="edgevision-fp16-") as tmp_name:
        tmp = Path(tmp_name)
        fp32 = torch2onnx(copy.deepcopy(model).eval(), card, tmp / "fp32.onnx")
        guard = Guard(artifact_logits(fp32, val_images), val_labels, budget)
        trial = Attempt("fp16", "fp16", {"quant_format": "fp16"}, path=tmp / "fp16.onnx")
        ptq_onnx.convert_fp16(fp32, trial.path)
        progress(guard.judge(trial, artifact_logits(trial.path, val_images)).line())
        chosen = guard.require_best()
        _write_onnx(trial.path, out, _card_for(card, guard, chosen, "onnx"))
    chosen.path = out
    return QuantResult(out, chosen, guard.report())


def write_report(path: str | os.PathLike, report: dict) -> None:
    write_text_atomic(path, json.dumps(report, indent=2, default=str) + "\n")
