"""The report's JSON, versioned: what `edgevision bench` writes and `edgevision report` reads.

    {"schema": "edgevision.bench/1", "machine": {...fingerprint...}, "rows": [{...}, ...]}

A row: model, path, backend, precision, threads, batch, status, error, latency_ms (p50, p90, p95,
p99, mean, std, min, max over `samples` timed calls, and `values`: the calls in ms, at most 5000,
thinned evenly), throughput_ips, top1, top5, images, agreement, size_bytes, peak_rss_bytes,
load_s, macs, params, gmacs_per_s. The machine holds its measured matrix-product peak under
`peak` (`benchmarks.roofline`). Unmeasured values are null. A reader of another version refuses it with one line rather than misreading it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchmarks.roofline import achieved_gmacs
from benchmarks.runner import Row
from deploy.errors import EdgevisionError
from deploy.timing import LatencyStats

SCHEMA = "edgevision.bench/1"
STATS = ("p50", "p90", "p95", "p99", "mean", "std", "min", "max")
FIELDS = ("model", "path", "backend", "precision", "threads", "batch", "status", "error", "top1", "top5", "images",
          "agreement", "size_bytes", "peak_rss_bytes", "load_s", "macs", "params")


@dataclass
class Report:
    machine: dict
    rows: list[Row]
    source: str = ""  # the file it was read from


def row_to_dict(row: Row) -> dict:
    out = {name: getattr(row, name) for name in FIELDS}
    lat = row.latency
    out["latency_ms"] = None if lat is None else {
        **{name: round(getattr(lat, f"{name}_ms"), 4) for name in STATS},
        "samples": lat.samples, "values": row.samples_ms,
    }
    out["throughput_ips"] = round(row.throughput_ips, 3) if row.throughput_ips else None
    out["gmacs_per_s"] = round(achieved_gmacs(row), 3) if achieved_gmacs(row) else None
    return out


def row_from_dict(data: dict) -> Row:
    row = Row(**{name: data.get(name) for name in FIELDS if name in data})
    lat = data.get("latency_ms")
    if lat:
        row.latency = LatencyStats(samples=lat["samples"], **{f"{name}_ms": lat[name] for name in STATS})
        row.samples_ms = list(lat.get("values") or [])
    return row


def to_json(rows: list[Row], fingerprint: dict) -> str:
    return json.dumps({"schema": SCHEMA, "machine": fingerprint, "rows": [row_to_dict(r) for r in rows]}, indent=1)


def read_report(path: Path) -> Report:
    """A report.json written by `edgevision bench`; a file of another schema is refused in one line."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise EdgevisionError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise EdgevisionError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    found = data.get("schema") if isinstance(data, dict) else None
    if found != SCHEMA:
        what = f"schema {found!r}" if found else "no schema key (written before reports were versioned?)"
        raise EdgevisionError(f"{path}: {what}; this edgevision reads {SCHEMA}")
    try:
        return Report(data["machine"], [row_from_dict(r) for r in data["rows"]], str(path))
    except (KeyError, TypeError) as exc:
        raise EdgevisionError(f"{path}: a malformed {SCHEMA} report ({type(exc).__name__}: {exc})") from None
