"""`edgevision demo`: the whole road, offline, on data every install has (sklearn's digits).

The demo is a list of stages. Each takes the shared `DemoState`, does one step, records what it
made and returns a line for the summary. Stages of other packages live in those packages
(`deploy.export.demo`, `quantize.demo`, `deploy.demo`, `benchmarks.demo`) and are imported only
when they run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DemoState:
    out: Path
    artifacts: dict[str, Path] = field(default_factory=dict)  # e.g. "checkpoint" -> model.pt
    metrics: dict[str, dict] = field(default_factory=dict)  # stage name -> its numbers


Stage = Callable[[DemoState], str]


def train_stage(state: DemoState) -> str:
    """A small CNN on digits with its recipe (15 epochs, under a minute on two CPU cores)."""
    from train.config import TrainConfig
    from train.fit import fit

    out = state.out / "train"
    metrics = fit(TrainConfig(data="digits", model="cnn", out=str(out), quiet=True))
    state.artifacts["checkpoint"] = out / "model.pt"
    state.metrics["train"] = {k: metrics[k] for k in ("top1", "top5", "epochs", "wall_time_s")}
    return f"trained cnn on digits: {metrics['epochs']} epochs in {metrics['wall_time_s']:.0f}s -> {out}/model.pt"


def eval_stage(state: DemoState) -> str:
    """Re-evaluate the saved checkpoint with the preprocessing on its card (as deployment will)."""
    import contextlib
    import io

    from train.evaluate import evaluate_checkpoint

    with contextlib.redirect_stdout(io.StringIO()):
        metrics = evaluate_checkpoint(state.artifacts["checkpoint"], split="test")
    state.metrics["eval"] = {"top1": metrics["top1"], "count": metrics["count"]}
    return f"test top-1 {metrics['top1']:.2%} on {metrics['count']} held-out digits (eval_metrics.json)"


def images_stage(state: DemoState) -> str:
    """Write the held-out digits as PNG files in class folders: what a user's own images look like."""
    import cv2

    from train.data import load_data

    splits = load_data("digits")
    folder = state.out / "digits_test"
    for index, (image, label) in enumerate(zip(splits.test.images, splits.test.labels)):
        path = folder / splits.class_names[int(label)] / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image[0].numpy())
    state.artifacts["images"] = folder
    return f"wrote {len(splits.test)} held-out digits as PNG files -> {folder}/"


def export_stage(state: DemoState) -> str:
    from deploy.export.demo import export_stage as stage

    return stage(state)


def prune_stage(state: DemoState) -> str:
    from quantize.demo import prune_stage as stage

    return stage(state)


def quantize_stage(state: DemoState) -> str:
    from quantize.demo import quantize_stage as stage

    return stage(state)


def predict_stage(state: DemoState) -> str:
    from deploy.demo import predict_stage as stage

    return stage(state)


def bench_stage(state: DemoState) -> str:
    from benchmarks.demo import bench_stage as stage

    return stage(state)


STAGES: list[tuple[str, Stage]] = [
    ("train", train_stage),
    ("eval", eval_stage),
    ("images", images_stage),
    ("export", export_stage),
    ("prune", prune_stage),
    ("quantize", quantize_stage),
    ("predict", predict_stage),
    ("bench", bench_stage),
]


def run_demo(out: Path, stages: list[tuple[str, Stage]] | None = None) -> DemoState:
    """Run the stages in order, printing one line per stage and where the outputs went."""
    state = DemoState(out=out)
    for name, stage in stages or STAGES:
        tic = time.time()
        print(f"[{name}] ...", flush=True)
        print(f"[{name}] {stage(state)} ({time.time() - tic:.1f}s)", flush=True)
    print(f"demo done: outputs in {out}/")
    return state
