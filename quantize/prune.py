"""Structured channel pruning with Torch-Pruning, and a pure-data record of the pruned shapes.

Torch-Pruning (Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023,
github.com/VainF/Torch-Pruning) traces the network into a dependency graph, so removing a
channel from one convolution also removes it from every layer coupled to it (BatchNorm, the
depthwise convolution after it, residual additions, the classifier's inputs). The network stays
an ordinary `nn.Module` with thinner layers.

A pruned model saves as a normal state_dict plus `pruned_structure(model)`: a JSON-able
{module name: {attribute: value}} of every layer whose shape changed. `apply_pruned_structure`
thins a freshly built model to those shapes, after which the state_dict loads as usual. Nothing
is pickled, so loading needs no code from the file (`torch.load(..., weights_only=True)`).
"""

from __future__ import annotations

import copy
import fnmatch
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from deploy.errors import EdgevisionError

# Key under ModelCard.model_options that carries the pruned structure.
STRUCTURE_KEY = "pruned_shapes"

# Layer types whose shape attributes we record and rebuild: type -> shape attributes.
_SHAPE_ATTRS: dict[type, tuple[str, ...]] = {
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
# Leaf layers with parameters that structured pruning handles (others must be ignored, by name).
SUPPORTED_LAYERS = tuple(_SHAPE_ATTRS)


@dataclass
class PruneReport:
    """MACs and parameters before and after, and the ratio that got there."""

    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    ratio: float
    steps: int
    round_to: int | None
    global_pruning: bool
    history: list[dict] = field(default_factory=list)

    @property
    def macs_reduction(self) -> float:
        return 1.0 - self.macs_after / max(self.macs_before, 1)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["macs_reduction"] = self.macs_reduction
        return data

    def summary(self) -> str:
        return (
            f"MACs {self.macs_before / 1e6:.2f}M -> {self.macs_after / 1e6:.2f}M "
            f"(-{self.macs_reduction * 100:.1f}%), params {self.params_before / 1e6:.3f}M -> "
            f"{self.params_after / 1e6:.3f}M, channel ratio {self.ratio:.3f}"
        )


def _tp():
    try:
        import torch_pruning
    except ImportError:
        raise EdgevisionError("pruning needs torch-pruning: pip install 'edgevision[prune]'") from None
    return torch_pruning


def count_macs_params(model: nn.Module, example_inputs: torch.Tensor) -> tuple[int, int]:
    """(MACs, parameters) of one forward pass on `example_inputs`, counted by Torch-Pruning."""
    tp = _tp()
    was_training = model.training
    model.eval()
    with torch.no_grad():
        macs, params = tp.utils.count_ops_and_params(model, example_inputs)
    model.train(was_training)
    return int(macs), int(params)


def classifier_layers(model: nn.Module, example_inputs: torch.Tensor) -> list[str]:
    """Names of the layers whose outputs are the network's outputs (kept whole when pruning).

    The last Linear or Conv layer (in registration order) whose output width equals the number
    of logits: torchvision's `classifier.1`, `fc`, or a lesson CNN's final layer.
    """
    model.eval()
    with torch.no_grad():
        out = model(example_inputs)
    width = out.shape[1]
    names = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == width:
            names.append(name)
        elif isinstance(module, nn.modules.conv._ConvNd) and module.out_channels == width:
            names.append(name)
    if not names:
        raise EdgevisionError(f"cannot find the classifier layer: no Linear/Conv with {width} outputs")
    return names[-1:]


def check_supported(model: nn.Module, ignored: Sequence[str] = ()) -> None:
    """Fail, naming the layer, when a leaf layer with weights is of a type we cannot prune."""
    for name, module in model.named_modules():
        if any(name == skip or name.startswith(skip + ".") for skip in ignored):
            continue
        has_own_params = any(True for _ in module.parameters(recurse=False))
        if has_own_params and not isinstance(module, SUPPORTED_LAYERS):
            raise EdgevisionError(
                f"unsupported layer for structured pruning: {name} ({type(module).__name__}); "
                f"keep it whole with --ignore {name}"
            )


def _check_ratio(ratio: float) -> None:
    if not 0.0 < ratio < 1.0:
        raise EdgevisionError(f"pruning ratio must be between 0 and 1 (exclusive), got {ratio}")


def expand_layer_names(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Layer names matching `patterns` (exact names or shell-style globs such as
    `features.*.conv.2`); a pattern that matches nothing is an error, not a silent no-op."""
    names = [name for name, _ in model.named_modules() if name]
    chosen: list[str] = []
    for pattern in patterns:
        matches = [n for n in names if n == pattern or fnmatch.fnmatchcase(n, pattern)]
        if not matches:
            raise EdgevisionError(f"no layer named {pattern!r} in the model")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _modules(model: nn.Module, names: Sequence[str]) -> list[nn.Module]:
    table = dict(model.named_modules())
    return [table[n] for n in expand_layer_names(model, names)]


# How channels are ranked: name -> Torch-Pruning importance (all data-free).
IMPORTANCE = {
    "magnitude": lambda tp: tp.importance.MagnitudeImportance(p=2),
    "bn-scale": lambda tp: tp.importance.BNScaleImportance(),
    "lamp": lambda tp: tp.importance.LAMPImportance(p=2),
}


def _pruner(model, example_inputs, ratio, steps, global_pruning, round_to, ignored, importance="magnitude"):
    tp = _tp()
    if importance not in IMPORTANCE:
        raise EdgevisionError(f"unknown importance {importance!r}; choose from {', '.join(IMPORTANCE)}")
    return tp.pruner.MetaPruner(
        model,
        example_inputs,
        importance=IMPORTANCE[importance](tp),
        pruning_ratio=ratio,
        iterative_steps=steps,
        global_pruning=global_pruning,
        round_to=round_to,
        ignored_layers=_modules(model, ignored),
    )


def ratio_for_target_macs(
    model: nn.Module,
    example_inputs: torch.Tensor,
    target_macs: float,
    *,
    global_pruning: bool = False,
    round_to: int | None = 8,
    ignored: Sequence[str] = (),
    importance: str = "magnitude",
    tolerance: float = 0.01,
) -> float:
    """The channel ratio whose one-shot pruning leaves about `target_macs` (a fraction, 0..1) of MACs.

    Bisection on copies of the model (MACs fall roughly with the square of the kept channels).
    """
    if not 0.0 < target_macs < 1.0:
        raise EdgevisionError(f"--target-macs must be a fraction of the current MACs in (0, 1), got {target_macs}")
    base, _ = count_macs_params(model, example_inputs)
    low, high = 0.0, 0.95
    guess = 1.0 - math.sqrt(target_macs)
    tried: list[tuple[float, float]] = []  # (ratio, kept fraction of MACs)
    for _ in range(10):
        trial = copy.deepcopy(model)
        _pruner(trial, example_inputs, guess, 1, global_pruning, round_to, ignored, importance).step()
        kept = count_macs_params(trial, example_inputs)[0] / base
        tried.append((guess, kept))
        if abs(kept - target_macs) <= tolerance:
            break
        if kept > target_macs:
            low = guess
        else:
            high = guess
        guess = (low + high) / 2
    # Channel rounding makes MACs move in steps: take the closest that reaches the target.
    reaching = [t for t in tried if t[1] <= target_macs + tolerance]
    if reaching:
        return max(reaching, key=lambda t: t[1])[0]
    return min(tried, key=lambda t: t[1])[0]


def prune_model(
    model: nn.Module,
    example_inputs: torch.Tensor,
    *,
    ratio: float | None = None,
    target_macs: float | None = None,
    steps: int = 1,
    global_pruning: bool = False,
    round_to: int | None = 8,
    ignored: Sequence[str] = (),
    importance: str = "magnitude",
    finetune: Callable[[nn.Module, int], None] | None = None,
) -> PruneReport:
    """Prune `model` in place: remove `ratio` of the channels (or down to `target_macs`).

    ratio: fraction of channels removed per layer (uniform) or over the whole net (global).
    target_macs: alternatively the fraction of MACs to keep; the ratio is found by bisection.
    steps: iterative schedule; `finetune(model, step)` runs after each step (and may train).
    round_to: channel counts are kept multiples of this (8 suits SIMD kernels); None = any.
    ignored: layer names or globs whose output channels are kept, besides the classifier's
        (e.g. MobileNetV2's `features.*.conv.2` keeps the residual stream and prunes only the
        expanded channels inside each block).
    importance: how channels are ranked, a key of IMPORTANCE.
    """
    if (ratio is None) == (target_macs is None):
        raise EdgevisionError("give exactly one of --ratio or --target-macs")
    if steps < 1:
        raise EdgevisionError(f"--steps must be at least 1, got {steps}")
    if round_to is not None and round_to < 1:
        raise EdgevisionError(f"--round-to must be at least 1, got {round_to}")
    ignored = expand_layer_names(model, [*ignored, *classifier_layers(model, example_inputs)])
    check_supported(model, ignored)
    if ratio is None:
        ratio = ratio_for_target_macs(
            model, example_inputs, target_macs, global_pruning=global_pruning, round_to=round_to, ignored=ignored,
            importance=importance,
        )
    _check_ratio(ratio)
    macs_before, params_before = count_macs_params(model, example_inputs)
    was_training = model.training
    model.eval()
    pruner = _pruner(model, example_inputs, ratio, steps, global_pruning, round_to, ignored, importance)
    history = []
    for step in range(steps):
        pruner.step()
        macs, params = count_macs_params(model, example_inputs)
        history.append({"step": step + 1, "macs": macs, "params": params})
        if finetune is not None:
            finetune(model, step + 1)
    model.train(was_training)
    macs_after, params_after = count_macs_params(model, example_inputs)
    return PruneReport(
        macs_before, macs_after, params_before, params_after, ratio, steps, round_to, global_pruning, history
    )


def magnitude_sparsify(model: nn.Module, amount: float) -> float:
    """Unstructured pruning: zero the smallest `amount` of each conv/linear weight (in place).

    Zeros make files compress better but do not speed up dense kernels; returns the sparsity.
    """
    _check_ratio(amount)
    total = zeros = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
                weight = module.weight
                k = int(weight.numel() * amount)
                if k:
                    threshold = weight.abs().flatten().kthvalue(k).values
                    weight.masked_fill_(weight.abs() <= threshold, 0.0)
                total += weight.numel()
                zeros += int((weight == 0).sum())
    return zeros / max(total, 1)


# --- the structure record -------------------------------------------------------------------


def _shape_of(module: nn.Module) -> dict:
    for kind, attrs in _SHAPE_ATTRS.items():
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


def channel_counts(model: nn.Module) -> dict[str, int]:
    """Output channels of every convolution and Linear layer (for reports and tests)."""
    counts = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            counts[name] = module.out_channels
        elif isinstance(module, nn.Linear):
            counts[name] = module.out_features
    return counts
