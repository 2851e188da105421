"""What a benchmark measures and what it measures it on: a `Target` (a model file and its backend)
and a `Row` (one configuration's numbers). Every part of benchmarks/ speaks in these: the runner
fills rows, the JSON (`benchmarks.schema`) stores and reads them, the reports and plots show them.
Nothing here measures or imports a runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deploy.errors import EdgevisionError
from deploy.timing import LatencyStats


@dataclass(frozen=True)
class Target:
    """One artifact, and the backend to run it with ("auto" by suffix)."""

    path: Path
    backend: str = "auto"

    @classmethod
    def parse(cls, text: str) -> Target:
        """`model.onnx` or `model.onnx@onnxruntime`. A file that exists is taken as named, `@` and
        all (`runs@2/m.onnx`); otherwise the text is split at its last `@` when what follows is a
        registered backend. Anything else is refused, saying which reading failed."""
        from deploy.backends import list_backends

        if Path(text).exists():
            return cls(Path(text))
        path, at, backend = text.rpartition("@")
        if not at:
            raise EdgevisionError(f"model file not found: {text}")
        if backend not in list_backends():
            raise EdgevisionError(f"model file not found: {text} (and {backend!r} after its last @ is not a backend; "
                                  f"MODEL@BACKEND takes one of {', '.join(list_backends())})")
        if not Path(path).exists():
            raise EdgevisionError(f"model file not found: {path} (read {text} as MODEL@BACKEND)")
        return cls(Path(path), backend)

    @property
    def name(self) -> str:
        return f"{self.path.name}@{self.backend}" if self.backend != "auto" else self.path.name


@dataclass
class Row:
    """One configuration's measurements; None where not measured (a failed row, no --data)."""

    model: str
    backend: str
    precision: str
    threads: int
    batch: int
    size_bytes: int
    path: str = ""
    status: str = "ok"  # ok | failed | interrupted
    error: str = ""
    latency: LatencyStats | None = None
    samples_ms: list[float] = field(default_factory=list)  # the timed calls, for the distribution
    top1: float | None = None
    top5: float | None = None
    images: int = 0
    agreement: float | None = None  # top-1 agreement with the reference row (the first scored)
    peak_rss_bytes: int | None = None  # the configuration's own process
    # deploy.load in a fresh process (onnxruntime's TensorRT provider builds its engine here)
    load_s: float | None = None
    first_ms: float | None = None  # the first call after loading, at the row's batch, apart from the timed calls
    provider: str = ""  # where it ran, as the backend says (CUDAExecutionProvider, torch ... eager (cuda))
    macs: int | None = None  # per image
    params: int | None = None

    @property
    def throughput_ips(self) -> float | None:
        """Images per second, sustained: batch over the mean latency of a call."""
        return 1000.0 * self.batch / self.latency.mean_ms if self.latency else None


def artifact_files(path: Path) -> list[Path]:
    """The model file and the files its weights may live in (ONNX external data, an OpenVINO IR's .bin)."""
    parts = [path, path.parent / f"{path.name}.data"]
    if path.suffix == ".xml":
        parts.append(path.with_suffix(".bin"))
    return parts


def artifact_size_bytes(path: Path) -> int:
    """Size of the model file plus the files its weights live in."""
    return sum(p.stat().st_size for p in artifact_files(path) if p.is_file())
