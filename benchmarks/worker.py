"""One benchmark target in a process of its own.

A runtime that aborts natively (an ExecuTorch program with a bad header ends the process with
SIGABRT, which no `except` catches) then takes down this process only: the target becomes a failed
row and the other rows are kept. Each target's peak memory is its own, and runtimes do not share
an address space. The parent keeps the interleaving: it asks each process in turn for a few timed
calls (`TargetProcess.time`), so `deploy.timing.measure_rounds` drives them as it drives calls.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.errors import EdgevisionError, first_line

LOAD_TIMEOUT_S = 300.0
CALL_TIMEOUT_S = 600.0


class TargetFailed(Exception):
    """The target's process reported an error, died, or stopped answering."""


@dataclass(frozen=True)
class LoadedInfo:
    backend: str
    precision: str
    dataset: str
    dataset_sha256: str  # the card's fingerprint of its training tree (deploy.image_folder.tree_fingerprint)
    split_seed: int  # the seed training split its data with (0 when the card does not say)
    load_s: float  # deploy.load in a fresh process: file read, graph optimisation (a TensorRT engine build), allocation
    first_s: float = 0.0  # the first call after loading, at the row's batch: lazy initialisation, cuDNN's choice
    provider: str = ""  # where it ran, as the backend says (`info["provider"]`)


@dataclass(frozen=True)
class Scores:
    """What one model got right on labelled images, as counts (what the child sends), and each
    image's predicted label (for agreement); the ratios are computed from the counts, never the
    other way round."""

    top1_correct: int
    top5_correct: int
    labels: list[str]  # one per image scored, in order

    @property
    def total(self) -> int:
        return len(self.labels)

    @property
    def top1(self) -> float:
        return self.top1_correct / self.total

    @property
    def top5(self) -> float:
        return self.top5_correct / self.total

    @classmethod
    def merge(cls, parts: list[Scores]) -> Scores:
        """One Scores for consecutive chunks, in order."""
        return cls(sum(part.top1_correct for part in parts), sum(part.top5_correct for part in parts),
                   [label for part in parts for label in part.labels])


def score(classifier, items: list[tuple[Path | np.ndarray, int]], class_names: list[str]) -> Scores:
    """End to end, one image at a time: read (a file; an in-memory image as it is), preprocess, run,
    rank. An image counts for top-5 when its class name is among the five best labels (all of them
    with fewer classes)."""
    from deploy.preprocess import read_image

    labels = classifier.card.class_names
    missing = set(class_names) - set(labels)
    if missing:
        raise EdgevisionError(f"data classes {sorted(missing)} are not among the model's labels")
    hits1 = hits5 = 0
    predicted = []
    for image, index in items:
        pixels = image if isinstance(image, np.ndarray) else read_image(str(image))
        top = [label for label, _ in classifier.predict(pixels, top_k=5).top]
        hits1 += top[0] == class_names[index]
        hits5 += class_names[index] in top
        predicted.append(top[0])
    return Scores(hits1, hits5, predicted)


def _peak_rss_bytes() -> int:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec; `ru_maxrss` does not
    (a child started from a parent that held torch would report the parent's gigabyte)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, EdgevisionError) else f"{type(exc).__name__}: {first_line(exc)}"


def serve(conn, path: str, backend: str, options: dict, sample: np.ndarray, batch_size: int) -> None:
    """The child's loop: load, then answer ("time", n), ("score", (items, classes)) and ("stop", None).

    Ctrl-C reaches the whole process group; the child ignores it and the parent, which decides
    what an interrupted run keeps, stops it."""
    import time

    import deploy
    from deploy.preprocess import preprocess

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        start = time.perf_counter()
        classifier = deploy.load(path, backend=backend, **options)
        load_s = time.perf_counter() - start
        if classifier.max_batch is not None and batch_size > classifier.max_batch:
            raise EdgevisionError(f"static batch: the model's input takes batch {classifier.max_batch}, "
                                  f"not {batch_size} (export it with a dynamic batch)")
    except Exception as exc:  # reported to the parent as this row's error
        conn.send(("error", _reason(exc)))
        return
    card = classifier.card
    seed = card.dataset_info.get("split_seed", 0)
    batch = np.repeat(preprocess(sample, card.preprocessing)[None], batch_size, axis=0)
    try:
        start = time.perf_counter()
        classifier.backend.run(batch)
        first_s = time.perf_counter() - start
    except Exception as exc:
        conn.send(("error", _reason(exc)))
        return
    info = classifier.backend.info
    conn.send(("ready", LoadedInfo(classifier.backend.name, info.get("precision") or card.precision, card.dataset,
                                 card.dataset_info.get("sha256", ""), seed if isinstance(seed, int) else 0, load_s,
                                 first_s, str(info.get("provider", "")))))
    while True:
        command, argument = conn.recv()
        try:
            if command == "time":
                durations = []
                for _ in range(argument):
                    t0 = time.perf_counter()
                    classifier.backend.run(batch)
                    durations.append(time.perf_counter() - t0)
                conn.send(("ok", durations))
            elif command == "score":
                conn.send(("ok", score(classifier, *argument)))
            else:
                conn.send(("peak", _peak_rss_bytes()))
                return
        except Exception as exc:
            conn.send(("error", _reason(exc)))


def describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        return f"died of {signal.Signals(-code).name}"
    return f"exited with status {code}"


class TargetProcess:
    """The parent's handle on one target's process."""

    def __init__(self, path: Path, backend: str, options: dict, sample: np.ndarray, batch: int = 1) -> None:
        context = multiprocessing.get_context("spawn")  # no fork: runtimes' thread pools do not survive it
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child, str(path), backend, options, sample, batch),
                                        daemon=True)
        self._process.start()
        child.close()
        try:
            self.info: LoadedInfo = self._answer(LOAD_TIMEOUT_S, "ready")
        except TargetFailed:
            self.close()
            raise

    def _answer(self, timeout: float, expected: str = "ok"):
        try:
            if not self._conn.poll(timeout):
                self._process.kill()
                raise TargetFailed(f"its process stopped answering for {timeout:.0f} s")
            kind, value = self._conn.recv()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            self._process.join(5)
            raise TargetFailed(f"its process {describe_exit(self._process.exitcode)}") from None
        if kind != expected:
            raise TargetFailed(value)
        return value

    def _ask(self, command: str, argument=None, timeout: float = CALL_TIMEOUT_S):
        try:
            self._conn.send((command, argument))
        except (BrokenPipeError, ConnectionResetError, OSError):
            self._process.join(5)
            raise TargetFailed(f"its process {describe_exit(self._process.exitcode)}") from None
        return self._answer(timeout)

    def time(self, count: int) -> list[float]:
        return self._ask("time", count)

    def score(self, items: list[tuple[Path | np.ndarray, int]], class_names: list[str]) -> Scores:
        return self._ask("score", (items, class_names))

    def close(self) -> int | None:
        """End the process; its peak resident memory in bytes when it could still tell. After a
        Ctrl-C the answer to an interrupted call may still be in the pipe: it is skipped."""
        peak = None
        if self._process.is_alive():
            try:
                self._conn.send(("stop", None))
                while peak is None and self._conn.poll(10.0):
                    kind, value = self._conn.recv()
                    peak = value if kind == "peak" else None
            except (EOFError, OSError):
                pass
            self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
        return peak
