"""Runtime defaults: threads from the cores this process may use, no spinning, and options that
override them.

The sessions are real: a tiny ONNX model opened by onnxruntime (and OpenVINO when installed), and
the settings read back from the runtime, not from our code.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import deploy
from deploy.backends.cpu import MAX_THREADS, cgroup_cpu_limit, default_threads, physical_cores
from tests.runtime.onnx_models import make_onnx, tiny_card

SPIN_KEY = "session.intra_op.allow_spinning"


def fake_sysfs(root, cores_of_cpu: dict[int, tuple[int, int]]):
    for cpu, (package, core) in cores_of_cpu.items():
        topology = root / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")
    return root


def test_smt_siblings_count_once(tmp_path):
    sysfs = fake_sysfs(tmp_path, {0: (0, 0), 1: (0, 1), 2: (0, 0), 3: (0, 1), 4: (1, 0)})
    assert physical_cores({0, 1, 2, 3, 4}, sysfs) == 3
    assert physical_cores({0, 2}, sysfs) == 1
    assert physical_cores({0, 7}, sysfs) == 2  # cpu7 has no topology: count logical CPUs


def test_cgroup_quota(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cgroup_cpu_limit(cpu_max) == 2
    cpu_max.write_text("max 100000\n")
    assert cgroup_cpu_limit(cpu_max) is None
    assert cgroup_cpu_limit(tmp_path / "absent") is None


def test_default_threads_follow_the_affinity():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    first = min(os.sched_getaffinity(0))
    code = (
        f"import os; os.sched_setaffinity(0, {{{first}}})\n"
        "from deploy.backends.cpu import default_threads; print(default_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
    assert 1 <= default_threads() <= min(MAX_THREADS, len(os.sched_getaffinity(0)))


def session_settings(classifier) -> tuple[int, str]:
    """(intra-op threads, allow_spinning) as the session reports them."""
    options = classifier.backend.session.get_session_options()
    return options.intra_op_num_threads, options.get_session_config_entry(SPIN_KEY)


def test_onnxruntime_defaults_and_overrides(tmp_path):
    pytest.importorskip("onnx")
    path = make_onnx(tmp_path / "tiny.onnx", card=tiny_card())
    assert session_settings(deploy.load(path)) == (default_threads(), "0")  # the rule: cores, no spinning
    assert deploy.load(path).info["threads"] == default_threads()
    assert session_settings(deploy.load(path, threads=1, spin_wait=True)) == (1, "1")
    assert session_settings(deploy.load(path, threads=0))[0] == 0  # 0: onnxruntime picks


def test_openvino_default_threads(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    path = make_onnx(tmp_path / "tiny.onnx", card=tiny_card())
    compiled = deploy.load(path, backend="openvino").backend.compiled
    assert compiled.get_property("INFERENCE_NUM_THREADS") == default_threads()
    assert str(compiled.get_property("PERFORMANCE_HINT")).endswith("LATENCY")
    assert deploy.load(path, backend="openvino", threads=1).backend.compiled.get_property("INFERENCE_NUM_THREADS") == 1


@pytest.mark.slow
def test_executorch_pool_follows_the_rule(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("executorch")
    from executorch.extension.pybindings import portable_lib

    from deploy.export.torch2pte import torch2pte

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 3)).eval()
    path = torch2pte(model, tiny_card().evolve(artifact_format="executorch"), tmp_path / "m.pte")
    assert deploy.load(path, threads=1).info["threads"] == 1 == portable_lib._threadpool_get_thread_count()
    assert deploy.load(path).info["threads"] == default_threads() == portable_lib._threadpool_get_thread_count()
