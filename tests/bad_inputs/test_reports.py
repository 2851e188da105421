"""Bad input to `edgevision report`, `bench` and `sweep`: malformed, huge, duplicated or hostile
report files, names that would break a table, options out of range and paths with `@` in them.
Each is merged, refused in one line naming the file and the field, or run with one warning line."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from benchmarks.merge import group_by_device, merged_markdown  # noqa: E402
from benchmarks.report import to_csv, to_markdown  # noqa: E402
from benchmarks.runner import Row  # noqa: E402
from benchmarks.schema import parse_report, to_json  # noqa: E402
from deploy.errors import EdgevisionError  # noqa: E402
from deploy.timing import LatencyStats  # noqa: E402

MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def timed_row(model: str = "m.onnx", ms: float = 2.0, threads: int = 1) -> Row:
    row = Row(model, "onnxruntime", "fp32", threads, 1, 4096, f"/models/{model}", top1=0.9, images=10, macs=1000)
    samples = [ms / 1000.0 * (1 + i / 100) for i in range(20)]
    row.latency = LatencyStats.from_samples(samples)
    row.samples_ms = [1000 * s for s in samples]
    row.load_s, row.peak_rss_bytes = 0.1, 2**20
    return row


MACHINE = {"machine": "x86_64", "emulated": False, "processor": "x86_64", "cpu": "Test CPU", "isa": ["avx2"],
           "cpu_count": 4, "onnxruntime": "1.0", "peak": {"fp32_gmacs": 50.0, "fp32_threads": 1,
                                                          "int8_gmacs": 100.0, "int8_threads": 1}}
GOOD = json.loads(to_json([timed_row(), timed_row("n.onnx", 3.0)], MACHINE))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside `value` (keys and list indexes)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += paths(item, (*prefix, index))
    return found


REPORT_PATHS = [p for p in paths(GOOD) if p]


def merged_or_refused(raw: bytes) -> str | None:
    """The merged Markdown of a report's bytes, or None when it was refused in one line naming the
    file; anything else (a traceback) fails the test."""
    try:
        report = parse_report(raw, "fuzz.json")
    except EdgevisionError as exc:
        assert str(exc).startswith("fuzz.json: ") and "\n" not in str(exc), repr(str(exc))
        return None
    text = merged_markdown(group_by_device([report]))
    to_markdown(report.rows, None, report.machine.get("peak"))
    to_csv(report.rows)
    return text


def set_path(data, path: tuple, value, delete: bool = False):
    target = data
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


def test_the_report_bench_writes_is_merged():
    assert "| m.onnx | onnxruntime |" in merged_or_refused(json.dumps(GOOD).encode())


@MANY
@given(json_values)
def test_any_json_value_is_merged_or_refused_in_one_line(value):
    merged_or_refused(json.dumps(value).encode())


@MANY
@given(st.binary(max_size=300))
def test_any_bytes_are_merged_or_refused_in_one_line(raw):
    merged_or_refused(raw)


@MANY
@given(st.lists(st.tuples(st.sampled_from(REPORT_PATHS), json_values, st.booleans()), min_size=1, max_size=3))
def test_a_good_report_with_fields_replaced_or_deleted_is_merged_or_refused(changes):
    data = json.loads(json.dumps(GOOD))
    for path, value, delete in changes:
        try:
            set_path(data, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the place
    merged_or_refused(json.dumps(data).encode())


@pytest.mark.parametrize("field, literal", [("top1", "NaN"), ("load_s", "Infinity"), ("load_s", "-Infinity"),
                                            ("load_s", "1e999"), ("size_bytes", "9" * 5000),
                                            ("size_bytes", "9" * 400)])
def test_nan_infinity_and_huge_numbers_are_refused_naming_the_field(field, literal):
    data = json.loads(json.dumps(GOOD))
    data["rows"][1][field] = "PLACEHOLDER"
    raw = json.dumps(data).replace('"PLACEHOLDER"', literal).encode()
    with pytest.raises(EdgevisionError) as info:
        parse_report(raw, "r.json")
    message = str(info.value)
    assert message.startswith("r.json: ") and "\n" not in message and len(message) < 300
    if len(literal) < 1000 and literal != "NaN" and "Infinity" not in literal and literal != "1e999":
        assert "rows[1].size_bytes" in message


def test_deeply_nested_arrays_are_refused():
    with pytest.raises(EdgevisionError, match="r.json: "):
        parse_report(b"[" * 100_000 + b"]" * 100_000, "r.json")
    data = json.loads(json.dumps(GOOD))
    data["machine"]["deep"] = "PLACEHOLDER"
    raw = json.dumps(data).replace('"PLACEHOLDER"', "[" * 50_000 + "]" * 50_000).encode()
    with pytest.raises(EdgevisionError, match="r.json: "):
        parse_report(raw, "r.json")


def test_a_malformed_field_is_named_with_its_row():
    data = json.loads(json.dumps(GOOD))
    data["rows"][1]["latency_ms"]["p50"] = "fast"
    with pytest.raises(EdgevisionError, match=r"r.json: a malformed .* field rows\[1\].latency_ms.p50 must be a finite"):
        parse_report(json.dumps(data).encode(), "r.json")
    del data["rows"][0]["batch"]
    with pytest.raises(EdgevisionError, match=r"field rows\[0\].batch must be an integer >= 1, got NoneType"):
        parse_report(json.dumps(data).encode(), "r.json")


def test_a_report_of_a_newer_schema_says_upgrade():
    data = {**GOOD, "schema": "edgevision.bench/7"}
    with pytest.raises(EdgevisionError, match="written by a newer edgevision; .* upgrade edgevision"):
        parse_report(json.dumps(data).encode(), "r.json")


def test_non_utf8_report_is_refused_naming_the_byte():
    raw = json.dumps(GOOD).encode().replace(b"Test CPU", b"Test \xff CPU")
    with pytest.raises(EdgevisionError, match=r"r.json: not UTF-8 text \(byte \d+\)"):
        parse_report(raw, "r.json")
