"""Structured channel pruning with Torch-Pruning.

Torch-Pruning (Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023,
github.com/VainF/Torch-Pruning) traces the network into a dependency graph, so removing a
channel from one convolution also removes it from every layer coupled to it (BatchNorm, the
depthwise convolution after it, residual additions, the classifier's inputs). The network stays
an ordinary `nn.Module` with thinner layers.

A pruned model saves as a normal state_dict plus `train.pruned.pruned_structure(model)`, the
JSON record of its thinner layers, from which `train.checkpoint` rebuilds it without this module.
"""

from __future__ import annotations

import copy
import fnmatch
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from deploy.errors import EdgevisionError
from train.pruned import SHAPE_ATTRS

# Leaf layers with parameters that structured pruning handles (others must be ignored, by name).
SUPPORTED_LAYERS = tuple(SHAPE_ATTRS)

# A --target-macs result further than this many points of MACs from the target is said, with how to get closer.
MISS_POINTS = 5.0


def misses(kept: float, target: float) -> bool:
    """Whether `kept` (a fraction of the MACs) is more than MISS_POINTS from `target`."""
    return abs(kept - target) * 100 > MISS_POINTS + 1e-9


@dataclass(frozen=True)
class PruneSpec:
    """What to prune and how: the options of `prune_model`, `quantize.prune_pipeline.prune_checkpoint`
    and `edgevision prune`, written once.

    ratio: fraction of channels removed per layer (uniform) or over the whole net (global).
    target_macs: alternatively the fraction of MACs to keep; the ratio is found by bisection.
    steps: iterative schedule; `prune_model`'s `finetune(model, step)` runs after each step.
    round_to: channel counts are kept multiples of this (8 suits SIMD kernels); None = any.
        When rounding leaves the MACs more than MISS_POINTS off `target_macs`, the report names a
        finer multiple that gets closer (`PruneReport.rounding_note`); with `adapt_round_to` (the
        default) that multiple is used instead: narrow layers, such as a small CNN's 32 and 64
        channels, cannot move in steps of 8 and land near the target (33 % of the MACs for 50 %).
    ignored: layer names or globs whose output channels are kept, besides the classifier's
        (e.g. MobileNetV2's `features.*.conv.2` keeps the residual stream and prunes only the
        expanded channels inside each block).
    importance: how channels are ranked, a key of IMPORTANCE.
    """

    ratio: float | None = None
    target_macs: float | None = None
    steps: int = 1
    global_pruning: bool = False
    round_to: int | None = 8
    adapt_round_to: bool = True
    ignored: tuple[str, ...] = ()
    importance: str = "magnitude"


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
    target_macs: float | None = None  # the fraction of MACs asked to keep, when asked that way
    round_to_asked: int | None = None  # set when a finer multiple than the one asked was used
    macs_kept_asked: float | None = None  # what the multiple asked for would have kept, then
    closer: dict | None = None  # {"round_to", "macs_kept"}: a finer multiple that gets closer to the target

    @property
    def macs_reduction(self) -> float:
        return 1.0 - self.macs_after / max(self.macs_before, 1)

    @property
    def macs_kept(self) -> float:
        return self.macs_after / max(self.macs_before, 1)

    def rounding_note(self) -> str | None:
        """One line when channel rounding moved the result off `target_macs` (or made a finer multiple
        necessary): what was kept, why, and how to get closer; None when there is nothing to say."""
        if self.target_macs is None:
            return None
        kept, target = f"{self.macs_kept:.0%}", f"{self.target_macs:.0%}"
        if self.round_to_asked is not None:
            return (f"kept {kept} of the MACs (target {target}) with channel counts in multiples of {self.round_to}: "
                    f"this network's layers are too narrow to land near the target in multiples of "
                    f"{self.round_to_asked}, which keep {self.macs_kept_asked:.0%} (--round-to {self.round_to_asked} "
                    "insists on them)")
        if not misses(self.macs_kept, self.target_macs):
            return None
        why = (f"channel counts rounded down to multiples of {self.round_to} move this network's MACs in coarse steps"
               if self.round_to and self.round_to > 1 else "this network's channels move its MACs in coarse steps")
        if self.closer:
            how = f"--round-to {self.closer['round_to']} keeps {self.closer['macs_kept']:.0%}"
        else:
            how = "--ratio sets the share of channels removed directly"
        return f"kept {kept} of the MACs, not the {target} asked: {why}; {how}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["macs_reduction"] = self.macs_reduction
        return data


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


def _pruner(model, example_inputs, spec: PruneSpec):
    """Torch-Pruning's pruner of `model` removing `spec.ratio` of the channels in `spec.steps`."""
    tp = _tp()
    if spec.importance not in IMPORTANCE:
        raise EdgevisionError(f"unknown importance {spec.importance!r}; choose from {', '.join(IMPORTANCE)}")
    return tp.pruner.MetaPruner(
        model,
        example_inputs,
        importance=IMPORTANCE[spec.importance](tp),
        pruning_ratio=spec.ratio,
        iterative_steps=spec.steps,
        global_pruning=spec.global_pruning,
        round_to=spec.round_to,
        ignored_layers=_modules(model, spec.ignored),
    )


def ratio_for_target_macs(
    model: nn.Module, example_inputs: torch.Tensor, spec: PruneSpec, tolerance: float = 0.01
) -> tuple[float, float]:
    """(channel ratio, fraction of the MACs it keeps) of the one-shot pruning (`spec` with its
    ratio and steps left aside) that leaves about `spec.target_macs` (a fraction, 0..1) of the MACs.

    Bisection on copies of the model (MACs fall roughly with the square of the kept channels).
    """
    target_macs = spec.target_macs
    if not 0.0 < target_macs < 1.0:
        raise EdgevisionError(f"--target-macs must be a fraction of the current MACs in (0, 1), got {target_macs}")
    base, _ = count_macs_params(model, example_inputs)
    low, high = 0.0, 0.95
    guess = 1.0 - math.sqrt(target_macs)
    tried: list[tuple[float, float]] = []  # (ratio, kept fraction of MACs)
    for _ in range(10):
        trial = copy.deepcopy(model)
        _pruner(trial, example_inputs, replace(spec, ratio=guess, steps=1)).step()
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
        return max(reaching, key=lambda t: t[1])
    return min(tried, key=lambda t: t[1])


def finer_multiples(round_to: int) -> list[int]:
    """The multiples tried when `round_to` misses a MACs target: halved down to 1 (16 -> 8, 4, 2, 1)."""
    multiples = []
    while round_to > 1:
        round_to = max(1, round_to // 2)
        multiples.append(round_to)
    return multiples


def _closer_round_to(
    target_macs: float, round_to: int, search: Callable[[int], tuple[float, float]]
) -> tuple[int, float, float] | None:
    """(multiple, ratio, kept) of the largest multiple finer than `round_to` that gets within
    MISS_POINTS of the target, else of the finer one closest to it; None when `round_to` is 1.
    `search(multiple)` gives (ratio, kept) for a multiple."""
    best = None
    for finer in finer_multiples(round_to):
        ratio, kept = search(finer)
        if best is None or abs(kept - target_macs) < abs(best[2] - target_macs):
            best = (finer, ratio, kept)
        if not misses(kept, target_macs):
            return finer, ratio, kept
    return best


def prune_model(
    model: nn.Module,
    example_inputs: torch.Tensor,
    spec: PruneSpec,
    *,
    finetune: Callable[[nn.Module, int], None] | None = None,
) -> PruneReport:
    """Prune `model` in place as `spec` says: remove `spec.ratio` of the channels (or down to
    `spec.target_macs`); `finetune(model, step)` runs after each step (and may train)."""
    ratio, target_macs, steps, round_to = spec.ratio, spec.target_macs, spec.steps, spec.round_to
    if (ratio is None) == (target_macs is None):
        raise EdgevisionError("give exactly one of --ratio or --target-macs")
    if steps < 1:
        raise EdgevisionError(f"--steps must be at least 1, got {steps}")
    if round_to is not None and round_to < 1:
        raise EdgevisionError(f"--round-to must be at least 1, got {round_to}")
    ignored = expand_layer_names(model, [*spec.ignored, *classifier_layers(model, example_inputs)])
    check_supported(model, ignored)
    rounding: dict = {"target_macs": target_macs}
    if ratio is None:
        def search(multiple: int | None) -> tuple[float, float]:
            return ratio_for_target_macs(model, example_inputs,
                                         replace(spec, round_to=multiple, ignored=tuple(ignored)))

        ratio, kept = search(round_to)
        found = _closer_round_to(target_macs, round_to, search) if round_to and misses(kept, target_macs) else None
        if found and abs(found[2] - target_macs) < abs(kept - target_macs):
            if spec.adapt_round_to:
                rounding.update(round_to_asked=round_to, macs_kept_asked=kept)
                round_to, ratio = found[0], found[1]
            else:
                rounding["closer"] = {"round_to": found[0], "macs_kept": found[2]}
    _check_ratio(ratio)
    macs_before, params_before = count_macs_params(model, example_inputs)
    was_training = model.training
    model.eval()
    pruner = _pruner(model, example_inputs, replace(spec, ratio=ratio, round_to=round_to, ignored=tuple(ignored)))
    history = []
    for step in range(steps):
        pruner.step()
        macs, params = count_macs_params(model, example_inputs)
        if step == 0 and params == params_before:
            raise EdgevisionError(
                f"--ratio {ratio:.3g} removed no channel (parameters unchanged at {params_before:,}): every layer "
                f"is ignored, too narrow to keep a multiple of --round-to {round_to}, or not ranked by --importance "
                f"{spec.importance}; nothing written"
            )
        history.append({"step": step + 1, "macs": macs, "params": params})
        if finetune is not None:
            finetune(model, step + 1)
    model.train(was_training)
    macs_after, params_after = count_macs_params(model, example_inputs)
    return PruneReport(
        macs_before, macs_after, params_before, params_after, ratio, steps, round_to, spec.global_pruning, history,
        **rounding,
    )


def channel_counts(model: nn.Module) -> dict[str, int]:
    """Output channels of every convolution and Linear layer (for reports and tests)."""
    counts = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            counts[name] = module.out_channels
        elif isinstance(module, nn.Linear):
            counts[name] = module.out_features
    return counts
