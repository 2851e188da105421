"""The camera app's acceptance measurements (numbers in benchmarks/RESULTS.md), step by step.

    python tools/camera_acceptance.py video --data DIR --out runs/cam --limit 200 --hold 5   (480x480 frames)
    python tools/camera_acceptance.py images-top1 --model M --labels runs/cam/val.labels.json --threads 2
    edgevision camera --model M --source runs/cam/val.avi --buffer --threads 2 --log log.jsonl --display none
    python tools/camera_acceptance.py top1 --log log.jsonl --labels runs/cam/val.labels.json
    python tools/camera_acceptance.py throughput --model M --video runs/cam/val.avi --threads 2
    python tools/camera_acceptance.py serve-video --video runs/cam/val.avi --port 8765 --duration 75 &
    python tools/camera_acceptance.py live --model M --url http://127.0.0.1:8765/ --min-latency-ms 50 --duration 60 ...
    python tools/camera_acceptance.py age --log log.jsonl

`live` pads each classification to a minimum latency, standing in for a device slower than the
30 fps source (this machine runs MobileNetV2 faster than 30 fps); everything else is the real app.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from camera_app.app import AppConfig, run_app
from camera_app.outputs import format_summary
from camera_app.serve import mjpeg_part
from camera_app.stats import stage_stats
from camera_app.video import write_video_from_images
from deploy.cli_util import run_cli
from deploy.image_folder import list_labelled_images


def cmd_video(args: argparse.Namespace) -> None:
    """Held-out images, shuffled with a fixed seed, each held `hold` frames; labels beside the video."""
    items, classes = list_labelled_images(args.data, args.split, limit=args.limit)
    random.Random(0).shuffle(items)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = write_video_from_images([p for p, _ in items], out / "val.avi", args.hold, args.fps,
                                     (args.width, args.height))
    labels = {"hold_frames": args.hold, "images": [str(p) for p, _ in items], "labels": [classes[c] for _, c in items]}
    (out / "val.labels.json").write_text(json.dumps(labels))
    print(f"wrote {out / 'val.avi'}: {len(items)} images x {args.hold} frames = {frames} frames at {args.fps:g} fps")


def cmd_top1(args: argparse.Namespace) -> None:
    """Per-frame top-1 of the logged predictions against the label of the image each frame shows."""
    truth = json.loads(Path(args.labels).read_text())
    records = [json.loads(line) for line in Path(args.log).read_text().splitlines()]
    frames = [r for r in records if "frame" in r]
    correct = sum(r["top_k"][0]["label"] == truth["labels"][r["frame"] // truth["hold_frames"]] for r in frames)
    expected = len(truth["labels"]) * truth["hold_frames"]
    print(f"per-frame top-1 {correct / len(frames):.2%} ({correct}/{len(frames)} frames logged of {expected})")


def cmd_images_top1(args: argparse.Namespace) -> None:
    """The same model on the original image files (what `edgevision eval` measures on them)."""
    import deploy

    truth = json.loads(Path(args.labels).read_text())
    classifier = deploy.load(args.model, threads=args.threads)
    correct = sum(classifier.predict(p, top_k=1).label == label
                  for p, label in zip(truth["images"], truth["labels"], strict=True))
    print(f"image top-1 {correct / len(truth['labels']):.2%} ({correct}/{len(truth['labels'])} images)")


def cmd_throughput(args: argparse.Namespace) -> None:
    """The app (headless, newest-frame mode) against the same Classifier alone on the same frames
    (decoded first; preprocess + inference, one call at a time), in alternating rounds in one process
    so that the machine's load affects both alike."""
    import deploy

    capture = cv2.VideoCapture(args.video)
    frames = []
    while len(frames) < args.frames and (frame := capture.read()[1]) is not None:
        frames.append(frame)
    classifier = deploy.load(args.model, threads=args.threads)
    for frame in frames[:5]:
        classifier.predict(frame, top_k=3)
    alone, app = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for frame in frames:
            classifier.predict(frame, top_k=3)
        alone.append(len(frames) / (time.perf_counter() - start))
        config = AppConfig(args.model, args.video, threads=args.threads, max_frames=len(frames))
        app.append(run_app(config, classifier=classifier)["pipeline_fps"])
    ratios = [a / b for a, b in zip(app, alone, strict=True)]
    print(json.dumps({
        "frames": len(frames), "rounds": args.rounds, "classifier_fps": [round(v, 1) for v in alone],
        "pipeline_fps": [round(v, 1) for v in app], "ratio": [round(v, 3) for v in ratios],
        "median_ratio": round(float(np.median(ratios)), 3),
    }))


def cmd_serve_video(args: argparse.Namespace) -> None:
    """An MJPEG-over-HTTP camera at `fps`, looping the video's frames (JPEG-encoded once, up front)."""
    capture = cv2.VideoCapture(args.video)
    jpegs = []
    while len(jpegs) < args.frames and (frame := capture.read()[1]) is not None:
        jpegs.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    period = 1.0 / args.fps

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            start, number = time.monotonic(), 0
            try:
                while True:
                    self.wfile.write(mjpeg_part(jpegs[number % len(jpegs)], "frame"))
                    number += 1
                    time.sleep(max(0.0, start + number * period - time.monotonic()))
            except (BrokenPipeError, ConnectionResetError):
                return

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.timeout = 0.5
    deadline = time.monotonic() + args.duration
    print(f"serving {len(jpegs)} frames at {args.fps:g} fps on http://127.0.0.1:{args.port}/ "
          f"for {args.duration:g} s", flush=True)
    while time.monotonic() < deadline:
        server.handle_request()
    server.server_close()


class PaddedClassifier:
    """A real Classifier whose calls take at least `min_latency_s` (a slower device), inference timed to match."""

    def __init__(self, classifier, min_latency_s: float) -> None:
        self.classifier, self.min_latency_s = classifier, min_latency_s
        self.card, self.info = classifier.card, classifier.info

    def predict(self, image: np.ndarray, top_k: int = 5):
        start = time.perf_counter()
        prediction = self.classifier.predict(image, top_k=top_k)
        time.sleep(max(0.0, self.min_latency_s - (time.perf_counter() - start)))
        spent = (time.perf_counter() - start) * 1e3
        timings = prediction.timings_ms
        timings["inference"] = spent - timings["preprocess"] - timings["postprocess"]
        return prediction


def cmd_live(args: argparse.Namespace) -> None:
    import deploy

    classifier = PaddedClassifier(deploy.load(args.model, threads=args.threads), args.min_latency_ms / 1e3)
    config = AppConfig(args.model, args.url, threads=args.threads, buffer=args.buffer, duration=args.duration,
                       log=args.log, report=args.report, buffer_frames=args.buffer_frames)
    print(format_summary(run_app(config, classifier=classifier)))


def cmd_age(args: argparse.Namespace) -> None:
    """p95 frame age over the run, its first and its last `window` seconds, and the model's p50."""
    frames = [r for r in map(json.loads, Path(args.log).read_text().splitlines()) if "frame" in r]
    t0, t1 = frames[0]["time"], frames[-1]["time"]
    first = stage_stats([r["age_ms"] for r in frames if r["time"] - t0 <= args.window])
    last = stage_stats([r["age_ms"] for r in frames if t1 - r["time"] <= args.window])
    overall = stage_stats([r["age_ms"] for r in frames])
    model = stage_stats([r["latency_ms"]["preprocess"] + r["latency_ms"]["inference"] for r in frames])
    print(json.dumps({
        "frames": len(frames), "seconds": round(t1 - t0, 1), "age_p95_ms": round(overall["p95"], 1),
        "age_p95_first_ms": round(first["p95"], 1), "age_p95_last_ms": round(last["p95"], 1),
        "last_over_first": round(last["p95"] / first["p95"], 3), "model_p50_ms": round(model["p50"], 1),
    }))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python tools/camera_acceptance.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    s = sub.add_parser("video", help="a video from labelled held-out images")
    s.add_argument("--data", required=True, help="class-folder tree (its val/ split if present)")
    s.add_argument("--split", default="val")
    s.add_argument("--limit", type=int, default=200, help="images (an equal share per class)")
    s.add_argument("--hold", type=int, default=5, help="frames per image")
    s.add_argument("--fps", type=float, default=30.0)
    # Square frames show what the model's centre crop sees of each image, as `edgevision eval` does;
    # 4:3 frames cut the top and bottom of portrait images (a different question than the app's).
    s.add_argument("--width", type=int, default=480)
    s.add_argument("--height", type=int, default=480)
    s.add_argument("--out", required=True, help="folder for val.avi and val.labels.json")
    s.set_defaults(run=cmd_video)
    s = sub.add_parser("top1", help="per-frame top-1 of a --log")
    s.add_argument("--log", required=True)
    s.add_argument("--labels", required=True)
    s.set_defaults(run=cmd_top1)
    for name, run, help_ in (("images-top1", cmd_images_top1, "top-1 on the original images"),
                             ("throughput", cmd_throughput, "the app against the Classifier alone, alternating"),
                             ("live", cmd_live, "the app on a stream, each call padded to a minimum latency")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--model", required=True)
        s.add_argument("--threads", type=int, default=2)
        s.set_defaults(run=run)
        if name == "images-top1":
            s.add_argument("--labels", required=True)
        elif name == "throughput":
            s.add_argument("--video", required=True)
            s.add_argument("--frames", type=int, default=300)
            s.add_argument("--rounds", type=int, default=5)
        else:
            s.add_argument("--url", required=True)
            s.add_argument("--min-latency-ms", type=float, default=50.0)
            s.add_argument("--duration", type=float, default=60.0)
            s.add_argument("--buffer", action="store_true")
            s.add_argument("--buffer-frames", type=int, default=4096)
            s.add_argument("--log", required=True)
            s.add_argument("--report")
    s = sub.add_parser("serve-video", help="an MJPEG-over-HTTP camera from a video file")
    s.add_argument("--video", required=True)
    s.add_argument("--fps", type=float, default=30.0)
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--frames", type=int, default=300, help="frames kept (looped)")
    s.add_argument("--duration", type=float, default=80.0, help="seconds before the server exits")
    s.set_defaults(run=cmd_serve_video)
    s = sub.add_parser("age", help="frame age over a run: first vs last seconds")
    s.add_argument("--log", required=True)
    s.add_argument("--window", type=float, default=10.0, help="seconds at each end")
    s.set_defaults(run=cmd_age)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_cli(lambda: args.run(args), "tools/camera_acceptance.py")


if __name__ == "__main__":
    sys.exit(main())
