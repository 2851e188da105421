"""Hypothesis: any bytes as a video file, and any bytes from an MJPEG stream, end the camera app with a
summary or a one-line EdgevisionError: never another exception, never a hang."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import camera_app
from deploy.errors import EdgevisionError
from tests.bad_inputs.camera_helpers import GOOD_JPEG, HostileMjpeg
from tests.helpers import write_video

QUICK = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tests.runtime.onnx_models import make_onnx, tiny_card

    return make_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx", card=tiny_card(classes=3))


@pytest.fixture(scope="module")
def real_avi(tmp_path_factory) -> bytes:
    return write_video(tmp_path_factory.mktemp("video") / "clip.avi", 4).read_bytes()


def run_or_refuse(model, source: str, **options) -> dict | None:
    """The app's summary, or None when it refused in one line; anything else fails the test."""
    try:
        return camera_app.run(str(model), source, max_frames=5, **options)
    except EdgevisionError as exc:
        assert "\n" not in str(exc)
        return None


@QUICK
@given(data=st.data())
def test_any_bytes_as_a_video_file(model, real_avi, tmp_path_factory, data):
    """Random bytes, or a real AVI cut short or with random bytes written over a stretch of it."""
    kind = data.draw(st.sampled_from(["random", "truncated", "overwritten"]))
    if kind == "random":
        content = data.draw(st.binary(max_size=4096))
    else:
        cut = data.draw(st.integers(0, len(real_avi)))
        content = real_avi[:cut]
        if kind == "overwritten":
            noise = data.draw(st.binary(min_size=1, max_size=512))
            content = real_avi[:cut] + noise + real_avi[cut + len(noise) :]
    path = tmp_path_factory.mktemp("any") / "clip.avi"
    path.write_bytes(content)
    summary = run_or_refuse(model, str(path))
    if summary is not None:
        assert summary["frames"]["classified"] <= 5


@settings(max_examples=8, deadline=None)
@given(payload=st.one_of(st.binary(max_size=2048), st.just(GOOD_JPEG), st.binary(max_size=64).map(
    lambda noise: GOOD_JPEG[:200] + noise + GOOD_JPEG[200 + len(noise) :])),
    claimed_factor=st.sampled_from([0.5, 1.0, 10.0]))
def test_any_bytes_from_a_stream(model, payload, claimed_factor):
    stream = HostileMjpeg(payload=payload, claimed=int(len(payload) * claimed_factor), parts=10)
    try:
        run_or_refuse(model, stream.url, max_reconnects=1, open_timeout=3.0, read_timeout=1.0, duration=5.0)
    finally:
        stream.stop()
