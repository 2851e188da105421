"""What `--serve` costs: frames streamed per second and the process's CPU, one client watching.

    PYTHONPATH=. python tools/serve_cpu.py --model M --video clip.avi --seconds 20 --serve-fps 15 1000
    PYTHONPATH=. python tools/serve_cpu.py --model M --video clip.avi --seconds 20 --serve-fps 15 1000 --realtime

Runs the app in this process on the video (looped), serving on a free port, reads /stream.mjpg for
`--seconds` and prints one JSON line per `--serve-fps` value (1000: effectively unpaced), plus one
with no client at all. CPU is user + system time of the whole process over the same seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import sys
import threading
import time
import urllib.request

from camera_app.app import AppConfig, run_app


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_stream(url: str, seconds: float) -> int:
    count = 0
    with urllib.request.urlopen(url, timeout=10) as response:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            line = response.readline()
            if line.lower().startswith(b"content-length:"):
                response.readline()
                response.read(int(line.split(b":")[1]))
                count += 1
    return count


def measure(args: argparse.Namespace, serve_fps: float, watch: bool) -> dict:
    port = free_port()
    stop = threading.Event()
    config = AppConfig(args.model, args.video, loop=-1, realtime=args.realtime, threads=args.threads,
                       serve=str(port), serve_fps=serve_fps)
    summary: dict = {}
    app = threading.Thread(target=lambda: summary.update(run_app(config, stop=stop)), daemon=True)
    app.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stats.json", timeout=1).read()
            break
        except OSError:
            time.sleep(0.2)
    time.sleep(1.0)  # past the warm-up
    before, start = cpu_seconds(), time.monotonic()
    streamed = read_stream(f"http://127.0.0.1:{port}/stream.mjpg", args.seconds) if watch else 0
    if not watch:
        time.sleep(args.seconds)
    seconds = time.monotonic() - start
    cpu = cpu_seconds() - before
    stop.set()
    app.join(10)
    return {"serve_fps": serve_fps if watch else None, "client": watch, "realtime": args.realtime,
            "seconds": round(seconds, 1), "streamed_fps": round(streamed / seconds, 2),
            "pipeline_fps": round(summary.get("pipeline_fps", 0.0), 1),
            "output_p50_ms": round(summary.get("latency_ms", {}).get("output", {}).get("p50", 0.0), 2),
            "cpu_percent": round(100 * cpu / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/serve_cpu.py", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--serve-fps", type=float, nargs="+", default=[15.0, 1000.0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--realtime", action="store_true", help="pace the file at its frame rate, like a camera")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args, args.serve_fps[0], watch=False)), flush=True)
    for fps in args.serve_fps:
        print(json.dumps(measure(args, fps, watch=True)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
