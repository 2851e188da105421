"""The latency / accuracy Pareto front: the rows no other row beats on both."""

from __future__ import annotations

from benchmarks.rows import Row


def per_image_ms(row: Row) -> float:
    """Median latency of a call divided by the images in it."""
    return row.latency.p50_ms / row.batch


def pareto_front(rows: list[Row]) -> list[Row]:
    """The timed and scored rows for which no other row is at least as fast and as accurate and
    better on one of the two, fastest first."""
    points = [r for r in rows if r.latency and r.top1 is not None and r.status == "ok"]

    def beaten(row: Row) -> bool:
        return any(
            per_image_ms(o) <= per_image_ms(row) and o.top1 >= row.top1
            and (per_image_ms(o) < per_image_ms(row) or o.top1 > row.top1)
            for o in points
        )

    return sorted((r for r in points if not beaten(r)), key=per_image_ms)
