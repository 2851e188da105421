"""A Jetson's L4T release, nvpmodel power mode and jetson_clocks state, read from a folder laid out as
a Jetson Orin Nano's root (JetPack 6), and carried into the bench fingerprint and reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fingerprint import board_and_gpu
from benchmarks.merge import device_key, device_label
from benchmarks.report import jetson_note
from deploy.jetson import PowerMode, clocks_pinned, l4t_release, power_mode, power_modes

TEGRA_RELEASE = ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
                 "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
                 "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n")
# The layout of a board's nvpmodel configuration: PARAM blocks, one POWER_MODEL block per mode, PM_CONFIG.
NVPMODEL_CONF = """\
# Copyright (c) 2022-2024, NVIDIA CORPORATION.  All rights reserved.
< PARAM TYPE=FILE NAME=CPU_ONLINE >
CORE_0 /sys/devices/system/cpu/cpu0/online
CORE_1 /sys/devices/system/cpu/cpu1/online

< PARAM TYPE=CLOCK NAME=GPU >
FREQ_TABLE /sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu/available_frequencies
MAX_FREQ /sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu/max_freq
MIN_FREQ /sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu/min_freq

# 15W
< POWER_MODEL ID=0 NAME=15W >
CPU_ONLINE CORE_0 1
CPU_ONLINE CORE_1 1
GPU MIN_FREQ 0
GPU MAX_FREQ 612000000

< POWER_MODEL ID=1 NAME=25W >
CPU_ONLINE CORE_0 1
CPU_ONLINE CORE_1 1
GPU MIN_FREQ 0
GPU MAX_FREQ 918000000

< POWER_MODEL ID=2 NAME=MAXN_SUPER >
CPU_ONLINE CORE_0 1
CPU_ONLINE CORE_1 1
GPU MIN_FREQ 0
GPU MAX_FREQ -1

< PM_CONFIG DEFAULT=1 >
"""
CPU_MIN, CPU_MAX = "729600", "1728000"  # kHz
GPU_MIN, GPU_MAX = "306000000", "1020000000"  # Hz


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def jetson(tmp_path) -> Path:
    """An Orin Nano's files under default DVFS in mode 2: six CPUs online of eight, the GPU's devfreq
    and a video decoder's (not the GPU) beside it; nvpmodel.conf a link to the board's file, as shipped."""
    root = tmp_path / "root"
    write(root / "etc/nv_tegra_release", TEGRA_RELEASE)
    write(root / "etc/nvpmodel/nvpmodel_p3767_0003.conf", NVPMODEL_CONF)
    (root / "etc/nvpmodel.conf").symlink_to("nvpmodel/nvpmodel_p3767_0003.conf")
    write(root / "var/lib/nvpmodel/status", "pmode:0002\n")
    write(root / "proc/device-tree/model", "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\x00")
    cpu = root / "sys/devices/system/cpu"
    write(cpu / "online", "0-5\n")
    for n in range(8):
        write(cpu / f"cpu{n}/cpufreq/scaling_min_freq", CPU_MIN + "\n")
        write(cpu / f"cpu{n}/cpufreq/scaling_max_freq", CPU_MAX + "\n")
    write(root / "sys/class/devfreq/17000000.gpu/min_freq", GPU_MIN + "\n")
    write(root / "sys/class/devfreq/17000000.gpu/max_freq", GPU_MAX + "\n")
    write(root / "sys/class/devfreq/15480000.nvdec/min_freq", "115200000\n")
    write(root / "sys/class/devfreq/15480000.nvdec/max_freq", "716800000\n")
    return root


def run_jetson_clocks(root: Path, cpus=range(6), gpu: bool = True) -> None:
    """What jetson_clocks does to the files read here: each clock's floor raised to its ceiling."""
    for n in cpus:
        folder = root / f"sys/devices/system/cpu/cpu{n}/cpufreq"
        (folder / "scaling_min_freq").write_text((folder / "scaling_max_freq").read_text())
    if gpu:
        folder = root / "sys/class/devfreq/17000000.gpu"
        (folder / "min_freq").write_text((folder / "max_freq").read_text())


def test_l4t_release(jetson, tmp_path):
    assert l4t_release(jetson) == "36.4.3"
    write(jetson / "etc/nv_tegra_release", "# R38 (release), REVISION: 2.1, GCID: 41844464, BOARD: generic\n")
    assert l4t_release(jetson) == "38.2.1"
    write(jetson / "etc/nv_tegra_release", "not a release line\n")
    assert l4t_release(jetson) is None
    assert l4t_release(tmp_path / "empty") is None


def test_power_mode_named_from_the_boards_configuration(jetson):
    assert power_modes(jetson) == {0: "15W", 1: "25W", 2: "MAXN_SUPER"}
    assert power_mode(jetson) == PowerMode(2, "MAXN_SUPER")
    assert str(power_mode(jetson)) == "MAXN_SUPER (nvpmodel 2)"
    write(jetson / "var/lib/nvpmodel/status", "pmode:0000\n")
    assert power_mode(jetson) == PowerMode(0, "15W")


def test_power_mode_without_a_name_or_a_status(jetson, tmp_path):
    write(jetson / "var/lib/nvpmodel/status", "pmode:0007\n")  # a mode the configuration does not define
    assert power_mode(jetson) == PowerMode(7) and str(power_mode(jetson)) == "nvpmodel 7"
    (jetson / "etc/nvpmodel.conf").unlink()
    write(jetson / "var/lib/nvpmodel/status", "pmode:0001\n")
    assert power_mode(jetson) == PowerMode(1)
    write(jetson / "var/lib/nvpmodel/status", "")
    assert power_mode(jetson) is None
    assert power_mode(tmp_path / "empty") is None and power_modes(tmp_path / "empty") == {}


def test_jetson_clocks_read_from_the_cpu_and_gpu_clock_floors(jetson):
    assert clocks_pinned(jetson) is False  # default DVFS: floors far below the ceilings
    run_jetson_clocks(jetson)
    assert clocks_pinned(jetson) is True  # the offline CPUs 6 and 7 and the video decoder do not count


def test_jetson_clocks_off_while_any_online_clock_floats(jetson):
    run_jetson_clocks(jetson, gpu=False)
    assert clocks_pinned(jetson) is False  # the CPUs pinned, the GPU still scaling
    run_jetson_clocks(jetson, cpus=range(5))
    write(jetson / "sys/devices/system/cpu/cpu5/cpufreq/scaling_min_freq", CPU_MIN)
    assert clocks_pinned(jetson) is False  # one online CPU still scaling


def test_jetson_clocks_unknown_without_cpu_frequencies(jetson, tmp_path):
    assert clocks_pinned(tmp_path / "empty") is None
    for n in range(8):
        write(jetson / f"sys/devices/system/cpu/cpu{n}/cpufreq/scaling_min_freq", "<unsupported>")
    assert clocks_pinned(jetson) is None


def test_cpus_listed_without_an_online_file(jetson):
    (jetson / "sys/devices/system/cpu/online").unlink()
    run_jetson_clocks(jetson)
    assert clocks_pinned(jetson) is False  # every cpuN folder counts then, the two left scaling too
    run_jetson_clocks(jetson, cpus=range(8))
    assert clocks_pinned(jetson) is True


def test_the_fingerprint_records_the_jetsons_settings(jetson):
    run_jetson_clocks(jetson)
    found = board_and_gpu(str(jetson))
    assert found["board"] == "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
    assert (found["l4t"], found["power_mode"], found["jetson_clocks"]) == ("36.4.3", "MAXN_SUPER (nvpmodel 2)", True)
    assert jetson_note(found) == ("Jetson (L4T 36.4.3): MAXN_SUPER (nvpmodel 2), jetson_clocks on; "
                                  "these timings hold at these settings only (docs/jetson.md).")


def test_no_jetson_fields_off_a_jetson(jetson):
    for name in ("etc/nv_tegra_release", "var/lib/nvpmodel/status"):
        (jetson / name).unlink()
    run_jetson_clocks(jetson)  # a server whose CPU floors equal their ceilings is no Jetson
    found = board_and_gpu(str(jetson))
    assert not {"l4t", "power_mode", "jetson_clocks"} & set(found)
    assert jetson_note(found) == ""


def test_one_board_at_two_power_modes_is_two_devices(jetson):
    machine = {"machine": "aarch64", "cpu": "Cortex-A78AE", "cpu_count": 6, "emulated": False}
    default = {**machine, **board_and_gpu(str(jetson))}
    write(jetson / "var/lib/nvpmodel/status", "pmode:0000\n")
    run_jetson_clocks(jetson)
    low = {**machine, **board_and_gpu(str(jetson))}
    assert device_key(default) != device_key(low)
    assert device_label(default) == "Cortex-A78AE (aarch64, 6 cores, MAXN_SUPER (nvpmodel 2), jetson_clocks off)"
    assert device_label(low) == "Cortex-A78AE (aarch64, 6 cores, 15W (nvpmodel 0), jetson_clocks on)"
    assert device_label(machine) == "Cortex-A78AE (aarch64, 6 cores)"


def test_a_report_keeps_the_settings_and_refuses_them_mistyped(jetson):
    import json

    from benchmarks.schema import parse_report, to_json
    from deploy.errors import EdgevisionError

    machine = {"machine": "aarch64", "emulated": False, **board_and_gpu(str(jetson))}
    report = parse_report(to_json([], machine).encode(), "report.json")
    assert (report.machine["power_mode"], report.machine["jetson_clocks"]) == ("MAXN_SUPER (nvpmodel 2)", False)
    for key, value in (("jetson_clocks", "on"), ("power_mode", 2)):
        data = json.loads(to_json([], {**machine, key: value}))
        with pytest.raises(EdgevisionError, match=f"machine.{key}") as error:
            parse_report(json.dumps(data).encode(), "report.json")
        assert "\n" not in str(error.value)
