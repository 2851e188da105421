"""Where results go: the per-frame JSON-lines log, the annotated video, the report, the summary."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from camera_app.jsonsafe import dumps
from deploy.atomic import write_text_atomic
from deploy.errors import EdgevisionError

# The pip OpenCV wheels carry no H.264 encoder: MJPG in .avi, mp4v in .mp4.
FOURCC_BY_SUFFIX = {".avi": "MJPG", ".mp4": "mp4v"}


class FrameLog:
    """One JSON object per line, flushed per line so `tail -f` and a crash both see every frame."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "w", encoding="utf-8", buffering=1)

    def write(self, record: dict) -> None:
        self.file.write(dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self.file.close()


def fourcc_for(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FOURCC_BY_SUFFIX:
        raise EdgevisionError(
            f"cannot record to {path}: use .avi (MJPG) or .mp4 (mp4v); the pip OpenCV wheels have no H.264 encoder"
        )
    return FOURCC_BY_SUFFIX[suffix]


class Recorder:
    """The annotated frames as a video; opened at the first frame, which fixes the size."""

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        self.fourcc = fourcc_for(path)
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = image.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (width, height))
            if not self.writer.isOpened():
                raise EdgevisionError(f"cannot open {self.path} for writing ({self.fourcc})")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def write_report(path: str | os.PathLike, summary: dict) -> None:
    write_text_atomic(path, dumps(summary, indent=2, sort_keys=True) + "\n")


def format_summary(summary: dict) -> str:
    """The one-screen summary printed at exit."""
    frames = summary["frames"]
    lines = [
        f"source   {summary['source']}  ({summary['mode']}, {summary['display']}; ended: {summary['end_reason']})",
        f"model    {summary['model']}  ({summary['backend']})",
        f"frames   read {frames['read']}, classified {frames['classified']}, invalid {frames['invalid']}, "
        f"dropped {frames['dropped']}, "
        f"unreadable {frames['unreadable']}, reconnects {frames['reconnects']}",
        f"speed    pipeline {summary['pipeline_fps']:.1f} fps over {summary['duration_s']:.1f} s; "
        f"model only {summary['model_fps']:.1f} fps (inference), {summary['classifier_fps']:.1f} fps (preprocess + inference)",
        f"{'ms':<26}{'p50':>9}{'p95':>9}{'mean':>9}",
    ]
    for name, stats in {**summary["latency_ms"], "age (capture->result)": summary["age_ms"],
                        "overhead (app)": summary["overhead_ms"]}.items():
        if stats:
            lines.append(f"  {name:<24}{stats['p50']:>9.2f}{stats['p95']:>9.2f}{stats['mean']:>9.2f}")
    return "\n".join(lines)
