"""Shared by the camera bad-input tests: a tiny real model, the app as a subprocess, a hostile MJPEG server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
BOUNDARY = "frameboundary"
GOOD_JPEG = cv2.imencode(".jpg", np.full((120, 160, 3), 96, np.uint8))[1].tobytes()


def camera(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m camera_app ARGS` from this checkout; a hang fails the test at `timeout`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "camera_app", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def huge_jpeg() -> bytes:
    """GOOD_JPEG whose frame header claims 20000 x 20000 pixels."""
    data = bytearray(GOOD_JPEG)
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = (20000).to_bytes(2, "big") * 2
    return bytes(data)


class HostileMjpeg:
    """An MJPEG-over-HTTP server on 127.0.0.1 that accepts every connection. mode, for a stream that never
    gives a decodable frame: "garbage" (parts of zero bytes), "huge" (JPEGs claiming 20000x20000
    pixels), "liar" (real JPEGs whose Content-Length claims ten times their size); or any `payload`
    with `claimed` as its Content-Length. `parts`: parts sent per connection (None: until stopped)."""

    def __init__(self, mode: str | None = None, payload: bytes = b"", claimed: int | None = None,
                 parts: int | None = None) -> None:
        self.connections = 0
        server = self
        if mode is not None:
            payload = {"garbage": b"\x00" * 3000, "huge": huge_jpeg(), "liar": GOOD_JPEG}[mode]
            claimed = len(payload) * (10 if mode == "liar" else 1)
        claimed = len(payload) if claimed is None else claimed

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {claimed}\r\n\r\n".encode()
                sent = 0
                try:
                    while not server.closing.is_set() and (parts is None or sent < parts):
                        self.wfile.write(head + payload + b"\r\n")
                        sent += 1
                        if parts is None:
                            time.sleep(1 / 30)
                except OSError:
                    pass

        self.closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(2)
