"""What a Jetson says about itself in its files: the L4T release (JetPack's Linux), the nvpmodel
power mode and whether jetson_clocks holds the clocks at their maximum. Read without NVIDIA's
tools (no root, no subprocess), so that the bench fingerprint and a TensorRT engine's card can
record them; every reader takes the file system's `root` so that a test can hand it a folder."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TEGRA_RELEASE = "etc/nv_tegra_release"  # e.g. "# R36 (release), REVISION: 4.3, GCID: ..., BOARD: generic, ..."
_RELEASE = re.compile(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")

# nvpmodel keeps the mode it last set in its status file ("pmode:0002"); the modes' names are in
# its configuration (a link to the board's own file), one header line per mode:
# "< POWER_MODEL ID=2 NAME=MAXN_SUPER >".
NVPMODEL_STATUS = "var/lib/nvpmodel/status"
NVPMODEL_CONF = "etc/nvpmodel.conf"
_PMODE = re.compile(r"\bpmode:(\d+)")
_POWER_MODEL = re.compile(r"^<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)\s*>", re.MULTILINE)

CPU_SYSFS = "sys/devices/system/cpu"
DEVFREQ = "sys/class/devfreq"
# The integrated GPU's devfreq device, by name: 17000000.ga10b or 17000000.gpu (Orin), 17000000.gv11b
# (Xavier), 57000000.gpu (Nano), gpu-gpc-0 (Thor).
_GPU_DEVFREQ = re.compile(r"gpu|ga10b|gv11b|gp10b|gb10b", re.IGNORECASE)


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def l4t_release(root: str | Path = "/") -> str | None:
    """The L4T release as "MAJOR.MINOR.PATCH" (36.x is JetPack 6, 38 and later JetPack 7), or None
    off a Jetson or when the file does not read as a release line."""
    text = _text(Path(root) / TEGRA_RELEASE)
    first = text.splitlines()[:1] if text else []
    match = _RELEASE.search(first[0]) if first else None
    return f"{match.group(1)}.{match.group(2)}" if match else None


@dataclass(frozen=True)
class PowerMode:
    """An nvpmodel power mode: its number (`sudo nvpmodel -m ID`) and, where the board's
    configuration names it, its name (MAXN, 15W, MAXN_SUPER, ...)."""

    id: int
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.name} (nvpmodel {self.id})" if self.name else f"nvpmodel {self.id}"


def power_modes(root: str | Path = "/") -> dict[int, str]:
    """Every mode the board's nvpmodel configuration defines, id -> name; empty without one."""
    text = _text(Path(root) / NVPMODEL_CONF) or ""
    return {int(number): name for number, name in _POWER_MODEL.findall(text)}


def power_mode(root: str | Path = "/") -> PowerMode | None:
    """The power mode nvpmodel last set, named from its configuration; None where nvpmodel has
    no status file (not a Jetson, or nvpmodel never ran) or the file does not read as one."""
    text = _text(Path(root) / NVPMODEL_STATUS)
    match = _PMODE.search(text) if text else None
    if not match:
        return None
    number = int(match.group(1))
    return PowerMode(number, power_modes(root).get(number))


def _cpu_numbers(spec: str) -> list[int]:
    """CPU numbers from a kernel CPU list such as "0-3,6"."""
    numbers = []
    for part in spec.strip().split(","):
        first, _, last = part.strip().partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            numbers += range(int(first), int(last or first) + 1)
    return numbers


def _pinned(folder: Path, low: str, high: str) -> bool | None:
    """Whether the clock of a cpufreq or devfreq `folder` has its floor at its ceiling; None when
    the two files do not read as numbers."""
    values = [(_text(folder / name) or "").strip() for name in (low, high)]
    if not all(value.isdigit() for value in values):
        return None
    return values[0] == values[1]


def clocks_pinned(root: str | Path = "/") -> bool | None:
    """Whether jetson_clocks is in effect, read as what it does: every online CPU's minimum
    frequency (cpufreq scaling_min_freq) equals its maximum, and so does the integrated GPU's
    (devfreq min_freq and max_freq). Under the default DVFS the minimum sits far below the
    maximum. Both are world-readable, unlike the memory clock's state (debugfs, root only), which
    is therefore not read. None when no CPU frequency is readable at all.

    On another Linux machine a CPU whose floor equals its ceiling also reads as pinned: call it
    on a Jetson (an L4T release or an nvpmodel status present)."""
    cpu = Path(root) / CPU_SYSFS
    online = _text(cpu / "online")
    if online is not None:
        numbers = _cpu_numbers(online)
    else:
        numbers = sorted(int(p.name[3:]) for p in cpu.glob("cpu[0-9]*") if p.name[3:].isdigit())
    states = [_pinned(cpu / f"cpu{n}" / "cpufreq", "scaling_min_freq", "scaling_max_freq") for n in numbers]
    states = [state for state in states if state is not None]
    if not states:
        return None
    devfreq = Path(root) / DEVFREQ
    gpus = sorted(p for p in devfreq.iterdir() if _GPU_DEVFREQ.search(p.name)) if devfreq.is_dir() else []
    states += [state for state in (_pinned(gpu, "min_freq", "max_freq") for gpu in gpus) if state is not None]
    return all(states)
