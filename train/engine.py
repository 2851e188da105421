"""One epoch of training, one evaluation, and the optimiser and learning-rate schedule they use."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from deploy.errors import EdgevisionError

OPTIMIZERS = ("adamw", "sgd")


def build_optimizer(
    groups: list[dict], name: str, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """AdamW or SGD (momentum 0.9, Nesterov) over parameter groups that may carry an `lr_scale`.

    Each group's base learning rate is kept as `initial_lr` so the schedule can scale it.
    """
    for group in groups:
        group["initial_lr"] = lr * group.pop("lr_scale", 1.0)
        group["lr"] = group["initial_lr"]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise EdgevisionError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up from ~0 to 1, then cosine decay to 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class Schedule:
    """Step-wise learning rate; its whole state is `step`, so resuming needs only that number."""

    total_steps: int
    warmup_steps: int
    step: int = 0

    def apply(self, optimizer: torch.optim.Optimizer) -> None:
        factor = lr_factor(self.step, self.total_steps, self.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        self.step += 1


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on CUDA; a no-op on CPU (where it would be slower, not faster)."""
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def progress(iterable: Iterable, desc: str, quiet: bool, total: int | None = None) -> Iterable:
    return tqdm(iterable, desc=desc, total=total, leave=False, disable=quiet or not sys.stderr.isatty())


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    device: torch.device,
    amp: str = "off",
    scaler: torch.amp.GradScaler | None = None,
    quiet: bool = True,
    desc: str = "train",
    bn_eval: bool = False,
) -> dict[str, float]:
    """One pass over `loader`; returns mean loss and top-1 on the (augmented) training batches.

    `bn_eval`: keep BatchNorm layers in eval mode (a frozen backbone keeps its statistics).
    """
    model.train()
    if bn_eval:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels in progress(loader, desc, quiet, total=len(loader)):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if images.ndim == 4:  # 1.4-1.8x faster on CPUs with oneDNN as well as on CUDA
            images = images.contiguous(memory_format=torch.channels_last)
        schedule.apply(optimizer)
        with autocast(device, amp):
            logits = model(images)
            loss = loss_fn(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        total_loss += float(loss.detach()) * len(labels)
        correct += int((logits.detach().argmax(1) == labels).sum())
        seen += len(labels)
    return {"loss": total_loss / max(1, seen), "top1": correct / max(1, seen)}


@dataclass
class EvalResult:
    """Evaluation of one split; `confusion[true][predicted]` counts images."""

    top1: float
    top5: float  # top-k accuracy with k = topk = min(5, classes)
    topk: int
    loss: float
    count: int
    per_class: list[float]
    confusion: list[list[int]] = field(repr=False)

    def summary(self, class_names: list[str]) -> dict:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "topk": self.topk,
            "loss": self.loss,
            "count": self.count,
            "per_class": dict(zip(class_names, self.per_class, strict=True)),
            "confusion": self.confusion,
        }


@torch.no_grad()
def predict_logits(model: nn.Module, loader: Iterable, device: torch.device, amp: str = "off", quiet: bool = True):
    """(logits, labels) over a whole loader, in eval mode."""
    model.eval()
    all_logits, all_labels = [], []
    for images, labels in progress(loader, "eval", quiet, total=len(loader)):
        with autocast(device, amp):
            logits = model(images.to(device))
        all_logits.append(logits.float().cpu())
        all_labels.append(labels)
    return torch.cat(all_logits), torch.cat(all_labels)


def torch_logits(model: nn.Module, batch: np.ndarray, chunk: int = 16) -> np.ndarray:
    """Float32 logits of PyTorch eager on the CPU for a preprocessed NCHW batch, `chunk` images at a time
    (the model is put in eval mode): the reference an exported or quantized model is compared with."""
    model = model.eval().float().cpu()
    out = []
    with torch.inference_mode():
        for i in range(0, len(batch), chunk):
            out.append(model(torch.from_numpy(batch[i : i + chunk])).float().numpy())
    return np.concatenate(out)


def score(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> EvalResult:
    """Top-1, top-k (k = min(5, classes)), loss, per-class accuracy and confusion matrix."""
    k = min(5, num_classes)
    loss = float(nn.functional.cross_entropy(logits, labels)) if len(labels) else 0.0
    top1_pred = logits.argmax(1)
    topk_hit = (logits.topk(k, dim=1).indices == labels[:, None]).any(1)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels, top1_pred), torch.ones_like(labels), accumulate=True)
    per_class_total = confusion.sum(1).clamp(min=1)
    per_class = (confusion.diag().float() / per_class_total).tolist()
    count = len(labels)
    return EvalResult(
        top1=float((top1_pred == labels).float().mean()) if count else 0.0,
        top5=float(topk_hit.float().mean()) if count else 0.0,
        topk=k,
        loss=loss,
        count=count,
        per_class=per_class,
        confusion=confusion.tolist(),
    )


def evaluate_loader(
    model: nn.Module, loader: Iterable, num_classes: int, device: torch.device, amp: str = "off", quiet: bool = True
) -> EvalResult:
    logits, labels = predict_logits(model, loader, device, amp, quiet)
    return score(logits, labels, num_classes)
