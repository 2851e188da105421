"""Model registry: duplicates refused, unknown names listed, pretrained weights checked by layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from deploy.errors import EdgevisionError
from train.models import backbone_and_head, build_model, list_models, parameter_groups, register_model


def test_registry_lists_lesson_and_torchvision_models() -> None:
    names = list_models()
    for name in ("dense", "mlp", "cnn", "multilayer-cnn", "mobilenet_v2", "mobilenet_v3_small", "resnet18"):
        assert name in names


def test_duplicate_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("cnn", head="head", family="lesson")(lambda num_classes, channels, input_size: nn.Identity())


def test_the_registry_is_the_torch_free_catalog() -> None:
    from train.catalog import ARCHITECTURES

    assert list_models() == sorted(ARCHITECTURES)  # what `edgevision train --help` offers is what builds
    with pytest.raises(ValueError, match="not in train.catalog.ARCHITECTURES"):
        register_model("vgg", head="head", family="lesson")(lambda num_classes, channels, input_size: nn.Identity())


def test_unknown_model_lists_the_valid_ones() -> None:
    with pytest.raises(EdgevisionError, match=r"unknown model 'vgg'.*cnn.*mobilenet_v2"):
        build_model("vgg", 10, 3, (32, 32))


@pytest.mark.parametrize("name", ["dense", "mlp", "cnn", "multilayer-cnn"])
@pytest.mark.parametrize("channels,size", [(1, (8, 8)), (3, (28, 28)), (1, (31, 17))])
def test_lesson_models_take_any_channels_and_size(name: str, channels: int, size: tuple[int, int]) -> None:
    model = build_model(name, 7, channels, size)
    assert model(torch.zeros(2, channels, *size)).shape == (2, 7)


def test_torchvision_model_refuses_gray_input() -> None:
    with pytest.raises(EdgevisionError, match="RGB"):
        build_model("mobilenet_v3_small", 10, 1, (32, 32))


def test_weights_file_keeps_backbone_and_replaces_a_different_head(tmp_path: Path) -> None:
    source = build_model("mobilenet_v3_small", 1000, 3, (32, 32))
    path = tmp_path / "imagenet.pth"
    torch.save(source.state_dict(), path)
    model = build_model("mobilenet_v3_small", 3, 3, (32, 32), weights=str(path))
    assert torch.equal(model.features[0][0].weight, source.features[0][0].weight)
    assert model.classifier[3].out_features == 3


def test_weights_file_with_other_mismatched_layers_names_them(tmp_path: Path) -> None:
    state = build_model("mobilenet_v3_small", 10, 3, (32, 32)).state_dict()
    state["features.0.0.weight"] = torch.zeros(8, 3, 3, 3)
    del state["features.1.block.0.0.weight"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(EdgevisionError, match=r"features\.0\.0\.weight.*missing: features\.1\.block\.0\.0\.weight"):
        build_model("mobilenet_v3_small", 10, 3, (32, 32), weights=str(path))


def test_weights_file_that_needs_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"layer": nn.Linear(2, 2)}, path)  # a module object: not loadable with weights_only
    with pytest.raises(EdgevisionError, match="cannot load weights"):
        build_model("dense", 2, 1, (2, 1), weights=str(path))


def test_backbone_and_head_split() -> None:
    model = build_model("cnn", 10, 1, (8, 8))
    backbone, head = backbone_and_head(model, "cnn")
    assert head is model.head
    assert backbone(torch.zeros(1, 1, 8, 8)).shape == (1, head.in_features)
    body, head_params = parameter_groups(model, "cnn")
    assert len(body) + len(head_params) == len(list(model.parameters())) and len(head_params) == 2
