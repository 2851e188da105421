"""Run the camera app with `--serve` under watching clients, and measure what they and the app see.

Starts `edgevision camera` on a file with `--serve`, keeps CLIENTS browser-like viewers on it (each
reads /stream.mjpg and counts its frames), polls /stats.json twice a second, and samples the app's
resident memory (VmRSS from /proc) every few seconds. At the end it prints:
- RSS after the first minute, its range afterwards and the largest deviation from it (the soak);
- the live pipeline FPS that /stats.json showed (min / median / max) beside the run's report;
- the frames per second each client received (the stream's pacing).

    # one hour on a looping file, three viewers (memory stays flat?)
    python tools/camera_watch.py --model M.onnx --source clip.avi --minutes 60 --clients 3 --loop
    # one honest FPS: live samples vs report on a 30 fps file played at its own rate
    python tools/camera_watch.py --model M.onnx --source clip.avi --minutes 1 --realtime
    # pacing: a file read as fast as the model goes, served to one client
    python tools/camera_watch.py --model M.onnx --source clip.avi --minutes 5 --loop

Arguments after `--` go to `edgevision camera` as they are. Only the standard library.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BOUNDARY = b"--edgevisionframe"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int | None:
    """The process's resident set in KiB, or None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def get_json(port: int, path: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


class Viewer(threading.Thread):
    """One viewer: reads the MJPEG stream without pause and counts the frames it gets."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.bytes = 0
        self.frames = 0
        self.reconnects = 0
        self.first: float | None = None
        self.last: float | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                stream = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                stream.request("GET", "/stream.mjpg")
                response = stream.getresponse()
                tail = b""
                while not self.stop.is_set():
                    chunk = response.read1(65536)
                    if not chunk:
                        break
                    self.bytes += len(chunk)
                    seen = tail + chunk
                    count = seen.count(BOUNDARY)
                    if count:
                        now = time.monotonic()
                        self.first = self.first or now
                        self.last = now
                        self.frames += count
                    tail = seen[-len(BOUNDARY) + 1 :]
                stream.close()
            except (OSError, http.client.HTTPException):
                pass
            if not self.stop.wait(1.0):  # the stream ended while the run goes on: connect again
                self.reconnects += 1

    @property
    def fps(self) -> float:
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return (self.frames - 1) / (self.last - self.first)


def app_command(args: argparse.Namespace, port: int, report: str) -> list[str]:
    command = shutil.which("edgevision")
    head = [command] if command else [sys.executable, "-m", "edgevision"]
    return head + [
        "camera", "--model", args.model, "--source", args.source, "--display", "none",
        "--serve", f"127.0.0.1:{port}", "--duration", str(args.minutes * 60), "--report", report,
        *(["--loop", "-1"] if args.loop else []), *(["--realtime"] if args.realtime else []),
        *args.app_args,
    ]


def wait_for_port(port: int, app: subprocess.Popen) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if app.poll() is not None:
                raise SystemExit(f"the app ended at start: {app.stderr.read().strip()}") from None
            time.sleep(0.5)
    raise SystemExit("the app's server never answered")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--source", required=True, help="a video file or image folder")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--loop", action="store_true", help="play the source forever")
    parser.add_argument("--realtime", action="store_true", help="pace the file at its own frame rate")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    parser.add_argument("--csv", help="write every RSS sample here")
    parser.add_argument("app_args", nargs="*", help="more `edgevision camera` options, after --")
    args = parser.parse_args(argv)

    port = free_port()
    report = os.path.join(tempfile.mkdtemp(prefix="camera_watch"), "report.json")
    app = subprocess.Popen(app_command(args, port, report), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    viewers: list[Viewer] = []
    rss: list[tuple[float, int]] = []
    live_fps: list[float] = []
    started = time.monotonic()
    try:
        wait_for_port(port, app)
        viewers = [Viewer(port, stop) for _ in range(args.clients)]
        for viewer in viewers:
            viewer.start()
        next_rss = started
        while app.poll() is None:
            now = time.monotonic()
            if now >= next_rss:
                if (kib := rss_kib(app.pid)) is not None:
                    rss.append((now - started, kib))
                next_rss += args.every
            try:
                stats = get_json(port, "/stats.json")
                if stats.get("classified", 0) > 0 and stats.get("pipeline_fps"):
                    live_fps.append(float(stats["pipeline_fps"]))
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.5)
    finally:
        stop.set()
        if app.poll() is None:
            app.terminate()
        try:
            out, err = app.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            app.kill()
            out, err = app.communicate()
    print(f"app exit {app.returncode} after {time.monotonic() - started:.0f} s")
    if app.returncode:
        print(err.strip()[-800:])
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["seconds", "rss_kib"])
            writer.writerows((round(t, 1), kib) for t, kib in rss)
    after_minute = [kib for t, kib in rss if t >= 60]
    if after_minute:
        base = after_minute[0]
        worst = max(after_minute, key=lambda kib: abs(kib - base))
        print(f"RSS after 1 min {base / 1024:.1f} MiB; afterwards {min(after_minute) / 1024:.1f}-"
              f"{max(after_minute) / 1024:.1f} MiB; last {after_minute[-1] / 1024:.1f} MiB; "
              f"largest deviation {100 * (worst - base) / base:+.1f} % ({len(rss)} samples)")
    if live_fps:
        print(f"/stats.json pipeline FPS over {len(live_fps)} samples: min {min(live_fps):.1f}, "
              f"median {statistics.median(live_fps):.1f}, max {max(live_fps):.1f}; the first six: "
              + ", ".join(f"{fps:.1f}" for fps in live_fps[:6]))
    if os.path.exists(report):
        summary = json.loads(Path(report).read_text())
        print(f"report: pipeline {summary['pipeline_fps']:.1f} fps, {summary['frames']['classified']} frames "
              f"classified in {summary['duration_s']:.1f} s")
    summary_lines = [line for line in out.splitlines() if line.startswith("speed")]
    if summary_lines:
        print("summary: " + summary_lines[0])
    for number, viewer in enumerate(viewers, 1):
        print(f"client {number}: {viewer.frames} frames, {viewer.fps:.1f} frames/s received, "
              f"{viewer.bytes / 1e6:.1f} MB, {viewer.reconnects} reconnects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
