"""Several devices' bench reports as one comparison (`edgevision report A.json B.json ...`).

Reports are grouped by device: architecture, CPU model and whether the run was emulated (two runs
on one laptop are one device; a qemu run on that laptop is another, labelled as emulated, and
never stands for the hardware it imitates). Per device, the fastest configuration of each model
file; across devices, one model file's best median latency per image on each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.pareto import per_image_ms
from benchmarks.report import md_cell
from benchmarks.runner import Row
from benchmarks.schema import Report
from deploy.errors import EdgevisionError


@dataclass
class Device:
    label: str
    machine: dict  # the first report's fingerprint
    sources: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    @property
    def emulated(self) -> bool:
        return bool(self.machine.get("emulated"))


def device_key(machine: dict) -> tuple[str, str, bool]:
    """Architecture, CPU model (the host's, for an emulated run) and whether it was emulated."""
    cpu = machine.get("cpu") or machine.get("host_cpu") or machine.get("processor", "?")
    return (str(machine.get("machine", "?")), str(cpu), bool(machine.get("emulated")))


def isa_text(machine: dict) -> str:
    if "host_isa" in machine:
        return "host's: " + ", ".join(machine["host_isa"])
    return ", ".join(machine.get("isa", [])) or "-"


def device_label(machine: dict) -> str:
    arch, cpu, emulated = device_key(machine)
    return f"{arch} EMULATED on {cpu}" if emulated else f"{cpu} ({arch}, {machine.get('cpu_count', '?')} cores)"


def group_by_device(reports: list[Report]) -> list[Device]:
    devices: dict[tuple, Device] = {}
    for report in reports:
        device = devices.setdefault(device_key(report.machine), Device(device_label(report.machine), report.machine))
        device.sources.append(report.source)
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
    return f"{min(same):.2f}-{max(same):.2f} ({len(same)} runs)" if len(same) > 1 else "1 run"


def merged_markdown(devices: list[Device]) -> str:
    if not devices:
        raise EdgevisionError("no reports to merge")
    lines = ["## Devices", "", "| device | emulated | reports | rows | ISA | onnxruntime |", "|---|---|---|---|---|---|"]
    for d in devices:
        lines.append(f"| {md_cell(d.label)} | {'EMULATED' if d.emulated else 'no'} | {len(d.sources)} | {len(d.rows)} "
                     f"| {md_cell(isa_text(d.machine))} | {md_cell(d.machine.get('onnxruntime', '-'))} |")
    lines += ["", "## Best configuration per device", "",
              "| device | model | backend | precision | threads | batch | p50 ms / image | p50 over runs | p90 ms | img/s "
              "| top-1 % |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in devices:
        for row in best_per_artifact(d.rows).values():
            scored = next((r for r in d.rows if artifact_key(r) == artifact_key(row) and r.top1 is not None), None)
            top1 = f"{100 * scored.top1:.2f} ({scored.images})" if scored else "-"  # from any run that scored it
            lines.append(f"| {md_cell(d.label)} | {md_cell(row.model)} | {md_cell(row.backend)} "
                         f"| {md_cell(row.precision)} | {row.threads} "
                         f"| {row.batch} | {per_image_ms(row):.2f} | {spread(d.rows, row)} | {row.latency.p90_ms:.2f} "
                         f"| {row.throughput_ips:.1f} | {top1} |")
    lines += ["", "## The same model file across devices (best median ms per image; threads x batch)", ""]
    lines.append("| model | backend | MiB | " + " | ".join(md_cell(d.label) for d in devices) + " |")
    lines.append("|---|---|---|" + "---|" * len(devices))
    bests = [best_per_artifact(d.rows) for d in devices]
    for key in dict.fromkeys(k for best in bests for k in best):
        cells = []
        for d, best in zip(devices, bests):
            row = best.get(key)
            text = f"{per_image_ms(row):.2f} ({row.threads}x{row.batch})" if row else "-"
            cells.append(f"{text} emulated" if row and d.emulated else text)
        lines.append(f"| {md_cell(key[0])} | {md_cell(key[1])} | {key[2] / 2**20:.1f} | " + " | ".join(cells) + " |")
    if any(d.emulated for d in devices):
        lines += ["", "EMULATED columns time an emulator (qemu) on the host named, not the device it imitates: "
                      "they check that the artifacts run there, not how fast."]
    return "\n".join(lines)
