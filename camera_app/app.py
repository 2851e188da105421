"""The app: a config in, a summary dict out. The CLI and `camera_app.run` both come here.

What the user can get wrong fails as early as it can be known, cheapest first: the options
(`AppConfig.validate`: numbers, choices, paths, the serve address's form) before anything opens;
the output locks; the source (a missing camera or refused URL fails before the model loads); the
model and its `--self-check`; then the outputs that need the model's card (window, recording,
confidence watch, browser view: a serve port in use fails here). The source is released and every
thread stopped on any way out (end of file, limit, q/Esc, Ctrl-C, SIGTERM, an error).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from camera_app.capture import Capture
from camera_app.config import AppConfig
from camera_app.display import Window, want_window
from camera_app.outputs import FrameLog, Recorder, write_report
from camera_app.pipeline import FrameClassifier, Pipeline, PipelineResult
from camera_app.results import RunControl, Sink
from camera_app.selfcheck import self_check
from camera_app.serve import FrameServer
from camera_app.sinks import LogSink, RecordSink, SaverSink, ServeSink, WatchSink, WindowSink
from camera_app.sources import open_source, parse_source, redact
from camera_app.uncertain import UncertainSaver
from camera_app.watch import ConfidenceWatch, reference_warning
from deploy.atomic import artifact_lock
from deploy.errors import EdgevisionError

log = logging.getLogger("edgevision.camera")
WARMUP_FRAME = (480, 640, 3)

__all__ = ["AppConfig", "run_app", "summarize"]


@contextlib.contextmanager
def stop_on_signals(control: RunControl) -> Iterator[None]:
    """SIGINT and SIGTERM end the run cleanly, with the signal's name as the reason."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame) -> None:
        control.end(f"signal {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def load_classifier(config: AppConfig):
    import deploy

    options = {"provider": config.provider, **({"precision": config.precision} if config.precision else {}),
               **({"threads": config.threads} if config.threads else {})}
    return deploy.load(config.model, backend=config.backend, labels=config.labels, **options)


def open_sinks(config: AppConfig, capture: Capture, description: str, info: dict, card, control: RunControl,
               use_window: bool) -> tuple[list[Sink], Callable[[dict], None]]:
    """The outputs asked for, in the order they are written, and where events go. The confidence
    watch comes before the browser view (which shows its figures), the log last (its "output" time
    covers the sinks before it)."""
    outputs = config.output_options()
    frame_log = FrameLog(outputs.log) if outputs.log else None
    on_event: Callable[[dict], None] = frame_log.write if frame_log else (lambda event: None)
    sinks: list[Sink] = []
    source_fps = capture.pace_fps or capture.source.fps or None
    try:
        if use_window:
            sinks.append(WindowSink(Window(f"edgevision camera: {description}"), control, outputs.snapshot_dir))
        if outputs.record:
            sinks.append(RecordSink(Recorder(outputs.record, source_fps or config.fps or 30.0)))
        watch = config.watch_options()
        reference = getattr(card, "confidence", None)
        if warning := reference_warning(reference):
            log.warning("confidence watch: %s", warning)
        sinks.append(WatchSink(ConfidenceWatch(watch.window, config.threshold, watch.margin, reference,
                                               watch.drift_alert), on_event))
        if (save := config.save_options()) is not None:
            sinks.append(SaverSink(UncertainSaver(save)))
        if outputs.serve is not None:
            server = FrameServer(outputs.serve, title=f"{info['model']} on {description}", info=info,
                                 serve_fps=config.serve_fps, token=config.serve_token)
            log.warning("serving on %s (stream: %sstream.mjpg)", server.url, server.url)
            sinks.append(ServeSink(server, source_fps))
    except BaseException:
        close_all(sinks + ([LogSink(frame_log)] if frame_log else []))
        raise
    return ([*sinks, LogSink(frame_log)] if frame_log else sinks), on_event


def close_all(sinks: list[Sink]) -> None:
    for sink in sinks:
        sink.close()


def page_info(config: AppConfig, description: str, backend_info: dict, card) -> dict:
    """The static part of /stats.json."""
    return {
        "source": description, "backend": backend_info.get("backend", "?"),
        "provider": backend_info.get("provider", ""), "threads": backend_info.get("threads"),
        "precision": backend_info.get("precision", ""), "model": Path(str(config.model)).name,
        "classes": list(card.class_names), "accuracy": (getattr(card, "metrics", None) or {}).get("top1"),
        "started": time.time(),
    }


def run_app(config: AppConfig, classifier=None, stop: threading.Event | None = None) -> dict:
    """Run the app headless or with a window; returns the summary (also written to `config.report`).

    classifier: anything with `predict(image, top_k) -> Prediction`, `card.class_names` and `info`
    (default: `deploy.load(config.model, ...)`). The outputs are locked for the whole run, so a
    second run writing the same file is refused at once.
    """
    config.validate()
    with contextlib.ExitStack() as locks:
        for flag, path in (("--log", config.log), ("--record", config.record), ("--report", config.report)):
            if path:
                locks.enter_context(artifact_lock(path, flag))
        return run_locked(config, classifier, stop)


def run_locked(config: AppConfig, classifier, stop: threading.Event | None) -> dict:
    spec = parse_source(config.source)
    use_window, no_window = want_window(config.display)
    if no_window:
        log.warning("no window: %s", no_window)
    source_options = config.source_options()
    capture = Capture(lambda: open_source(spec, source_options), live=spec.live, **asdict(config.capture_options()))
    description = capture.open()  # a missing camera or refused URL fails here, before the model loads
    try:
        classifier = load_classifier(config) if classifier is None else classifier
        self_check(classifier, config.model, config.self_check)
        # the first call allocates: keep it out of the numbers
        classifier.predict(np.zeros(WARMUP_FRAME, np.uint8), top_k=1)
    except BaseException:
        capture.close()
        raise
    info = classifier.info
    backend = f"{info.get('backend', '?')} {info.get('precision', '')} {info.get('provider', '')}".strip()
    options = config.pipeline_options()
    options.caption = f"{backend} | {Path(str(config.model)).name}"
    frames = FrameClassifier(lambda image: classifier.predict(image, top_k=config.top_k),
                             list(classifier.card.class_names), options)
    control = RunControl(stop)
    with stop_on_signals(control):
        sinks: list[Sink] = []
        try:
            sinks, on_event = open_sinks(config, capture, description,
                                         page_info(config, description, info, classifier.card),
                                         classifier.card, control, use_window)
            log.info("%s -> %s (%s)", description, config.model, backend)
            result = Pipeline(capture, frames, sinks, control, on_event).run()
        finally:
            stopped_cleanly = capture.close(timeout=1.0)
            close_all(sinks)
    summary = summarize(config, description, backend, capture, result)
    summary["display"] = "window" if use_window else "headless"
    summary["capture_thread_ended"] = stopped_cleanly
    add_sink_outcomes(summary, sinks)
    if config.report:
        try:
            write_report(config.report, summary)
        except EdgevisionError as exc:  # a full disk at the very end: the summary still prints
            summary["output_errors"].append(f"--report: {exc}")
            summary["error"] = summary["error"] or summary["output_errors"][-1]
    return summary


def add_sink_outcomes(summary: dict, sinks: list[Sink]) -> None:
    """What the outputs did: the watch's last figures, frames recorded and saved, outputs that failed."""
    failed: list[str] = []
    for sink in sinks:
        if isinstance(sink, WatchSink):
            summary["watch"] = sink.watch.snapshot()
        elif isinstance(sink, SaverSink):
            summary["uncertain_saved"] = dict(sink.saver.counters)
        elif isinstance(sink, RecordSink):
            summary["recorded"] = {"frames": sink.recorder.frames, "resized": sink.recorder.resized}
            failed += [sink.recorder.failed] if sink.recorder.failed else []
        elif isinstance(sink, LogSink) and sink.frame_log.failed:
            failed.append(sink.frame_log.failed)
    summary["output_errors"] = failed
    summary["error"] = summary["error"] or ("; ".join(failed) if failed else None)


def public_config(config: AppConfig) -> dict:
    """The options as the report shows them: no --serve-token, no password in a source URL."""
    options = asdict(config)
    options["source"] = redact(str(config.source))
    if options.get("serve_token"):
        options["serve_token"] = "***"
    return options


def summarize(config: AppConfig, description: str, backend: str, capture: Capture, result: PipelineResult) -> dict:
    """The run's numbers: counts, pipeline vs model speed, per-stage p50/p95, age and app overhead."""
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
            "invalid": result.invalid,
            "dropped": capture.counters.dropped,
            "unreadable": capture.counters.unreadable,
            "reconnects": capture.counters.reconnects,
        },
        **result.numbers.summary(),
        "config": public_config(config),
        "finished_at": time.time(),
    }
