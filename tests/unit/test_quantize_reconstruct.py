"""Least-squares reconstruction of the layers that read pruned channels."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")
torchvision = pytest.importorskip("torchvision")

from torch import nn

from quantize.prune import PruneSpec, prune_model
from quantize.reconstruct import reconstruct, refit_layer, refittable_layers


def test_refit_is_exact_when_the_kept_channels_span_the_removed_ones():
    """Two 1x1 convolutions, 3 -> 6 -> 5 channels, nothing between: the 6 hidden channels span
    only 3 dimensions, so 3 of them (the student's) reproduce the teacher exactly once the second
    layer (weights and bias) is re-fitted."""
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Conv2d(3, 6, 1, bias=False), nn.Conv2d(6, 5, 1)).eval()
    student = copy.deepcopy(teacher)
    student[0].out_channels, student[1].in_channels = 3, 3
    student[0].weight = nn.Parameter(student[0].weight[:3].clone())
    student[1].weight = nn.Parameter(student[1].weight[:, :3].clone())
    images = torch.randn(8, 3, 6, 6)
    error = refit_layer(student, teacher, "1", [images], ridge=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(student(images), teacher(images), atol=1e-4, rtol=1e-4)
    assert error < 1e-6


def test_classifier_with_too_few_images_is_left_alone():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(40, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    student = copy.deepcopy(teacher)
    prune_model(student, torch.randn(1, 40), PruneSpec(ratio=0.5, round_to=None))
    assert refittable_layers(student, teacher) == ["3"]
    weight = student[3].weight.detach().clone()
    assert refit_layer(student, teacher, "3", [torch.randn(20, 40)]) is None  # 20 rows for 9 inputs
    assert torch.equal(student[3].weight, weight)
    assert refit_layer(student, teacher, "3", [torch.randn(200, 40)]) is not None


def test_mobilenet_v2_expanded_channels_reconstruct_closer_to_the_unpruned_net():
    """Prune MobileNetV2's expanded channels (residual stream kept): the projections are the
    refittable layers, and re-fitting them brings the pruned net's outputs nearer the original's
    on images it was not fitted on."""
    torch.manual_seed(0)
    teacher = torchvision.models.mobilenet_v2(num_classes=4).eval()
    student = copy.deepcopy(teacher)
    keep = ["features.*.conv.2", "features.1.conv.1", "features.0.0"]
    prune_model(student, torch.randn(1, 3, 64, 64), PruneSpec(ratio=0.5, ignored=keep, round_to=8))
    names = refittable_layers(student, teacher)
    assert names[0] == "features.2.conv.2" and "features.17.conv.2" in names and len(names) == 17
    fit, held_out = torch.rand(32, 3, 64, 64), torch.rand(16, 3, 64, 64)

    def distance() -> float:
        with torch.no_grad():
            return float((student(held_out) - teacher(held_out)).pow(2).mean() / teacher(held_out).pow(2).mean())

    before = distance()
    errors = reconstruct(student, teacher, fit)
    assert set(errors) <= set(names) and "features.2.conv.2" in errors
    assert distance() < 0.9 * before  # random weights: 0.85 -> 0.64 here; unfitted: no change
