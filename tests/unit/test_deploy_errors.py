"""`first_line`: the one-line reason of any exception, also one with an empty message."""

from __future__ import annotations

from deploy.errors import first_line


def test_first_line_of_a_message() -> None:
    message = RuntimeError("\n  size mismatch for head.weight  \nmore detail")
    assert first_line(message) == "size mismatch for head.weight"
    assert first_line(ValueError("x" * 500), limit=10) == "x" * 10


def test_empty_message_gives_the_type_name() -> None:
    assert first_line(RuntimeError()) == "RuntimeError"
    assert first_line(KeyError("")) == "''"  # KeyError quotes its key: not blank
    assert first_line(OSError(" \n ")) == "OSError"
