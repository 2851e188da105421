"""The overlay, checked by the pixels of a snapshot PNG (on whichever OpenCV is installed: 4.x and 5.x
measure and draw Hershey text differently; `make test-lowest` runs this file under 4.x)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera_app.display import save_snapshot
from camera_app.overlay import BAR_BACKGROUND, BAR_COLORS, UNCERTAIN_COLOR, OverlayView, draw_overlay, layout
from camera_app.text import ELLIPSIS, printable

GREY = 128
FILL = 200  # white text, not its mix with the outline
BRIGHT = GREY + 16  # brighter than the grey: the white text's (OpenCV 4 draws small dots in light grey)
SIZES = ((320, 240), (640, 480), (1920, 1080))
LONG = "a_very_long_label_name_that_a_model_card_might_carry_" * 3


def bar_fill(image: np.ndarray, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> int:
    """Pixels of `color` along the middle row of a bar."""
    x0, y0, x1, y1 = box
    row = image[(y0 + y1) // 2, x0:x1].astype(int)
    return int((np.abs(row - np.array(color)).max(axis=1) <= 2).sum())


def test_bars_are_as_long_as_the_probabilities(tmp_path):
    frame = np.full((480, 640, 3), 30, np.uint8)
    view = OverlayView([("cats", 0.75), ("dogs", 0.2), ("birds", 0.05)], pipeline_fps=25.0, model_fps=60.0,
                       stages_ms={"preprocess": 2.0, "inference": 15.0}, age_ms=40.0,
                       caption="onnxruntime fp32 | m.onnx")
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


def text_rows(width: int, height: int, labels: int, lines: int = 3) -> list[slice]:
    """The rows of each line of text: the labels', then the statistics lines' (baseline - ascent to
    baseline + descent)."""
    geo = layout(width, height)
    baselines = [geo.label_origin(rank)[1] for rank in range(labels)]
    baselines += [geo.line_origin(index, lines)[1] for index in range(lines)]
    return [slice(y - geo.ascent, y + geo.descent + 1) for y in baselines]


@pytest.mark.parametrize("size", SIZES)
def test_outline_and_fill_come_from_one_glyph(size):
    width, height = size
    view = OverlayView([(LONG, 0.6), ("dogs", 0.3)], pipeline_fps=25.0, model_fps=60.0,
                       stages_ms={"preprocess": 2.0, "inference": 15.0}, age_ms=40.0, caption=LONG)
    frame, darker = (draw_overlay(np.full((height, width, 3), grey, np.uint8), view) for grey in (GREY, GREY - 32))
    outline = layout(width, height).text.outline
    bright = frame.min(axis=2) >= BRIGHT
    ink = (frame.astype(int) - GREY).any(axis=2)  # outline or fill
    for rows in text_rows(width, height, labels=2):
        ends = (np.flatnonzero(mask[rows].any(axis=0))[[0, -1]] for mask in (bright, ink))
        (fill_left, fill_right), (ink_left, ink_right) = ends
        # the outline reaches past the fill by its own width (and an antialiased pixel) at both ends,
        # never further: a drifted outline ends many pixels away from its text
        assert 0 <= fill_left - ink_left <= outline + 2, (size, rows.start, fill_left, ink_left)
        assert 0 <= ink_right - fill_right <= outline + 2, (size, rows.start, fill_right, ink_right)
    # no white pixel touches the bare background (where the two greys still differ by all of 32)
    fill = frame.min(axis=2) >= FILL
    bare = ((frame.astype(int) - darker) >= 31).all(axis=2)
    near_bare = cv2.dilate(bare.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert not (fill & near_bare).any(), np.argwhere(fill & near_bare)[:5]


@pytest.mark.parametrize("size", SIZES)
def test_long_lines_end_in_an_ellipsis_inside_the_frame(size):
    width, height = size
    frame = np.full((height, width, 3), GREY, np.uint8)
    draw_overlay(frame, OverlayView([(LONG, 0.6)], caption=LONG))
    geo = layout(width, height)
    assert (frame[:, width - geo.margin :] == GREY).all()
    assert (frame[height - geo.margin + 1 :] == GREY).all()
    # the label and the caption end in the ellipsis: three narrow runs of text, evenly spaced
    label, *_, caption = text_rows(width, height, labels=1)
    for rows in (label, caption):
        columns = np.flatnonzero((frame[rows].min(axis=2) >= BRIGHT).any(axis=0))
        dots = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)[-len(ELLIPSIS) :]
        assert all(len(dot) <= 2 * geo.text.thickness + 3 for dot in dots), (size, dots)
        steps = np.diff([dot[0] for dot in dots])
        assert steps.max() - steps.min() <= 1, (size, dots)


def test_labels_become_printable_ascii():
    assert printable("café") == "cafe"
    assert printable("Ünïcödé") == "Unicode"
    assert printable("a\nb\tc\x00d") == "a b c d"
    assert printable("猫 ☃") == "? ?"
    assert printable("zero\u200bwidth\u202eflip") == "zerowidthflip"
    assert printable("ﬁne ①") == "fine 1"


@settings(max_examples=60, deadline=None)
@given(label=st.text(max_size=300), prob=st.floats(), size=st.sampled_from(SIZES))
def test_any_label_renders_inside_the_frame(label, prob, size):
    width, height = size
    frame = np.full((height, width, 3), GREY, np.uint8)
    draw_overlay(frame, OverlayView([(label, prob), (label[::-1], -prob)], uncertain=True, caption=label), 0.9)
    margin = layout(width, height).margin
    assert (frame[:, width - margin :] == GREY).all()
    assert (frame[height - margin + 1 :] == GREY).all()


@pytest.mark.parametrize("size", [(1, 1), (64, 48), (100, 2000), (2000, 100)])
def test_frames_too_small_for_the_overlay_still_draw(size):
    width, height = size
    frame = np.full((height, width, 3), GREY, np.uint8)
    assert draw_overlay(frame, OverlayView([("cats", 0.5), ("dogs", 0.5)], caption=LONG)) is frame
