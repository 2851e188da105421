"""`--serve [HOST:]PORT`: watch a headless board in a browser, with the standard library only.

`/` a page (its script /app.js, its style /style.css) with the live stream, the top label, the live
numbers and a chart of the last minute; `/stream.mjpg` the annotated MJPEG stream; `/snapshot.jpg`
the newest annotated frame; `/stats.json` the numbers, the model's description and that minute's
history. All clients share one newest JPEG: a slow client skips frames instead of falling behind.
The pipeline encodes a JPEG only when `wants_frame` says so: while someone watches, at most
min(source rate, serve_fps) a second. Binds to 127.0.0.1 unless a host is given; see serve_http for
the HTTP side (Host check, token, timeouts, client cap).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from time import monotonic

from camera_app import jsonsafe, serve_access
from camera_app.serve_http import Server
from deploy.errors import EdgevisionError

log = logging.getLogger("edgevision.camera")
BOUNDARY = "edgevisionframe"
HISTORY_SECONDS = 60
HISTORY_PER_SECOND = 5
SNAPSHOT_WAIT_S = 5.0
EARLY_SHARE = 0.25  # a frame up to a quarter period early still counts as due (frame times jitter)


def parse_bind(text: str) -> tuple[str, int]:
    """`PORT` or `HOST:PORT` -> (host, port); host defaults to 127.0.0.1."""
    host, _, port = str(text).rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise EdgevisionError(f"--serve takes [HOST:]PORT with a port 0-65535, got {text!r}")
    return host, int(port)


def check_serve_fps(fps: float) -> None:
    if not fps > 0:  # NaN too
        raise EdgevisionError(f"--serve-fps must be > 0, got {fps}")


def mjpeg_part(jpeg: bytes, boundary: str = BOUNDARY) -> bytes:
    """One part of a multipart/x-mixed-replace MJPEG stream (what browsers, FFmpeg and OpenCV read)."""
    return f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n"


class FrameServer:
    """Serves the newest JPEG, the live stats and their recent history from background threads."""

    boundary = BOUNDARY

    def __init__(self, bind: str, title: str = "", info: dict | None = None, serve_fps: float = 15.0,
                 token: str | None = None) -> None:
        host, port = parse_bind(bind)
        check_serve_fps(serve_fps)
        serve_access.check_token(token)
        self.title, self.info, self.serve_fps = title, dict(info or {}), serve_fps
        self.cond = threading.Condition()
        self.jpeg: bytes | None = None
        self.sequence = 0
        self.due: float | None = None  # when the next JPEG is worth encoding (monotonic seconds)
        self.period = 1.0 / serve_fps
        self.stats: dict = {}
        self.history: collections.deque[tuple[float, float | None, float | None]] = collections.deque(
            maxlen=HISTORY_SECONDS * HISTORY_PER_SECOND
        )
        self.sampled: float | None = None
        self.watchers = 0
        self.closing = False
        try:
            self.httpd = Server(host, port, self, token)
        except OSError as exc:
            raise EdgevisionError(f"--serve cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="camera-serve", daemon=True)
        self.thread.start()
        if not serve_access.is_loopback(self.host) and token is None:
            log.warning("--serve %s: an unauthenticated camera stream is open to the network; "
                        "add --serve-token TOKEN to require a token", bind)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def wants_frame(self, source_fps: float | None = None) -> bool:
        """True while a stream or snapshot client waits and the next JPEG is due at
        min(serve_fps, source_fps) a second: only then is a frame worth encoding."""
        rate = min(self.serve_fps, source_fps) if source_fps and source_fps > 0 else self.serve_fps
        self.period = 1.0 / rate
        if self.watchers == 0 or self.closing:
            return False
        return self.due is None or monotonic() >= self.due - EARLY_SHARE * self.period

    def publish(self, jpeg: bytes) -> None:
        now = monotonic()
        with self.cond:
            # A frame a little late keeps the schedule (the rate holds on average); after a pause it restarts.
            on_time = self.due is not None and now - self.due < self.period
            self.due = (self.due if on_time else now) + self.period
            self.jpeg = jpeg
            self.sequence += 1
            self.cond.notify_all()

    def update_stats(self, stats: dict) -> None:
        """Keep the newest stats; sample the history at most HISTORY_PER_SECOND times a second."""
        now = monotonic()
        with self.cond:
            self.stats = stats
            if self.sampled is None or now - self.sampled >= 1.0 / HISTORY_PER_SECOND:
                self.sampled = now
                self.history.append((time.time(), frame_latency_ms(stats), top_confidence(stats)))

    def stats_json(self) -> bytes:
        """The body of /stats.json: title, info, the newest stats and the history, finite numbers only."""
        with self.cond:
            times, latency, confidence = zip(*self.history, strict=True) if self.history else ((), (), ())
            body = {"title": self.title, "info": self.info, **self.stats,
                    "history": {"t": times, "latency_ms": latency, "confidence": confidence}}
            return jsonsafe.dumps(body).encode()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Count a stream or snapshot client while it waits (the pipeline encodes only for them)."""
        with self.cond:
            self.watchers += 1
        try:
            yield
        finally:
            with self.cond:
                self.watchers -= 1

    def next_jpeg(self, after: int, timeout: float | None = None) -> tuple[bytes | None, int]:
        """Wait for a JPEG newer than `after` (checking every second for close); None on close or timeout."""
        deadline = None if timeout is None else monotonic() + timeout
        with self.cond:
            while self.sequence <= after and not self.closing:
                left = 1.0 if deadline is None else min(1.0, deadline - monotonic())
                if left <= 0:
                    return None, self.sequence
                self.cond.wait(left)
            return (None if self.closing else self.jpeg), self.sequence

    def snapshot(self) -> bytes | None:
        """The next frame (the newest there is may be from before anyone watched); after
        SNAPSHOT_WAIT_S without one, the newest there is, if any."""
        with self.watching():
            jpeg, _ = self.next_jpeg(self.sequence, timeout=SNAPSHOT_WAIT_S)
        return jpeg or self.jpeg

    @staticmethod
    def part(jpeg: bytes) -> bytes:
        return mjpeg_part(jpeg)

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(1.0)


def frame_latency_ms(stats: dict) -> float | None:
    """The sum of the stages' median latency (capture wait aside), for the chart."""
    stages = [value.get("p50") if isinstance(value, dict) else value
              for name, value in (stats.get("latency_ms") or {}).items() if name != "capture_wait"]
    numbers = [v for v in stages if isinstance(v, (int, float))]
    return sum(numbers) if numbers else None


def top_confidence(stats: dict) -> float | None:
    top = stats.get("top_k") or []
    return top[0].get("prob") if top else None
