"""A tiny MJPEG-over-HTTP camera for tests (standard library + OpenCV), on 127.0.0.1.

Serves `/stream.mjpg` as multipart/x-mixed-replace at `fps`, each JPEG showing its frame number
as a stamp in the top-left 8x8 blocks (so a test can read which frame it got). `freeze()` stops
sending without closing the connection; `stop()` closes the port (a camera that went away).
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from camera_app.serve import mjpeg_part

BOUNDARY = "frameboundary"


def stamped_frame(number: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A BGR frame whose first 16 8x8 blocks spell `number` in binary (white 1, black 0)."""
    width, height = size
    frame = np.full((height, width, 3), 96, np.uint8)
    for bit in range(16):
        value = 255 if (number >> bit) & 1 else 0
        frame[0:8, bit * 8 : bit * 8 + 8] = value
    return frame


def read_stamp(frame: np.ndarray) -> int:
    gray = frame[:8, :128].reshape(8, 16, 8, -1).mean(axis=(0, 2, 3))
    return sum(1 << bit for bit in range(16) if gray[bit] > 128)


class MjpegCamera:
    def __init__(self, fps: float = 30.0, port: int = 0) -> None:
        self.fps = fps
        self.frozen = threading.Event()
        self.sent = 0
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                start = time.monotonic()
                number = 0
                try:
                    while not camera.closing.is_set():
                        if camera.frozen.is_set():
                            time.sleep(0.05)
                            continue
                        data = cv2.imencode(".jpg", stamped_frame(number))[1].tobytes()
                        self.wfile.write(mjpeg_part(data, BOUNDARY))
                        number += 1
                        camera.sent += 1
                        delay = start + number / camera.fps - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def freeze(self) -> None:
        self.frozen.set()

    def stop(self) -> None:
        """Close the listening socket and every open stream."""
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
