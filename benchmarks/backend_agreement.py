"""Do two runtimes give the same answers? Top-1 agreement of two model files (or one file on two
backends) over the same labelled images, torch-free.

    python -m benchmarks.backend_agreement runs/x/model.onnx runs/x/model.onnx@openvino \
        --data ../shared/data/cats_vs_dogs --limit 1000

Each image is preprocessed once per card and run through both; prints the fraction of images
whose top-1 class is the same, each one's top-1 accuracy, and the largest logit difference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import deploy
from benchmarks.options import MAX_IMAGES, positive_int
from deploy.cli_util import run_cli
from deploy.image_folder import list_labelled_images
from deploy.preprocess import preprocess, read_image


def open_target(text: str, options: dict):
    path, _, backend = text.partition("@")
    return deploy.load(path, backend=backend or "auto", **options)


def agreement(
    first: str, second: str, data: Path, split: str = "val", limit: int | None = None,
    second_options: dict | None = None,
) -> dict:
    """`second_options`: deploy.load options for the second target (e.g. OpenVINO's inference_precision)."""
    a, b = open_target(first, {}), open_target(second, second_options or {})
    items, class_names = list_labelled_images(data, split, limit)
    same = correct_a = correct_b = 0
    max_diff = 0.0
    for path, index in items:
        image = read_image(str(path))
        logits_a = a.run(preprocess(image, a.card.preprocessing)[None])[0]
        logits_b = b.run(preprocess(image, b.card.preprocessing)[None])[0]
        top_a, top_b = int(np.argmax(logits_a)), int(np.argmax(logits_b))
        same += top_a == top_b
        correct_a += a.card.class_names[top_a] == class_names[index]
        correct_b += b.card.class_names[top_b] == class_names[index]
        max_diff = max(max_diff, float(np.abs(logits_a - logits_b).max()))
    count = len(items)
    return {
        "images": count,
        "top1_agreement": same / count,
        "top1": {first: correct_a / count, second: correct_b / count},
        "max_abs_logit_diff": max_diff,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backend_agreement",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("first", metavar="MODEL[@BACKEND]")
    parser.add_argument("second", metavar="MODEL[@BACKEND]")
    parser.add_argument("--data", type=Path, required=True, help="class-folder tree of labelled images")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=positive_int(MAX_IMAGES),
                        help="at most this many images, balanced over classes")
    parser.add_argument("--second-options", type=json.loads, default={}, metavar="JSON",
                        help='deploy.load options for the second model, e.g. \'{"inference_precision": "bf16"}\'')
    args = parser.parse_args(argv)

    def report() -> None:
        result = agreement(args.first, args.second, args.data, args.split, args.limit, args.second_options)
        print(json.dumps(result, indent=2))

    return run_cli(report, "backend_agreement")


if __name__ == "__main__":
    raise SystemExit(main())
