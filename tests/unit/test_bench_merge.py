"""`edgevision report`: bench reports of several devices merged, emulated runs labelled as such."""

from __future__ import annotations

import json
from html import escape

import pytest

from benchmarks.cli import main as cli_main
from benchmarks.schema import read_report
from tests.helpers import md_cells
from tests.runtime.onnx_models import make_onnx, tiny_card


@pytest.fixture(scope="module")
def host_report(tmp_path_factory):
    """A real bench run of two tiny models on this machine."""
    root = tmp_path_factory.mktemp("merge")
    models = [str(make_onnx(root / f"m{seed}.onnx", classes=2, card=tiny_card(classes=2), seed=seed))
              for seed in (0, 1)]
    assert cli_main(["bench", *models, "--threads", "1", "--budget", "0.1", "--out", str(root / "host")]) == 0
    return root / "host" / "report.json"


def variant(source, target, machine: dict, threads: int, scale: float):
    """The same report as another run: another run id, machine and thread count, latencies scaled."""
    data = json.loads(source.read_text())
    data["run_id"] = target.stem
    data["machine"] = {k: v for k, v in {**data["machine"], **machine}.items() if v is not None}
    for row in data["rows"]:
        row["threads"] = threads
        for key in ("p50", "p90", "p95", "p99", "mean", "std", "min", "max"):
            row["latency_ms"][key] *= scale
        row["throughput_ips"] /= scale
    target.write_text(json.dumps(data))
    return target


def test_devices_grouped_best_configuration_and_emulation_labelled(host_report, tmp_path, capsys):
    faster = variant(host_report, tmp_path / "host_t2.json", {}, threads=2, scale=0.5)  # same device, more runs
    again = variant(host_report, tmp_path / "host_t2_again.json", {}, threads=2, scale=0.6)
    emulated = variant(host_report, tmp_path / "qemu.json",
                       {"machine": "aarch64", "emulated": True, "emulation": "aarch64 process on a x86_64 kernel",
                        "host_cpu": "AMD EPYC", "host_isa": ["avx2"], "cpu": None, "isa": None},
                       threads=4, scale=40.0)
    out = tmp_path / "merged"
    assert cli_main(["report", str(host_report), str(faster), str(again), str(emulated), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    devices = [line for line in text.split("## Devices")[1].split("##")[0].splitlines()
               if line.startswith("| ") and "device" not in line]
    assert len(devices) == 2  # two runs of this machine are one device; the qemu run is another
    assert "| 3 |" in devices[0] and "aarch64 EMULATED on AMD EPYC" in devices[1] and "host's: avx2" in devices[1]
    best = text.split("## Best configuration per device")[1].split("##")[0]
    host_rows = [line for line in best.splitlines()
                 if line.startswith("| ") and "EMULATED" not in line and "device" not in line]
    assert len(host_rows) == 2 and all("| 2 | 1 |" in line for line in host_rows)  # the faster run's threads
    assert all("(2 runs)" in line for line in host_rows)  # threads 2 ran twice: its p50 from one run to the next
    across = [line for line in text.split("across devices")[1].splitlines()
              if line.startswith("| m") and "model" not in line]
    assert len(across) == 2 and all(line.rstrip(" |").endswith("emulated") for line in across)
    assert "not the device it imitates" in text
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and "http://" not in page and "https://" not in page
    assert (out / "report.md").read_text().strip() == text.split("report written")[0].strip()


def test_a_report_of_another_schema_is_refused_in_one_line(host_report, tmp_path, capsys):
    old = tmp_path / "old.json"
    data = json.loads(host_report.read_text())
    del data["schema"]
    old.write_text(json.dumps(data))
    assert cli_main(["report", str(host_report), str(old)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgevision report: error: ") and "no schema key" in err and err.count("\n") == 1


def test_each_run_shows_its_provenance_and_an_older_report_without_one_is_merged(host_report, tmp_path, capsys):
    data = json.loads(host_report.read_text())
    provenance = data.pop("provenance")
    data["run_id"] = "older"
    data["machine"]["onnxruntime"] = "1.16.3"  # where reports kept versions before they carried provenance
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    assert read_report(old).provenance is None and read_report(host_report).provenance == provenance
    out = tmp_path / "merged"
    assert cli_main(["report", str(host_report), str(old), "--out", str(out)]) == 0
    runs = capsys.readouterr().out.split("## Runs")[1].split("##")[0]
    header, *body = [md_cells(line) for line in runs.splitlines() if line.startswith("| ")]
    new, older = (dict(zip(header, cells, strict=True)) for cells in body)
    assert new["report"] == str(host_report) and older["report"] == str(old)
    assert new["date (UTC)"] == provenance["date"] and new["command"] == provenance["command"]
    assert new["data"].startswith("none") and f"onnxruntime {provenance['versions']['onnxruntime']}" in new["versions"]
    assert older["date (UTC)"] == older["command"] == older["data"] == "not recorded"
    assert older["versions"] == "onnxruntime 1.16.3"
    page = (out / "report.html").read_text()
    assert escape(provenance["command"]) in page and "not recorded" in page and "onnxruntime 1.16.3" in page
