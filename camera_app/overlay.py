"""What is drawn on each frame: top-k labels with probability bars, speed, per-stage latency, model.

Geometry comes from `layout(width)` so a test can find each bar by its pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

BAR_COLORS = ((60, 200, 60), (200, 170, 40))  # BGR: the best class, the others
BAR_BACKGROUND = (70, 70, 70)
UNCERTAIN_COLOR = (0, 165, 255)
TEXT_COLOR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
STAGE_SHORT = {"preprocess": "pre", "inference": "inf", "postprocess": "post", "overlay": "ovl", "output": "out"}


@dataclass(frozen=True)
class Layout:
    scale: float
    margin: int
    bar_width: int
    bar_height: int
    row_height: int
    text_height: int

    def bar_box(self, rank: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the full bar of the `rank`-th label (0 = best), x1/y1 exclusive."""
        y0 = self.margin + rank * self.row_height + self.text_height + 4
        return self.margin, y0, self.margin + self.bar_width, y0 + self.bar_height


def layout(width: int) -> Layout:
    scale = float(np.clip(width / 640.0, 0.8, 2.0))
    return Layout(
        scale=scale,
        margin=int(8 * scale),
        bar_width=int(200 * scale),
        bar_height=max(4, int(10 * scale)),
        row_height=int(38 * scale),
        text_height=int(18 * scale),
    )


@dataclass
class OverlayView:
    """Everything the overlay shows for one frame."""

    top: list[tuple[str, float]]
    uncertain: bool = False
    pipeline_fps: float = 0.0
    model_fps: float = 0.0
    stages_ms: dict[str, float] = field(default_factory=dict)
    age_ms: float = 0.0
    caption: str = ""


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, color=TEXT_COLOR) -> None:
    """Text with a dark outline, readable on any background."""
    thickness = max(1, int(round(scale)))
    cv2.putText(image, text, origin, FONT, 0.5 * scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, FONT, 0.5 * scale, color, thickness, cv2.LINE_AA)


def draw_overlay(image: np.ndarray, view: OverlayView, threshold: float = 0.0) -> np.ndarray:
    """Draw on `image` in place (and return it)."""
    geo = layout(image.shape[1])
    for rank, (label, prob) in enumerate(view.top):
        x0, y0, x1, y1 = geo.bar_box(rank)
        text_y = y0 - 5
        name = f"{label} {prob:.0%}"
        if rank == 0 and view.uncertain:
            name = f"uncertain (best: {label} {prob:.0%} < {threshold:.0%})"
        put_text(image, name, (x0, text_y), geo.scale, UNCERTAIN_COLOR if rank == 0 and view.uncertain else TEXT_COLOR)
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), BAR_BACKGROUND, cv2.FILLED)
        filled = int(round(float(np.clip(prob, 0.0, 1.0)) * geo.bar_width))
        if filled > 0:
            cv2.rectangle(image, (x0, y0), (x0 + filled - 1, y1 - 1), BAR_COLORS[0 if rank == 0 else 1], cv2.FILLED)
    stages = " ".join(f"{STAGE_SHORT.get(k, k)} {v:.1f}" for k, v in view.stages_ms.items())
    lines = [
        f"{view.pipeline_fps:.1f} fps pipeline | {view.model_fps:.1f} fps model | age {view.age_ms:.0f} ms",
        f"{stages} ms",
        view.caption,
    ]
    line_height = int(18 * geo.scale)
    y = image.shape[0] - geo.margin - line_height * (len(lines) - 1)
    for line in lines:
        put_text(image, line, (geo.margin, y), geo.scale)
        y += line_height
    return image
