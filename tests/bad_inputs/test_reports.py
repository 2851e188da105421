"""Bad input to `edgevision report`, `bench` and `sweep`: malformed, huge, duplicated or hostile
report files, names that would break a table, options out of range and paths with `@` in them.
Each is merged, refused in one line naming the file and the field, or run with one warning line."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.html import blocks_html, fields_html
from benchmarks.merge import group_by_device, merged_blocks, merged_markdown
from benchmarks.provenance import provenance_pairs
from benchmarks.report import to_csv, to_markdown
from benchmarks.rows import Row
from benchmarks.schema import parse_report, to_json
from deploy.errors import EdgevisionError
from deploy.timing import LatencyStats

MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def timed_row(model: str = "m.onnx", ms: float = 2.0, threads: int = 1) -> Row:
    row = Row(model, "onnxruntime", "fp32", threads, 1, 4096, f"/models/{model}", top1=0.9, images=10, macs=1000)
    samples = [ms / 1000.0 * (1 + i / 100) for i in range(20)]
    row.latency = LatencyStats.from_samples(samples)
    row.samples_ms = [1000 * s for s in samples]
    row.load_s, row.peak_rss_bytes = 0.1, 2**20
    return row


MACHINE = {"machine": "x86_64", "emulated": False, "processor": "x86_64", "cpu": "Test CPU", "isa": ["avx2"],
           "power_mode": "MAXN (nvpmodel 0)", "jetson_clocks": True, "cpu_count": 4, "onnxruntime": "1.0",
           "peak": {"fp32_gmacs": 50.0, "fp32_threads": 1, "int8_gmacs": 100.0, "int8_threads": 1}}
PROVENANCE = {"date": "2026-01-02T03:04:05Z", "command": "edgevision bench m.onnx n.onnx --data d",
              "data": {"name": "d", "split": "val", "images": 10, "classes": 2, "sha256": "ab" * 32},
              "versions": {"edgevision": "0.1.0", "python": "3.11.7", "onnxruntime": "1.20.1"}}
GOOD = json.loads(to_json([timed_row(), timed_row("n.onnx", 3.0)], MACHINE, PROVENANCE))

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
    blocks_html(merged_blocks(group_by_device([report])))
    fields_html(provenance_pairs(report.provenance))
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
    with pytest.raises(EdgevisionError, match=r"r.json: a malformed .* rows\[1\].latency_ms.p50 must be a finite"):
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


# --- the commands, end to end ------------------------------------------------------------------

HOSTILE = "a | b`<i>*x\\|.onnx"  # a pipe, a backtick, markup and a backslash in one file name


def write_report(path: Path, rows: list[Row] | None = None, run_id: str | None = None) -> Path:
    data = json.loads(to_json(rows or [timed_row()], MACHINE))
    if run_id is not None:
        data["run_id"] = run_id
    path.write_text(json.dumps(data, indent=1))
    return path


def one_error_line(capsys, prog: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{prog}: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def hostile_bench(tmp_path_factory):
    """A real bench run of a tiny ONNX model under runs@2/ whose file name holds `|`, a backtick and `<`."""
    from benchmarks.cli import main
    from tests.runtime.onnx_models import make_onnx, tiny_card

    root = tmp_path_factory.mktemp("hostile")
    (root / "runs@2").mkdir()
    model = make_onnx(root / "runs@2" / HOSTILE, classes=2, card=tiny_card(classes=2))
    assert main(["bench", str(model), "--threads", "1", "--budget", "0.1", "--out", str(root / "out")]) == 0
    return root


def test_a_path_with_at_that_exists_is_benchmarked_as_named(hostile_bench):
    from benchmarks.schema import read_report

    (row,) = read_report(hostile_bench / "out" / "report.json").rows
    assert row.status == "ok" and row.model == HOSTILE and row.backend == "onnxruntime"
    assert row.path == str(hostile_bench / "runs@2" / HOSTILE)


def test_model_at_backend_splits_at_the_last_at_only_for_a_known_backend(hostile_bench, tmp_path):
    from benchmarks.rows import Target

    model = hostile_bench / "runs@2" / HOSTILE
    assert Target.parse(f"{model}@onnxruntime") == Target(model, "onnxruntime")
    with pytest.raises(EdgevisionError, match=r"'nope' after its last @ is not a backend; MODEL@BACKEND takes one of"):
        Target.parse(f"{model}@nope")
    with pytest.raises(EdgevisionError, match=r"model file not found: .*missing.onnx \(read .* as MODEL@BACKEND\)"):
        Target.parse(f"{tmp_path}/missing.onnx@onnxruntime")
    with pytest.raises(EdgevisionError, match="model file not found: "):
        Target.parse(f"{tmp_path}/missing.onnx")


def table_rows(markdown: str, header_start: str) -> tuple[list[str], list[list[str]]]:
    """The header cells and body rows' cells of the table whose header starts with `header_start`."""
    from tests.helpers import md_cells

    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    body = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        body.append(md_cells(line))
    return md_cells(lines[start]), body


def test_a_hostile_name_keeps_its_row_in_every_renderer(hostile_bench):
    import csv
    import io
    from html.parser import HTMLParser

    out = hostile_bench / "out"
    header, body = table_rows((out / "report.md").read_text(), "| model |")
    assert len(body) == 1 and len(body[0]) == len(header) and body[0][0] == HOSTILE
    table = list(csv.reader(io.StringIO((out / "report.csv").read_text())))
    assert len(table) == 2 and len(table[1]) == len(table[0]) and table[1][0] == HOSTILE

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.tags = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th") and self.rows:
                self.rows[-1].append("")

        def handle_data(self, data):
            if self.rows and self.rows[-1] and self.tags and self.tags[-1] in ("td", "th"):
                self.rows[-1][-1] += data

        def handle_endtag(self, tag):
            if self.tags and self.tags[-1] == tag:
                self.tags.pop()

    page = Cells()
    page.feed((out / "report.html").read_text())
    start = next(i for i, cells in enumerate(page.rows) if cells[0] == "model")
    assert page.rows[start + 1][0] == HOSTILE and len(page.rows[start + 1]) == len(page.rows[start])
    command = next(cells[1] for cells in page.rows if cells[0] == "command")
    assert str(hostile_bench / "runs@2" / HOSTILE) in shlex.split(command)  # shell-quoted, shown as text
    assert "<i>" not in (out / "report.html").read_text()


def test_a_hostile_name_keeps_its_row_in_the_merged_report(hostile_bench, tmp_path, capsys):
    from benchmarks.cli import main

    assert main(["report", str(hostile_bench / "out" / "report.json"), "--out", str(tmp_path)]) == 0
    markdown = (tmp_path / "report.md").read_text()
    for start in ("| device | model |", "| model | backend | MiB |"):
        header, body = table_rows(markdown, start)
        assert len(body) == 1 and len(body[0]) == len(header) and HOSTILE in body[0]
    assert "<i>" not in (tmp_path / "report.html").read_text()


def test_the_same_run_twice_counts_once_with_one_warning(tmp_path, capsys):
    from benchmarks.cli import main

    first = write_report(tmp_path / "a.json", [timed_row(ms=1.0)], run_id="run-1")
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(json.loads(first.read_text())))  # the same run, re-indented, another name
    other = write_report(tmp_path / "b.json", [timed_row(ms=1.5)], run_id="run-2")
    legacy = json.loads(first.read_text())
    del legacy["run_id"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(legacy))
    old_copy = tmp_path / "old_copy.json"
    old_copy.write_text(json.dumps(legacy, indent=3))  # no run id: the same values are the same run
    capsys.readouterr()
    args = [str(first), str(tmp_path / "." / "a.json"), str(copy), str(other), str(old), str(old_copy)]
    assert main(["report", *args]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("counted once")]
    assert len(warnings) == 1 and "a.json (given twice)" in warnings[0]
    assert "copy.json (the same run as" in warnings[0] and "old_copy.json (the same run as" in warnings[0]
    assert "(3 runs)" in captured.out  # a.json, b.json and old.json


def test_a_report_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch, capsys):
    from benchmarks.cli import main

    path = write_report(tmp_path / "big.json")
    monkeypatch.setenv("EDGEVISION_MAX_REPORT_BYTES", "100")
    assert main(["report", str(path)]) == 2
    line = one_error_line(capsys, "edgevision report")
    assert f"{path.stat().st_size} bytes, over the 100-byte limit" in line and "EDGEVISION_MAX_REPORT_BYTES" in line


def test_a_fifo_or_a_folder_as_a_report_is_refused_without_blocking(tmp_path, capsys):
    from benchmarks.cli import main

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    assert main(["report", str(fifo)]) == 2
    assert "pipe.json: not a regular file" in one_error_line(capsys, "edgevision report")
    assert main(["report", str(tmp_path)]) == 2
    assert "not a regular file" in one_error_line(capsys, "edgevision report")


def test_report_out_over_an_input_is_refused(tmp_path, capsys):
    from benchmarks.cli import main

    path = write_report(tmp_path / "report.md")  # a report saved under the name of an output
    before = path.read_bytes()
    assert main(["report", str(path), "--out", str(tmp_path)]) == 2
    assert "would overwrite the input" in one_error_line(capsys, "edgevision report")
    assert path.read_bytes() == before


def test_bench_out_that_is_a_model_file_or_holds_one_under_an_output_name(tmp_path, capsys):
    from benchmarks.cli import main
    from tests.runtime.onnx_models import make_onnx, tiny_card

    model = make_onnx(tmp_path / "m.onnx", classes=2, card=tiny_card(classes=2))
    assert main(["bench", str(model), "--out", str(model)]) == 2
    assert "is a file, not a folder" in one_error_line(capsys, "edgevision bench")
    named = make_onnx(tmp_path / "report.json", classes=2, card=tiny_card(classes=2))
    before = named.read_bytes()
    assert main(["bench", str(named), "--out", str(tmp_path)]) == 2
    assert "would overwrite the input" in one_error_line(capsys, "edgevision bench")
    assert named.read_bytes() == before


@pytest.mark.parametrize("argv, expected", [
    (["--budget", "nan"], "argument --budget: expected a number in (0, 86400]"),
    (["--budget", "inf"], "argument --budget: expected a number in (0, 86400]"),
    (["--budget", "-1"], "argument --budget: expected a number in (0, 86400]"),
    (["--limit", "0"], "argument --limit: expected an integer in [1, "),
    (["--batch", "0"], "argument --batch: expected integers in [1, 4096]"),
    (["--threads", "100000"], "argument --threads: expected integers in [1, "),
])
def test_bench_options_out_of_range_are_refused_naming_the_range(argv, expected, capsys):
    from benchmarks.cli import main

    with pytest.raises(SystemExit) as info:
        main(["bench", "m.onnx", *argv])
    assert info.value.code == 2 and expected in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--seconds", "nan"], "argument --seconds: expected a number in (0, 86400]"),
    (["--limit", "-3"], "argument --limit: expected an integer in [1, "),
    (["--threads", "0"], "argument --threads: expected an integer in [1, "),
    (["--latency-budget", "0"], "argument --latency-budget: expected a number in (0, "),
    (["--min-top1", "1.5"], "argument --min-top1: expected a number in (0, 1]"),
    (["--quant-budget", "-1"], "argument --quant-budget: expected a number in [0, 100]"),
    (["--finetune-epochs", "-1"], "argument --finetune-epochs: expected an integer in [0, "),
    (["--prune", "0.501,0.504"], "--prune 0.501 and 0.504 both round to p50, one file name"),
    (["--prune", "0,0.004"], "--prune 0.004 would be named p0"),
])
def test_sweep_options_out_of_range_are_refused_naming_the_range(argv, expected, capsys):
    from benchmarks.sweep import build_parser

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--model", "m.pt", "--data", "digits", "--out", "o", *argv])
    assert info.value.code == 2 and expected in capsys.readouterr().err


def test_sweep_levels_apart_by_a_percent_get_their_own_files():
    from benchmarks.sweep import build_parser, plan

    args = build_parser().parse_args(["--model", "m.pt", "--data", "d", "--out", "o", "--prune", "0,0.5,0.51,0.5"])
    names = [v.name for v in plan(args.prune, args.formats, args.quant)]
    assert names == ["p0-onnx-fp32", "p50-onnx-fp32", "p51-onnx-fp32"]


def test_a_report_with_a_wrong_field_is_one_line_naming_file_and_field(tmp_path, capsys):
    from benchmarks.cli import main

    path = write_report(tmp_path / "r.json")
    data = json.loads(path.read_text())
    data["rows"][0]["threads"] = "two"
    path.write_text(json.dumps(data))
    assert main(["report", str(path)]) == 2
    line = one_error_line(capsys, "edgevision report")
    assert f"{path}: a malformed edgevision.bench/1 report: field rows[0].threads must be an integer" in line


def test_data_that_is_a_fifo_is_refused_and_a_fifo_among_images_is_skipped(tmp_path, capsys):
    from benchmarks.cli import main
    from deploy.image_folder import image_files
    from tests.runtime.onnx_models import make_onnx, tiny_card

    model = make_onnx(tmp_path / "m.onnx", classes=2, card=tiny_card(classes=2))
    os.mkfifo(tmp_path / "data")
    assert main(["bench", str(model), "--data", str(tmp_path / "data")]) == 2
    assert f"--data {tmp_path / 'data'} is not a folder" in one_error_line(capsys, "edgevision bench")
    (tmp_path / "tree" / "a").mkdir(parents=True)
    os.mkfifo(tmp_path / "tree" / "a" / "x.png")  # reading it would wait for a writer forever
    assert image_files(tmp_path / "tree" / "a") == []


def test_a_baseline_that_names_no_row_is_said(tmp_path, capsys):
    from benchmarks.cli import main
    from tests.runtime.onnx_models import make_onnx, tiny_card

    model = make_onnx(tmp_path / "m.onnx", classes=2, card=tiny_card(classes=2))
    assert main(["bench", str(model), "--threads", "1", "--budget", "0.05", "--baseline", "other.onnx"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("--baseline")]
    assert warnings == ["--baseline other.onnx names no timed row (rows: m.onnx); speed-ups are relative to m.onnx"]


def test_sweep_out_where_a_variant_would_replace_the_checkpoint_is_refused(tmp_path, capsys):
    from benchmarks.sweep import main

    checkpoint = tmp_path / "p50.pt"
    checkpoint.write_bytes(b"checkpoint")  # refused before it is read
    argv = ["sweep", "--model", str(checkpoint), "--data", f"folder:{tmp_path}", "--out", str(tmp_path),
            "--prune", "0,0.5"]
    assert main(argv) == 2
    assert "would overwrite the input" in one_error_line(capsys, "edgevision sweep")
    assert checkpoint.read_bytes() == b"checkpoint"
