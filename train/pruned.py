"""The record that rebuilds a pruned network: plain JSON in the card, no pickled code.

A pruned model (see `quantize.prune`) saves as a normal state_dict plus `pruned_structure(model)`:
a JSON-able {module name: {attribute: value}} of every layer whose shape changed, kept in
`card.model_options[STRUCTURE_KEY]`. `apply_pruned_structure` thins a freshly built model to
those shapes, after which the state_dict loads as usual, so `torch.load(..., weights_only=True)`
reads the checkpoint and loading needs no pruning library. Only `torch.nn` is used here:
`train.checkpoint` loads any checkpoint, pruned or not, without importing `quantize`.
"""

from __future__ import annotations

import torch
from torch import nn

from deploy.errors import EdgevisionError

# Key under ModelCard.model_options that carries the pruned structure.
STRUCTURE_KEY = "pruned_shapes"

# Layer types whose shape attributes we record and rebuild: type -> shape attributes.
SHAPE_ATTRS: dict[type, tuple[str, ...]] = {
    nn.Conv1d: ("in_channels", "out_channels", "groups"),
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.Conv3d: ("in_channels", "out_channels", "groups"),
    nn.Linear: ("in_features", "out_features"),
    nn.BatchNorm1d: ("num_features",),
    nn.BatchNorm2d: ("num_features",),
    nn.BatchNorm3d: ("num_features",),
    nn.GroupNorm: ("num_groups", "num_channels"),
    nn.LayerNorm: ("normalized_shape",),
    nn.PReLU: ("num_parameters",),
}


def _shape_of(module: nn.Module) -> dict:
    for kind, attrs in SHAPE_ATTRS.items():
        if type(module) is kind:
            return {a: list(v) if isinstance(v, tuple) else v for a in attrs for v in [getattr(module, a)]}
    return {}


def pruned_structure(model: nn.Module, reference: nn.Module | None = None) -> dict[str, dict]:
    """{module name: {shape attribute: value}} for the layers of `model` (JSON-able).

    With `reference` (the unpruned architecture) only layers whose shape differs are kept.
    """
    ref = dict(reference.named_modules()) if reference is not None else {}
    structure = {}
    for name, module in model.named_modules():
        shape = _shape_of(module)
        if shape and (name not in ref or _shape_of(ref[name]) != shape):
            structure[name] = shape
    return structure


def _resize(module: nn.Module, name: str, shape: dict) -> None:
    for attr, value in shape.items():
        if not hasattr(module, attr):
            raise EdgevisionError(f"pruned structure does not fit the model: {name} has no {attr}")
        setattr(module, attr, tuple(value) if isinstance(value, list) else int(value))

    def fresh(param, *dims):
        if param is None:
            return None
        return nn.Parameter(torch.empty(*dims, dtype=param.dtype), requires_grad=param.requires_grad)

    if isinstance(module, nn.modules.conv._ConvNd):
        k = module.weight.shape[2:]
        if isinstance(module, nn.modules.conv._ConvTransposeMixin):
            raise EdgevisionError(f"cannot rebuild pruned transposed convolution {name}")
        module.weight = fresh(module.weight, module.out_channels, module.in_channels // module.groups, *k)
        module.bias = fresh(module.bias, module.out_channels)
    elif isinstance(module, nn.Linear):
        module.weight = fresh(module.weight, module.out_features, module.in_features)
        module.bias = fresh(module.bias, module.out_features)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        n = module.num_features
        module.weight = fresh(module.weight, n)
        module.bias = fresh(module.bias, n)
        if module.running_mean is not None:
            module.running_mean = torch.zeros(n)
            module.running_var = torch.ones(n)
    elif isinstance(module, nn.GroupNorm):
        module.weight = fresh(module.weight, module.num_channels)
        module.bias = fresh(module.bias, module.num_channels)
    elif isinstance(module, nn.LayerNorm):
        module.weight = fresh(module.weight, *module.normalized_shape)
        module.bias = fresh(module.bias, *module.normalized_shape)
    elif isinstance(module, nn.PReLU):
        module.weight = fresh(module.weight, module.num_parameters)


def apply_pruned_structure(model: nn.Module, structure: dict[str, dict]) -> nn.Module:
    """Thin a freshly built `model` in place to `structure`; then load the pruned state_dict.

    This is the hook for checkpoint loaders: when `card.model_options` has `STRUCTURE_KEY`,
    build the architecture as usual, call this, then `load_state_dict`.
    """
    table = dict(model.named_modules())
    for name, shape in structure.items():
        if name not in table:
            raise EdgevisionError(f"pruned structure names layer {name!r}, which the model does not have")
        _resize(table[name], name, shape)
    return model


def rebuild_pruned(model: nn.Module, model_options: dict) -> nn.Module:
    """`apply_pruned_structure` when `model_options` records a pruned structure, else unchanged."""
    structure = (model_options or {}).get(STRUCTURE_KEY)
    return apply_pruned_structure(model, structure) if structure else model
