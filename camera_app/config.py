"""`AppConfig`: every option of `edgevision camera`, checked in one place, split into the options
each part takes (`SourceOptions`, `CaptureOptions`, `PipelineOptions`, `OutputOptions`).

Each number has an accepted range, and a value outside it (NaN and infinity included: they fail
every comparison) is a one-line error naming the option and the range, before the model is loaded
or the source opened.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

from camera_app.display import MODES as DISPLAY_MODES
from camera_app.outputs import check_outputs_apart, check_record_path
from camera_app.selfcheck import MODES as SELF_CHECK_MODES
from camera_app.serve import check_serve_fps, parse_bind
from camera_app.serve_access import check_token
from camera_app.sources import SourceOptions, parse_source, read_folder
from camera_app.uncertain import SaveOptions
from camera_app.watch import WatchOptions
from deploy.atomic import check_writable
from deploy.errors import EdgevisionError
from deploy.limits import check_threads

DAY_S = 86400.0


@dataclass(frozen=True)
class Range:
    """low <= x <= high (low < x when `low_open`); `integer`: whole numbers only."""

    low: float
    high: float = math.inf
    low_open: bool = False
    integer: bool = False
    note: str = ""

    def text(self, name: str) -> str:
        low = f"{self.low:g} {'<' if self.low_open else '<='} {name}"
        if self.high == math.inf:
            return low
        high = int(self.high) if float(self.high).is_integer() else self.high
        return f"{low} <= {high}" + (f" ({self.note})" if self.note else "")

    def check(self, option: str, value) -> None:
        kind = numbers.Integral if self.integer else numbers.Real
        inside = isinstance(value, kind) and not isinstance(value, bool) and (
            (self.low < value if self.low_open else self.low <= value) and value <= self.high
        )
        if not inside:
            what = "a whole number" if self.integer else "a number"
            raise EdgevisionError(f"--{option} must be {what} with {self.text(option)}, got {value!r}")


RANGES = {
    "top_k": Range(1, 1000, integer=True),
    "smooth": Range(1, 1000, integer=True),
    "threshold": Range(0.0, 1.0),
    "width": Range(1, 16384, integer=True),
    "height": Range(1, 16384, integer=True),
    "fps": Range(0.0, 1000.0, low_open=True),
    "loop": Range(-1, integer=True),
    "open_timeout": Range(0.0, 3600.0, low_open=True),
    "read_timeout": Range(0.0, 3600.0, low_open=True),
    "buffer_frames": Range(1, integer=True),
    "buffer_mb": Range(0.0, 1 << 20, low_open=True),
    "max_reconnects": Range(-1, integer=True),
    "max_frames": Range(1, integer=True),
    "duration": Range(0.0, 30 * DAY_S, low_open=True, note="30 days"),
}
CHOICES = {"display": DISPLAY_MODES, "rtsp_transport": ("tcp", "udp"), "self_check": (None, *SELF_CHECK_MODES)}


@dataclass(frozen=True)
class CaptureOptions:
    """How the capture thread hands out frames (see `camera_app.capture.Capture`)."""

    buffer: bool = False
    buffer_frames: int = 512
    loops: int = 0
    realtime: bool = False
    fallback_fps: float = 30.0
    max_reconnects: int = 10
    buffer_mb: float = 256.0
    first_frame_within: float | None = None  # seconds (--duration): a source that never gives a frame ends the run


@dataclass
class PipelineOptions:
    """top_k: labels kept per frame; smooth: average probabilities over this many frames (1: off);
    threshold: below this best probability the frame is "uncertain"; max_frames / duration: stop
    after this many processed frames / seconds (None: until the source ends); caption: the overlay's
    last line."""

    top_k: int = 3
    smooth: int = 1
    threshold: float = 0.0
    max_frames: int | None = None
    duration: float | None = None
    caption: str = ""


@dataclass(frozen=True)
class OutputOptions:
    """Where the per-frame outputs go; each None is off. (The window is decided by `--display`
    before the run, the report written after it.)"""

    log: str | None = None
    record: str | None = None
    serve: str | None = None
    snapshot_dir: str = "."


@dataclass
class AppConfig:
    """Every option of `edgevision camera` by its CLI name (see `camera_app.cli` for what each does).

    `display` is "none" here and "auto" on the command line: a library call (a script, a notebook,
    a service) should not open a window because a DISPLAY happens to be set; a person at the
    command line wants one where it can open.
    """

    model: str
    source: str
    backend: str = "auto"
    labels: str | None = None
    threads: int | None = None
    provider: str = "auto"  # where the model runs (deploy.cli_util.add_device_options)
    precision: str | None = None  # a .pt's compute precision on the torch backend
    top_k: int = 3
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    loop: int = 0
    realtime: bool = False
    rtsp_transport: str = "tcp"
    open_timeout: float = 10.0
    read_timeout: float = 5.0
    buffer: bool = False
    buffer_frames: int = 512
    max_reconnects: int = 10
    smooth: int = 1
    threshold: float = 0.0
    display: str = "none"
    log: str | None = None
    record: str | None = None
    report: str | None = None
    serve: str | None = None
    max_frames: int | None = None
    duration: float | None = None
    snapshot_dir: str = "."
    buffer_mb: float = 256.0
    self_check: str | None = None  # strict | warn: replay the model's reference set first (camera_app.selfcheck)
    serve_fps: float = 15.0
    serve_token: str | None = None
    # the confidence watch and the saver of uncertain frames (camera_app.watch, camera_app.uncertain)
    watch_window: int = 300
    drift_alert: float = 0.25
    margin: float = 0.0
    save_uncertain: str | None = None
    save_every: float = 1.0
    save_max: int = 500

    def validate(self) -> None:
        """Every check that needs neither the model nor the source; a one-line error for the first failure."""
        for name, accepted in RANGES.items():
            value = getattr(self, name)
            if value is not None:
                accepted.check(name.replace("_", "-"), value)
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise EdgevisionError(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}, "
                                      f"got {getattr(self, name)!r}")
        check_threads(self.threads, minimum=1)
        self.watch_options()
        self.save_options()
        if not Path(self.model).exists():
            raise EdgevisionError(f"model file not found: {self.model}")
        if self.record:
            check_record_path(self.record)
        for flag, path in (("--log", self.log), ("--record", self.record), ("--report", self.report)):
            if path:
                check_writable(path, flag)
        check_outputs_apart({"--log": self.log, "--record": self.record, "--report": self.report},
                            {"--model": self.model, "--labels": self.labels, "--source": self.source},
                            read_folder(parse_source(self.source)))
        if self.serve is not None:
            parse_bind(self.serve)
            check_serve_fps(self.serve_fps)
            check_token(self.serve_token)

    def source_options(self) -> SourceOptions:
        return SourceOptions(self.width, self.height, self.fps, self.open_timeout, self.read_timeout,
                             self.rtsp_transport)

    def capture_options(self) -> CaptureOptions:
        return CaptureOptions(self.buffer, self.buffer_frames, self.loop, self.realtime, self.fps or 30.0,
                              self.max_reconnects, self.buffer_mb, self.duration)

    def pipeline_options(self) -> PipelineOptions:
        return PipelineOptions(self.top_k, self.smooth, self.threshold, self.max_frames, self.duration)

    def output_options(self) -> OutputOptions:
        return OutputOptions(self.log, self.record, self.serve, self.snapshot_dir)

    def watch_options(self) -> WatchOptions:
        return WatchOptions(self.watch_window, self.drift_alert, self.margin)

    def save_options(self) -> SaveOptions | None:
        if not self.save_uncertain:
            return None
        return SaveOptions(self.save_uncertain, self.threshold, self.margin, self.save_every, self.save_max)
