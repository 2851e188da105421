"""Limits on the size of untrusted input, enforced before memory is committed.

A 1 MB PNG can declare 20000 x 20000 pixels: 1.2 GB once decoded. OpenCV refuses to decode an
image of more than `OPENCV_IO_MAX_IMAGE_PIXELS` pixels, but reads that setting once, when `cv2` is
first imported; so every edgevision package imports this module from its `__init__`, before any
of its modules imports `cv2`. The default is Pillow's decompression-bomb threshold; set
`EDGEVISION_MAX_IMAGE_PIXELS` to raise it.
"""

from __future__ import annotations

import os

DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS


def _max_image_pixels() -> int:
    text = os.environ.get("EDGEVISION_MAX_IMAGE_PIXELS", "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_IMAGE_PIXELS


MAX_IMAGE_PIXELS = _max_image_pixels()
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
