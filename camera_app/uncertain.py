"""Keep what the model was unsure of: uncertain frames saved as JPEG, sorted by predicted label.

`--save-uncertain DIR` writes `DIR/<label>/<run>-<frame>.jpg` for frames whose top-1 probability
is under `--threshold` or whose top-2 margin is under `--margin`, and one JSON line per image to
`DIR/uncertain.jsonl` (frame, time, file, label, top-k). Labels come from the model card, which may
be anyone's: each becomes a safe folder name (`safe_folder_name`). At most one frame per
`--save-every` seconds and `--save-max` in all.

The pipeline only calls `offer`, which never waits: encoding and writing happen on a writer thread
behind a small queue, and a frame that finds the queue full is dropped (and counted). A write error
(a full disk) is logged once and stops the saver; the camera goes on.
"""

from __future__ import annotations

import hashlib
import logging
import math
import queue
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from camera_app.jsonsafe import dumps, finite
from camera_app.watch import check_fraction, is_uncertain, top_two
from deploy.errors import EdgevisionError

log = logging.getLogger("edgevision.camera")

JSONL = "uncertain.jsonl"
QUEUE_FRAMES = 4  # frames waiting for the writer at most: memory stays a few frames
JPEG_QUALITY = 90
MAX_NAME = 48  # characters of a folder name made from a label (at most 4 bytes each: under 255 with the hash)
# Names Windows reserves whatever the extension, and this saver's own file.
RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10)), JSONL}
UNSAFE = re.compile(r"[^\w.\- ]+")


def safe_folder_name(label: str) -> str:
    """A folder name for `label`: the label itself when it is already a plain name, otherwise its
    letters, digits, '.', '-', '_' and spaces plus 8 hex digits of its hash (so that two labels that
    differ only in what was removed stay apart). Never empty, '.', '..', a path, NUL or a reserved name."""
    text = unicodedata.normalize("NFKC", str(label))
    name = UNSAFE.sub("_", text).strip(" .")[:MAX_NAME].strip(" .")
    if name.split(".")[0].lower() in RESERVED or name.lower() in RESERVED:
        name = f"_{name}"
    if name and name == label:
        return name
    digest = hashlib.sha256(str(label).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name or 'label'}-{digest}"


@dataclass
class SaveOptions:
    """`--save-uncertain DIR` and its limits; `threshold` and `margin` say what is uncertain."""

    directory: str
    threshold: float = 0.0
    margin: float = 0.0
    every: float = 1.0
    max_saved: int = 500

    def __post_init__(self) -> None:
        check_fraction(self.threshold, "--threshold")
        check_fraction(self.margin, "--margin")
        if self.threshold == 0 and self.margin == 0:
            raise EdgevisionError("--save-uncertain needs --threshold or --margin (otherwise no frame is uncertain)")
        every = self.every
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not math.isfinite(every) or every < 0:
            raise EdgevisionError(f"--save-every must be a finite number of seconds >= 0, got {every}")
        if isinstance(self.max_saved, bool) or not isinstance(self.max_saved, int) or self.max_saved < 1:
            raise EdgevisionError(f"--save-max must be an integer >= 1, got {self.max_saved}")


class UncertainSaver:
    """Saves uncertain frames on its own thread; `offer` per frame, `close` at the end."""

    def __init__(self, options: SaveOptions, clock=time.monotonic) -> None:
        self.options = options
        self.clock = clock
        self.root = Path(options.directory)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.jsonl = open(self.root / JSONL, "a", encoding="utf-8")  # noqa: SIM115 (the writer thread closes it)
        except OSError as exc:
            raise EdgevisionError(f"--save-uncertain {self.root}: cannot write there ({exc.strerror or exc})") from None
        self.run = time.strftime("%Y%m%d-%H%M%S")
        self.counters = {"uncertain": 0, "saved": 0, "dropped": 0, "skipped_rate": 0, "skipped_cap": 0}
        self.accepted = 0
        self.last_accepted: float | None = None
        self.failed = False
        self.closed = False
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self.thread = threading.Thread(target=self._write_all, name="edgevision-save-uncertain", daemon=True)
        self.thread.start()

    def offer(self, frame_index: int, image: np.ndarray, top_k: list[tuple[str, float]],
              probabilities: np.ndarray) -> bool:
        """Queue this frame if it is uncertain, the rate and cap allow it and the writer keeps up;
        returns whether it was queued. Never blocks."""
        if self.failed or self.closed or not top_k:
            return False
        best, margin = top_two(probabilities)
        if not is_uncertain(best, margin, self.options.threshold, self.options.margin):
            return False
        self.counters["uncertain"] += 1
        if self.accepted >= self.options.max_saved:
            self.counters["skipped_cap"] += 1
            return False
        now = self.clock()
        if self.last_accepted is not None and now - self.last_accepted < self.options.every:
            self.counters["skipped_rate"] += 1
            return False
        record = {"frame": int(frame_index), "time": round(time.time(), 6),
                  "top_k": [{"label": str(label), "prob": finite(round(float(prob), 6))} for label, prob in top_k]}
        try:
            self.queue.put_nowait((record, str(top_k[0][0]), image.copy()))
        except queue.Full:
            self.counters["dropped"] += 1
            return False
        self.accepted += 1
        self.last_accepted = now
        return True

    def _write_all(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                if not self.failed:
                    self._write(*item)
        finally:
            self.jsonl.close()

    def _write(self, record: dict, label: str, image: np.ndarray) -> None:
        folder = safe_folder_name(label)
        try:
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise OSError(f"OpenCV could not encode a {image.shape} frame as JPEG")
            (self.root / folder).mkdir(exist_ok=True)
            relative = self._new_file(folder, record["frame"], jpeg.tobytes())
            self.jsonl.write(dumps({**record, "file": relative, "label": label}) + "\n")
            self.jsonl.flush()
        except (OSError, ValueError) as exc:  # a full disk, a folder that went away: stop saving, keep running
            self.failed = True
            log.warning("--save-uncertain %s: cannot write (%s); saving stopped after %d frames",
                        self.root, getattr(exc, "strerror", None) or exc, self.counters["saved"])
            return
        self.counters["saved"] += 1

    def _new_file(self, folder: str, frame: int, data: bytes) -> str:
        """Write `data` under a name no earlier run used (never overwrites); returns it relative to the root."""
        for attempt in range(1000):
            name = f"{self.run}-{frame:08d}{f'-{attempt}' if attempt else ''}.jpg"
            try:
                with open(self.root / folder / name, "xb") as handle:
                    handle.write(data)
                return f"{folder}/{name}"
            except FileExistsError:
                continue
        raise OSError(f"no free file name for frame {frame} in {self.root / folder}")

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued (within `timeout` seconds) and stop; whether everything was written."""
        if self.closed:
            return not self.thread.is_alive()
        self.closed = True
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("--save-uncertain %s: the writer is stuck; %d frames not saved", self.root, self.queue.qsize())
            return False
        self.thread.join(timeout)
        return not self.thread.is_alive()
