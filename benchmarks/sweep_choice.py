"""`edgevision sweep`'s choice, and why: the rule (--latency-budget, --min-top1), every candidate
with its numbers and the reason it was or was not eligible, the Pareto front, and one sentence on
the winner. `OUT/sweep.json` keeps the record (`choice_record`), the console prints its reason.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.pareto import pareto_front, per_image_ms
from benchmarks.rows import Row


def recommend(rows: list[Row], latency_budget: float | None, min_top1: float | None) -> Row | None:
    """The most accurate row within the latency budget (and above the floor), or without a budget
    the fastest above the floor, or without either the most accurate; None when no row qualifies."""
    ranked = _ranked([r for r in rows if _excluded(r, latency_budget, min_top1) is None], latency_budget, min_top1)
    return ranked[0] if ranked else None


def _ranked(eligible: list[Row], latency_budget: float | None, min_top1: float | None) -> list[Row]:
    """`eligible`, best first: fastest first under a floor alone, else most accurate first."""
    if min_top1 is not None and latency_budget is None:
        return sorted(eligible, key=lambda r: (per_image_ms(r), -r.top1))
    return sorted(eligible, key=lambda r: (-r.top1, per_image_ms(r)))


def rule(latency_budget: float | None, min_top1: float | None) -> str:
    """The rule `recommend` applies, in words."""
    if latency_budget is not None and min_top1 is not None:
        return f"the most accurate variant at most {latency_budget:g} ms/image with top-1 >= {min_top1:.2%}"
    if latency_budget is not None:
        return f"the most accurate variant at most {latency_budget:g} ms/image (--latency-budget)"
    if min_top1 is not None:
        return f"the fastest variant with top-1 >= {min_top1:.2%} (--min-top1)"
    return "the most accurate variant (no --latency-budget or --min-top1 given; ties go to the faster)"


def _excluded(row: Row, latency_budget: float | None, min_top1: float | None) -> str | None:
    """Why `row` cannot be chosen, or None when it can."""
    if row.status != "ok":
        return f"{row.status}: {row.error}" if row.error else row.status
    if not row.latency or row.top1 is None:
        return "not timed and scored"
    if latency_budget is not None and per_image_ms(row) > latency_budget:
        return f"{per_image_ms(row):.3f} ms/image is over the {latency_budget:g} ms budget"
    if min_top1 is not None and row.top1 < min_top1:
        return f"top-1 {row.top1:.2%} is below --min-top1 {min_top1:.2%}"
    return None


def _numbers(row: Row) -> str:
    return f"top-1 {row.top1:.2%} at {per_image_ms(row):.3f} ms/image"


def choice_record(variants: list[dict], rows: list[Row], latency_budget: float | None, min_top1: float | None,
                  chosen: Row | None) -> dict:
    """sweep.json's "choice": `variants` are {"variant", "file" (None when it failed), "error", ...}
    dicts in the sweep's order; each comes back with its row's numbers, whether it is on the front,
    and why it was not eligible."""
    by_file = {Path(r.path).name: r for r in rows}
    front = [Path(r.path).name for r in pareto_front(rows)]
    candidates, eligible = [], []
    for variant in variants:
        entry = dict(variant)
        row = by_file.get(variant["file"]) if variant["file"] else None
        if row is None:
            entry["excluded"] = f"not built: {variant.get('error') or 'failed'}"
        else:
            if row.latency:
                entry["ms_per_image"] = round(per_image_ms(row), 4)
            entry["top1"] = row.top1
            entry["pareto_front"] = entry["file"] in front
            why = _excluded(row, latency_budget, min_top1)
            if why:
                entry["excluded"] = why
            else:
                eligible.append(row)
        candidates.append(entry)
    record = {
        "rule": rule(latency_budget, min_top1),
        "latency_budget_ms": latency_budget,
        "min_top1": min_top1,
        "pareto_front": front,
        "candidates": candidates,
        "chosen": Path(chosen.path).name if chosen is not None else None,
    }
    ranked = _ranked(eligible, latency_budget, min_top1)
    record["reason"] = _reason(chosen, ranked, len(candidates), record["rule"], front)
    return record


def _reason(chosen: Row | None, ranked: list[Row], considered: int, rule_text: str, front: list[str]) -> str:
    if chosen is None:
        return f"none of the {considered} variants qualifies as {rule_text}"
    name = Path(chosen.path).name
    text = (f"{name} is {rule_text}: {_numbers(chosen)}, of {len(ranked)} eligible among {considered} variants; "
            f"{'on' if name in front else 'off'} the Pareto front")
    others = [r for r in ranked if r is not chosen]
    if others:
        text += f"; next: {Path(others[0].path).name} ({_numbers(others[0])})"
    return text
