"""Type checks for values read from an untrusted model card (JSON in a file, a sidecar, a checkpoint).

A card from elsewhere can hold anything JSON can: each check says, in one line, which field is
wrong, what it should be and what it is, instead of a TypeError from deep inside the runtime.
"""

from __future__ import annotations

from deploy.errors import EdgevisionError

MAX_SHOWN = 40  # characters of a bad value quoted in a message


def described(value: object) -> str:
    """A bad value as an error quotes it: its type, then its repr cut at `MAX_SHOWN` characters."""
    shown = repr(value)
    if len(shown) > MAX_SHOWN:
        shown = shown[:MAX_SHOWN] + "..."
    return f"{type(value).__name__} {shown}"


def _wrong(name: str, expected: str, value: object) -> EdgevisionError:
    return EdgevisionError(f"card field {name} must be {expected}, got {described(value)}")


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise _wrong(name, "a string", value)
    return value


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong(name, "true or false", value)
    return value


def check_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong(name, "an integer", value)
    return value


def check_number(value: object, name: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if not is_number(value):
        raise _wrong(name, "a number" + (" or null" if optional else ""), value)
    return value


def check_mapping(value: object, name: str) -> dict:
    if not isinstance(value, dict):
        raise _wrong(name, "a mapping", value)
    return value


def check_list(value: object, name: str, item: str, length: int | None = None) -> list:
    """A list (or tuple) whose items are all `item` ("str", "int" or "number"), of `length` when given."""
    valid = {"str": lambda v: isinstance(v, str), "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
             "number": is_number}[item]
    if not isinstance(value, (list, tuple)) or not all(valid(v) for v in value):
        raise _wrong(name, f"a list of {item}s", value)
    if length is not None and len(value) != length:
        raise _wrong(name, f"a list of {length} {item}s", value)
    return list(value)
