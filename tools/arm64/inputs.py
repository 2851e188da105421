"""Real images (and a video made of them) for the arm64 parity check, written on the x86 side.

Always: held-out-sized samples of sklearn's handwritten digits as PNG files in class folders
(every install of the training extra has them). When ../shared/data is present (or
$EDGEVISION_DATA): also JPEG photos from cats_vs_dogs/val, so JPEG decoding and resizing of real
photos are compared across the two OpenCV builds too. The video (MJPG in .avi, which every OpenCV
wheel writes and reads) holds the same images as frames, for a headless camera run.

usage: python tools/arm64/inputs.py OUT_DIR [--digits N] [--photos N]
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
VIDEO_SIDE = 128


def write_digits(out: Path, count: int) -> list[Path]:
    """The last `count` of sklearn's 1,797 digits (8x8 scans, 0..16 scaled to 0..255) as PNG files."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for index in range(len(digits.images) - count, len(digits.images)):
        image = np.clip(digits.images[index] * 16, 0, 255).astype(np.uint8)
        path = out / "digits" / str(digits.target[index]) / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def copy_photos(out: Path, count: int) -> list[Path]:
    """Up to `count` JPEG photos from the shared cats_vs_dogs/val split, balanced over its classes."""
    root = Path(os.environ.get("EDGEVISION_DATA", REPO.parent / "shared" / "data")) / "cats_vs_dogs" / "val"
    if not root.is_dir():
        print(f"inputs: no photos ({root} not found); digits only")
        return []
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    paths = []
    for folder in classes:
        for source in sorted(folder.glob("*.jp*g"))[: count // max(len(classes), 1)]:
            target = out / "photos" / folder.name / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            paths.append(target)
    return paths


def write_video(paths: list[Path], target: Path) -> None:
    """Each image as one frame, resized to a square, in an MJPG .avi."""
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), 10, (VIDEO_SIDE, VIDEO_SIDE))
    if not writer.isOpened():
        raise SystemExit(f"inputs: OpenCV cannot write {target}")
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        writer.write(cv2.resize(image, (VIDEO_SIDE, VIDEO_SIDE), interpolation=cv2.INTER_AREA))
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--digits", type=int, default=60)
    parser.add_argument("--photos", type=int, default=20)
    args = parser.parse_args()
    digits = write_digits(args.out, args.digits)
    photos = copy_photos(args.out, args.photos)
    write_video(digits + photos, args.out / "video.avi")
    print(f"inputs: {len(digits)} digit PNGs, {len(photos)} photos, video.avi of {len(digits) + len(photos)} frames")


if __name__ == "__main__":
    main()
