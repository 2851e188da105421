"""Named pruning recipes for `edgevision prune --preset NAME`, as data.

A preset belongs to one architecture (its layer names are that network's) and holds values for
`edgevision prune` options, keyed by the parser's destination names; options the user gives
explicitly win over the preset's. `default_preset` names the best-known recipe of an
architecture (benchmarks/RESULTS.md, "Pruning to half the MACs: what was tried").
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from deploy.errors import EdgevisionError

DEFAULT = "default"  # `--preset default`: the checkpoint's architecture's best-known preset, if any


@dataclass(frozen=True)
class PrunePreset:
    name: str
    architecture: str  # train.models registry name the preset applies to
    options: dict = field(default_factory=dict)  # `edgevision prune` option dest -> value
    summary: str = ""
    finetune_epochs: int = 0  # the fine-tuning the recipe was measured with (`edgevision sweep`'s default)


def _register(*presets: PrunePreset) -> dict[str, PrunePreset]:
    table: dict[str, PrunePreset] = {}
    for preset in presets:
        if preset.name in table or preset.name == DEFAULT:
            raise ValueError(f"duplicate or reserved preset name {preset.name!r}")
        table[preset.name] = preset
    return table


PRESETS: dict[str, PrunePreset] = _register(
    PrunePreset(
        name="mobilenet_v2-residual",
        architecture="mobilenet_v2",
        # Keep the residual stream (every block's projection output, the first block's depthwise
        # output and the stem): only the expanded channels are pruned, so each block's 1x1
        # projection can be re-fitted by least squares. 96.8 % vs 93.4 % for uniform pruning at
        # half the MACs on cats_vs_dogs.
        options={
            "ignore": ["features.*.conv.2", "features.1.conv.1", "features.0.0"],
            "round_to": 16,
            "lr": 5e-4,
        },
        summary="prune MobileNetV2's expanded channels only, keep the residual stream",
        # 10 epochs at half the MACs: 96.90 % against the unpruned 98.30 % on cats_vs_dogs (RESULTS.md,
        # "edgevision sweep: the acceptance run"); 20 epochs bought 0.3 points more at twice the time.
        finetune_epochs=10,
    ),
)

# architecture -> name of its best-known preset (architectures not listed have none)
DEFAULT_PRESETS: dict[str, str] = {"mobilenet_v2": "mobilenet_v2-residual"}

# Fine-tuning epochs after pruning an architecture without a preset (`edgevision sweep`'s default):
# the digits CNN pruned to half its MACs comes back within a point in 5 (benchmarks/RESULTS.md).
DEFAULT_FINETUNE_EPOCHS = 5


def list_presets() -> list[str]:
    return sorted(PRESETS)


def default_preset(architecture: str) -> PrunePreset | None:
    """The best-known preset for `architecture`, or None where plain options are the best known."""
    name = DEFAULT_PRESETS.get(architecture)
    return PRESETS[name] if name else None


def default_finetune_epochs(architecture: str) -> tuple[int, str]:
    """(epochs, where the number comes from) of fine-tuning after pruning `architecture` by default."""
    preset = default_preset(architecture)
    if preset is not None and preset.finetune_epochs:
        return preset.finetune_epochs, f"preset {preset.name}"
    return DEFAULT_FINETUNE_EPOCHS, f"default for architectures without a preset ({architecture})"


def resolve_preset(name: str, architecture: str) -> PrunePreset | None:
    """The preset `name` for a checkpoint of `architecture` (None for `default` without one).

    An unknown name, or a preset made for another architecture, is a one-line error.
    """
    if name == DEFAULT:
        return default_preset(architecture)
    if name not in PRESETS:
        raise EdgevisionError(f"unknown pruning preset {name!r}; choose from {', '.join([DEFAULT, *list_presets()])}")
    preset = PRESETS[name]
    if preset.architecture != architecture:
        raise EdgevisionError(
            f"pruning preset {name!r} is for {preset.architecture}, but the checkpoint is a {architecture}"
        )
    return preset


def parse_with_preset(parser: argparse.ArgumentParser, argv: list[str], preset: PrunePreset) -> argparse.Namespace:
    """`parser.parse_args(argv)` with the preset's values where the user gave no value.

    The preset's options are parsed with a default of None: no option parses to None, so None
    means "not on the command line" (an explicit `--ignore` list replaces the preset's, it does
    not extend it).
    """
    parser.set_defaults(**{dest: None for dest in preset.options})
    args = parser.parse_args(argv)
    for dest, value in preset.options.items():
        if getattr(args, dest) is None:
            setattr(args, dest, list(value) if isinstance(value, list) else value)
    return args
