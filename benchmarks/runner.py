"""Benchmark model files side by side, over threads and batch sizes: one row per configuration.

Every configuration (artifact x threads x batch) runs through the same runtime a user gets
(`deploy.load`), each in a process of its own (`benchmarks.worker`), so the numbers are what a
deployment sees, each peak memory is its own, and a crash costs one row. Latency is the backend's
inference on one preprocessed batch, timed interleaved across all configurations; accuracy is
top-1 / top-5 on labelled images, end to end, scored once per artifact and backend (threads and
batch size do not change the predictions).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.data import images_source, scored_items
from benchmarks.model_stats import ModelStats, onnx_stats
from benchmarks.progress import logging_above_bars, progress
from benchmarks.rows import Row, Target, artifact_size_bytes
from benchmarks.worker import Scores, TargetFailed, TargetProcess
from deploy.data_spec import DataSpec, Item, parse_data_spec
from deploy.image_folder import has_split_folders, tree_fingerprint
from deploy.preprocess import read_image
from deploy.timing import LatencyStats, measure_rounds

logger = logging.getLogger("edgevision.benchmarks")


def warn_if_trained_on(data: Path, trained: dict[str, tuple[str, str]]) -> None:
    """Say loudly when the images to score are the very tree a model was trained on: `edgevision
    train` splits a plain class-folder tree 70/15/15, but bench scores a plain tree whole.
    `trained`: row name -> (the card's dataset, its tree fingerprint); the fingerprint recognises
    the tree wherever it lies, the path is what older cards kept."""
    if has_split_folders(data):
        return
    fingerprint = None
    for name, (dataset, sha256) in trained.items():
        kind, _, trained_on = (dataset or "").partition(":")
        if sha256 and fingerprint is None:
            fingerprint = tree_fingerprint(data)
        same = (sha256 and sha256 == fingerprint) or (
            kind == "folder" and Path(trained_on).is_absolute() and Path(trained_on).resolve() == Path(data).resolve())
        if same:
            logger.warning(
                "%s was trained on %s, which has no train/val/test folders: its top-1 here counts the "
                "images it trained on (train split such a tree 70/15/15); score a folder it never saw",
                name, data)


def warn_if_other_split(spec: DataSpec, split: str, seeds: dict[str, int]) -> None:
    """Say loudly when a model was trained on a split of a named set (or IDX files) drawn with
    another seed than the 0 bench draws with: `seeds`, row name -> its card's split seed."""
    others = [f"{name} (seed {seed})" for name, seed in seeds.items() if seed != 0]
    if others:
        logger.warning("%s trained on a split of %s drawn with another seed than bench's 0: the %s split "
                       "scored here holds images they trained on (`edgevision eval --split %s` draws theirs)",
                       ", ".join(others), spec, split, split)


@dataclass(frozen=True)
class Config:
    target: Target
    threads: int
    batch: int


def configurations(targets: list[Target], threads: list[int], batches: list[int]) -> list[Config]:
    return [Config(t, n, b) for t in targets for n in threads for b in batches]


def _new_row(config: Config, stats: ModelStats | None) -> Row:
    path = config.target.path
    size = artifact_size_bytes(path) if path.exists() else 0
    return Row(config.target.name, config.target.backend, "?", config.threads, config.batch, size, str(path),
               macs=stats.macs if stats else None, params=stats.params if stats else None)


def _agreement(scores: dict[int, Scores], rows: list[Row]) -> None:
    """Top-1 agreement with the first scored row (the reference), image by image."""
    if not scores:
        return
    reference = scores[min(scores)]
    for index, own in scores.items():
        same = sum(a == b for a, b in zip(own.labels, reference.labels, strict=True))
        rows[index].agreement = same / len(reference.labels)


def run_benchmark(
    targets: list[Target],
    threads: Sequence[int] = (2,),
    budget_s: float = 20.0,
    data: str | os.PathLike | None = None,
    split: str = "val",
    limit: int | None = None,
    batches: Sequence[int] = (1,),
    options: dict | None = None,
) -> list[Row]:
    """Start every configuration in a process of its own, time them all interleaved, then score
    each artifact on the labelled images. A configuration that fails to load, raises, or crashes
    its process is a failed row with the reason; the others go on. Ctrl-C keeps what is finished:
    the rows not yet timed and scored come back with status "interrupted" (and whatever samples
    they had), and the caller decides what to write.

    With several configurations, thread pools must not spin while they wait: a runtime whose idle
    threads busy-wait for their next job takes the cores from the one being timed
    (onnxruntime fp32 measured 15 ms instead of 5 ms next to four other sessions on 2 cores). Every row loads
    onnxruntime with `spin_wait=False`; OpenMP (PyTorch eager) gets OMP_WAIT_POLICY=PASSIVE.

    `data` is a `--data` spec (`deploy.data_spec`); a named set's `split` is drawn with seed 0, and a
    model whose card says its training drew another is warned about. `options`: backend options for
    every row (`provider`, `precision`; `deploy.load`). Each row's load time and first call are
    measured apart from the timed rounds (a GPU provider builds and initialises on them).
    On a terminal, progress bars show the loading, the timed seconds and the images scored.
    """
    configs = configurations(targets, list(threads), list(batches))
    if len(configs) > 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # inherited by the targets' processes
    spec = parse_data_spec(str(data)) if data else None
    items, class_names = scored_items(data, split, limit)
    sample = np.full((256, 320, 3), 127, np.uint8)
    if items:
        sample = read_image(str(items[0][0])) if isinstance(items[0][0], Path) else items[0][0]
    stats_of = {target.path: onnx_stats(target.path) for target in targets}
    rows = [_new_row(c, stats_of[c.target.path]) for c in configs]
    running: dict[int, TargetProcess] = {}
    samples: dict[int, list[float]] = {}
    finished: set[int] = set()
    with logging_above_bars():
        try:
            loading = progress(list(zip(configs, rows, strict=True)), desc="loading", unit="config")
            for index, (config, row) in enumerate(loading):
                logger.info("loading %d/%d: %s, %d thread(s), batch %d", index + 1, len(configs), row.model,
                            config.threads, config.batch)
                try:
                    row_options = {**(options or {}), "threads": config.threads, "spin_wait": False}
                    process = TargetProcess(config.target.path, config.target.backend, row_options, sample,
                                            config.batch)
                except TargetFailed as exc:
                    row.status, row.error = "failed", str(exc)
                    finished.add(index)
                    continue
                row.backend, row.precision = process.info.backend, process.info.precision
                row.load_s = process.info.load_s
                row.first_ms, row.provider = 1000 * process.info.first_s, process.info.provider
                running[index] = process
            if spec is not None and spec.kind == "folder":
                warn_if_trained_on(spec.path, {rows[i].model: (p.info.dataset, p.info.dataset_sha256)
                                               for i, p in running.items()})
            elif spec is not None:
                warn_if_other_split(spec, split, {rows[i].model: p.info.split_seed for i, p in running.items()})
            logger.info("timing %d configuration(s) in interleaved rounds for %g s", len(running), budget_s)
            with progress(total=round(budget_s), desc="timing", bar_format="{l_bar}{bar}| {n:.0f}/{total} s") as clock:
                stats, failures = measure_rounds(
                    {i: _recording(p, samples.setdefault(i, []), clock) for i, p in running.items()}, budget_s=budget_s)
            for index in stats:
                rows[index].latency = LatencyStats.from_samples(samples[index])
                rows[index].samples_ms = kept_values(samples[index])
            for index, exc in failures.items():
                rows[index].status, rows[index].error = "failed", str(exc)
                running.pop(index).close()
                finished.add(index)
            scores: dict[int, Scores] = {}
            scored: dict[Target, Scores] = {}
            to_score = len({configs[i].target for i in running}) * len(items)
            with progress(total=to_score, desc="scoring", unit="image") as counter:
                for index, process in running.items():
                    target = configs[index].target
                    if items and target not in scored:
                        logger.info("scoring %s on %d images (%s)", rows[index].model, len(items),
                                    images_source(data, split))
                        try:
                            scored[target] = score_in_chunks(process, items, class_names, counter)
                        except TargetFailed as exc:
                            rows[index].status, rows[index].error = "failed", str(exc)
                    if target in scored:
                        scores[index] = scored[target]
                        rows[index].top1, rows[index].top5 = scored[target].top1, scored[target].top5
                        rows[index].images = len(items)
                    finished.add(index)
            _agreement(scores, rows)
        except KeyboardInterrupt:
            logger.warning("interrupted: keeping the %d finished row(s)", len(finished))
            for index, row in enumerate(rows):
                if index not in finished:
                    row.status, row.error = "interrupted", "Ctrl-C before this row was finished"
                    if samples.get(index) and row.latency is None:
                        row.latency = LatencyStats.from_samples(samples[index])
                        row.samples_ms = kept_values(samples[index])
        finally:
            for index, process in running.items():
                rows[index].peak_rss_bytes = process.close()
    return rows


MAX_VALUES = 5000  # timed calls kept per row for the distribution: a tiny model makes millions


def kept_values(seconds: list[float]) -> list[float]:
    """The timed calls in ms, thinned evenly to at most MAX_VALUES (the statistics use all)."""
    step = -(-len(seconds) // MAX_VALUES)
    return [round(1000 * s, 4) for s in seconds[::step]]


def _recording(process: TargetProcess, kept: list[float], clock):
    """The process's timer for `measure_rounds`, keeping every timed call after the first request
    (measure_rounds' first request to each timer is its warm-up); `clock`, a progress bar in
    seconds, advances by the time each request took."""
    warmed = False

    def timer(count: int) -> list[float]:
        nonlocal warmed
        start = time.perf_counter()
        durations = process.time(count)
        if warmed:
            kept.extend(durations)
            clock.update(time.perf_counter() - start)
        warmed = True
        return durations

    return timer


SCORE_CHUNK = 50  # images per request to a target's process: the bar moves, a slow model cannot time out


def score_in_chunks(process: TargetProcess, items: list[Item], class_names: list[str], counter) -> Scores:
    parts = []
    for start in range(0, len(items), SCORE_CHUNK):
        chunk = items[start : start + SCORE_CHUNK]
        parts.append(process.score(chunk, class_names))
        counter.update(len(chunk))
    return Scores.merge(parts)
