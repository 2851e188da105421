"""Where results go: the per-frame JSON-lines log, the annotated video, the report, the summary.

An output that fails during the run (a full disk, a file-size limit) stops with one warning line
naming the file; the run goes on without it (classification, the other outputs and `--serve` are
still worth having), its `failed` reason goes into the summary, and the command exits 1.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from camera_app.jsonsafe import dumps
from deploy.atomic import open_for_writing, write_text_atomic
from deploy.errors import EdgevisionError

log = logging.getLogger("edgevision.camera")

# The pip OpenCV wheels carry no H.264 encoder: MJPG in .avi, mp4v in .mp4.
FOURCC_BY_SUFFIX = {".avi": "MJPG", ".mp4": "mp4v"}
MP4_REFUSED = (
    "--record {path}: an .mp4 recording is unreadable unless the run ends cleanly (its index is written "
    "at the end; a kill or power cut loses all of it); record to .avi (MJPG, readable up to the last "
    "frame written) and convert afterwards if needed: ffmpeg -i x.avi x.mp4"
)
# Recording stops when its file system has less than this many bytes free besides one raw frame:
# OpenCV's writers report no error when the disk fills, they only stop writing.
RECORD_FREE_MARGIN = 1 << 20


def _no_space(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)


class FrameLog:
    """One JSON object per line, flushed per line so `tail -f` and a crash both see every frame."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.failed: str | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open_for_writing(self.path, "--log", encoding="utf-8", buffering=1)

    def write(self, record: dict) -> None:
        if self.failed:
            return
        try:
            self.file.write(dumps(record, separators=(",", ":")) + "\n")
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failed = f"--log {self.path}: {_no_space(exc)}; the log stopped there, the run went on"
        log.warning("%s", self.failed)
        try:
            self.file.close()
        except OSError:
            pass  # the line that did not fit is lost with the buffer; what was written stays

    def close(self) -> None:
        if self.file.closed:
            return
        try:
            self.file.close()
        except OSError as exc:
            self._fail(exc)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def check_outputs_apart(outputs: dict[str, str | None], inputs: dict[str, str | None], read_folder: str | None) -> None:
    """Refuse, before the run, an output that is an input or another output (the same path, or the
    same file through a symlink or hard link) or lies under the image folder being read."""
    outputs = {flag: str(path) for flag, path in outputs.items() if path}
    inputs = {flag: str(path) for flag, path in inputs.items() if path}
    folder = os.path.realpath(read_folder) if read_folder else None
    seen: dict[str, str] = {}
    for flag, path in outputs.items():
        real, identity = os.path.realpath(path), _identity(path)
        for other, other_path in inputs.items():
            if real == os.path.realpath(other_path) or (identity and identity == _identity(other_path)):
                raise EdgevisionError(f"{flag} {path} is the {other} {other_path}: it would be overwritten")
        for other, other_real in seen.items():
            if real == other_real or (identity and identity == _identity(other_real)):
                raise EdgevisionError(f"{flag} {path} is also the {other}: give each output its own file")
        if folder and real.startswith(folder.rstrip(os.sep) + os.sep):
            raise EdgevisionError(
                f"{flag} {path} lies inside the image folder being read ({read_folder}); write it elsewhere"
            )
        seen[flag] = real


def check_record_path(path: str | os.PathLike) -> None:
    """`--record` takes .avi only (see MP4_REFUSED)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".mp4":
        raise EdgevisionError(MP4_REFUSED.format(path=path))
    if suffix != ".avi":
        raise EdgevisionError(f"--record {path}: use .avi (MJPG); the pip OpenCV wheels have no H.264 encoder")


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale `image` to fit (width, height), keeping its aspect ratio, centred on black."""
    width, height = size
    scale = min(width / image.shape[1], height / image.shape[0])
    new_w, new_h = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def fourcc_for(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FOURCC_BY_SUFFIX:
        raise EdgevisionError(
            f"cannot record to {path}: use .avi (MJPG) or .mp4 (mp4v); the pip OpenCV wheels have no H.264 encoder"
        )
    return FOURCC_BY_SUFFIX[suffix]


class Recorder:
    """The annotated frames as a video; opened at the first frame, which fixes the size.

    A frame of another size is letterboxed to it (and counted in `resized`): a VideoWriter silently
    drops frames whose size is not its own. OpenCV reports no write error, so the file system's
    free space is checked before each frame; below one frame plus a margin the recording stops
    (`failed`), keeping what it wrote."""

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        self.fourcc = fourcc_for(path)
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.resized = 0
        self.failed: str | None = None

    def write(self, image: np.ndarray) -> None:
        if self.failed:
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = image.shape[:2]
            self.size = (width, height)
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, self.size)
            if not self.writer.isOpened():
                raise EdgevisionError(f"cannot open {self.path} for writing ({self.fourcc})")
        if (image.shape[1], image.shape[0]) != self.size:
            image = letterbox(image, self.size)
            self.resized += 1
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError as exc:
            free, reason = 0, _no_space(exc)
        else:
            reason = "no space left on device"
        if free < image.nbytes + RECORD_FREE_MARGIN:
            self.failed = (f"--record {self.path}: {reason}; the recording stopped after {self.frames} frames, "
                           "the run went on")
            log.warning("%s", self.failed)
            self.close()
            return
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


def write_report(path: str | os.PathLike, summary: dict) -> None:
    write_text_atomic(path, dumps(summary, indent=2, sort_keys=True) + "\n")


def format_summary(summary: dict) -> str:
    """The one-screen summary printed at exit."""
    frames = summary["frames"]
    lines = [
        f"source   {summary['source']}  ({summary['mode']}, {summary['display']}; ended: {summary['end_reason']})",
        f"model    {summary['model']}  ({summary['backend']})",
        f"frames   read {frames['read']}, classified {frames['classified']}, invalid {frames['invalid']}, "
        f"dropped {frames['dropped']}, unreadable {frames['unreadable']}, reconnects {frames['reconnects']}",
        f"speed    pipeline {summary['pipeline_fps']:.1f} fps over {summary['duration_s']:.1f} s; "
        f"model only {summary['model_fps']:.1f} fps (inference), "
        f"{summary['classifier_fps']:.1f} fps (preprocess + inference)",
    ]
    if line := watch_line(summary.get("watch"), summary.get("uncertain_saved")):
        lines.append(line)
    lines.append(f"{'ms':<26}{'p50':>9}{'p95':>9}{'mean':>9}")
    for name, stats in {**summary["latency_ms"], "age (capture->result)": summary["age_ms"],
                        "overhead (app)": summary["overhead_ms"]}.items():
        if stats:
            lines.append(f"  {name:<24}{stats['p50']:>9.2f}{stats['p95']:>9.2f}{stats['mean']:>9.2f}")
    return "\n".join(lines)


def watch_line(watch: dict | None, saved: dict | None) -> str | None:
    """The confidence watch's last window (and the saver's counts) as one summary line."""
    if not watch or not watch.get("frames"):
        return None
    drift = "no card distribution" if watch["drift"] is None else f"{watch['drift']:.3f}"
    line = (f"watch    last {watch['frames']} frames: mean confidence {watch['mean_confidence']:.1%}, "
            f"uncertain {watch['uncertain_share']:.1%}, drift (PSI) {drift}{', ALERT' if watch['alert'] else ''}")
    if saved:
        line += f"; uncertain frames saved {saved['saved']} (dropped {saved['dropped']})"
    return line
