"""Limits on the size of untrusted input, enforced before memory is committed.

A 1 MB PNG can declare 20000 x 20000 pixels: 1.2 GB once decoded. OpenCV refuses to decode an
image of more than `OPENCV_IO_MAX_IMAGE_PIXELS` pixels, but reads that setting once, when `cv2` is
first imported; so every edgevision package imports this module from its `__init__`, before any
of its modules imports `cv2`. The default is Pillow's decompression-bomb threshold; set
`EDGEVISION_MAX_IMAGE_PIXELS` to raise it. Thread counts are capped too: `--threads 100000` once
hung a run at 5 GB creating threads.
"""

from __future__ import annotations

import os

from deploy.errors import EdgevisionError

DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS


def _max_image_pixels() -> int:
    text = os.environ.get("EDGEVISION_MAX_IMAGE_PIXELS", "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_IMAGE_PIXELS


MAX_IMAGE_PIXELS = _max_image_pixels()
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))

MAX_THREADS_PER_CORE = 4


def max_threads() -> int:
    return MAX_THREADS_PER_CORE * (os.cpu_count() or 1)


def check_threads(threads: int | None, what: str = "--threads", minimum: int = 0) -> None:
    """Refuse a thread count below `minimum` or above 4 per core (None: the default, accepted)."""
    if threads is not None and not minimum <= threads <= max_threads():
        raise EdgevisionError(
            f"{what} must be between {minimum} and {max_threads()} ({os.cpu_count() or 1} cores here), got {threads}"
        )
