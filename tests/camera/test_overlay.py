"""The overlay, checked by the pixels of a snapshot PNG."""

from __future__ import annotations

import cv2
import numpy as np

from camera_app.display import save_snapshot
from camera_app.overlay import BAR_BACKGROUND, BAR_COLORS, UNCERTAIN_COLOR, OverlayView, draw_overlay, layout


def bar_fill(image: np.ndarray, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> int:
    """Pixels of `color` along the middle row of a bar."""
    x0, y0, x1, y1 = box
    row = image[(y0 + y1) // 2, x0:x1].astype(int)
    return int((np.abs(row - np.array(color)).max(axis=1) <= 2).sum())


def test_bars_are_as_long_as_the_probabilities(tmp_path):
    frame = np.full((480, 640, 3), 30, np.uint8)
    view = OverlayView([("cats", 0.75), ("dogs", 0.2), ("birds", 0.05)], pipeline_fps=25.0, model_fps=60.0,
                       stages_ms={"preprocess": 2.0, "inference": 15.0}, age_ms=40.0, caption="onnxruntime fp32 | m.onnx")
    draw_overlay(frame, view)
    path = save_snapshot(frame, tmp_path, 12)
    assert path.name == "snapshot_000012.png"
    snapshot = cv2.imread(str(path))
    geo = layout(640)
    for rank, (_, prob) in enumerate(view.top):
        box = geo.bar_box(rank)
        color = BAR_COLORS[0 if rank == 0 else 1]
        filled = bar_fill(snapshot, box, color)
        assert abs(filled - prob * geo.bar_width) <= 1, (rank, filled)
        assert filled + bar_fill(snapshot, box, BAR_BACKGROUND) == geo.bar_width
    # text was drawn: the statistics lines at the bottom are not the plain background any more
    assert (snapshot[-60:, :300] != 30).any()


def test_uncertain_label_below_the_threshold():
    frame = np.zeros((480, 640, 3), np.uint8)
    draw_overlay(frame, OverlayView([("cats", 0.55), ("dogs", 0.45)], uncertain=True), threshold=0.6)
    geo = layout(640)
    x0, y0, _, _ = geo.bar_box(0)
    text_band = frame[geo.margin : y0, x0 : x0 + 150].reshape(-1, 3).astype(int)
    orange = (np.abs(text_band - np.array(UNCERTAIN_COLOR)).max(axis=1) <= 40).sum()
    assert orange > 20
    plain = np.zeros((480, 640, 3), np.uint8)
    draw_overlay(plain, OverlayView([("cats", 0.55), ("dogs", 0.45)]))
    band = plain[geo.margin : y0, x0 : x0 + 150].reshape(-1, 3).astype(int)
    assert (np.abs(band - np.array(UNCERTAIN_COLOR)).max(axis=1) <= 40).sum() == 0
