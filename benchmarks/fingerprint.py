"""The machine a bench run measured on, as the report keeps it: architecture (and whether it is
emulated), processor, cores, the ISA features that pick a runtime's kernels, frequency governor,
temperature and throttling, the board, NVIDIA GPUs and a Jetson's power settings. Read from
/proc, /sys, the device tree and nvidia-smi; nothing is measured (the matrix-product peak is
`benchmarks.roofline`'s)."""

from __future__ import annotations

import os
import platform

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
