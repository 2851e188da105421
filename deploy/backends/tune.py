"""Choose a CPU runtime's threads and spin policy by timing the candidates on this device, at load.

Why at load, not by a fixed rule: on a small or shared CPU the fastest setting depends on what else
wants the cores (benchmarks/RESULTS.md, "The fastest CPU path"). A spinning thread pool
was 1.5x faster than a sleeping one while the second core was free and 2-4x slower once anything
else wanted it; one thread beat two for a short int8 run. No fixed setting was within 10 % of the
best in both conditions; a few hundred milliseconds of timing at load finds the one that is, for
the conditions the model starts in.

Only what the caller left open is tuned: `threads=N` fixes the thread count, `spin_wait=False|True`
the spin policy; both fixed means no timing at all. Candidates are listed cheapest first (fewer
threads, no spinning); a cheaper one within `TIE` of the fastest median wins, and spinning is
chosen only when it clearly pays (`pick`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from deploy.backends.cpu import default_threads
from deploy.timing import LatencyStats, measure_interleaved

TIE = 0.05  # a cheaper setting within 5 % of the fastest median wins
BUDGET_S = 0.3  # seconds of timed rounds per load
SLOW_S = 0.05  # a model slower than this per call keeps the rule (a pool's wake-ups hardly count)


@dataclass(frozen=True)
class Setting:
    threads: int  # 0: the runtime's own choice
    spin: bool

    @property
    def label(self) -> str:
        return f"{self.threads} thread{'s' if self.threads != 1 else ''}{', spinning' if self.spin else ''}"


def rule(threads: int | None, spin: bool | None) -> Setting:
    """The setting without timing: `deploy.backends.cpu.default_threads()`, no spinning."""
    return Setting(default_threads() if threads is None else threads, bool(spin))


def candidates(threads: int | None, spin: bool | None) -> list[Setting]:
    """The settings to try, cheapest first; only the rule's when the caller fixed both (or one
    thread, where spinning means nothing)."""
    counts = [threads] if threads is not None else sorted({1, default_threads()})
    found = []
    for count in counts:
        spins = [spin] if spin is not None else ([False, True] if count != 1 else [False])
        found.extend(Setting(count, bool(s)) for s in spins)
    return found


def pick(stats: Mapping[Setting, LatencyStats]) -> Setting:
    """Among sleeping pools, the cheapest within `TIE` of the fastest median (`stats` in
    candidates' order); a spinning pool instead only when its p90 beats that one's median.

    Spinning is bimodal on shared cores: fast while they are free, a scheduler tick per run once
    something else wants them, and that state lasts for seconds. Asking its slow tail to beat the
    sleeping pool's median keeps it out whenever the timing at load saw any of that.
    """
    sleeping = {s: st for s, st in stats.items() if not s.spin} or dict(stats)
    fastest = min(st.p50_ms for st in sleeping.values())
    chosen = next(s for s, st in sleeping.items() if st.p50_ms <= fastest * (1 + TIE))
    spinning = [s for s in stats if s.spin and s not in sleeping]
    winner = min(spinning, key=lambda s: stats[s].p90_ms, default=None)
    if winner is not None and stats[winner].p90_ms < stats[chosen].p50_ms:
        return winner
    return chosen


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def tune(calls: Mapping[Setting, Callable[[], object]], fallback: Setting,
         budget_s: float = BUDGET_S) -> tuple[Setting, dict[Setting, LatencyStats]]:
    """Time each setting's call in interleaved rounds (`deploy.timing`) and pick one; returns the
    setting and the statistics it was chosen by. With a model slower than `SLOW_S` a call, nothing
    more is timed and `fallback` (the rule) is kept."""
    per_call = statistics.median(_seconds(call) for call in calls.values() for _ in range(2))  # also warms up
    if per_call > SLOW_S:
        return fallback, {}
    per_round = max(1, min(5, int(budget_s / (3 * len(calls) * per_call))))
    timed = measure_interleaved(calls, warmup=1, budget_s=budget_s, per_round=per_round, min_rounds=3)
    return pick(timed), timed
