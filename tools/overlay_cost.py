"""Per-frame cost of the camera overlay: the median of many `draw_overlay` calls on a real photo.

    PYTHONPATH=. python tools/overlay_cost.py PHOTO.jpg [--calls 500] [--cv-threads 1]

The text changes every call (FPS and age, as live), so nothing is drawn from a cache it could not
use on a camera. Prints OpenCV's version and one line per frame size.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2

from camera_app.overlay import OverlayView, draw_overlay

SIZES = ((320, 240), (640, 480), (1920, 1080))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photo")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--cv-threads", type=int, default=1, help="cv2.setNumThreads (default 1: one core's cost)")
    args = parser.parse_args(argv)
    photo = cv2.imread(args.photo)
    if photo is None:
        parser.error(f"cannot read {args.photo}")
    cv2.setNumThreads(args.cv_threads)
    view = OverlayView([("cats", 0.75), ("dogs", 0.2), ("birds", 0.05)], model_fps=60.0,
                       stages_ms={"preprocess": 2.0, "inference": 15.0, "postprocess": 0.3, "overlay": 0.9,
                                  "output": 1.2},
                       caption="onnxruntime fp32 CPUExecutionProvider | cats_vs_dogs_mobilenet_v2.onnx")
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} thread(s), {args.calls} calls per size")
    for width, height in SIZES:
        base = cv2.resize(photo, (width, height))
        times = []
        for call in range(args.calls):
            frame = base.copy()
            view.pipeline_fps, view.age_ms = 20 + (call % 97) / 10, 30 + call % 41
            start = time.perf_counter()
            draw_overlay(frame, view)
            times.append((time.perf_counter() - start) * 1e3)
        times.sort()
        print(f"{width}x{height}: median {statistics.median(times):.3f} ms, p90 {times[int(0.9 * len(times))]:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
