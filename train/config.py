"""The resolved training configuration: the command line with every default filled by a recipe.

It is saved as `config.json` beside the outputs and inside `last.pt`, so a run can be read
back and resumed exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from deploy.errors import EdgevisionError
from deploy.limits import check_threads
from train.recipes import RECIPES, recipe_name

FREEZE = ("none", "backbone")
SCHEDULES = ("cosine", "two-phase")
AMP = ("off", "bf16", "fp16")


@dataclass
class TrainConfig:
    data: str
    model: str
    out: str = "runs/train"
    data_root: str | None = None
    weights: str | None = None
    init: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    warmup_epochs: float | None = None
    label_smoothing: float | None = None
    augment: str | None = None
    patience: int | None = None
    freeze: str = "none"
    backbone_lr_scale: float = 1.0
    schedule: str = "cosine"
    head_epochs: int = 2
    input_size: int | None = None
    model_options: dict = field(default_factory=dict)
    seed: int = 0
    workers: int | None = None
    threads: int | None = None
    device: str = "auto"
    amp: str = "bf16"
    quiet: bool = False
    recipe: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def check_options(config: TrainConfig) -> None:
    """Refuse options that cannot mean anything, before any data is read or file written."""
    check_threads(config.threads, "--threads", minimum=1)
    check_threads(config.workers, "--workers", minimum=0)
    if not 0 <= config.seed < 2**32:
        raise EdgevisionError(f"--seed must be between 0 and 2**32 - 1, got {config.seed}")
    finite = {"--lr": config.lr, "--weight-decay": config.weight_decay, "--warmup-epochs": config.warmup_epochs,
              "--label-smoothing": config.label_smoothing, "--backbone-lr-scale": config.backbone_lr_scale}
    for flag, value in finite.items():
        if value is not None and (not math.isfinite(value) or value < 0):
            raise EdgevisionError(f"{flag} must be a finite number >= 0, got {value}")
    if config.label_smoothing is not None and config.label_smoothing >= 1:
        raise EdgevisionError(f"--label-smoothing must be below 1, got {config.label_smoothing}")
    for flag, value in {"--epochs": config.epochs, "--batch-size": config.batch_size,
                        "--patience": config.patience, "--input-size": config.input_size}.items():
        if value is not None and value < 1:
            raise EdgevisionError(f"{flag} must be >= 1, got {value}")


def resolve(config: TrainConfig, data_augment: str) -> TrainConfig:
    """Fill the options left as None from the recipe for this model, weights and freezing."""
    if config.freeze not in FREEZE:
        raise EdgevisionError(f"--freeze must be one of {', '.join(FREEZE)}, got {config.freeze!r}")
    if config.schedule not in SCHEDULES:
        raise EdgevisionError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {config.schedule!r}")
    if config.amp not in AMP:
        raise EdgevisionError(f"--amp must be one of {', '.join(AMP)}, got {config.amp!r}")
    if config.freeze == "backbone" and config.schedule == "two-phase":
        raise EdgevisionError("--schedule two-phase unfreezes the backbone; it cannot go with --freeze backbone")
    name = recipe_name(config.model, bool(config.weights or config.init), config.freeze)
    recipe = RECIPES[name]
    values = {}
    for f in fields(recipe):
        value = getattr(config, f.name)
        values[f.name] = getattr(recipe, f.name) if value is None else value
    if values["augment"] == "data":
        values["augment"] = data_augment
    resolved = TrainConfig.from_dict({**config.to_dict(), **values, "recipe": name})
    if resolved.schedule == "two-phase" and not 0 < resolved.head_epochs < resolved.epochs:
        raise EdgevisionError(f"--head-epochs must be between 1 and --epochs - 1, got {resolved.head_epochs}")
    if resolved.epochs < 1 or resolved.batch_size < 1 or resolved.lr <= 0:
        raise EdgevisionError("--epochs, --batch-size and --lr must be positive")
    return resolved


def frozen_backbone_warning(config: TrainConfig) -> str | None:
    """One line when `--freeze backbone` would freeze a randomly initialised backbone (no --weights,
    no --init): only the head trains, on features that never learn, and the loss stays near its start."""
    if config.freeze != "backbone" or config.weights or config.init:
        return None
    return ("--freeze backbone without --weights or --init freezes a randomly initialised backbone: only the head "
            "trains, on random features, and the loss stays near its start; give pretrained weights "
            "(--weights DEFAULT or a file, --init MODEL.pt) or leave --freeze out")
