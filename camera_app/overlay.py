"""What is drawn on each frame: top-k labels with probability bars, speed, per-stage latency, model.

Geometry comes from `layout(width, height)` so a test can find each bar by its pixels; every size
follows the frame's, and every line is cut with an ellipsis to fit its width.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from camera_app.text import TEXT_COLOR, TextStyle, put_text

BAR_COLORS = ((60, 200, 60), (200, 170, 40))  # BGR: the best class, the others
BAR_BACKGROUND = (70, 70, 70)
UNCERTAIN_COLOR = (0, 165, 255)
STAGE_SHORT = {"preprocess": "pre", "inference": "inf", "postprocess": "post", "overlay": "ovl", "output": "out"}


@dataclass(frozen=True)
class Layout:
    scale: float
    margin: int
    bar_width: int
    bar_height: int
    row_height: int
    text_height: int  # one outlined line of text, top of the outline to its bottom
    text: TextStyle
    ascent: int  # baseline below the top of a line's glyphs
    line_height: int  # the statistics lines at the bottom
    height: int  # the frame's

    def bar_box(self, rank: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the full bar of the `rank`-th label (0 = best), x1/y1 exclusive."""
        y0 = self.margin + rank * self.row_height + self.text_height + max(2, int(3 * self.scale))
        return self.margin, y0, self.margin + self.bar_width, y0 + self.bar_height

    def label_origin(self, rank: int) -> tuple[int, int]:
        """Baseline-left of the `rank`-th label's text."""
        return self.margin, self.margin + rank * self.row_height + self.text.outline + self.ascent

    @property
    def descent(self) -> int:
        """Lowest glyph pixel below the baseline."""
        return self.text_height - 2 * self.text.outline - self.ascent

    def line_origin(self, index: int, count: int) -> tuple[int, int]:
        """Baseline-left of the `index`-th of the `count` statistics lines; the last one's outline ends
        on the bottom margin."""
        last = self.height - self.margin - self.text.outline - self.descent
        return self.margin, last - (count - 1 - index) * self.line_height


@functools.lru_cache(maxsize=32)
def layout(width: int, height: int | None = None) -> Layout:
    """Sizes for a `width` x `height` frame (height: 3/4 of the width when not given)."""
    height = width * 3 // 4 if height is None else height
    # 1.0 at 640x480; a floor keeps 320x240 legible, and the smaller side rules on a thin frame
    scale = float(np.clip(min(width / 640.0, height / 480.0), 0.8, 3.0))
    style = TextStyle(font_scale=0.5 * scale, thickness=max(1, int(round(scale))), outline=max(1, int(round(scale))))
    ascent, descent = style.extent()
    text_height = ascent + descent + 2 * style.outline
    bar_height = max(4, int(10 * scale))
    return Layout(
        scale=scale,
        margin=int(8 * scale),
        bar_width=int(200 * scale),
        bar_height=bar_height,
        row_height=text_height + max(2, int(3 * scale)) + bar_height + int(8 * scale),
        text_height=text_height,
        text=style,
        ascent=ascent,
        line_height=text_height + max(2, int(3 * scale)),
        height=height,
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


def draw_overlay(image: np.ndarray, view: OverlayView, threshold: float = 0.0) -> np.ndarray:
    """Draw on `image` (BGR) in place (and return it)."""
    height, width = image.shape[:2]
    geo = layout(width, height)
    text_width = width - 2 * geo.margin - geo.text.outline  # the outline stays inside the right margin
    for rank, (label, prob) in enumerate(view.top):
        x0, y0, x1, y1 = geo.bar_box(rank)
        name = f"{label} {prob:.0%}"
        color = TEXT_COLOR
        if rank == 0 and view.uncertain:
            name, color = f"uncertain (best: {label} {prob:.0%} < {threshold:.0%})", UNCERTAIN_COLOR
        put_text(image, name, geo.label_origin(rank), geo.text, color, text_width)
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), BAR_BACKGROUND, cv2.FILLED)
        share = float(np.clip(prob, 0.0, 1.0)) if np.isfinite(prob) else 0.0  # a broken model's NaN: no bar
        filled = int(round(share * geo.bar_width))
        if filled > 0:
            cv2.rectangle(image, (x0, y0), (x0 + filled - 1, y1 - 1), BAR_COLORS[0 if rank == 0 else 1], cv2.FILLED)
    stages = " ".join(f"{STAGE_SHORT.get(k, k)} {v:.1f}" for k, v in view.stages_ms.items())
    lines = [
        f"{view.pipeline_fps:.1f} fps pipeline | {view.model_fps:.1f} fps model | age {view.age_ms:.0f} ms",
        f"{stages} ms" if stages else "",  # no stage timed yet (the first frames)
        view.caption,
    ]
    for index, line in enumerate(lines):
        put_text(image, line, geo.line_origin(index, len(lines)), geo.text, TEXT_COLOR, text_width)
    return image
