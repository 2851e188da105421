"""Benchmark rows as Markdown (with ratios to a baseline row), JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import platform
from dataclasses import asdict

from benchmarks.runner import Row
from deploy.version import __version__


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


def machine_fingerprint(threads: int) -> dict:
    """What the numbers depend on: architecture (and whether it is emulated), processor, core
    count, threads used, runtime versions. Timings of an emulated run say nothing about the
    hardware it imitates."""
    import os

    versions = {}
    for module in ("numpy", "cv2", "onnxruntime", "torch", "executorch"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - a missing or broken optional runtime is simply not listed
            continue
    machine = platform.machine()
    emulated_by = emulation(machine)
    return {
        "machine": machine,
        "emulated": emulated_by is not None,
        **({"emulation": emulated_by} if emulated_by else {}),
        "processor": platform.processor() or machine,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "edgevision": __version__,
        **versions,
    }


def to_markdown(rows: list[Row], baseline: str | None = None) -> str:
    """A table; `speed-up` is the baseline's median latency over the row's (higher is faster)."""
    base = next((r for r in rows if r.name == baseline), None) if baseline else None
    base = base or next((r for r in rows if r.latency), None)
    header = "| model | backend | precision | size MiB | p50 ms | p90 ms | mean ms | speed-up | top-1 | peak RSS MiB | status |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        lat = row.latency
        speed = f"{base.latency.p50_ms / lat.p50_ms:.2f}x" if lat and base and base.latency else "-"
        top1 = f"{100 * row.top1:.2f} % ({row.images})" if row.top1 is not None else "-"
        status = row.status if not row.error else f"{row.status}: {row.error}"
        cells = [
            row.name,
            row.backend,
            row.precision,
            f"{row.size_mb:.1f}",
            f"{lat.p50_ms:.2f}" if lat else "-",
            f"{lat.p90_ms:.2f}" if lat else "-",
            f"{lat.mean_ms:.2f}" if lat else "-",
            speed,
            top1,
            f"{row.peak_rss_mb:.0f}" if row.peak_rss_mb else "-",
            status,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if base:
        lines.append(f"\nspeed-up: median latency of `{base.name}` divided by the row's.")
    if len(rows) > 1:
        lines.append("Rows were timed in turn, round after round, each model in its own process, with idle "
                     "thread pools sleeping, not spinning.")
    return "\n".join(lines)


def to_json(rows: list[Row], fingerprint: dict) -> str:
    return json.dumps({"machine": fingerprint, "rows": [asdict(r) for r in rows]}, indent=2)


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["model", "backend", "precision", "size_mib", "p50_ms", "p90_ms", "mean_ms", "top1", "images",
                     "peak_rss_mib", "status"])
    for r in rows:
        lat = r.latency
        writer.writerow(
            [r.name, r.backend, r.precision, f"{r.size_mb:.3f}"]
            + ([f"{lat.p50_ms:.3f}", f"{lat.p90_ms:.3f}", f"{lat.mean_ms:.3f}"] if lat else ["", "", ""])
            + [r.top1 if r.top1 is not None else "", r.images,
               f"{r.peak_rss_mb:.1f}" if r.peak_rss_mb else "", r.status]
        )
    return out.getvalue()
