"""Several devices' bench reports as one comparison (`edgevision report A.json B.json ...`).

Reports are grouped by device: architecture, CPU model, whether the run was emulated, and a
Jetson's power mode and jetson_clocks state (two runs on one laptop are one device; a qemu run on
that laptop is another, labelled as emulated, and never stands for the hardware it imitates; one
Jetson at two power modes is two devices). Per device, the fastest configuration of each model
file; across devices, one model file's best median latency per image on each. Every report's
provenance (date, command, data, versions) is listed with its device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.pareto import per_image_ms
from benchmarks.provenance import provenance_pairs
from benchmarks.report import clock_settings
from benchmarks.rows import Row
from benchmarks.schema import Report
from benchmarks.table import Block, Heading, Line, Table, short, to_markdown
from deploy.errors import EdgevisionError


@dataclass
class Device:
    label: str
    machine: dict  # the first report's fingerprint
    sources: list[str] = field(default_factory=list)
    provenances: list[dict] = field(default_factory=list)  # one per source
    rows: list[Row] = field(default_factory=list)

    @property
    def emulated(self) -> bool:
        return bool(self.machine.get("emulated"))


def device_key(machine: dict) -> tuple[str, str, bool, str]:
    """Architecture, CPU model (the host's, for an emulated run), whether it was emulated, and a
    Jetson's clock settings (one board at two power modes is two devices: its clocks differ)."""
    cpu = machine.get("cpu") or machine.get("host_cpu") or machine.get("processor", "?")
    return (str(machine.get("machine", "?")), str(cpu), bool(machine.get("emulated")), clock_settings(machine))


def isa_text(machine: dict) -> str:
    if "host_isa" in machine:
        return "host's: " + ", ".join(machine["host_isa"])
    return ", ".join(machine.get("isa", [])) or "-"


def device_label(machine: dict) -> str:
    arch, cpu, emulated, clocks = device_key(machine)
    if emulated:
        return f"{arch} EMULATED on {cpu}"
    return f"{cpu} ({arch}, {machine.get('cpu_count', '?')} cores{', ' + clocks if clocks else ''})"


OLD_VERSION_KEYS = ("edgevision", "python", "numpy", "cv2", "onnxruntime", "torch", "executorch")


def _older(machine: dict) -> dict:
    """What a report written before provenance still tells: the versions its fingerprint kept."""
    return {"versions": {key: str(machine[key]) for key in OLD_VERSION_KEYS if machine.get(key) is not None}}


def group_by_device(reports: list[Report]) -> list[Device]:
    devices: dict[tuple, Device] = {}
    for report in reports:
        device = devices.setdefault(device_key(report.machine), Device(device_label(report.machine), report.machine))
        device.sources.append(report.source)
        device.provenances.append(report.provenance or _older(report.machine))
        device.rows.extend(report.rows)
    return list(devices.values())


def artifact_key(row: Row) -> tuple[str, str, int]:
    """One model file, wherever it was copied: its name, backend and size."""
    return (row.model, row.backend, row.size_bytes)


def best_per_artifact(rows: list[Row]) -> dict[tuple, Row]:
    """Each model file's fastest timed configuration (lowest median latency per image)."""
    best: dict[tuple, Row] = {}
    for row in rows:
        if row.status == "ok" and row.latency:
            key = artifact_key(row)
            if key not in best or per_image_ms(row) < per_image_ms(best[key]):
                best[key] = row
    return best


def spread(rows: list[Row], best: Row) -> str:
    """The best row's configuration in every run of the device: its p50s per image, lowest to
    highest, and how many runs (the noise between runs, against the ratios inside one)."""
    same = [per_image_ms(r) for r in rows if r.status == "ok" and r.latency and artifact_key(r) == artifact_key(best)
            and (r.threads, r.batch) == (best.threads, best.batch)]
    return f"{short(min(same))}-{short(max(same))} ({len(same)} runs)" if len(same) > 1 else "1 run"


def merged_blocks(devices: list[Device]) -> list[Block]:
    """The comparison as blocks (`benchmarks.table`): devices, each one's runs with their
    provenance, the best configuration per device, each model file across devices."""
    if not devices:
        raise EdgevisionError("no reports to merge")
    blocks: list[Block] = [Heading("Devices"), Table(["device", "emulated", "reports", "rows", "ISA"], [
        Line([d.label, "EMULATED" if d.emulated else "no", str(len(d.sources)), str(len(d.rows)), isa_text(d.machine)])
        for d in devices])]
    runs = Table(["device", "report", *(key for key, _ in provenance_pairs(None))], kind="text")
    for d in devices:
        for source, provenance in zip(d.sources, d.provenances, strict=True):
            runs.add([d.label, source, *(text for _, text in provenance_pairs(provenance))])
    blocks += [Heading("Runs: when, how, on which data, with which versions"), runs]
    best_table = Table(["device", "model", "backend", "precision", "threads", "batch", "p50 ms / image",
                        "p50 over runs", "p90 ms", "img/s", "top-1 %"])
    for d in devices:
        for row in best_per_artifact(d.rows).values():
            scored = next((r for r in d.rows if artifact_key(r) == artifact_key(row) and r.top1 is not None), None)
            top1 = f"{100 * scored.top1:.2f} ({scored.images})" if scored else "-"  # from any run that scored it
            best_table.add([d.label, row.model, row.backend, row.precision, str(row.threads), str(row.batch),
                            short(per_image_ms(row)), spread(d.rows, row), short(row.latency.p90_ms),
                            f"{row.throughput_ips:.1f}", top1])
    blocks += [Heading("Best configuration per device"), best_table]
    across = Table(["model", "backend", "MiB", *(d.label for d in devices)])
    bests = [best_per_artifact(d.rows) for d in devices]
    for key in dict.fromkeys(k for best in bests for k in best):
        cells = []
        for d, best in zip(devices, bests, strict=True):
            row = best.get(key)
            text = f"{short(per_image_ms(row))} ({row.threads}x{row.batch})" if row else "-"
            cells.append(f"{text} emulated" if row and d.emulated else text)
        across.add([key[0], key[1], f"{key[2] / 2**20:.1f}", *cells])
    blocks += [Heading("The same model file across devices (best median ms per image; threads x batch)"), across]
    if any(d.emulated for d in devices):
        blocks.append("EMULATED columns time an emulator (qemu) on the host named, not the device it imitates: "
                      "they check that the artifacts run there, not how fast.")
    return blocks


def merged_markdown(devices: list[Device]) -> str:
    return to_markdown(merged_blocks(devices))
