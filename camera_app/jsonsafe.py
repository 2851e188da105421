"""JSON with finite numbers only: NaN and infinity become null, and a stray one is an error, not `NaN`.

Python's `json` writes `NaN` and `Infinity` by default, which no strict JSON reader (a browser's
`JSON.parse`, jq) accepts.
"""

from __future__ import annotations

import json
import math

import numpy as np


def finite(value):
    """`value` (dicts, lists, tuples, scalars) with every non-finite float replaced by None."""
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value, **options) -> str:
    """`json.dumps` of `finite(value)` with `allow_nan=False`."""
    return json.dumps(finite(value), allow_nan=False, **options)
