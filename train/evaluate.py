"""`edgevision eval`: a checkpoint re-evaluated with the preprocessing written on its card."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset

from deploy.errors import EdgevisionError
from train.checkpoint import load_model
from train.data import load_data
from train.engine import evaluate_loader
from train.fit import metrics_dict, write_outputs
from train.loaders import make_loader
from train.report import format_summary
from train.transforms import eval_transform

logger = logging.getLogger("edgevision.train")


def evaluate_checkpoint(
    model_path: str | os.PathLike,
    data_spec: str | None = None,
    split: str = "test",
    out: str | os.PathLike | None = None,
    data_root: str | None = None,
    batch_size: int = 128,
    seed: int = 0,
) -> dict:
    """Metrics of `model_path` on a split of `data_spec` (the card's data set by default).

    Writes eval_metrics.json and eval_confusion.png to `out` (default: the checkpoint's folder).
    """
    model, card = load_model(model_path)
    spec = data_spec or card.dataset
    if not spec:
        raise EdgevisionError(f"{model_path} does not name its data set; pass --data SPEC")
    data = load_data(spec, data_root, seed)
    if data.class_names != card.class_names:
        raise EdgevisionError(
            f"{spec} has classes {data.class_names[:5]}..., the model was trained on {card.class_names[:5]}..."
        )
    if split == "all":
        parts = [s for s in (data.train, data.val, data.test) if s is not None]
        dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    else:
        dataset = data.test if split == "test" else data.val
        if dataset is None:
            raise EdgevisionError(f"{spec} has no {split} split; use --split val or --split all")
    loader = make_loader(dataset, eval_transform(card.preprocessing), batch_size, False, seed=seed,
                         precomputable=data.in_memory, workers=0 if data.in_memory else 1)
    result = evaluate_loader(model, loader, card.num_classes, torch.device("cpu"), quiet=False)
    metrics = metrics_dict(result, card.class_names, split, spec)
    metrics["checkpoint"] = str(model_path)
    folder = Path(out) if out else Path(model_path).parent
    write_outputs(folder, metrics, card.class_names, None, prefix="eval_")
    logger.info(format_summary(metrics) + f"\nwrote {folder / 'eval_metrics.json'}")
    return metrics
