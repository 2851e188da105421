"""The app: a config in, a summary dict out. The CLI and `camera_app.run` both come here.

Every check the user can fail (source, display, record suffix, serve address, limits) runs before
the model is loaded or the camera opened; the source is released and every thread stopped on any
way out (end of file, limit, q/Esc, Ctrl-C, SIGTERM, an error).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from camera_app.capture import Capture
from camera_app.display import Window, want_window
from camera_app.outputs import FrameLog, Recorder, check_outputs_apart, check_record_path, write_report
from camera_app.pipeline import PipelineOptions, PipelineResult, Sinks, run_pipeline, stage_stats
from camera_app.selfcheck import self_check
from camera_app.serve import FrameServer, check_serve_fps, parse_bind
from camera_app.serve_access import check_token
from camera_app.sources import SourceOptions, open_source, parse_source, read_folder
from deploy.atomic import artifact_lock, check_writable
from deploy.errors import EdgevisionError

log = logging.getLogger("edgevision.camera")
WARMUP_FRAME = (480, 640, 3)


@dataclass
class AppConfig:
    """Every option of `edgevision camera` (see `camera_app.cli` for what each one means)."""

    model: str
    source: str
    backend: str = "auto"
    labels: str | None = None
    threads: int | None = None
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
    buffer_mb: float = 256.0
    max_reconnects: int = 10
    smooth: int = 1
    threshold: float = 0.0
    display: str = "none"
    log: str | None = None
    record: str | None = None
    report: str | None = None
    serve: str | None = None
    serve_fps: float = 15.0
    serve_token: str | None = None
    max_frames: int | None = None
    duration: float | None = None
    snapshot_dir: str = "."
    self_check: str | None = None  # strict | warn: replay the model's reference set first (camera_app.selfcheck)
    # --- confidence watch and uncertain frames (camera_app.watch, camera_app.uncertain) ---
    watch_window: int = 300
    drift_alert: float = 0.25
    margin: float = 0.0
    save_uncertain: str | None = None
    save_every: float = 1.0
    save_max: int = 500


def check_watch_options(config: AppConfig) -> None:
    """The confidence watch's and --save-uncertain's options, checked by their own dataclasses."""
    from camera_app.uncertain import SaveOptions
    from camera_app.watch import WatchOptions

    WatchOptions(config.watch_window, config.drift_alert, config.margin)
    if config.save_uncertain:
        SaveOptions(config.save_uncertain, config.threshold, config.margin, config.save_every, config.save_max)


def check_config(config: AppConfig) -> None:
    """The checks that need neither the model nor the camera."""
    if not Path(config.model).exists():
        raise EdgevisionError(f"model file not found: {config.model}")
    for name in ("max_frames", "threads", "width", "height"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise EdgevisionError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    for name in ("duration", "fps", "open_timeout", "read_timeout"):
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise EdgevisionError(f"--{name.replace('_', '-')} must be > 0, got {value}")
    if config.loop < -1:
        raise EdgevisionError(f"--loop must be -1 (forever), 0 or more, got {config.loop}")
    check_watch_options(config)
    if config.record:
        check_record_path(config.record)
    for flag, path in (("--log", config.log), ("--record", config.record), ("--report", config.report)):
        if path:
            check_writable(path, flag)
    check_outputs_apart({"--log": config.log, "--record": config.record, "--report": config.report},
                        {"--model": config.model, "--labels": config.labels, "--source": config.source},
                        read_folder(parse_source(config.source)))
    if config.serve is not None:
        parse_bind(config.serve)
        check_serve_fps(config.serve_fps)
        check_token(config.serve_token)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """SIGINT and SIGTERM set `stop` (the loop then ends cleanly); yields the names of signals received."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, _frame) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def load_classifier(config: AppConfig):
    import deploy

    options = {"threads": config.threads} if config.threads else {}
    return deploy.load(config.model, backend=config.backend, labels=config.labels, **options)


def run_app(config: AppConfig, classifier=None, stop: threading.Event | None = None) -> dict:
    """Run the app headless or with a window; returns the summary (also written to `config.report`).

    classifier: anything with `predict(image, top_k) -> Prediction`, `card.class_names` and `info`
    (default: `deploy.load(config.model, ...)`).
    """
    check_config(config)
    with contextlib.ExitStack() as locks:  # held until the report is written: a second run is refused at once
        for flag, path in (("--log", config.log), ("--record", config.record), ("--report", config.report)):
            if path:
                locks.enter_context(artifact_lock(path, flag))
        return _run_locked(config, classifier, stop)


def _run_locked(config: AppConfig, classifier, stop: threading.Event | None) -> dict:
    spec = parse_source(config.source)
    use_window, no_window = want_window(config.display)
    if no_window:
        log.warning("no window: %s", no_window)
    options = PipelineOptions(config.top_k, config.smooth, config.threshold, config.max_frames, config.duration,
                              snapshot_dir=config.snapshot_dir)
    source_options = SourceOptions(config.width, config.height, config.fps, config.open_timeout,
                                   config.read_timeout, config.rtsp_transport)
    capture = Capture(
        lambda: open_source(spec, source_options), live=spec.live, buffer=config.buffer,
        buffer_frames=config.buffer_frames, loops=config.loop, realtime=config.realtime,
        fallback_fps=config.fps or 30.0, max_reconnects=config.max_reconnects,
        buffer_mb=config.buffer_mb, first_frame_within=config.duration,
    )
    description = capture.open()  # a missing camera or refused URL fails here, before the model loads
    try:
        classifier = load_classifier(config) if classifier is None else classifier
        self_check(classifier, config.model, config.self_check)
        classifier.predict(np.zeros(WARMUP_FRAME, np.uint8), top_k=1)  # the first call allocates: keep it out of the numbers
    except BaseException:
        capture.source.release()
        raise
    labels = list(classifier.card.class_names)
    info = classifier.info
    backend = f"{info.get('backend', '?')} {info.get('precision', '')} {info.get('provider', '')}".strip()
    options.caption = f"{backend} | {Path(str(config.model)).name}"
    stop = stop or threading.Event()
    sinks = Sinks()
    result = PipelineResult()
    stopped_cleanly = True
    with stop_on_signals(stop) as received:
        capture.start()
        try:
            if config.log:
                sinks.log = FrameLog(config.log)
            if config.record:
                sinks.recorder = Recorder(config.record, capture.source.fps or config.fps or 30.0)
            if config.serve is not None:
                sinks.server = FrameServer(
                    config.serve, title=f"{Path(str(config.model)).name} on {description}",
                    info=serve_info(config, description, classifier), serve_fps=config.serve_fps,
                    token=config.serve_token,
                )
                log.warning("serving on %s (stream: %sstream.mjpg)", sinks.server.url, sinks.server.url)
            if use_window:
                sinks.window = Window(f"edgevision camera: {description}")
            log.info("%s -> %s (%s)", description, config.model, backend)
            result = run_pipeline(
                capture, lambda image: classifier.predict(image, top_k=config.top_k), labels, options, sinks, stop
            )
        finally:
            stopped_cleanly = capture.stop(timeout=1.0)
            for sink in (sinks.window, sinks.recorder, sinks.server, sinks.log):
                if sink is not None:
                    sink.close()
        if received:
            result.end_reason = f"signal {received[0]}"
    summary = summarize(config, description, backend, capture, result)
    summary["display"] = "window" if use_window else "headless"
    summary["capture_thread_ended"] = stopped_cleanly
    failed = [sink.failed for sink in (sinks.log, sinks.recorder) if sink is not None and sink.failed]
    if sinks.recorder is not None:
        summary["recorded"] = {"frames": sinks.recorder.frames, "resized": sinks.recorder.resized}
    summary["output_errors"] = failed
    summary["error"] = summary["error"] or ("; ".join(failed) if failed else None)
    if config.report:
        try:
            write_report(config.report, summary)
        except EdgevisionError as exc:  # a full disk at the very end: the summary still prints
            failed.append(f"--report: {exc}")
            summary["error"] = summary["error"] or failed[-1]
    return summary


def serve_info(config: AppConfig, description: str, classifier) -> dict:
    """What the browser view shows about the run and the model (set once)."""
    info, card = classifier.info, classifier.card
    accuracy = (getattr(card, "metrics", None) or {}).get("top1")
    return {
        "source": description, "backend": info.get("backend", "?"), "provider": info.get("provider", ""),
        "threads": info.get("threads"), "precision": info.get("precision", ""), "model": Path(str(config.model)).name,
        "classes": list(card.class_names), "accuracy": accuracy, "started": time.time(),
    }


def summarize(config: AppConfig, description: str, backend: str, capture: Capture, result: PipelineResult) -> dict:
    """The run's numbers: counts, pipeline vs model speed, per-stage p50/p95, age and app overhead."""
    stage = {name: stage_stats(values) for name, values in result.stage_ms.items()}
    model_ms = stage["inference"].get("mean", 0.0)
    classifier_ms = model_ms + stage["preprocess"].get("mean", 0.0)
    return {
        "source": description,
        "model": str(config.model),
        "backend": backend,
        "mode": "buffer" if config.buffer else "newest",
        "end_reason": result.end_reason,
        "error": capture.error,
        "frames": {
            "read": capture.counters.read,
            "classified": result.classified,
            "dropped": capture.counters.dropped,
            "unreadable": capture.counters.unreadable,
            "reconnects": capture.counters.reconnects,
        },
        "duration_s": result.seconds,
        "pipeline_fps": result.classified / result.seconds if result.seconds > 0 else 0.0,
        "model_fps": 1e3 / model_ms if model_ms else 0.0,
        "classifier_fps": 1e3 / classifier_ms if classifier_ms else 0.0,
        "latency_ms": stage,
        "age_ms": stage_stats(result.age_ms),
        "overhead_ms": stage_stats(result.overhead_ms),
        "config": asdict(config),
        "finished_at": time.time(),
    }
