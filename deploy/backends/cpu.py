"""How many threads a CPU backend uses when the caller does not say (the measurements behind the
rule: benchmarks/RESULTS.md, "The fastest CPU path").

The rule: one intra-op thread per physical core this process may run on (its CPU affinity, with
SMT siblings counted once, and a cgroup CPU quota when there is one), at most `MAX_THREADS`.
Runtimes left to themselves count every core of the machine, which on a shared or small board
(a camera capture thread, another process) gives worse latency than fewer threads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

MAX_THREADS = 4  # a batch-1 MobileNet-sized model gains little beyond four threads


def available_cpus() -> set[int]:
    """The logical CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def physical_cores(cpus: set[int], sysfs: Path = Path("/sys/devices/system/cpu")) -> int:
    """How many distinct physical cores `cpus` lie on (SMT siblings share one); len(cpus) if unknown."""
    cores = set()
    for cpu in cpus:
        topology = sysfs / f"cpu{cpu}" / "topology"
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return len(cpus)
        cores.add((package, core))
    return len(cores) or len(cpus)


def cgroup_cpu_limit(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """The CPUs a cgroup v2 quota allows (`cpu.max` "quota period"), rounded up; None without one."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def default_threads() -> int:
    """Intra-op threads for a backend whose caller gave none (see the module docstring)."""
    count = physical_cores(available_cpus())
    limit = cgroup_cpu_limit()
    if limit is not None:
        count = min(count, limit)
    return max(1, min(count, MAX_THREADS))
