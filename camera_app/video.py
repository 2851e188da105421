"""Make a video from still images: each image held for a few frames, like a camera pointed at it.

The demo and the acceptance runs classify such a video made from real held-out images, and the
frame -> image mapping is simply `frame // hold_frames`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from camera_app.outputs import fourcc_for
from deploy.errors import EdgevisionError
from deploy.preprocess import read_image, to_uint8_color


def cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to cover (width, height), keeping the aspect ratio, and crop the centre."""
    width, height = size
    scale = max(width / image.shape[1], height / image.shape[0])
    new_w, new_h = max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return resized[top : top + height, left : left + width]


def write_video_from_images(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    hold_frames: int = 5,
    fps: float = 30.0,
    size: tuple[int, int] = (640, 480),
) -> int:
    """Write `out` (.avi MJPG or .mp4 mp4v) with each image held `hold_frames` frames; returns the frame count.

    Images are scaled to cover `size` (width, height) and centre-cropped, as a camera would frame them.
    """
    if hold_frames < 1:
        raise EdgevisionError(f"hold_frames must be >= 1, got {hold_frames}")
    if not paths:
        raise EdgevisionError("write_video_from_images needs at least one image")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc_for(out)), fps, size)
    if not writer.isOpened():
        raise EdgevisionError(f"cannot open {out} for writing")
    try:
        for path in paths:
            frame = cover(to_uint8_color(read_image(str(path)), "BGR"), size)
            for _ in range(hold_frames):
                writer.write(frame)
    finally:
        writer.release()
    return len(paths) * hold_frames
