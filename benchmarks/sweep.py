"""`edgevision sweep`: build every variant of a checkpoint (pruned or not x format x precision),
benchmark them in one run, mark the latency / top-1 Pareto front and recommend one.

Variants come from the stages' own functions: `quantize.prune_pipeline.prune_checkpoint` (with the
architecture's default preset, `quantize.presets`, and its fine-tuning epochs unless
--finetune-epochs says otherwise), `deploy.export.pipeline.export_checkpoint` (fp32) and
`quantize.quantize_pipeline.quantize_checkpoint` (int8, under its accuracy guard). A pruned
variant built without fine-tuning is named so (`p50-untuned-onnx-fp32.onnx`).
`OUT/sweep.json` records what was built (file name -> sha256 of the checkpoint it came from and
the recipe), so that a second sweep into the same folder reuses every file whose record still
matches, and the choice: the rule, the candidates, the Pareto front and why the winner won.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.options import (
    MAX_EPOCHS,
    MAX_IMAGES,
    MAX_SECONDS,
    choice_list,
    comma_list,
    positive_float,
    positive_int,
)
from benchmarks.pareto import pareto_front, per_image_ms
from benchmarks.progress import logging_above_bars, progress
from benchmarks.rows import Row, Target
from benchmarks.sweep_choice import choice_record, recommend
from benchmarks.table import md_cell
from deploy.atomic import check_writable, write_text_atomic
from deploy.cli_util import CommandParser, Subcommand, run_subcommand
from deploy.data_spec import parse_data_spec
from deploy.errors import EdgevisionError
from deploy.limits import max_threads
from quantize.presets import DEFAULT_FINETUNE_EPOCHS

logger = logging.getLogger("edgevision.benchmarks")

MANIFEST = "sweep.json"
QUANTS = ("fp32", "int8")


@dataclass(frozen=True)
class SweepFormat:
    export_format: str  # deploy.export format name, for fp32
    int8_target: str  # quantize_pipeline target name, for int8
    suffix: str


SWEEP_FORMATS: dict[str, SweepFormat] = {
    "onnx": SweepFormat("onnx", "onnx-int8", ".onnx"),
    "pte": SweepFormat("executorch", "pte-int8", ".pte"),
}


@dataclass(frozen=True)
class Variant:
    prune: float  # fraction of the MACs removed (0: the checkpoint as it is)
    fmt: str  # a SWEEP_FORMATS key
    quant: str  # fp32 or int8
    finetuned: bool = True  # False: pruned and not fine-tuned (named "untuned")

    @property
    def name(self) -> str:
        return f"{pruned_stem(self.prune, self.finetuned)}-{self.fmt}-{self.quant}"


@dataclass
class Built:
    variant: Variant
    path: Path | None  # None when building it failed
    reused: bool = False
    error: str = ""


def percent(prune: float) -> int:
    """The prune level as the whole percent its files are named by (p50-onnx-fp32.onnx, p50.pt)."""
    return round(prune * 100)


def pruned_stem(prune: float, finetuned: bool = True) -> str:
    """"p50", or "p50-untuned" for a level pruned without fine-tuning ("p0" is never pruned)."""
    return f"p{percent(prune)}" + ("" if finetuned or prune == 0 else "-untuned")


def pruned_name(prune: float, finetuned: bool = True) -> str:
    """The file name of the checkpoint pruned to `prune` (p50.pt, p50-untuned.pt), in --out."""
    return f"{pruned_stem(prune, finetuned)}.pt"


def _fractions(text: str) -> list[float]:
    """Prune levels; two that would share a file name (0.501 and 0.504 are both p50) are refused,
    and so is a level above 0 that would be named p0, the unpruned checkpoint's name."""
    values = comma_list(float, "0,0.5")(text)
    if any(not 0.0 <= v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"--prune fractions of the MACs to remove must be in [0, 1), got {text!r}")
    named: dict[int, float] = {}
    for value in dict.fromkeys(values):
        if value > 0 and percent(value) == 0:
            raise argparse.ArgumentTypeError(f"--prune {value:g} would be named p0, as the unpruned checkpoint: "
                                             "prune at least 0.005, or 0 for none")
        if named.setdefault(percent(value), value) != value:
            raise argparse.ArgumentTypeError(
                f"--prune {named[percent(value)]:g} and {value:g} both round to p{percent(value)}, one file name: "
                "give levels at least 0.01 apart")
    return values


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision sweep",
        description="Build the variants of a checkpoint (pruned x format x precision), benchmark them in one run, "
                    "mark the latency/top-1 Pareto front and recommend one.",
        examples=[
            "edgevision sweep --model runs/demo/train/model.pt --data digits --prune 0,0.5 --quant fp32,int8 "
            "--seconds 5 --out runs/sweep",
            "edgevision sweep --model runs/demo/train/model.pt --data digits --formats onnx,pte --quant fp32,int8 "
            "--seconds 5 --latency-budget 1 --out runs/sweep-pte",
        ],
    )
    parser.add_argument("--model", required=True, type=Path, help="checkpoint (.pt from `edgevision train`)")
    parser.add_argument("--data", required=True,
                        help="data for pruning, calibration, the int8 guard and the benchmark's top-1 (its val split): "
                        "digits, folder:PATH, a class-folder PATH, ... (as in `edgevision train`)")
    parser.add_argument("--bench-data", help="deprecated: the benchmark scores --data")
    parser.add_argument("--out", required=True, type=Path, help="folder for the variants, sweep.json and the report")
    grid = parser.add_argument_group("variants")
    grid.add_argument("--prune", type=_fractions, default=[0.0],
                      help="fractions of the MACs to remove, e.g. 0,0.5 (0: unpruned; default 0)")
    grid.add_argument("--quant", type=choice_list(QUANTS), default=["fp32"], help="fp32,int8 (default fp32)")
    grid.add_argument("--formats", type=choice_list(tuple(SWEEP_FORMATS)), default=["onnx"],
                      help="onnx,pte (default onnx)")
    grid.add_argument("--finetune-epochs", type=positive_int(MAX_EPOCHS, minimum=0),
                      help="fine-tuning epochs after pruning (default: the architecture's pruning preset's, "
                      f"else {DEFAULT_FINETUNE_EPOCHS}; 0: none, and the pruned variants are named 'untuned')")
    max_drop = grid.add_argument("--max-drop", type=positive_float(100.0, inclusive=True), default=1.0,
                                 metavar="POINTS", help="max int8 top-1 drop vs fp32, in points (default 1)")
    parser.old_option(max_drop, "--quant-budget")
    bench = parser.add_argument_group("benchmark and choice")
    bench.add_argument("--threads", type=positive_int(max_threads()), default=2,
                       help="intra-op threads per runtime (default 2)")
    bench.add_argument("--seconds", type=positive_float(MAX_SECONDS), default=20.0,
                       help="seconds of timed rounds (default 20)")
    bench.add_argument("--limit", type=positive_int(MAX_IMAGES),
                       help="score at most this many images, balanced over classes")
    bench.add_argument("--latency-budget", type=positive_float(MAX_SECONDS * 1000), metavar="MS",
                       help="recommend the most accurate variant at most this many ms per image")
    bench.add_argument("--min-top1", type=positive_float(1.0), metavar="X",
                       help="recommend the fastest variant with at least this top-1 (a fraction, 0.95)")
    return parser


def plan(prunes: list[float], formats: list[str], quants: list[str], finetuned: bool = True) -> list[Variant]:
    """Every combination, in the order given, duplicates dropped; `finetuned`: whether pruned levels are."""
    unique = dict.fromkeys
    return [Variant(p, f, q, finetuned) for p in unique(prunes) for f in unique(formats) for q in unique(quants)]


@dataclass(frozen=True)
class SweepSpec:
    """One sweep: the checkpoint, its data, the grid of variants and how they are benchmarked and chosen
    (the options of `edgevision sweep`, see `build_parser`)."""

    model: Path
    data: str  # pruning, calibration, the int8 guard (and, unless bench_data says otherwise, the benchmark)
    out: Path
    prune: list[float]
    formats: list[str]
    quant: list[str]
    finetune_epochs: int | None = None  # None: the architecture's default
    max_drop: float = 1.0
    threads: int = 2
    seconds: float = 20.0
    limit: int | None = None
    latency_budget: float | None = None
    min_top1: float | None = None
    bench_data: str | None = None  # the deprecated --bench-data

    def scored_data(self) -> str:
        """What the benchmark scores: --data (its val split); the deprecated --bench-data still wins."""
        parse_data_spec(self.data)
        if self.bench_data is None:
            return self.data
        print("edgevision sweep: --bench-data is deprecated, --data is used for the benchmark too", file=sys.stderr)
        parse_data_spec(self.bench_data)
        return self.bench_data


class Manifest:
    """`OUT/sweep.json`: what each file in OUT was built from, so a later sweep can reuse it, and
    this sweep's choice (a previous run's is dropped at the first write: it judged other rows)."""

    def __init__(self, out: Path) -> None:
        self.path = out / MANIFEST
        self.entries: dict[str, dict] = {}
        self.choice: dict | None = None
        if self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text())["artifacts"]
            except (ValueError, KeyError, TypeError):
                logger.warning("%s is unreadable: every variant is rebuilt", self.path)

    def matches(self, path: Path, record: dict) -> bool:
        return path.is_file() and self.entries.get(path.name) == record

    def record(self, path: Path, record: dict) -> None:
        self.entries[path.name] = record
        self._write()

    def record_choice(self, choice: dict) -> None:
        self.choice = choice
        self._write()

    def _write(self) -> None:
        data: dict = {"artifacts": self.entries}
        if self.choice is not None:
            data["choice"] = self.choice
        write_text_atomic(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _sha256(path: Path) -> str:
    from train.checkpoint import sha256_file

    return sha256_file(path)


def finetune_plan(spec: SweepSpec) -> tuple[int, str]:
    """(fine-tuning epochs after pruning, where the number comes from): --finetune-epochs, else the
    default for the checkpoint's architecture (`quantize.presets.default_finetune_epochs`)."""
    if spec.finetune_epochs is not None:
        return spec.finetune_epochs, "--finetune-epochs"
    from quantize.presets import default_finetune_epochs
    from train.checkpoint import card_of, load_checkpoint

    return default_finetune_epochs(card_of(load_checkpoint(spec.model), spec.model).architecture)


def pruned_checkpoint(spec: SweepSpec, prune: float, epochs: int, manifest: Manifest) -> tuple[Path, bool]:
    """(the checkpoint of a prune level fine-tuned `epochs`, whether it was reused); level 0 is --model itself."""
    if prune == 0:
        return spec.model, True
    from quantize.presets import default_preset
    from quantize.prune_pipeline import prune_checkpoint
    from train.checkpoint import card_of, load_checkpoint

    preset = default_preset(card_of(load_checkpoint(spec.model), spec.model).architecture)
    options = dict(preset.options) if preset else {}
    out = spec.out / pruned_name(prune, finetuned=epochs > 0)
    record = {"source_sha256": _sha256(spec.model), "target_macs": round(1.0 - prune, 6),
              "preset": preset.name if preset else None, "finetune_epochs": epochs, "data": spec.data}
    if manifest.matches(out, record):
        return out, True
    from quantize.prune import PruneSpec
    from quantize.prune_pipeline import FinetuneSpec, RecoverySpec

    result = prune_checkpoint(
        spec.model, out,
        PruneSpec(target_macs=1.0 - prune, round_to=options.get("round_to", 8),
                  ignored=tuple(options.get("ignore", ()))),
        RecoverySpec(data=spec.data, finetune=FinetuneSpec(epochs=epochs, lr=options.get("lr", 1e-3))),
    )
    note = result.report.rounding_note()
    if note:
        logger.info("%s: %s", out.name, note)
    manifest.record(out, record)
    return out, False


def build_variant(spec: SweepSpec, variant: Variant, checkpoint: Path, manifest: Manifest) -> Built:
    """Export (fp32, parity checked on --data's val split) or quantize (int8, guarded on --data)
    `checkpoint` into OUT, unless the file there still matches its record."""
    fmt = SWEEP_FORMATS[variant.fmt]
    out = spec.out / f"{variant.name}{fmt.suffix}"
    record = {"source_sha256": _sha256(checkpoint), "quant": variant.quant, "data": spec.data}
    if variant.quant == "int8":
        record["budget"] = spec.max_drop
    if manifest.matches(out, record):
        return Built(variant, out, reused=True)
    from quantize.guard import BudgetMissed

    try:
        if variant.quant == "fp32":
            from deploy.export.pipeline import ExportSpec, export_checkpoint

            result = export_checkpoint(checkpoint, fmt.export_format, out, ExportSpec(data=spec.data))
            if not result.passed:
                return Built(variant, None, error=f"parity check failed ({result.path.name} kept)")
        else:
            from quantize.quantize_pipeline import QuantizeSpec, quantize_checkpoint

            quantize_checkpoint(checkpoint, out, QuantizeSpec(target=fmt.int8_target, budget=spec.max_drop,
                                                              fp16_fallback=False, measure_latency=False,
                                                              threads=spec.threads), data=spec.data)
    except BudgetMissed as exc:
        return Built(variant, None, error=str(exc).splitlines()[0])
    manifest.record(out, record)
    return Built(variant, out)


def sweep_markdown(built: list[Built], rows: list[Row], chosen: Row | None, epochs: int) -> str:
    """One line per variant: its file, whether it was reused, its fine-tuning, latency, top-1, front, chosen."""
    front = {id(r) for r in pareto_front(rows)}
    by_path = {Path(r.path).name: r for r in rows}
    lines = ["| variant | file | built | fine-tuned | ms/image | top-1 % | Pareto front | chosen |",
             "|---|---|---|---|---|---|---|---|"]
    for item in built:
        row = by_path.get(item.path.name) if item.path else None
        speed = f"{per_image_ms(row):.3f}" if row and row.latency else "-"
        top1 = f"{row.top1 * 100:.2f}" if row and row.top1 is not None else "-"
        tuned = "-" if item.variant.prune == 0 else (f"{epochs} epochs" if epochs else "**no**")
        lines.append(
            f"| {item.variant.name} | {md_cell(item.path.name if item.path else 'failed: ' + item.error)} "
            f"| {'reused' if item.reused else 'new'} | {tuned} | {speed} | {top1} "
            f"| {'yes' if row and id(row) in front else ''} "
            f"| {'**yes**' if row is not None and row is chosen else ''} |"
        )
    return "\n".join(lines)


def _variant_entries(built: list[Built], epochs: int) -> list[dict]:
    """The variants as sweep.json's choice lists them, before their rows' numbers are added."""
    return [{"variant": item.variant.name, "file": item.path.name if item.path else None,
             "finetune_epochs": None if item.variant.prune == 0 else epochs,
             **({"error": item.error} if item.error else {})} for item in built]


def sweep(spec: SweepSpec) -> int:
    """Build, benchmark and choose (see the module docstring); 0 when a variant was chosen, 1 when none met the rule."""
    if not spec.model.is_file():
        raise EdgevisionError(f"checkpoint not found: {spec.model}")
    from benchmarks.report_files import BENCH_OUTPUTS, refuse_overwriting_inputs, write_reports

    # Before the checkpoint is read: a --model named as a variant (p50.pt) would be pruned over itself,
    # whichever of the fine-tuned and untuned names the checkpoint's architecture leads to.
    outputs = (*BENCH_OUTPUTS, MANIFEST, *(pruned_name(p, tuned) for p in spec.prune if p for tuned in (True, False)),
               *(f"{v.name}{SWEEP_FORMATS[v.fmt].suffix}" for tuned in (True, False)
                 for v in plan(spec.prune, spec.formats, spec.quant, finetuned=tuned)))
    refuse_overwriting_inputs(spec.out, outputs, [spec.model])
    epochs, source = finetune_plan(spec) if any(spec.prune) else (0, "no pruned variant")
    variants = plan(spec.prune, spec.formats, spec.quant, finetuned=epochs > 0)
    if any(spec.prune):
        logger.info("pruned variants: %s", f"fine-tuned {epochs} epochs ({source})" if epochs else
                    "not fine-tuned (--finetune-epochs 0), named 'untuned'")
    scored = spec.scored_data()
    os.makedirs(spec.out, exist_ok=True)
    check_writable(spec.out / "report.json", "--out folder")
    from benchmarks.fingerprint import machine_fingerprint
    from benchmarks.provenance import labelled_data, run_provenance
    from benchmarks.report import to_markdown
    from benchmarks.roofline import with_peak
    from benchmarks.runner import run_benchmark

    manifest = Manifest(spec.out)
    built: list[Built] = []
    checkpoints: dict[float, Path] = {}
    with logging_above_bars():
        for variant in progress(variants, desc="variants", unit="file"):
            if variant.prune not in checkpoints:
                checkpoints[variant.prune], _ = pruned_checkpoint(spec, variant.prune, epochs, manifest)
            item = build_variant(spec, variant, checkpoints[variant.prune], manifest)
            logger.info("%s: %s", variant.name, item.error or ("reused" if item.reused else "built"))
            built.append(item)
    targets = [Target(item.path) for item in built if item.path]
    if not targets:
        raise EdgevisionError("no variant could be built: " + "; ".join(f"{b.variant.name}: {b.error}" for b in built))
    rows = run_benchmark(targets, [spec.threads], spec.seconds, scored, "val", spec.limit)
    chosen = recommend(rows, spec.latency_budget, spec.min_top1)
    choice = choice_record(_variant_entries(built, epochs), rows, spec.latency_budget, spec.min_top1, chosen)
    choice["finetune"] = {"epochs": epochs, "from": source}
    manifest.record_choice(choice)
    fingerprint = with_peak(machine_fingerprint(), rows)
    markdown = to_markdown(rows, None, fingerprint.get("peak")) + "\n\n" + sweep_markdown(built, rows, chosen, epochs)
    print(markdown)
    provenance = run_provenance(rows, labelled_data(scored, "val", spec.limit))
    write_reports(spec.out, rows, fingerprint, markdown, provenance=provenance)
    if chosen is None:
        print(f"no variant meets --latency-budget {spec.latency_budget} / --min-top1 {spec.min_top1}; "
              f"report written to {spec.out}/")
        return 1
    print(f"why: {choice['reason']} (recorded in {manifest.path})")
    print(f"chosen: {chosen.path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`["sweep", *options]`, as `edgevision` passes it (`deploy.cli_util.run_subcommand`)."""
    return run_subcommand(argv, {"sweep": Subcommand(build_parser, sweep, spec=SweepSpec)})
