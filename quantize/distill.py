"""Knowledge distillation from the unpruned model while the pruned one fine-tunes.

Two signals, chosen by `mode`:
- "logits": the student also matches the teacher's softened class probabilities (Hinton et al.,
  2015). With two classes that is little more than one number per image.
- "features": in addition, the student's input to the classifier layer (the pooled penultimate
  features) is pulled towards the teacher's (FitNets, Romero et al., 2015). A 1280-wide feature
  vector per image carries much of what ImageNet pre-training taught the teacher, which a small
  data set alone cannot give back to a network that pruning has damaged.
"""

from __future__ import annotations

import torch
from torch import nn

DISTILL_MODES = ("none", "logits", "features")


def _width(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return layer.in_features
    if isinstance(layer, nn.modules.conv._ConvNd):
        return layer.in_channels
    raise TypeError(f"cannot read the input width of {type(layer).__name__}")


def _pooled(features: torch.Tensor) -> torch.Tensor:
    """(N, C) from a classifier input of shape (N, C) or (N, C, H, W)."""
    return features.float().flatten(2).mean(2) if features.ndim > 2 else features.float()


class Distilled(nn.Module):
    """The student, as the training loop sees it; in training mode it also runs the frozen teacher
    on the same batch and keeps what `DistillLoss` needs.

    head: name of the classifier layer (the same in both networks) whose inputs are matched in
    "features" mode; when pruning left the student narrower there, a linear projection (trained,
    then thrown away) maps its features to the teacher's width. The student's dropout stays off
    in that mode, so that clean features are compared.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, mode: str = "logits", head: str | None = None) -> None:
        super().__init__()
        if mode not in DISTILL_MODES[1:]:
            raise ValueError(f"distillation mode must be one of {DISTILL_MODES[1:]}, got {mode!r}")
        self.student = student
        self.teacher = [teacher.eval()]  # a list hides it from parameters() and state_dict()
        self.mode = mode
        self.teacher_logits: torch.Tensor | None = None
        self.features: dict[str, torch.Tensor] = {}
        self.project: nn.Module | None = None
        self._hooks = []
        if mode == "features":
            if head is None:
                raise ValueError("feature distillation needs the classifier layer's name")
            student_head = dict(student.named_modules())[head]
            teacher_head = dict(teacher.named_modules())[head]
            self._hooks = [
                student_head.register_forward_pre_hook(self._keeper("student")),
                teacher_head.register_forward_pre_hook(self._keeper("teacher")),
            ]
            if _width(student_head) != _width(teacher_head):
                device = next(student.parameters()).device
                self.project = nn.Linear(_width(student_head), _width(teacher_head), bias=False).to(device)

    def _keeper(self, side: str):
        def keep(_module: nn.Module, args: tuple) -> None:
            if self.training:
                self.features[side] = args[0]

        return keep

    def train(self, mode: bool = True) -> Distilled:
        super().train(mode)
        if mode and self.mode == "features":
            for module in self.student.modules():
                if isinstance(module, nn.modules.dropout._DropoutNd):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.teacher_logits = self.teacher[0](x)
        return self.student(x)

    def close(self) -> None:
        """Remove the hooks from both networks (the student lives on after fine-tuning)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks, self.features = [], {}


class DistillLoss(nn.Module):
    """alpha * KL(teacher || student at temperature t) * t^2 + (1 - alpha) * cross-entropy, plus in
    "features" mode `feature_weight` * the mean squared feature error relative to the teacher's
    mean square (so that the weight does not depend on the features' scale)."""

    def __init__(self, wrapper: Distilled, temperature: float = 2.0, alpha: float = 0.7, feature_weight: float = 1.0):
        super().__init__()
        self.wrapper = [wrapper]
        self.temperature = temperature
        self.alpha = alpha
        self.feature_weight = feature_weight

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hard = nn.functional.cross_entropy(logits, labels)
        wrapper = self.wrapper[0]
        if wrapper.teacher_logits is None:
            return hard
        t = self.temperature
        soft = nn.functional.kl_div(
            nn.functional.log_softmax(logits / t, dim=1),
            nn.functional.softmax(wrapper.teacher_logits / t, dim=1),
            reduction="batchmean",
        )
        loss = self.alpha * soft * t * t + (1.0 - self.alpha) * hard
        if wrapper.mode == "features" and "student" in wrapper.features:
            student = _pooled(wrapper.features["student"])
            teacher = _pooled(wrapper.features["teacher"])
            if wrapper.project is not None:
                student = wrapper.project(student)
            error = nn.functional.mse_loss(student, teacher) / teacher.pow(2).mean().clamp_min(1e-6)
            loss = loss + self.feature_weight * error
        return loss
