"""The report's JSON, versioned: what `edgevision bench` writes and `edgevision report` reads.

    {"schema": "edgevision.bench/1", "run_id": "<hex>", "machine": {...fingerprint...},
     "provenance": {...}, "rows": [{...}, ...]}

A row: model, path, backend, precision, threads, batch, status, error, latency_ms (p50, p90, p95,
p99, mean, std, min, max over `samples` timed calls, and `values`: the calls in ms, at most 5000,
thinned evenly), throughput_ips, top1, top5, images, agreement, size_bytes, peak_rss_bytes,
load_s (deploy.load in a fresh process), first_ms (the first call after loading, apart from the timed
ones), provider (where the row ran, as its backend says), macs, params, gmacs_per_s; first_ms and
provider are absent in older reports and read as null and "". The machine holds its measured matrix-product peak under
`peak` (`benchmarks.roofline`). Unmeasured values are null. `run_id` (absent in older reports) tells
a copy of a run from another run. `provenance` (absent in older reports, `benchmarks.provenance`):
date (UTC, ISO 8601), command (shell-quoted), data (null, or name, split, images, classes and
sha256 of the images scored) and versions (package -> version: edgevision, python, numpy, opencv
and each runtime the rows used). A reader of another version refuses it with one line rather than
misreading it, and so does one that finds a field of the wrong type (`benchmarks.report_fields`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks import report_fields as fields
from benchmarks.roofline import achieved_gmacs
from benchmarks.rows import Row
from deploy.errors import EdgevisionError, first_line
from deploy.fields import MAX_SHOWN
from deploy.timing import LatencyStats

SCHEMA = "edgevision.bench/1"
SCHEMA_FAMILY, _, SCHEMA_VERSION = SCHEMA.partition("/")
STATS = ("p50", "p90", "p95", "p99", "mean", "std", "min", "max")
FIELDS = ("model", "path", "backend", "precision", "threads", "batch", "status", "error", "top1", "top5", "images",
          "agreement", "size_bytes", "peak_rss_bytes", "load_s", "first_ms", "provider", "macs", "params")
STATUSES = ("ok", "failed", "interrupted")
MAX_COUNT = 2**63 - 1  # bytes, MACs, parameters: what a float (the tables' MiB) can still hold
DEFAULT_MAX_REPORT_BYTES = 64 * 2**20  # a report of 100 rows with 5000 samples each is about 5 MiB


def max_report_bytes() -> int:
    """The largest report.json read (JSON takes ~7x its size in memory); EDGEVISION_MAX_REPORT_BYTES raises it."""
    text = os.environ.get("EDGEVISION_MAX_REPORT_BYTES", "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_REPORT_BYTES


@dataclass
class Report:
    machine: dict
    rows: list[Row]
    source: str = ""  # the file it was read from
    run_id: str | None = None  # written since reports carry one; older ones are known by `digest`
    digest: str = ""  # sha256 of the report's JSON values (not its bytes: re-indenting keeps it)
    provenance: dict | None = None  # None in reports written before they carried one

    @property
    def identity(self) -> str:
        """What makes two files one run: the run id bench wrote, else the same JSON values."""
        return f"run {self.run_id}" if self.run_id else f"content {self.digest}"


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


def _finite(value: object) -> object:
    """`value` with every NaN or infinity made null: the reader refuses them, JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def to_json(rows: list[Row], fingerprint: dict, provenance: dict | None = None) -> str:
    """The report; `run_id` is new for every run, so that a copy of it is recognised as the same run."""
    report = {"schema": SCHEMA, "run_id": uuid.uuid4().hex, "machine": fingerprint,
              **({"provenance": provenance} if provenance is not None else {}),
              "rows": [row_to_dict(r) for r in rows]}
    return json.dumps(_finite(report), indent=1, allow_nan=False)


def _latency(data: object, where: str) -> LatencyStats | None:
    if data is None:
        return None
    lat = fields.mapping(data, where.rstrip("."))
    values = {name: fields.number(lat, name, where) for name in STATS}
    for name in ("p50", "mean"):  # per-image figures and images per second divide by them
        if values[name] <= 0:
            raise fields.wrong(f"{where}{name}", "a number > 0", values[name])
    return LatencyStats(samples=fields.integer(lat, "samples", where, minimum=1, default=None),
                        **{f"{name}_ms": value for name, value in values.items()})


def row_from_dict(data: object, where: str = "") -> Row:
    """One row, every field's type and range checked; `where` prefixes the field names in errors."""
    row = fields.mapping(data, where.rstrip(".") or "row")
    status = fields.text(row, "status", where, default="ok")
    if status not in STATUSES:
        raise fields.wrong(f"{where}status", " or ".join(STATUSES), status)
    out = Row(
        fields.text(row, "model", where), fields.text(row, "backend", where), fields.text(row, "precision", where),
        fields.integer(row, "threads", where, minimum=1), fields.integer(row, "batch", where, minimum=1),
        fields.integer(row, "size_bytes", where), path=fields.text(row, "path", where, default=""), status=status,
        error=fields.text(row, "error", where, default=""),
        top1=fields.number(row, "top1", where, maximum=1.0, optional=True),
        top5=fields.number(row, "top5", where, maximum=1.0, optional=True),
        images=fields.integer(row, "images", where, default=0),
        agreement=fields.number(row, "agreement", where, maximum=1.0, optional=True),
        peak_rss_bytes=fields.integer(row, "peak_rss_bytes", where, optional=True),
        load_s=fields.number(row, "load_s", where, optional=True),
        first_ms=fields.number(row, "first_ms", where, optional=True),
        provider=fields.text(row, "provider", where, default=""),
        macs=fields.integer(row, "macs", where, optional=True),
        params=fields.integer(row, "params", where, optional=True),
    )
    for name in ("size_bytes", "peak_rss_bytes", "macs", "params", "images"):
        if (getattr(out, name) or 0) > MAX_COUNT:
            raise fields.wrong(f"{where}{name}", f"at most {MAX_COUNT}", getattr(out, name))
    out.latency = _latency(row.get("latency_ms"), f"{where}latency_ms.")
    if out.latency is not None:
        samples = fields.array(row["latency_ms"].get("values", []), f"{where}latency_ms.values")
        if not all(fields.is_number(v) and math.isfinite(v) and v >= 0 for v in samples):
            raise fields.wrong(f"{where}latency_ms.values", "a list of finite numbers >= 0", samples)
        out.samples_ms = [float(v) for v in samples]
    return out


def machine_from_dict(data: object) -> dict:
    """The fingerprint: free-form, but the keys the merge and the plots read have their types."""
    machine = fields.mapping(data, "machine")
    for key in ("machine", "cpu", "host_cpu", "processor", "emulation", "power_mode"):
        if key in machine:
            fields.text(machine, key, "machine.")
    for key in ("emulated", "jetson_clocks"):
        if key in machine and not isinstance(machine[key], bool):
            raise fields.wrong(f"machine.{key}", "true or false", machine[key])
    fields.strings(machine, "isa", "machine.")
    fields.strings(machine, "host_isa", "machine.")
    fields.integer(machine, "cpu_count", "machine.", minimum=1, optional=True)
    if machine.get("peak") is not None:
        peak = fields.mapping(machine["peak"], "machine.peak")
        for kind in ("fp32", "int8"):
            if fields.number(peak, f"{kind}_gmacs", "machine.peak.") <= 0:
                raise fields.wrong(f"machine.peak.{kind}_gmacs", "a number > 0", peak[f"{kind}_gmacs"])
            fields.integer(peak, f"{kind}_threads", "machine.peak.", minimum=1)
    return machine


def provenance_from_dict(data: object) -> dict | None:
    """The provenance, each field checked; None where the report has none (written before)."""
    if data is None:
        return None
    provenance = fields.mapping(data, "provenance")
    for key in ("date", "command"):
        if key in provenance:
            fields.text(provenance, key, "provenance.")
    if provenance.get("data") is not None:
        used = fields.mapping(provenance["data"], "provenance.data")
        for key in ("name", "split", "sha256"):
            if key in used:
                fields.text(used, key, "provenance.data.")
        for key in ("images", "classes"):
            fields.integer(used, key, "provenance.data.", optional=True)
    versions = fields.mapping(provenance.get("versions", {}), "provenance.versions")
    for key in versions:
        fields.text(versions, key, "provenance.versions.")
    return provenance


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf
        raise ValueError(f"number {text} out of range")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _check_schema(found: object) -> None:
    if found == SCHEMA:
        return
    if isinstance(found, str) and found.startswith(SCHEMA_FAMILY + "/"):
        version = found.partition("/")[2]
        if version.isdigit() and int(version) > int(SCHEMA_VERSION):
            raise EdgevisionError(f"schema {found!r} was written by a newer edgevision; this one reads {SCHEMA}: "
                                  "upgrade edgevision to merge it")
    if found is None:
        raise EdgevisionError(f"no schema key (written before reports were versioned?); this edgevision reads {SCHEMA}")
    raise EdgevisionError(f"schema {repr(found)[:MAX_SHOWN]}; this edgevision reads {SCHEMA}")


def read_text_bounded(path: Path) -> bytes:
    """The bytes of a regular file of at most `max_report_bytes()`, its size checked before reading."""
    limit = max_report_bytes()
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read, a folder fails it
            raise EdgevisionError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise EdgevisionError(f"{path}: {info.st_size} bytes, over the {limit}-byte limit for a report "
                                  "(EDGEVISION_MAX_REPORT_BYTES raises it)")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise EdgevisionError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:  # it grew after the stat
        raise EdgevisionError(f"{path}: over the {limit}-byte limit for a report "
                              "(EDGEVISION_MAX_REPORT_BYTES raises it)")
    return data


def parse_report(raw: bytes, source: str = "") -> Report:
    """A report from the bytes of a report.json; anything but a valid one raises EdgevisionError in one line."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EdgevisionError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise EdgevisionError(f"{source}: not JSON ({exc.msg}, line {exc.lineno})") from None
    except ValueError as exc:  # NaN / Infinity, 1e999, an integer of more than 4300 digits
        raise EdgevisionError(f"{source}: not a report's JSON ({first_line(exc, 80)})") from None
    except RecursionError:
        raise EdgevisionError(f"{source}: not a report's JSON (nested too deeply)") from None
    try:
        _check_schema(data.get("schema") if isinstance(data, dict) else None)
        run_id = data.get("run_id")
        if run_id is not None and not isinstance(run_id, str):
            raise fields.wrong("run_id", "a string", run_id)
        machine = machine_from_dict(data.get("machine"))
        provenance = provenance_from_dict(data.get("provenance"))
        rows = [row_from_dict(r, f"rows[{i}].") for i, r in enumerate(fields.array(data.get("rows"), "rows"))]
    except fields.FieldError as exc:
        raise EdgevisionError(f"{source}: a malformed {SCHEMA} report: {exc}") from None
    except EdgevisionError as exc:
        raise EdgevisionError(f"{source}: {exc}") from None
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return Report(machine, rows, source, run_id, digest, provenance)


def read_report(path: Path) -> Report:
    """A report.json written by `edgevision bench`; a file of another schema, too large, not UTF-8 or
    malformed in any field is refused in one line that names the file (and the field)."""
    return parse_report(read_text_bounded(Path(path)), str(path))
