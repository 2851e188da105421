"""Outlined text for the overlay, drawn from one glyph mask so that outline and fill cannot drift apart.

OpenCV 5 draws Hershey text bolder, and wider, at a thickness above 1 than at 1, so an outline drawn as a
thicker `putText` under the fill slides away from it along the line (lines come out doubled). Here the
text is rendered once into a mask; the outline is that mask dilated, and both are blended onto the
image through it, on the text's own box only.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOR = (255, 255, 255)
ELLIPSIS = "..."
MAX_CHARS = 512  # more than any line can show; bounds the work on a hostile label


@dataclass(frozen=True)
class TextStyle:
    font_scale: float
    thickness: int
    outline: int  # how far (px) the outline reaches past the glyphs

    def width(self, text: str) -> int:
        return _text_size(text, self.font_scale, self.thickness)[0][0]

    def extent(self) -> tuple[int, int]:
        """(ascent, descent) in px of the tallest and deepest glyphs, as this OpenCV draws them."""
        (_, ascent), descent = _text_size("Ag|jy(", self.font_scale, self.thickness)
        return ascent, descent


@functools.lru_cache(maxsize=1024)
def _text_size(text: str, font_scale: float, thickness: int) -> tuple[tuple[int, int], int]:
    return cv2.getTextSize(text, FONT, font_scale, thickness)  # OpenCV 5 takes ~0.1 ms a line: keep it


@functools.lru_cache(maxsize=1024)
def printable(text: str) -> str:
    """What a Hershey font can draw: accents dropped (é -> e), any other non-ASCII character '?',
    control and format characters (newline, tab, bidi marks) a space or nothing."""
    out = []
    for char in unicodedata.normalize("NFKD", text[:MAX_CHARS]):
        if " " <= char <= "~":
            out.append(char)
        elif unicodedata.combining(char) or unicodedata.category(char) == "Cf":
            continue
        elif unicodedata.category(char) in ("Cc", "Zs", "Zl", "Zp"):
            out.append(" ")
        else:
            out.append("?")
    return "".join(out)


@functools.lru_cache(maxsize=256)
def fit(text: str, style: TextStyle, max_width: int) -> str:
    """`text` made printable, cut to end in an ellipsis where it is wider than `max_width` px."""
    text = printable(text)
    if style.width(text) <= max_width:
        return text
    lo, hi = 0, len(text)  # the longest prefix that fits with the ellipsis, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if style.width(text[:mid].rstrip(" |") + ELLIPSIS) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip(" |") + ELLIPSIS if lo or style.width(ELLIPSIS) <= max_width else ""


@functools.lru_cache(maxsize=16)
def _kernel(radius: int) -> np.ndarray:
    # OpenCV's 3x3 "ellipse" is a cross, which leaves a glyph's corners without outline diagonally
    shape = cv2.MORPH_RECT if radius == 1 else cv2.MORPH_ELLIPSE
    return cv2.getStructuringElement(shape, (2 * radius + 1, 2 * radius + 1))


def _paint(roi: np.ndarray, mask: np.ndarray, edge: np.ndarray, color: tuple[int, int, int]) -> None:
    """roi <- black through `edge`, then `color` through `mask` (alphas 0..255), in one pass of OpenCV's
    arithmetic: one three-channel multiply and one add (numpy takes 20 times as long)."""
    keep = cv2.multiply(cv2.bitwise_not(edge), cv2.bitwise_not(mask), scale=1 / 255)  # what shows of the image
    shown = cv2.multiply(roi, cv2.cvtColor(keep, cv2.COLOR_GRAY2BGR), scale=1 / 255)
    if color == (255, 255, 255):  # white: the mask itself
        paint = cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR)
    else:
        paint = cv2.merge([cv2.convertScaleAbs(mask, alpha=c / 255) for c in color])
    roi[...] = cv2.add(shown, paint)


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], style: TextStyle,
             color: tuple[int, int, int] = TEXT_COLOR, max_width: int | None = None) -> None:
    """Draw `text` (baseline-left at `origin`) with a dark outline, readable on any background.

    The text is made printable and cut with an ellipsis to `max_width` px (the outline not counted).
    """
    text = fit(text, style, max_width if max_width is not None else 1 << 20)
    if not text:
        return
    ascent, descent = style.extent()
    pad = style.outline + style.thickness + 2  # OpenCV 4 draws a pixel or two left of the origin
    mask = np.zeros((ascent + descent + 2 * pad, style.width(text) + 2 * pad), np.uint8)
    cv2.putText(mask, text, (pad, pad + ascent), FONT, style.font_scale, 255, style.thickness, cv2.LINE_AA)
    # the mask's box on the image, cut to the image
    x0, y0 = origin[0] - pad, origin[1] - ascent - pad
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + mask.shape[1], image.shape[1]), min(y0 + mask.shape[0], image.shape[0])
    if ix0 >= ix1 or iy0 >= iy1:
        return
    edge = cv2.dilate(mask, _kernel(style.outline))
    edge = cv2.add(edge, edge)  # a solid outline (the glyphs' soft edge, doubled), still smooth at its rim
    box = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
    _paint(image[iy0:iy1, ix0:ix1], mask[box], edge[box], color)
