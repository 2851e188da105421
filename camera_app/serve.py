"""`--serve [HOST:]PORT`: watch a headless board in a browser, with the standard library only.

`/` a page with the live stream, top-k and FPS; `/stream.mjpg` the annotated MJPEG stream;
`/snapshot.jpg` the newest annotated frame; `/stats.json` the live numbers. All clients share one
newest JPEG: a slow client skips frames instead of falling behind, and the pipeline encodes only
while someone watches. Binds to 127.0.0.1 unless a host is given.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from deploy.errors import EdgevisionError

log = logging.getLogger("edgevision.camera")
BOUNDARY = "edgevisionframe"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>edgevision camera</title>
<style>body{font-family:sans-serif;background:#111;color:#eee;margin:1em}img{max-width:100%%}
td{padding:0 .6em}</style></head>
<body><h3>edgevision camera: %(title)s</h3>
<img id="stream" src="stream.mjpg" alt="live stream">
<table id="top"></table><p id="speed"></p>
<script>
async function tick() {
  try {
    const s = await (await fetch("stats.json")).json();
    document.getElementById("top").innerHTML = (s.top_k || []).map(
      t => `<tr><td>${t.label}</td><td>${(100 * t.prob).toFixed(1)}%%</td></tr>`).join("");
    document.getElementById("speed").textContent =
      `${s.pipeline_fps.toFixed(1)} fps pipeline, ${s.model_fps.toFixed(1)} fps model, age ${s.age_ms.toFixed(0)} ms`;
  } catch (e) {}
}
setInterval(tick, 500); tick();
</script></body></html>
"""


def parse_bind(text: str) -> tuple[str, int]:
    """`PORT` or `HOST:PORT` -> (host, port); host defaults to 127.0.0.1."""
    host, _, port = str(text).rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise EdgevisionError(f"--serve takes [HOST:]PORT with a port 0-65535, got {text!r}")
    return host, int(port)


class FrameServer:
    """Serves the newest JPEG and stats from a background thread."""

    def __init__(self, bind: str, title: str = "", info: dict | None = None) -> None:
        host, port = parse_bind(bind)
        self.info = info or {}
        self.cond = threading.Condition()
        self.jpeg: bytes | None = None
        self.sequence = 0
        self.stats: dict = {"top_k": [], "pipeline_fps": 0.0, "model_fps": 0.0, "age_ms": 0.0}
        self.watchers = 0
        self.closing = False
        self.page = (PAGE % {"title": title.replace("<", "&lt;")}).encode()
        try:
            self.httpd = ThreadingHTTPServer((host, port), self._handler())
        except OSError as exc:
            raise EdgevisionError(f"--serve cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="camera-serve", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def watching(self) -> bool:
        """True while a stream or snapshot client waits for frames: only then is a JPEG worth encoding."""
        return self.watchers > 0 or self.jpeg is None

    def wants_frame(self, source_fps: float | None = None) -> bool:
        """Whether the pipeline should encode this frame (here: while anyone watches)."""
        return self.watching

    def publish(self, jpeg: bytes) -> None:
        with self.cond:
            self.jpeg = jpeg
            self.sequence += 1
            self.cond.notify_all()

    def update_stats(self, stats: dict) -> None:
        with self.cond:
            self.stats = stats

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(1.0)

    def _next_jpeg(self, after: int) -> tuple[bytes | None, int]:
        """Wait (up to 1 s at a time, so closing is noticed) for a JPEG newer than `after`."""
        with self.cond:
            while self.sequence <= after and not self.closing:
                self.cond.wait(1.0)
            return (None if self.closing else self.jpeg), self.sequence

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
                log.debug("serve: " + format, *args)

            def _send(self, body: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path in ("/", "/index.html"):
                    self._send(server.page, "text/html; charset=utf-8")
                elif path == "/stats.json":
                    with server.cond:
                        body = json.dumps(server.stats).encode()
                    self._send(body, "application/json")
                elif path == "/snapshot.jpg":
                    self._watch(single=True)
                elif path == "/stream.mjpg":
                    self._watch(single=False)
                else:
                    self.send_error(404, "not found: try /, /stream.mjpg, /snapshot.jpg or /stats.json")

            def _watch(self, single: bool) -> None:
                with server.cond:
                    server.watchers += 1
                try:
                    # A snapshot takes the newest frame there is; a stream waits for the next new one.
                    sequence = server.sequence - 1 if single and server.jpeg is not None else server.sequence
                    if not single:
                        self.send_response(200)
                        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                        self.send_header("Cache-Control", "no-store")
                        self.end_headers()
                    while True:
                        jpeg, sequence = server._next_jpeg(sequence)
                        if jpeg is None:
                            return
                        if single:
                            self._send(jpeg, "image/jpeg")
                            return
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg + b"\r\n"
                        )
                except (BrokenPipeError, ConnectionResetError):
                    return
                finally:
                    with server.cond:
                        server.watchers -= 1

        return Handler
