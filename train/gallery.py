"""A grid of images with a caption under each, as one PNG: what `edgevision show-data` and
`edgevision eval`'s most-confidently-wrong images are drawn with.

The layout is fixed in pixels (cell, caption band, margins), so the same tiles land on the same
pixels with or without captions, and `Grid.cells` says where each image was drawn: a caller (a
test) can read the PNG back and look at one cell or the caption under it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deploy.atomic import atomic_path
from deploy.errors import EdgevisionError

CELL = 96  # pixels of an image's square box
PAD = 8  # pixels between boxes and at the edges
LINE = 13  # pixels of one caption line
TITLE = 28  # pixels of the title band, when there is a title
DPI = 100
FONT_PT = 7.5


@dataclass(frozen=True)
class Tile:
    """One image of the grid: uint8 HxW (gray) or HxWx3 (RGB), the caption under it (lines split
    on newlines) and the caption's colour."""

    image: np.ndarray
    caption: str = ""
    color: str = "black"


@dataclass(frozen=True)
class Grid:
    """A written grid: its file, its size in pixels and each tile's image box (left, top, right,
    bottom) in the PNG's pixels, in the order of the tiles."""

    path: Path
    width: int
    height: int
    cells: list[tuple[int, int, int, int]] = field(default_factory=list)
    caption_height: int = 0  # pixels of the caption band under each box


def as_picture(image) -> np.ndarray:
    """A data set's uint8 (C, H, W) tensor -> HxW gray or HxWx3 RGB numpy for drawing."""
    array = image.numpy() if hasattr(image, "numpy") else np.asarray(image)
    array = np.ascontiguousarray(np.moveaxis(array, 0, -1))
    return array[:, :, 0] if array.shape[2] == 1 else array


def thumbnail(image: np.ndarray, side: int = 2 * CELL) -> np.ndarray:
    """`image` (HxW or HxWx3 uint8) shrunk so that its longer side is at most `side` pixels
    (small images stay as they are: the grid enlarges them without smoothing)."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    import cv2

    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def draw_grid(
    path: str | os.PathLike,
    tiles: list[Tile | None],
    columns: int,
    title: str = "",
    captions: bool = True,
    caption_lines: int = 1,
) -> Grid:
    """Draw `tiles` row by row, `columns` to a row, into the PNG `path` (written atomically); a
    None leaves its place empty. `Grid.cells` has the boxes of the drawn tiles, in their order.

    Every tile gets a caption band of `caption_lines` lines whether or not `captions` is set, so
    the images sit at the same pixels either way.
    """
    if not any(tile is not None for tile in tiles):
        raise EdgevisionError(f"nothing to draw into {path}: no images")
    if columns < 1:
        raise EdgevisionError(f"a grid needs at least one column, not {columns}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(tiles) // columns)
    band = LINE * caption_lines + 4
    top = TITLE if title else 0
    width = PAD + columns * (CELL + PAD)
    height = top + PAD + rows * (CELL + band + PAD)
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    cells = []
    for index, tile in enumerate(tiles):
        if tile is None:
            continue
        row, column = divmod(index, columns)
        left = PAD + column * (CELL + PAD)
        upper = top + PAD + row * (CELL + band + PAD)
        image = tile.image
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        image_height, image_width = image.shape[:2]
        scale = CELL / max(image_height, image_width)
        box_w, box_h = max(1, round(image_width * scale)), max(1, round(image_height * scale))
        box_left, box_top = left + (CELL - box_w) // 2, upper + (CELL - box_h) // 2
        ax = fig.add_axes((box_left / width, 1 - (box_top + box_h) / height, box_w / width, box_h / height))
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest",
                  aspect="auto")
        ax.set_axis_off()
        cells.append((box_left, box_top, box_left + box_w, box_top + box_h))
        if captions and tile.caption:
            lines = [_shorten(line) for line in tile.caption.split("\n")[:caption_lines]]
            fig.text((left + CELL / 2) / width, 1 - (upper + CELL + 2) / height, "\n".join(lines),
                     ha="center", va="top", fontsize=FONT_PT, color=tile.color, linespacing=1.1)
    if title:
        fig.text(0.5, 1 - (TITLE / 2) / height, _shorten(title, max(20, width // 6)), ha="center", va="center",
                 fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    plt.close(fig)
    return Grid(Path(path), width, height, cells, band)


def _shorten(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
