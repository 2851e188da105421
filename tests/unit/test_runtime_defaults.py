"""Runtime defaults: threads from the cores this process may use, the onnxruntime setting chosen
at load by timing what the caller left open, and options that override them.

The sessions are real: a tiny ONNX model opened by onnxruntime (and OpenVINO when installed), and
the settings read back from the runtime, not from our code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import deploy
from deploy.backends import tune
from deploy.backends.cpu import MAX_THREADS, cgroup_cpu_limit, default_threads, physical_cores
from deploy.timing import LatencyStats
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


def test_onnxruntime_overrides_are_kept_untimed(tmp_path):
    pytest.importorskip("onnx")
    path = make_onnx(tmp_path / "tiny.onnx", card=tiny_card())
    fixed = deploy.load(path, threads=1, spin_wait=True)
    assert session_settings(fixed) == (1, "1") and fixed.info["tuned"] == {}
    assert session_settings(deploy.load(path, threads=2, spin_wait=False)) == (2, "0")
    assert session_settings(deploy.load(path, threads=0, spin_wait=False))[0] == 0  # 0: onnxruntime picks


def test_onnxruntime_default_is_timed_among_the_candidates(tmp_path):
    pytest.importorskip("onnx")
    path = make_onnx(tmp_path / "tiny.onnx", card=tiny_card())
    tried = tune.candidates(None, None)
    chosen = deploy.load(path)
    threads, spin = session_settings(chosen)
    assert tune.Setting(threads, spin == "1") in tried
    assert set(chosen.info["tuned"]) == ({s.label for s in tried} if len(tried) > 1 else set())
    sleeping = deploy.load(path, spin_wait=False)  # only the thread count is timed
    assert session_settings(sleeping)[1] == "0"
    assert all("spinning" not in label for label in sleeping.info["tuned"])


def test_candidates_vary_only_what_the_caller_left_open():
    assert tune.candidates(2, False) == [tune.Setting(2, False)]
    assert tune.candidates(1, None) == [tune.Setting(1, False)]  # one thread: spinning means nothing
    assert tune.candidates(4, None) == [tune.Setting(4, False), tune.Setting(4, True)]
    assert [s.threads for s in tune.candidates(None, False)] == sorted({1, default_threads()})


def stats(*ms: float) -> LatencyStats:
    return LatencyStats.from_samples([m / 1000 for m in ms])


def test_pick_prefers_the_cheaper_setting_and_spins_only_when_its_tail_beats_sleeping():
    one, two, spin = tune.Setting(1, False), tune.Setting(2, False), tune.Setting(2, True)
    assert tune.pick({one: stats(3.0, 3.1, 3.0), two: stats(2.9, 3.0, 2.95)}) == one  # within 5 %
    assert tune.pick({one: stats(3.0, 3.1, 3.0), two: stats(2.0, 2.1, 2.0)}) == two
    quiet = stats(*[1.5] * 9, 1.8)  # the second core free: spinning is faster, its p90 included
    assert tune.pick({one: stats(3.0, 3.1, 3.0), two: stats(2.0, 2.1, 2.0), spin: quiet}) == spin
    # a faster median with a slow tail (a descheduled spinning worker) does not displace sleeping
    tail = stats(*[1.5] * 7, 8.0, 8.0, 8.0)
    assert tune.pick({two: stats(2.0, 2.1, 2.0), spin: tail}) == two
    assert tune.pick({spin: tail}) == spin  # nothing else to choose


def test_a_model_slower_than_slow_s_keeps_the_rule_untimed():
    """Each setting is called twice (to know the model's speed, warming it up); past `SLOW_S` a call,
    nothing more is run and the rule's setting is kept."""
    calls_made = {tune.Setting(1, False): 0, tune.Setting(2, False): 0}

    def call(setting):
        def run() -> None:
            calls_made[setting] += 1
            time.sleep(tune.SLOW_S + 0.01)  # a sleep is never shorter than asked: slower than SLOW_S
        return run

    fallback = tune.rule(None, None)
    chosen, timed = tune.tune({setting: call(setting) for setting in calls_made}, fallback)
    assert chosen == fallback and timed == {}
    assert calls_made == {tune.Setting(1, False): 2, tune.Setting(2, False): 2}


def test_a_fast_model_is_timed_in_rounds_and_a_candidate_chosen(monkeypatch):
    monkeypatch.setattr(tune, "SLOW_S", float("inf"))  # whatever the machine's load, this model counts as fast
    calls_made = {tune.Setting(1, False): 0, tune.Setting(2, False): 0}

    def call(setting):
        def run() -> None:
            calls_made[setting] += 1
        return run

    chosen, timed = tune.tune({setting: call(setting) for setting in calls_made}, tune.rule(None, None), budget_s=0.0)
    assert chosen in calls_made and set(timed) == set(calls_made)
    # two calls each to know its speed, then a warm-up and at least three timed rounds
    assert all(count >= 2 + 1 + 3 and timed[setting].samples >= 3 for setting, count in calls_made.items())
