"""Argparse types for the numeric options of bench, report and sweep: finite, bounded, and saying
the accepted range in their one-line error (`float("nan")` and `float("inf")` parse, and a budget
of NaN seconds or -1 images means nothing)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _shown(value: float) -> str:
    return f"{value:g}"


def positive_float(maximum: float, minimum: float = 0.0, inclusive: bool = False) -> Callable[[str], float]:
    """A finite number in (minimum, maximum] (or [minimum, maximum] with `inclusive`)."""
    bracket = "[" if inclusive else "("
    accepted = f"a number in {bracket}{_shown(minimum)}, {_shown(maximum)}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}") from None
        low_ok = value >= minimum if inclusive else value > minimum
        if not (math.isfinite(value) and low_ok and value <= maximum):
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
        return value

    return parse


def positive_int(maximum: int, minimum: int = 1) -> Callable[[str], int]:
    """An integer in [minimum, maximum]."""
    accepted = f"an integer in [{minimum}, {maximum}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
        return value

    return parse


def comma_list(item: Callable[[str], T], example: str) -> Callable[[str], list[T]]:
    """`a,b,c` -> [item("a"), item("b"), item("c")], blanks dropped, at least one value. `item` says
    what is wrong with a part by raising argparse.ArgumentTypeError, or ValueError for "not a
    value of this kind" (then the error shows `example`)."""

    def parse(text: str) -> list[T]:
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list such as {example}, got {text!r}")
        try:
            return [item(part) for part in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list such as {example}, got {text!r}"
            ) from None

    return parse


def int_list(maximum: int) -> Callable[[str], list[int]]:
    """`1,2,4` -> [1, 2, 4]; every value an integer in [1, maximum]."""

    def bounded(text: str) -> int:
        if not 1 <= int(text) <= maximum:
            raise argparse.ArgumentTypeError(f"expected integers in [1, {maximum}] such as 1,2,4, got {text!r}")
        return int(text)

    return comma_list(bounded, "1,2,4")


def choice_list(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    """`fp32,int8` -> ["fp32", "int8"]; every value one of `allowed`."""

    def one_of(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(allowed)}, got {text!r}")
        return text

    return comma_list(one_of, ",".join(allowed))


MAX_SECONDS = 86_400.0  # a day of timed rounds
MAX_IMAGES = 10_000_000
MAX_BATCH = 4096
MAX_EPOCHS = 10_000
