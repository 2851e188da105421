"""`edgevision eval`: a checkpoint re-evaluated with the preprocessing written on its card."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset

from deploy.atomic import check_writable
from deploy.errors import EdgevisionError
from deploy.image_folder import tree_fingerprint
from train.checkpoint import load_model
from train.data import data_root_of, load_data
from train.engine import predict_logits, score
from train.fit import metrics_dict, write_outputs
from train.loaders import make_loader
from train.report import format_summary
from train.transforms import eval_transform

logger = logging.getLogger("edgevision.train")


def split_seed(model_path: str | os.PathLike, trained: int | None, asked: int | None, allow_other: bool) -> int:
    """The seed that redraws the training run's split: the card's; another only when allowed."""
    if asked is None or asked == trained:
        return trained if trained is not None else 0
    if trained is not None:
        message = (f"--seed {asked} differs from the split seed {trained} {model_path} was trained with: "
                   "the test split would hold images it trained on")
        if not allow_other:
            raise EdgevisionError(f"{message}; leave --seed out, or pass --allow-other-split to score it anyway")
        warnings.warn(message, stacklevel=3)
        logger.warning(message)
    return asked


def evaluate_checkpoint(
    model_path: str | os.PathLike,
    data_spec: str | None = None,
    split: str = "test",
    out: str | os.PathLike | None = None,
    data_root: str | None = None,
    batch_size: int = 128,
    seed: int | None = None,
    allow_other_split: bool = False,
    wrong: int = 16,
) -> dict:
    """Metrics of `model_path` on a split of `data_spec` (the card's data set by default).

    The split is drawn with the seed the model was trained with (the card's `dataset_info`): another
    `seed` would put training images in the test split, so it is refused unless `allow_other_split`
    (then warned about). Data whose content differs from what the card recorded is warned about too.
    Writes eval_metrics.json (with the confusion matrix, `confusion[true][predicted]`),
    eval_confusion.png and, when any image is wrong, eval_wrong.png (the `wrong` most confidently
    wrong images, listed in eval_metrics.json's `most_confident_wrong`) to `out` (default: the
    checkpoint's folder).
    """
    if wrong < 0:
        raise EdgevisionError(f"--wrong must be 0 (no grid) or more, not {wrong}")
    folder = Path(out) if out else Path(model_path).parent
    check_writable(folder / "eval_metrics.json", "--out")  # before the evaluation, not after it
    model, card = load_model(model_path)
    seed = split_seed(model_path, card.dataset_info.get("split_seed"), seed, allow_other_split)
    spec = data_spec or card.dataset
    if not spec:
        raise EdgevisionError(f"{model_path} does not name its data set; pass --data SPEC")
    root = data_root_of(spec)
    if data_spec is None and root is not None and not root.is_dir():
        raise EdgevisionError(
            f"{model_path} was trained on {spec} (its card keeps the data's name, not where it lay); "
            "pass --data with its path here"
        )
    data = load_data(spec, data_root, seed)
    if data.class_names != card.class_names:
        raise EdgevisionError(
            f"{spec} has classes {data.class_names[:5]}..., the model was trained on {card.class_names[:5]}..."
        )
    trained_on = card.dataset_info.get("sha256")
    if trained_on and root is not None and tree_fingerprint(root) != trained_on:
        message = (f"{spec} is not the data {model_path} was trained on (its files differ from the card's record): "
                   "its splits are not the training run's, and may hold images the model trained on")
        warnings.warn(message, stacklevel=2)
        logger.warning(message)
    if split == "all":
        parts = [s for s in (data.train, data.val, data.test) if s is not None]
        dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    else:
        dataset = data.test if split == "test" else data.val
        if dataset is None:
            raise EdgevisionError(f"{spec} has no {split} split; use --split val or --split all")
    loader = make_loader(dataset, eval_transform(card.preprocessing), batch_size, False, seed=seed,
                         precomputable=data.in_memory, workers=0 if data.in_memory else 1)
    logits, labels = predict_logits(model, loader, torch.device("cpu"), quiet=False)
    metrics = metrics_dict(score(logits, labels, card.num_classes), card.class_names, split, data.spec)
    metrics["checkpoint"] = str(model_path)
    mistakes = most_confident_wrong(logits, labels, wrong)
    metrics["most_confident_wrong"] = [
        {"index": i, "true": card.class_names[t], "predicted": card.class_names[p], "confidence": round(c, 6),
         **({"file": str(f)} if (f := file_of(dataset, i)) else {})}
        for i, t, p, c in mistakes
    ]
    write_outputs(folder, metrics, card.class_names, None, prefix="eval_")
    wrote = [folder / "eval_metrics.json", folder / "eval_confusion.png"]
    grid_path = folder / "eval_wrong.png"
    if mistakes:
        draw_wrong(grid_path, dataset, mistakes, card.class_names, f"{split}: most confidently wrong")
        wrote.append(grid_path)
    elif grid_path.exists():  # a grid of an earlier evaluation would be taken for this one's
        grid_path.unlink()
    logger.info(format_summary(metrics) + f"\nwrote {', '.join(map(str, wrote))}")
    return metrics


def most_confident_wrong(logits: torch.Tensor, labels: torch.Tensor, limit: int) -> list[tuple[int, int, int, float]]:
    """(index, true class, predicted class, softmax confidence of the prediction) of up to `limit`
    wrongly classified images, the most confident first (ties: the lower index first)."""
    if not len(labels) or limit == 0:
        return []
    confidence, predicted = logits.float().softmax(1).max(1)
    wrong = torch.nonzero(predicted != labels).flatten().tolist()
    wrong.sort(key=lambda i: (-float(confidence[i]), i))
    return [(i, int(labels[i]), int(predicted[i]), float(confidence[i])) for i in wrong[:limit]]


def file_of(dataset, index: int) -> str | None:
    """The image file behind `dataset[index]` when it has one (class-folder trees), else None."""
    while isinstance(dataset, ConcatDataset):
        for part in dataset.datasets:
            if index < len(part):
                dataset = part
                break
            index -= len(part)
    samples = getattr(dataset, "samples", None)
    return samples[index][0] if samples is not None else None


def draw_wrong(path: Path, dataset, mistakes: list[tuple[int, int, int, float]], class_names: list[str],
               title: str) -> None:
    """The mistakes as a grid: each image as the data holds it, its true class, the predicted one
    and the confidence under it."""
    from train.gallery import Tile, as_picture, draw_grid, thumbnail

    tiles = [Tile(thumbnail(as_picture(dataset[i][0])),
                  f"true {class_names[t]}\npred {class_names[p]} {c:.0%}", color="firebrick")
             for i, t, p, c in mistakes]
    draw_grid(path, tiles, columns=min(8, len(tiles)), title=title, caption_lines=2)
