"""Distillation while fine-tuning: the teacher's logits and penultimate features reach the loss."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from torch import nn

from quantize.distill import Distilled, DistillLoss
from quantize.prune import PruneSpec, prune_model


def cnn_with_dropout() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(32, 4),
    ).eval()


def test_feature_distillation_projects_a_pruned_student_and_trains_the_projection():
    teacher = cnn_with_dropout()
    student = copy.deepcopy(teacher)
    prune_model(student, torch.randn(1, 1, 8, 8), PruneSpec(ratio=0.5))
    wrapper = Distilled(student, teacher, "features", head="9")
    assert wrapper.project is not None and wrapper.project.weight.shape == (32, 16)
    loss_fn = DistillLoss(wrapper, feature_weight=1.0)
    logits_only = DistillLoss(wrapper, feature_weight=0.0)
    wrapper.train()
    assert not student[8].training, "dropout stays off so that clean features are compared"
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 4, (8,))
    out = wrapper(x)
    with_features, without = loss_fn(out, y), logits_only(out, y)
    assert with_features > without
    with_features.backward()
    assert wrapper.project.weight.grad is not None and wrapper.project.weight.grad.abs().sum() > 0
    assert "project.weight" in dict(wrapper.named_parameters())
    assert not any(n.startswith("teacher") for n, _ in wrapper.named_parameters())


def test_identical_networks_have_no_feature_error_and_hooks_go_away():
    teacher = cnn_with_dropout()
    student = copy.deepcopy(teacher)
    wrapper = Distilled(student, teacher, "features", head="9")
    assert wrapper.project is None
    wrapper.train()
    for module in student.modules():  # batch statistics in both: compare in eval mode
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 4, (4,))
    loss_fn = DistillLoss(wrapper, alpha=1.0, feature_weight=1.0)
    assert loss_fn(wrapper(x), y).item() == pytest.approx(0.0, abs=1e-6)
    wrapper.close()
    student(x)
    assert wrapper.features == {}
    assert not student[9]._forward_pre_hooks and not teacher[9]._forward_pre_hooks


def test_unknown_mode():
    with pytest.raises(ValueError, match="distillation mode"):
        Distilled(cnn_with_dropout(), cnn_with_dropout(), "attention")
