"""Fixtures of the export and quantize tests: a real digits CNN checkpoint, trained once per module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    """A real `cnn` trained for a few seconds on digits, saved by train.checkpoint."""
    pytest.importorskip("torch")
    from tests.digits_cnn import train_digits_cnn

    return train_digits_cnn(tmp_path_factory.mktemp("ckpt") / "digits.pt")
