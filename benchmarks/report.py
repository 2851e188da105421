"""Benchmark rows as one table (`COLUMNS`, with ratios to a baseline row) for Markdown and HTML, as
CSV; the machine's fingerprint. The JSON is `benchmarks.schema`."""

from __future__ import annotations

import csv
import io
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.pareto import per_image_ms
from benchmarks.provenance import provenance_pairs
from benchmarks.roofline import achieved_gmacs, peak_for
from benchmarks.runner import Row
from benchmarks.table import Fields, Heading, Table, short
from benchmarks.table import to_markdown as render_markdown
from deploy.jetson import clocks_pinned, l4t_release, power_mode


# Architecture families: a process of one family on a kernel of another runs under emulation
# (qemu-user through binfmt_misc); armv7l on an aarch64 kernel (32-bit Raspberry Pi OS) does not.
ARCH_FAMILIES = {
    "x86_64": "x86", "amd64": "x86", "i386": "x86", "i686": "x86",
    "aarch64": "arm", "arm64": "arm", "armv8l": "arm", "armv7l": "arm", "armv6l": "arm",
}
X86_VENDORS = ("GenuineIntel", "AuthenticAMD")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def emulation(machine: str) -> str | None:
    """Why this process looks emulated (e.g. an aarch64 process on an x86_64 kernel), else None.

    qemu-user answers `uname` with the guest's machine but leaves the kernel's own files alone:
    /proc/sys/kernel/arch (Linux >= 6.1) names the kernel's architecture, and /proc/cpuinfo
    lists the host's processors (Intel/AMD vendor ids under an Arm process).
    """
    family = ARCH_FAMILIES.get(machine.lower())
    kernel = _read("/proc/sys/kernel/arch").strip()
    if family and ARCH_FAMILIES.get(kernel.lower(), family) != family:
        return f"{machine} process on a {kernel} kernel"
    vendor = next((v for v in X86_VENDORS if v in _read("/proc/cpuinfo")), None)
    if family == "arm" and vendor:
        return f"{machine} process on {vendor} processors"
    return None


ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "asimd", "neon", "asimddp",
             "i8mm", "sve")


def cpu_details() -> dict:
    """CPU model, the ISA features that decide which kernels a runtime picks, and where Linux
    tells: the frequency governor, the hottest thermal zone and a Raspberry Pi's throttling."""
    info = _read("/proc/cpuinfo")
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    out = {
        "cpu": fields.get("model name") or fields.get("Model") or fields.get("Hardware") or platform.processor(),
        "isa": [f for f in ISA_FLAGS if f in flags],
    }
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip()
    if governor:
        out["governor"] = governor
    temps = []
    for zone in range(16):
        text = _read(f"/sys/class/thermal/thermal_zone{zone}/temp").strip()
        if text.lstrip("-").isdigit():
            temps.append(int(text) / 1000)
    if temps:
        out["temperature_c"] = max(temps)
    throttled = _read("/sys/devices/platform/soc/soc:firmware/get_throttled").strip()  # Raspberry Pi
    if throttled:
        out["throttled"] = throttled
    return out


def board_and_gpu(root: str = "/") -> dict:
    """The board (a Raspberry Pi or Jetson names itself in the device tree), an NVIDIA GPU and its
    driver (nvidia-smi, where installed), and a Jetson's L4T release, nvpmodel power mode and
    whether jetson_clocks holds its clocks at their maximum (`deploy.jetson`). `root`: where the
    file system's files are read (a test's folder)."""
    import shutil
    import subprocess

    out = {}
    board = _read(os.path.join(root, "proc/device-tree/model")).strip("\x00 \n")
    if board:
        out["board"] = board
    release = l4t_release(root)
    if release:
        out["l4t"] = release
    mode = power_mode(root)
    if mode:
        out["power_mode"] = str(mode)  # e.g. "MAXN_SUPER (nvpmodel 2)"
    if release or mode:  # on a Jetson: jetson_clocks on (true) or off (false), where cpufreq tells
        pinned = clocks_pinned(root)
        if pinned is not None:
            out["jetson_clocks"] = pinned
    if shutil.which("nvidia-smi"):
        try:
            answer = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=10)
            gpus = [line.strip() for line in answer.stdout.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            gpus = []
        if gpus:
            out["gpu"] = gpus  # "name, driver version" per GPU
    return out


def machine_fingerprint() -> dict:
    """What the numbers depend on: architecture (and whether it is emulated), processor, core
    count, ISA features (threads and batch are each row's; package versions are the report's
    provenance, `benchmarks.provenance`). Timings of an emulated run say nothing about the
    hardware it imitates."""
    machine = platform.machine()
    emulated_by = emulation(machine)
    cpu = cpu_details()
    if emulated_by:  # /proc/cpuinfo describes the host's processors, not the emulated device's
        cpu = {("host_" + key if key in ("cpu", "isa") else key): value for key, value in cpu.items()}
    return {
        "machine": machine,
        "emulated": emulated_by is not None,
        **({"emulation": emulated_by} if emulated_by else {}),
        "processor": platform.processor() or machine,
        **cpu,
        "cpu_count": os.cpu_count(),
        **board_and_gpu(),
    }


def _mib(value: int | None) -> str:
    return short(value / 2**20) if value else "-"


def _pct(value: float | None) -> str:
    return f"{100 * value:.2f}" if value is not None else "-"


def baseline_row(rows: list[Row], baseline: str | None = None) -> Row | None:
    """The row speed-ups are relative to: the first timed row of the model named, else the first timed."""
    timed = [r for r in rows if r.latency and r.status == "ok"]
    return next((r for r in timed if r.model == baseline), None) or next(iter(timed), None)


@dataclass(frozen=True)
class Context:
    """What a cell may compare its row with: the baseline row and the machine's peak."""

    base: Row | None
    peak: dict | None


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Row, Context], str]


def _ms(stat: str) -> Column:
    return Column(f"{stat} ms", lambda r, c: short(getattr(r.latency, f"{stat}_ms")) if r.latency else "-")


def _speed_up(row: Row, context: Context) -> str:
    return f"{per_image_ms(context.base) / per_image_ms(row):.2f}x" if row.latency and context.base else "-"


def _percent_of_peak(row: Row, context: Context) -> str:
    achieved, ceiling = achieved_gmacs(row), peak_for(row, context.peak)
    return f"{100 * achieved / ceiling:.0f}" if achieved is not None and ceiling else "-"


# The bench table's columns, for every renderer (console, report.md, report.html).
COLUMNS: tuple[Column, ...] = (
    Column("model", lambda r, c: r.model),
    Column("backend", lambda r, c: r.backend),
    Column("precision", lambda r, c: r.precision),
    Column("threads", lambda r, c: str(r.threads)),
    Column("batch", lambda r, c: str(r.batch)),
    Column("size MiB", lambda r, c: _mib(r.size_bytes)),
    Column("load s", lambda r, c: f"{r.load_s:.2f}" if r.load_s is not None else "-"),
    _ms("p50"), _ms("p90"), _ms("p95"), _ms("p99"), _ms("mean"),
    Column("img/s", lambda r, c: f"{r.throughput_ips:.1f}" if r.throughput_ips else "-"),
    Column("speed-up", _speed_up),
    Column("top-1 %", lambda r, c: f"{_pct(r.top1)} ({r.images})" if r.top1 is not None else "-"),
    Column("top-5 %", lambda r, c: _pct(r.top5)),
    Column("agree %", lambda r, c: _pct(r.agreement)),
    Column("MMACs", lambda r, c: short(r.macs / 1e6) if r.macs else "-"),
    Column("GMAC/s", lambda r, c: short(achieved_gmacs(r)) if achieved_gmacs(r) is not None else "-"),
    Column("% peak", _percent_of_peak),
    Column("peak RSS MiB", lambda r, c: _mib(r.peak_rss_bytes)),
    Column("status", lambda r, c: r.status if not r.error else f"{r.status}: {r.error}"),
)


def bench_table(rows: list[Row], baseline: str | None = None, peak: dict | None = None) -> Table:
    """One row per configuration, `COLUMNS` wide; `speed-up` is the baseline's median latency per
    image over the row's (higher is faster); GMAC/s is achieved, `% peak` its share of the
    machine's peak (`benchmarks.roofline`)."""
    context = Context(baseline_row(rows, baseline), peak)
    return Table([c.header for c in COLUMNS], [[c.cell(row, context) for c in COLUMNS] for row in rows])


def bench_notes(rows: list[Row], baseline: str | None = None, peak: dict | None = None) -> list[str]:
    """What the columns mean, as paragraphs under the table."""
    base = baseline_row(rows, baseline)
    notes = []
    if base:
        notes.append(f"speed-up: median latency per image of {base.model} ({base.threads} thread(s), batch "
                     f"{base.batch}) divided by the row's. agree: top-1 agreement with the first scored row. "
                     "top-1 is scored once per model file and backend. mean: over every timed call, "
                     "p95: 95 % of the calls were faster.")
    if peak:
        notes.append(f"% peak: achieved GMAC/s over this machine's measured matrix-product peak "
                     f"({peak['fp32_gmacs']:.0f} GMAC/s fp32 on {peak['fp32_threads']} thread(s), "
                     f"{peak['int8_gmacs']:.0f} int8 on {peak['int8_threads']}); convolutions seldom reach a "
                     "large GEMM's rate.")
    if len(rows) > 1:
        notes.append("Rows were timed in turn, round after round, each configuration in its own process, with idle "
                     "thread pools sleeping, not spinning.")
    return notes


def to_markdown(rows: list[Row], baseline: str | None = None, peak: dict | None = None) -> str:
    """The bench table and its notes as Markdown (what bench prints and writes to report.md)."""
    return render_markdown([bench_table(rows, baseline, peak), *bench_notes(rows, baseline, peak)])


def emulation_note(fingerprint: dict) -> str:
    """A line for every report of an emulated run, empty otherwise."""
    if not fingerprint.get("emulated"):
        return ""
    return (f"EMULATED ({fingerprint.get('emulation', 'under emulation')}): these timings measure the emulator, "
            f"not the {fingerprint.get('machine')} device it imitates.")


def clock_settings(fingerprint: dict) -> str:
    """A Jetson's power mode and jetson_clocks state as the fingerprint recorded them, else ""."""
    parts = [str(fingerprint["power_mode"])] if fingerprint.get("power_mode") else []
    if "jetson_clocks" in fingerprint:
        parts.append("jetson_clocks " + ("on" if fingerprint["jetson_clocks"] else "off"))
    return ", ".join(parts)


def jetson_note(fingerprint: dict) -> str:
    """A line naming a Jetson's power mode and jetson_clocks state (they set the clocks every
    timing depends on), empty where the fingerprint has neither."""
    settings = clock_settings(fingerprint)
    if not settings:
        return ""
    release = f" (L4T {fingerprint['l4t']})" if fingerprint.get("l4t") else ""
    return f"Jetson{release}: {settings}; these timings hold at these settings only (docs/jetson.md)."


def provenance_markdown(provenance: dict | None) -> str:
    """The run's provenance as a Markdown section, for the end of report.md and the console."""
    return render_markdown([Heading("Run"), Fields(provenance_pairs(provenance))])


CSV_COLUMNS = ("model", "backend", "precision", "threads", "batch", "size_bytes", "load_s", "p50_ms", "p90_ms",
               "p95_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "throughput_ips", "top1", "top5",
               "images", "agreement", "macs", "params", "gmacs_per_s", "peak_rss_bytes", "status", "error")


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        lat = r.latency
        values = {name: getattr(r, name, None) for name in CSV_COLUMNS}
        for stat in ("p50", "p90", "p95", "p99", "mean", "std", "min", "max"):
            values[f"{stat}_ms"] = f"{getattr(lat, stat + '_ms'):.3f}" if lat else None
        values["throughput_ips"] = f"{r.throughput_ips:.2f}" if r.throughput_ips else None
        values["gmacs_per_s"] = f"{achieved_gmacs(r):.2f}" if achieved_gmacs(r) else None
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return out.getvalue()
