"""Compare `edgevision predict --json` outputs of x86 and arm64: same top-1, probabilities close.

Each file holds one JSON object per image ({"image": ..., "top": [[label, prob], ...]}), as
`edgevision predict --json --top-k K` prints it; run both with every class in top (K >= classes)
so every probability is compared. Exit 1 with the numbers when any image differs.

usage: python3 parity.py X86.jsonl ARM64.jsonl [--tol 1e-4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_predictions(path: Path) -> dict[str, dict[str, float]]:
    """image -> {label: probability}, in the file's order."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return {row["image"]: {label: prob for label, prob in row["top"]} for row in rows}


def compare(x86: dict[str, dict[str, float]], arm: dict[str, dict[str, float]], tol: float) -> list[str]:
    """One line per problem: a missing image, a different top-1, a probability off by more than tol."""
    problems = [f"{image}: missing on arm64" for image in x86 if image not in arm]
    problems += [f"{image}: missing on x86" for image in arm if image not in x86]
    for image in x86.keys() & arm.keys():
        a, b = x86[image], arm[image]
        top_a, top_b = max(a, key=a.__getitem__), max(b, key=b.__getitem__)
        if top_a != top_b:
            problems.append(f"{image}: top-1 x86 {top_a} ({a[top_a]:.6f}) vs arm64 {top_b} ({b[top_b]:.6f})")
        diff = max(abs(a.get(label, 0.0) - b.get(label, 0.0)) for label in a.keys() | b.keys())
        if diff > tol:
            problems.append(f"{image}: max |prob diff| {diff:.3g} > {tol:g}")
    return sorted(problems)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("x86", type=Path)
    parser.add_argument("arm64", type=Path)
    parser.add_argument("--tol", type=float, default=1e-4, help="largest |probability difference| allowed")
    args = parser.parse_args()
    x86, arm = read_predictions(args.x86), read_predictions(args.arm64)
    shared = x86.keys() & arm.keys()
    if not shared:
        print("parity: no image predicted on both sides", file=sys.stderr)
        return 1
    same = sum(max(x86[i], key=x86[i].get) == max(arm[i], key=arm[i].get) for i in shared)
    diff = max(abs(x86[i].get(k, 0.0) - arm[i].get(k, 0.0)) for i in shared for k in x86[i].keys() | arm[i].keys())
    print(
        f"top-1 agreement with x86: {100 * same / len(shared):.2f} % ({same}/{len(shared)} images), "
        f"max |prob diff| {diff:.2g} (tolerance {args.tol:g})"
    )
    problems = compare(x86, arm, args.tol)
    for line in problems:
        print(f"parity FAILED: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
