"""`edgevision prune` as one function: checkpoint in, pruned (and fine-tuned) checkpoint out.

Checkpoints are read and written through `train.checkpoint`; a pruned checkpoint carries its
structure in `card.model_options[STRUCTURE_KEY]` (`train.pruned`). Progress goes to the
"edgevision.quantize" logger (one line per fine-tuning epoch and per re-fitted layer).
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deploy.atomic import artifact_lock
from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from quantize.distill import Distilled, DistillLoss
from quantize.prune import PruneReport, PruneSpec, classifier_layers, prune_model
from quantize.reconstruct import reconstruct
from train.checkpoint import load_model, save_checkpoint
from train.engine import torch_logits
from train.pruned import STRUCTURE_KEY, pruned_structure

log = logging.getLogger("edgevision.quantize")


def example_input(card: ModelCard, batch: int = 1) -> torch.Tensor:
    height, width = card.preprocessing.input_size
    return torch.randn(batch, card.preprocessing.channels, height, width)


@dataclass(frozen=True)
class FinetuneSpec:
    """How to fine-tune between and after pruning steps, on the training split of the data
    (`epochs` 0: no fine-tuning)."""

    epochs: int = 0
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


def finetuner(spec: FinetuneSpec, data: str, card: ModelCard, teacher: nn.Module | None = None):
    """A `finetune(model, epochs)` function built on `train.engine.train_one_epoch`.

    With a `teacher` (the unpruned model) and `spec.distill` other than "none", the loss adds
    knowledge distillation (see `quantize.distill`), which recovers pruned accuracy faster on
    small data sets.
    """
    from quantize.calibration import balanced_indices, training_split_seed
    from train.data import load_data
    from train.ddp import pick_device
    from train.engine import Schedule, build_optimizer, train_one_epoch
    from train.loaders import make_loader
    from train.transforms import train_transform

    splits = load_data(data, seed=training_split_seed(card))
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
            log.info(
                "fine-tune epoch %d/%d: loss %.4f, train top-1 %.2f%% (%.0fs)",
                epoch, epochs, stats["loss"], stats["top1"] * 100, time.perf_counter() - tic,
            )
        if isinstance(trained, Distilled):
            trained.close()
        model.cpu().eval()
        if teacher is not None:
            teacher.cpu()

    return finetune


@dataclass
class PruneResult:
    """What `prune_checkpoint` wrote and measured; accuracies are fractions (0.97)."""

    path: Path
    report: PruneReport
    top1_before: float | None = None
    top1_after: float | None = None
    eval_images: int | None = None
    reconstruction_errors: list[dict[str, float]] | None = None  # per step: {layer: relative error}
    repruned: bool = False  # the source checkpoint was already pruned

    def to_dict(self) -> dict:
        """The report as JSON-able data (also stored in the card as `metrics["pruning"]`)."""
        data = self.report.to_dict()
        for key in ("top1_before", "top1_after", "eval_images", "reconstruction_errors"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data["repruned"] = self.repruned
        return data


def _top1(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(torch_logits(model, images).argmax(1) == labels))


@dataclass(frozen=True)
class RecoverySpec:
    """How `prune_checkpoint` measures and recovers accuracy, on the `train.data` spec `data`.

    Top-1 is measured before and after on `eval_split` (`eval_limit` images at most,
    class-balanced); after each pruning step the layers that lost input channels are re-fitted by
    least squares on `reconstruct_images` training images (`quantize.reconstruct`; 0 turns it off);
    `finetune.epochs` > 0 fine-tunes on the training split (after each step when the prune has
    several, and at the end). `budget` (top-1 points) refuses a model that falls further below the
    original: nothing is written. Without `data` none of this runs.
    """

    data: str | None = None
    finetune: FinetuneSpec = field(default_factory=FinetuneSpec)
    reconstruct_images: int = 256
    eval_split: str = "val"
    eval_limit: int | None = None
    budget: float | None = None


def _check_request(checkpoint: Path, spec: PruneSpec, recovery: RecoverySpec) -> None:
    """The mistakes that need no model to find, reported before any work."""
    ratio, target_macs, data = spec.ratio, spec.target_macs, recovery.data
    if ratio is not None and not 0.0 < ratio < 1.0:
        raise EdgevisionError(f"--ratio must be between 0 and 1 (exclusive), got {ratio}")
    if target_macs is not None and not 0.0 < target_macs < 1.0:
        raise EdgevisionError(f"--target-macs must be between 0 and 1 (exclusive), got {target_macs}")
    if not checkpoint.is_file():
        raise EdgevisionError(f"checkpoint not found: {checkpoint}")
    if recovery.finetune.epochs and not data:
        raise EdgevisionError("--finetune-epochs needs --data (the training data spec)")
    if recovery.reconstruct_images < 0:
        raise EdgevisionError(f"--reconstruct must be a number of images (0: off), got {recovery.reconstruct_images}")
    if recovery.budget is not None and not data:
        raise EdgevisionError("--max-drop needs --data to measure accuracy")


def prune_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    spec: PruneSpec,
    recovery: RecoverySpec | None = None,
) -> PruneResult:
    """Prune `checkpoint` as `spec` says (see `quantize.prune.prune_model`) and save the result at
    `out`; with `recovery.data`, accuracy is measured, repaired and guarded (`RecoverySpec`)."""
    recovery = recovery or RecoverySpec()
    data, eval_split, budget = recovery.data, recovery.eval_split, recovery.budget
    finetune_epochs, reconstruct_images = recovery.finetune.epochs, recovery.reconstruct_images
    checkpoint, out = Path(checkpoint), Path(out)
    if out.resolve() == checkpoint.resolve():
        raise EdgevisionError(f"-o {out} is the checkpoint being pruned; write the pruned model to another file")
    _check_request(checkpoint, spec, recovery)
    with artifact_lock(out):  # a second prune to the same file is refused before any work
        from quantize.calibration import SplitDraw, load_split, training_split_seed

        model, card = load_model(checkpoint)
        example = example_input(card)
        result_args: dict = {"repruned": STRUCTURE_KEY in card.model_options}
        if data:
            evaluated = SplitDraw(data, eval_split, recovery.eval_limit, split_seed=training_split_seed(card))
            images, labels, _ = load_split(evaluated, card.preprocessing, class_names=card.class_names)
            result_args["top1_before"] = _top1(model, images, labels)
        repair = bool(data and reconstruct_images > 0)
        teacher = copy.deepcopy(model).eval() if finetune_epochs or repair else None  # the unpruned model
        tune = finetuner(recovery.finetune, data, card, teacher=teacher) if finetune_epochs else None
        if repair:
            calib, _, _ = load_split(SplitDraw(data, "train", reconstruct_images, split_seed=training_split_seed(card)),
                                     card.preprocessing, class_names=card.class_names)
            calib_images = torch.from_numpy(calib)
            result_args["reconstruction_errors"] = []

        def after_step(m: nn.Module, step: int) -> None:
            if repair:
                result_args["reconstruction_errors"].append(reconstruct(m, teacher, calib_images))
            if tune and spec.steps > 1:
                tune(m, finetune_epochs)

        report = prune_model(model, example, spec,
                             finetune=after_step if repair or (tune and spec.steps > 1) else None)
        if tune:
            tune(model, finetune_epochs)
        model.eval()
        if data:
            result_args["top1_after"] = _top1(model, images, labels)
            result_args["eval_images"] = int(len(labels))
            before, after = result_args["top1_before"], result_args["top1_after"]
            if budget is not None and (before - after) * 100 > budget + 1e-9:
                raise EdgevisionError(
                    f"pruned {eval_split} top-1 {after:.2%} is more than {budget} points below {before:.2%} "
                    f"(MACs -{report.macs_reduction * 100:.1f}%); nothing written. "
                    "Fine-tune longer (--finetune-epochs) or prune less"
                )
        result = PruneResult(out, report, **result_args)
        options = {k: v for k, v in card.model_options.items() if k != STRUCTURE_KEY}
        options[STRUCTURE_KEY] = pruned_structure(model)
        metrics = dict(card.metrics)
        if result.top1_after is not None:
            metrics["top1"] = result.top1_after
        metrics["pruning"] = result.to_dict()
        save_checkpoint(out, card.evolve(model_options=options, metrics=metrics), model.state_dict())
        return result
