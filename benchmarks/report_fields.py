"""Type checks for the values of a report.json from elsewhere (another device, a CI artifact, a
hand edit): each says in one line which field is wrong, what it should be and what it is, as
`deploy.fields` does for model cards, instead of a TypeError deep inside the merge or a plot."""

from __future__ import annotations

import math

from deploy.errors import EdgevisionError
from deploy.fields import described, is_number


class FieldError(EdgevisionError):
    """A field of the wrong type or range; the reader adds the file's name."""


def wrong(name: str, expected: str, value: object) -> FieldError:
    return FieldError(f"field {name} must be {expected}, got {described(value)}")


def text(data: dict, key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise wrong(f"{where}{key}", "a string", value)
    return value


def integer(data: dict, key: str, where: str, minimum: int = 0, optional: bool = False,
            default: int | None = None) -> int | None:
    value = data.get(key, default)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise wrong(f"{where}{key}", f"an integer >= {minimum}" + (" or null" if optional else ""), value)
    return value


def number(data: dict, key: str, where: str, minimum: float = 0.0, maximum: float = math.inf,
           optional: bool = False) -> float | None:
    """A finite number in [minimum, maximum] (null too when `optional`)."""
    value = data.get(key)
    if value is None and optional:
        return None
    if not is_number(value) or not math.isfinite(value) or not minimum <= value <= maximum:
        bounds = f"in [{minimum:g}, {maximum:g}]" if math.isfinite(maximum) else f">= {minimum:g}"
        raise wrong(f"{where}{key}", f"a finite number {bounds}" + (" or null" if optional else ""), value)
    return float(value)


def mapping(value: object, name: str) -> dict:
    if not isinstance(value, dict):
        raise wrong(name, "a mapping", value)
    return value


def array(value: object, name: str) -> list:
    if not isinstance(value, list):
        raise wrong(name, "a list", value)
    return value


def strings(data: dict, key: str, where: str) -> None:
    """An optional list of strings (absent is fine)."""
    if key in data and not (isinstance(data[key], list) and all(isinstance(v, str) for v in data[key])):
        raise wrong(f"{where}{key}", "a list of strings", data[key])
