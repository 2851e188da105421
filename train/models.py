"""Architectures by name: a registry that refuses duplicates, lesson models and torchvision nets.

`build_model(name, num_classes, channels, input_size, weights=None, **options)` is also what
`train.checkpoint.load_model` calls to rebuild a network from its card, so every builder takes
the same three shape arguments. Lesson models take 1 or 3 channels at any size; torchvision
models take RGB (gray data is replicated to 3 channels by its preprocessing).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deploy.errors import EdgevisionError
from train.catalog import ARCHITECTURES


@dataclass(frozen=True)
class ModelEntry:
    """builder(num_classes, channels, input_size, **options) -> nn.Module.

    head: the attribute path of the final classifier layer (replaced for a new class count).
    family: "lesson" or "torchvision" (picks default preprocessing and recipes).
    """

    builder: Callable[..., nn.Module]
    head: str
    family: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, head: str, family: str) -> Callable:
    """Decorator adding a builder under `name`; a second builder with the same name, or a name
    train.catalog does not list (the torch-free list `edgevision train --help` shows), is an error."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        if name not in ARCHITECTURES:
            raise ValueError(f"model {name!r} is not in train.catalog.ARCHITECTURES")
        _REGISTRY[name] = ModelEntry(builder, head, family)
        return builder

    return add


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise EdgevisionError(f"unknown model {name!r}; choose from {', '.join(list_models())}")
    return _REGISTRY[name]


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    return get_model_entry(name).builder


# --- lesson models: each fits on one screen ---------------------------------------------


class LessonNet(nn.Module):
    """`features` (image -> vector) followed by one Linear `head`."""

    def __init__(self, features: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _pixels(channels: int, input_size: tuple[int, int]) -> int:
    return channels * input_size[0] * input_size[1]


@register_model("dense", head="head", family="lesson")
def dense(num_classes: int, channels: int, input_size: tuple[int, int]) -> nn.Module:
    """Logistic regression on raw pixels: one Linear layer."""
    return LessonNet(nn.Flatten(), nn.Linear(_pixels(channels, input_size), num_classes))


@register_model("mlp", head="head", family="lesson")
def mlp(
    num_classes: int, channels: int, input_size: tuple[int, int], hidden: int = 512, hidden_layers: int = 2
) -> nn.Module:
    """Hidden layers with ReLU and dropout: `hidden` units, then half as many for a second layer.

    `hidden_layers=1, hidden=100` is the 784-100-10 network of the multilayer lesson.
    """
    if hidden_layers not in (1, 2) or hidden < 2:
        raise EdgevisionError(f"mlp takes hidden_layers 1 or 2 and hidden >= 2, got {hidden_layers} and {hidden}")
    widths = [hidden, hidden // 2][:hidden_layers]
    layers: list[nn.Module] = [nn.Flatten()]
    cin = _pixels(channels, input_size)
    for width in widths:
        layers += [nn.Linear(cin, width), nn.ReLU(inplace=True), nn.Dropout(0.2)]
        cin = width
    return LessonNet(nn.Sequential(*layers), nn.Linear(cin, num_classes))


def _conv_block(cin: int, cout: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers


@register_model("cnn", head="head", family="lesson")
def cnn(num_classes: int, channels: int, input_size: tuple[int, int], width: int = 32) -> nn.Module:
    """Two conv blocks (conv, ReLU, 2x2 max-pool) then dropout and a Linear layer."""
    features = nn.Sequential(
        *_conv_block(channels, width, batch_norm=False),
        nn.MaxPool2d(2),
        *_conv_block(width, 2 * width, batch_norm=False),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
    )
    flat = 2 * width * (input_size[0] // 4) * (input_size[1] // 4)
    if flat == 0:
        raise EdgevisionError(f"cnn needs inputs of at least 4x4 pixels, got {input_size}")
    return LessonNet(features, nn.Linear(flat, num_classes))


@register_model("multilayer-cnn", head="head", family="lesson")
def multilayer_cnn(num_classes: int, channels: int, input_size: tuple[int, int], width: int = 32) -> nn.Module:
    """Three stages of two conv+BatchNorm+ReLU layers, global average pooling, Linear."""
    layers: list[nn.Module] = []
    cin = channels
    for stage in range(3):
        cout = width * 2**stage
        layers += _conv_block(cin, cout, batch_norm=True) + _conv_block(cout, cout, batch_norm=True)
        if stage < 2 and min(input_size) >= 4 * 2**stage:
            layers.append(nn.MaxPool2d(2))
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2)]
    return LessonNet(nn.Sequential(*layers), nn.Linear(cin, num_classes))


@register_model("lenet", head="head", family="lesson")
def lenet(num_classes: int, channels: int, input_size: tuple[int, int]) -> nn.Module:
    """LeNet-style: conv 6@5x5, 2x2 max-pool, conv 16@5x5, max-pool, fc 120, fc 84, fc classes.

    On 32x32 CIFAR-10 images this is the network of the CIFAR-10 lesson (16x5x5 = 400 features).
    """
    height, width = (((side - 4) // 2 - 4) // 2 for side in input_size)
    if min(height, width) < 1:
        raise EdgevisionError(f"lenet needs inputs of at least 16x16 pixels, got {input_size}")
    features = nn.Sequential(
        nn.Conv2d(channels, 6, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * height * width, 120),
        nn.ReLU(inplace=True),
        nn.Linear(120, 84),
        nn.ReLU(inplace=True),
    )
    return LessonNet(features, nn.Linear(84, num_classes))


# --- torchvision networks with a new head -----------------------------------------------

TORCHVISION_WEIGHTS = {
    "mobilenet_v2": "MobileNet_V2_Weights",
    "mobilenet_v3_small": "MobileNet_V3_Small_Weights",
    "mobilenet_v3_large": "MobileNet_V3_Large_Weights",
    "resnet18": "ResNet18_Weights",
    "efficientnet_b0": "EfficientNet_B0_Weights",
    "vgg16": "VGG16_Weights",
}
TORCHVISION_HEADS = {
    "mobilenet_v2": "classifier.1",
    "mobilenet_v3_small": "classifier.3",
    "mobilenet_v3_large": "classifier.3",
    "resnet18": "fc",
    "efficientnet_b0": "classifier.1",
    "vgg16": "classifier.6",  # the last of VGG's three fully connected layers
}


def _get_submodule_parent(model: nn.Module, path: str) -> tuple[nn.Module, str]:
    parent_path, _, name = path.rpartition(".")
    return (model.get_submodule(parent_path) if parent_path else model), name


def replace_head(model: nn.Module, head: str, num_classes: int) -> None:
    """Swap the Linear at `head` for a fresh one with `num_classes` outputs."""
    parent, name = _get_submodule_parent(model, head)
    old = getattr(parent, name)
    if old.out_features != num_classes:
        setattr(parent, name, nn.Linear(old.in_features, num_classes))


def _torchvision_builder(name: str) -> Callable[..., nn.Module]:
    def build(num_classes: int, channels: int, input_size: tuple[int, int], **options) -> nn.Module:
        import torchvision

        if channels != 3:
            raise EdgevisionError(f"{name} takes RGB input (3 channels), got {channels}; use color RGB")
        model = getattr(torchvision.models, name)(weights=None, **options)
        replace_head(model, TORCHVISION_HEADS[name], num_classes)
        return model

    build.__name__ = name
    build.__doc__ = f"torchvision {name} with a {TORCHVISION_HEADS[name]} head for num_classes."
    return build


for _name in TORCHVISION_WEIGHTS:
    register_model(_name, head=TORCHVISION_HEADS[_name], family="torchvision")(_torchvision_builder(_name))


# --- building, with or without pretrained weights ---------------------------------------


def torchvision_state_dict(name: str) -> dict[str, torch.Tensor]:
    """torchvision's DEFAULT ImageNet weights for `name` (downloaded on first use)."""
    import torchvision

    if name not in TORCHVISION_WEIGHTS:
        raise EdgevisionError(f"--weights DEFAULT exists only for {', '.join(TORCHVISION_WEIGHTS)}, not {name}")
    weights = getattr(torchvision.models, TORCHVISION_WEIGHTS[name]).DEFAULT
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # URLError and friends: offline
        raise EdgevisionError(
            f"cannot download {weights} ({type(exc).__name__}); pass a local state_dict with --weights FILE"
        ) from None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A local `.pth` state_dict (or an edgevision checkpoint), loaded with weights_only=True."""
    if not path.is_file():
        raise EdgevisionError(f"weights file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EdgevisionError(f"cannot load weights {path}: {type(exc).__name__}: {str(exc)[:120]}") from None
    if isinstance(data, dict) and "state_dict" in data:
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise EdgevisionError(f"{path} is not a state_dict (a dict of tensors)")
    return data


def load_pretrained(model: nn.Module, state: dict[str, torch.Tensor], head: str, source: str) -> list[str]:
    """Load `state` into `model`, leaving out head weights whose shape differs (a new head).

    Any other missing, unexpected or differently shaped layer is a one-line error naming them.
    Returns the keys that were dropped.
    """
    own = model.state_dict()
    head_prefix = head + "."
    dropped = [k for k, v in state.items() if k.startswith(head_prefix) and k in own and v.shape != own[k].shape]
    state = {k: v for k, v in state.items() if k not in dropped}
    mismatched = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    missing = [k for k in own if k not in state and k not in dropped]
    unexpected = [k for k in state if k not in own]
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} differ in shape: " + ", ".join(mismatched[:6]))
    if missing:
        problems.append(f"{len(missing)} missing: " + ", ".join(missing[:6]))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: " + ", ".join(unexpected[:6]))
    if problems:
        raise EdgevisionError(f"weights {source} do not fit this model ({'; '.join(problems)})")
    model.load_state_dict(state, strict=False)
    return dropped


def build_model(
    name: str,
    num_classes: int,
    channels: int,
    input_size: tuple[int, int],
    weights: str | None = None,
    **options,
) -> nn.Module:
    """A network by registry name; `weights` is None, "DEFAULT" (torchvision's) or a file path."""
    entry = get_model_entry(name)
    # The weights first: without them (offline, a wrong path) the run stops before a big network is built.
    state = None
    if weights:
        state = torchvision_state_dict(name) if weights == "DEFAULT" else read_state_dict(Path(weights))
    try:
        model = entry.builder(num_classes, channels, tuple(input_size), **options)
    except TypeError as exc:
        raise EdgevisionError(f"bad model options for {name} {options}: {exc}") from None
    if state is not None:
        load_pretrained(model, state, entry.head, weights)
    return model


def backbone_and_head(model: nn.Module, name: str) -> tuple[nn.Module, nn.Linear]:
    """(a copy of `model` that outputs the head's input features, the model's own head).

    The copy lets frozen training compute backbone features once; training the returned head
    trains the head inside `model`.
    """
    head_path = get_model_entry(name).head
    parent, attr = _get_submodule_parent(model, head_path)
    head = getattr(parent, attr)
    setattr(parent, attr, nn.Identity())
    try:
        backbone = copy.deepcopy(model)
    finally:
        setattr(parent, attr, head)
    return backbone, head


def parameter_groups(model: nn.Module, name: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(backbone parameters, head parameters) of `model`."""
    head_path = get_model_entry(name).head
    head = model.get_submodule(head_path)
    head_ids = {id(p) for p in head.parameters()}
    return [p for p in model.parameters() if id(p) not in head_ids], list(head.parameters())
