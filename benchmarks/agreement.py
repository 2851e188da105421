"""Does run-time preprocessing (OpenCV) give the predictions training-time preprocessing gives?

    python -m benchmarks.agreement --model runs/cvd/model.pt --data ../shared/data/cats_vs_dogs

runs one PyTorch model twice over the same image files, once through `train.transforms.eval_transform`
(torchvision, as evaluated during training) and once through `deploy.preprocess.preprocess`
(numpy/OpenCV, as deployed), and prints the top-1 agreement and the tensor differences.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks.options import MAX_IMAGES, positive_int
from deploy.cli_util import run_cli
from deploy.image_folder import list_labelled_images
from deploy.preprocess import preprocess, read_image
from train.checkpoint import load_model
from train.transforms import eval_transform, tensor_from_opencv


def agreement(model_path: Path, data: Path, split: str = "val", limit: int | None = None, chunk: int = 32) -> dict:
    model, card = load_model(model_path)
    spec = card.preprocessing
    trained_transform = eval_transform(spec)
    items, _ = list_labelled_images(data, split, limit)
    same, count, max_diff, mean_diffs = 0, 0, 0.0, []
    for start in range(0, len(items), chunk):
        images = [read_image(str(path)) for path, _ in items[start : start + chunk]]
        deployed = torch.from_numpy(np.stack([preprocess(image, spec) for image in images]))
        trained = torch.stack([trained_transform(tensor_from_opencv(image)) for image in images])
        diff = (deployed - trained).abs()
        max_diff = max(max_diff, float(diff.max()))
        mean_diffs.append(float(diff.mean()))
        with torch.inference_mode():
            same += int((model(deployed).argmax(1) == model(trained).argmax(1)).sum())
        count += len(images)
    return {
        "images": count,
        "top1_agreement": same / count,
        "max_abs_tensor_diff": max_diff,
        "mean_abs_tensor_diff": float(np.mean(mean_diffs)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.agreement", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a model.pt written by edgevision train")
    parser.add_argument("--data", type=Path, required=True, help="class-folder tree of images (BGR/colour files)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=positive_int(MAX_IMAGES),
                        help="at most this many images, balanced over classes")
    args = parser.parse_args(argv)
    return run_cli(lambda: print(json.dumps(agreement(args.model, args.data, args.split, args.limit), indent=2)),
                   "agreement")


if __name__ == "__main__":
    raise SystemExit(main())
