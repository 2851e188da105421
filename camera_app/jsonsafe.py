"""JSON that every parser reads: non-finite floats (NaN, inf) become null, numpy scalars plain numbers.

`json.dumps` writes NaN and Infinity by default, which is not JSON: a browser's `JSON.parse` and
most other readers reject the whole document. Pass the result to `json.dumps(..., allow_nan=False)`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def finite_json(obj: Any) -> Any:
    """A copy of `obj` (dicts, lists, tuples, numbers, strings) with NaN/inf as None."""
    if isinstance(obj, dict):
        return {str(key): finite_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(value) for value in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj
