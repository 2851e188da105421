"""`edgevision camera` / `python -m camera_app`: live classification from the command line.

argv[0] is the subcommand name ("camera"), as the `edgevision` command dispatches it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

# OpenCV's and FFmpeg's own warnings ("can't open camera by index") would bury our one-line errors: set
# before the imports below load cv2.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from camera_app import selfcheck
from camera_app.app import AppConfig, run_app
from camera_app.config import CHOICES
from deploy.backends import list_backends
from deploy.cli_util import CommandParser, Subcommand, add_device_options, run_subcommand

PROG = "edgevision camera"
# One set of defaults: AppConfig's (the command line differs in `--display` only; see AppConfig).
DEFAULT = {field.name: field.default for field in dataclasses.fields(AppConfig)}


def camera_parser() -> CommandParser:
    parser = CommandParser(
        prog=PROG,
        description="Classify camera, stream, video or image-folder frames live with any exported model "
        "(no torch needed). Keeps only the newest frame, so a slow model drops frames instead of lagging; "
        "prints pipeline and model speed apart, with per-stage latency.",
        examples=[
            "edgevision camera --model runs/demo/train/model.onnx --source runs/demo/digits.avi --display none",
            "edgevision camera --model runs/demo/train/model.int8.onnx --source runs/demo/digits_test/3 --loop "
            "--max-frames 500 --display none --log runs/camera.jsonl",
            "edgevision camera --model runs/demo/train/model.onnx --source 0 --serve 8080",
        ],
    )
    parser.add_argument("--model", required=True,
                        help="model file: .onnx, .pte, .engine or .pt (any deploy.load opens)")
    parser.add_argument(
        "--source", required=True,
        help="0 | /dev/videoN | v4l2://N (camera), a video file, an image folder or glob, rtsp://... | "
        "http(s)://... (stream, MJPEG over HTTP included), gst:PIPELINE, csi://N (Jetson), picam[:N] (Raspberry Pi)",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--backend", default=DEFAULT["backend"],
                       help="auto (by suffix) or one of: " + ", ".join(list_backends()))
    model.add_argument("--labels", help="one class name per line (needed for a model without a card)")
    model.add_argument("--threads", type=int,
                       help="inference threads (default: one per physical core, at most 4; onnxruntime "
                            "times that against 1 thread and a spinning pool at load)")
    add_device_options(model)
    model.add_argument("--top-k", type=int, default=DEFAULT["top_k"],
                       help="labels shown and logged per frame (1-1000, default %(default)s)")
    model.add_argument("--smooth", type=int, default=DEFAULT["smooth"], metavar="N",
                       help="average probabilities over the last N frames (1-1000, default 1: off)")
    model.add_argument("--threshold", type=float, default=DEFAULT["threshold"],
                       help="below this best probability show 'uncertain' (0-1, default 0: off)")
    model.add_argument("--self-check", nargs="?", const="strict", choices=selfcheck.MODES,
                       metavar="|".join(selfcheck.MODES),
                       help="before the first frame, replay the reference set stored with the model (as `edgevision "
                       "verify` does); strict (the default of a bare --self-check): refuse to start when it fails or "
                       "there is none; warn: say so and start")
    source = parser.add_argument_group("source")
    source.add_argument("--width", type=int, help="camera frame width to ask for (csi/picam default 1280/640)")
    source.add_argument("--height", type=int, help="camera frame height to ask for")
    source.add_argument("--fps", type=float,
                        help="camera frame rate to ask for; frame rate of image folders with --realtime "
                        "(0 < fps <= 1000, default 30)")
    source.add_argument("--loop", type=int, nargs="?", const=-1, default=DEFAULT["loop"], metavar="N",
                        help="play a file or folder N more times; --loop alone (or -1): forever (default 0)")
    source.add_argument("--realtime", action="store_true",
                        help="pace a file at its own frame rate, dropping what the model has no time for, like a "
                        "camera (default: read every frame in order, as fast as the model goes)")
    source.add_argument("--rtsp-transport", choices=CHOICES["rtsp_transport"], default=DEFAULT["rtsp_transport"],
                        help="RTSP transport (default tcp)")
    source.add_argument("--open-timeout", type=float, default=DEFAULT["open_timeout"], metavar="S",
                        help="seconds to wait for a stream to open (0 < S <= 3600, default 10; FFmpeg's own is 30)")
    source.add_argument("--read-timeout", type=float, default=DEFAULT["read_timeout"], metavar="S",
                        help="seconds without a frame before a stream counts as stalled (0 < S <= 3600, default 5)")
    source.add_argument("--max-reconnects", type=int, default=DEFAULT["max_reconnects"], metavar="N",
                        help="reopen a live source that dropped out up to N times in a row, backing off 0.5 s doubling "
                        "to 8 s (-1: forever; default 10)")
    source.add_argument("--buffer", action="store_true",
                        help="process every frame in order instead of the newest only (offline runs, evaluation); "
                        "on a live source that outruns the model, frames get older")
    source.add_argument("--buffer-frames", type=int, default=DEFAULT["buffer_frames"], metavar="N",
                        help="with --buffer, frames queued at most; a live source beyond it drops the oldest "
                        "(default 512)")
    source.add_argument("--buffer-mb", type=float, default=DEFAULT["buffer_mb"], metavar="MB",
                        help="with --buffer, megabytes of frames queued at most (a 1080p frame is 6 MB); "
                        "a live source beyond it drops the oldest, a file waits (default 256)")
    out = parser.add_argument_group("output")
    out.add_argument("--display", choices=CHOICES["display"], default="auto",
                     help="auto: a window where a display exists, else headless (default); window: a window or an "
                     "error; none: headless. Keys: q/Esc quit, space pause, s snapshot")
    out.add_argument("--snapshot-dir", default=DEFAULT["snapshot_dir"],
                     help="folder for snapshot PNGs taken with the s key (default .)")
    out.add_argument("--log", metavar="FILE", help="one JSON object per frame (JSON lines), plus source events")
    out.add_argument("--record", metavar="FILE",
                     help="write the annotated video as .avi (MJPG), which stays readable up to the last frame even "
                     "if the run is killed; .mp4 is refused (unreadable unless closed cleanly)")
    out.add_argument("--report", metavar="FILE", help="write the run's summary as JSON")
    out.add_argument("--serve", metavar="[HOST:]PORT",
                     help="browser view: / page, /stream.mjpg, /snapshot.jpg, /stats.json (host default 127.0.0.1; "
                     "any other host opens it to the network: add --serve-token)")
    out.add_argument("--serve-fps", type=float, default=DEFAULT["serve_fps"], metavar="FPS",
                     help="with --serve, JPEG-encode and stream at most this many frames a second (default 15)")
    out.add_argument("--serve-token", metavar="TOKEN",
                     help="with --serve, every request must carry TOKEN: open /?token=TOKEN once (a cookie keeps it) "
                     "or send 'Authorization: Bearer TOKEN'; 8-256 characters A-Z a-z 0-9 - . _ ~")
    out.add_argument("--max-frames", type=int, help="stop after this many frames (classified or invalid)")
    out.add_argument("--duration", type=float, metavar="S", help="stop after this many seconds (at most 30 days)")
    out.add_argument("--quiet", action="store_true", help="no summary at exit, warnings only")
    add_watch_options(parser)
    return parser


def add_watch_options(parser: argparse.ArgumentParser) -> None:
    """The options of the confidence watch and of --save-uncertain (checked by WatchOptions, SaveOptions)."""
    watch = parser.add_argument_group("confidence watch and uncertain frames (see docs/camera.md)")
    watch.add_argument("--watch-window", type=int, default=DEFAULT["watch_window"], metavar="N",
                       help="frames in the rolling window of mean confidence, uncertain share and drift (at least 20, "
                       "default 300)")
    watch.add_argument("--drift-alert", type=float, default=DEFAULT["drift_alert"], metavar="PSI",
                       help="log a drift_alert event when the drift score (PSI of live top-1 probabilities against "
                       "the card's) rises above this; 0: never (default 0.25)")
    watch.add_argument("--margin", type=float, default=DEFAULT["margin"],
                       help="a frame whose two best probabilities are closer than this is uncertain too "
                       "(0-1, default 0: off)")
    watch.add_argument("--save-uncertain", metavar="DIR",
                       help="save uncertain frames (under --threshold or --margin) as DIR/<label>/*.jpg with "
                       "DIR/uncertain.jsonl, for fine-tuning with edgevision train --init")
    watch.add_argument("--save-every", type=float, default=DEFAULT["save_every"], metavar="S",
                       help="save at most one uncertain frame per S seconds (default 1)")
    watch.add_argument("--save-max", type=int, default=DEFAULT["save_max"], metavar="N",
                       help="save at most N uncertain frames in all (default 500)")


def config_from_args(args: argparse.Namespace) -> AppConfig:
    fields = {name: value for name, value in vars(args).items() if name not in ("quiet", "verbose")}
    return AppConfig(**fields)


def cmd_camera(args: argparse.Namespace) -> int:
    from camera_app.outputs import format_summary

    if args.quiet and not args.verbose:  # --verbose's debug lines win over --quiet
        logging.getLogger("edgevision").setLevel(logging.WARNING)
    summary = run_app(config_from_args(args))
    if not args.quiet:
        print(format_summary(summary))
    if summary["error"]:
        print(f"{PROG}: error: {summary['error']}", file=sys.stderr)
        return 1
    return 0


COMMANDS = {"camera": Subcommand(camera_parser, cmd_camera)}


def main(argv: list[str] | None = None) -> int:
    """`["camera", *options]`, as `edgevision` passes it (`deploy.cli_util.run_subcommand`)."""
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
    library = logging.getLogger("edgevision")
    level = library.level
    try:
        return run_subcommand(argv, COMMANDS)
    finally:
        library.setLevel(level)  # a caller in the same process (a test, a script) keeps its own level
