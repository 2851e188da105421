"""One `--source` string -> a frame source: cameras, files, image folders, streams, GStreamer, Pi cameras.

The URI forms follow jetson-utils' `videoSource` (`csi://0`, `v4l2:///dev/video0`, `rtsp://...`,
`file://...`). Every source gives BGR frames through `read()`: a frame, `None` at the end of a file
or when a live source drops out, or `UnreadableFrame` for one bad frame that is skipped.
"""

from __future__ import annotations

import glob
import importlib
import os
import re
import stat
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deploy.errors import EdgevisionError
from deploy.limits import MAX_IMAGE_PIXELS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
KINDS = ("camera", "file", "images", "stream", "gst", "csi", "picam")
LIVE_KINDS = ("camera", "stream", "gst", "csi", "picam")
MAX_TIMEOUT_S = 3600.0
NO_GSTREAMER = (
    "this OpenCV build has no GStreamer (the pip opencv-python wheels never do), so gst: and csi:// "
    "sources cannot open; on a Jetson use JetPack's OpenCV (apt python3-opencv, in a venv made with "
    "--system-site-packages)"
)
NO_PICAMERA2 = (
    "picam sources need picamera2, which is not importable here: on Raspberry Pi OS run "
    "`sudo apt install python3-picamera2` and make the venv with `python3 -m venv --system-site-packages`"
)


# `scheme://user:password@host`: the password part, wherever it appears (a URL, a gst: pipeline's location=).
URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/@\s:]*):[^/@\s]*@")


def redact(text: str) -> str:
    """`text` with every URL password replaced by `***`: descriptions reach the page, logs and reports."""
    return URL_PASSWORD.sub(r"\1:***@", text)


class UnreadableFrame(Exception):
    """One frame could not be decoded; the source goes on with the next."""


@dataclass(frozen=True)
class SourceSpec:
    """What `--source` names. kind: one of KINDS; target: index, path, URL or pipeline."""

    kind: str
    target: str | int

    @property
    def live(self) -> bool:
        """Live sources make frames on their own clock; files wait to be read."""
        return self.kind in LIVE_KINDS


@dataclass(frozen=True)
class SourceOptions:
    """How to open a source. Times in seconds; width/height/fps ask a camera for a mode."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    rtsp_transport: str = "tcp"


def parse_source(text: str) -> SourceSpec:
    """Read a `--source` string; raises EdgevisionError naming the forms it accepts."""
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        return SourceSpec("camera", int(text))
    if match := re.fullmatch(r"v4l2://(?:/dev/video)?(\d+)", text):
        return SourceSpec("camera", int(match.group(1)))
    if match := re.fullmatch(r"/dev/video(\d+)", text):
        return SourceSpec("camera", int(match.group(1)))
    if match := re.fullmatch(r"csi://(\d+)", text):
        return SourceSpec("csi", int(match.group(1)))
    if match := re.fullmatch(r"picam(?::(\d+))?", text):
        return SourceSpec("picam", int(match.group(1) or 0))
    if text.startswith("gst:"):
        pipeline = text[4:].strip()
        if not pipeline:
            raise EdgevisionError("gst: needs a GStreamer pipeline ending in appsink, "
                                  "e.g. gst:videotestsrc ! videoconvert ! appsink")
        return SourceSpec("gst", pipeline)
    if text.lower().startswith(STREAM_SCHEMES):
        return SourceSpec("stream", text)
    path = literal_path(text[len("file://") :]) if text.startswith("file://") else text
    # A path that exists is taken literally: `clip[1].mp4` is a file, not a glob.
    candidate = Path(path)
    if candidate.is_dir():
        return SourceSpec("images", path)
    if candidate.is_file():
        return SourceSpec("images" if candidate.suffix.lower() in IMAGE_SUFFIXES else "file", path)
    if candidate.exists():
        raise EdgevisionError(f"source {text!r} is not a regular file or folder (a FIFO, socket or device)")
    if any(ch in path for ch in "*?["):
        return SourceSpec("images", path)
    raise EdgevisionError(
        f"source {text!r} not found: give a camera index (0), /dev/videoN, v4l2://N, a video file, an image "
        "folder or glob, rtsp:// or http(s):// URL, gst:PIPELINE, csi://N or picam[:N]"
    )


def literal_path(path: str) -> str:
    """The path of a `file://` URL's rest: as written if that exists, else percent-decoded (`a%20b.mp4`)."""
    if os.path.exists(path):
        return path
    decoded = urllib.parse.unquote(path)
    return decoded if os.path.exists(decoded) else path


def check_frame_size(frame: np.ndarray, description: str) -> np.ndarray:
    """A frame over the image pixel limit is an unreadable frame, not something to classify or queue."""
    if frame.shape[0] * frame.shape[1] > MAX_IMAGE_PIXELS:
        raise UnreadableFrame(f"{description}: frame of {frame.shape[1]}x{frame.shape[0]} pixels exceeds "
                              f"{MAX_IMAGE_PIXELS:,} (EDGEVISION_MAX_IMAGE_PIXELS)")
    return frame


def gstreamer_available(build_info: str | None = None) -> bool:
    """Whether OpenCV was built with GStreamer, from its build information."""
    info = cv2.getBuildInformation() if build_info is None else build_info
    match = re.search(r"^\s*GStreamer:\s*(\S+)", info, re.MULTILINE)
    return bool(match) and match.group(1).upper() not in ("NO", "OFF")


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: float = 30) -> str:
    """The Jetson CSI camera pipeline: nvarguscamerasrc -> nvvidconv -> BGR appsink, newest buffer only."""
    return (
        f"nvarguscamerasrc sensor-id={sensor} ! "
        f"video/x-raw(memory:NVMM), width={width}, height={height}, framerate={int(round(fps))}/1, format=NV12 ! "
        f"nvvidconv ! video/x-raw, width={width}, height={height}, format=BGRx ! "
        "videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false"
    )


class OpenCvSource:
    """A cv2.VideoCapture (camera, file, stream or GStreamer pipeline)."""

    def __init__(self, capture: cv2.VideoCapture, description: str, live: bool) -> None:
        self.capture = capture
        self.description = description
        self.live = live
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else None
        width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
        if width * height > MAX_IMAGE_PIXELS:  # declared by the container: refused before any frame is decoded
            capture.release()
            raise EdgevisionError(f"{description} has {width:.0f}x{height:.0f} frames, over {MAX_IMAGE_PIXELS:,} "
                                  "pixels (EDGEVISION_MAX_IMAGE_PIXELS)")

    def read(self) -> np.ndarray | None:
        ok, frame = self.capture.read()
        if not ok:
            return None
        if frame is None or frame.size == 0:
            raise UnreadableFrame(self.description)
        return check_frame_size(frame, self.description)

    def release(self) -> None:
        self.capture.release()


class ImageFilesSource:
    """Image files in name order, one frame each; an unreadable file is one skipped frame."""

    live = False

    def __init__(self, paths: list[str], description: str, fps: float | None) -> None:
        self.paths = paths
        self.description = description
        self.fps = fps
        self.next = 0

    def read(self) -> np.ndarray | None:
        if self.next >= len(self.paths):
            return None
        path = self.paths[self.next]
        self.next += 1
        # Only a regular file is opened: a FIFO called x.jpg would block the read forever.
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except OSError as exc:
            raise UnreadableFrame(f"{path}: {exc.strerror}") from None
        if not regular:
            raise UnreadableFrame(f"{path}: not a regular file")
        try:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
        except cv2.error:  # over OpenCV's pixel limit, in some builds
            image = None
        if image is None:
            raise UnreadableFrame(f"{path}: not an image, corrupt, or over {MAX_IMAGE_PIXELS:,} pixels")
        return check_frame_size(image, path)

    def release(self) -> None:
        self.next = len(self.paths)


class Picamera2Source:
    """A Raspberry Pi camera through picamera2 (libcamera), which OpenCV cannot open on Bookworm."""

    live = True

    def __init__(self, index: int, options: SourceOptions) -> None:
        try:
            picamera2 = importlib.import_module("picamera2")
        except ImportError:
            raise EdgevisionError(NO_PICAMERA2) from None
        try:
            self.camera = picamera2.Picamera2(index)
        except (IndexError, RuntimeError) as exc:
            raise EdgevisionError(f"cannot open Raspberry Pi camera {index}: {exc}") from None
        size = (options.width or 640, options.height or 480)
        # picamera2's "RGB888" is laid out B, G, R in memory: OpenCV's order.
        controls = {"FrameRate": options.fps} if options.fps else {}
        config = self.camera.create_video_configuration(main={"size": size, "format": "RGB888"}, controls=controls)
        self.camera.configure(config)
        self.camera.start()
        self.description = f"picam:{index} ({size[0]}x{size[1]})"
        self.fps = options.fps

    def read(self) -> np.ndarray | None:
        frame = self.camera.capture_array("main")
        if frame is None or frame.size == 0:
            raise UnreadableFrame(self.description)
        return frame[:, :, :3] if frame.ndim == 3 and frame.shape[2] == 4 else frame

    def release(self) -> None:
        self.camera.stop()
        self.camera.close()


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def read_folder(spec: SourceSpec) -> str | None:
    """The folder an image source reads (a glob's folder), None for other sources."""
    if spec.kind != "images":
        return None
    target = str(spec.target)
    if Path(target).is_dir():
        return target
    if Path(target).is_file():
        return None  # one image file: the output check compares it as an input
    return os.path.dirname(target[: min((target.find(ch) for ch in "*?[" if ch in target), default=len(target))]) or "."


def image_paths(pattern: str) -> list[str]:
    """Regular image files in a folder or matching a glob, in name order (FIFOs and folders left out)."""
    if Path(pattern).is_dir():
        with os.scandir(pattern) as entries:
            paths = [e.path for e in entries if Path(e.name).suffix.lower() in IMAGE_SUFFIXES and e.is_file()]
    else:
        paths = [p for p in glob.iglob(pattern) if Path(p).suffix.lower() in IMAGE_SUFFIXES and _regular(p)]
    if not paths:
        raise EdgevisionError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {pattern}")
    return sorted(paths)


def camera_backend() -> int:
    return cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY


def open_camera(index: int, options: SourceOptions) -> OpenCvSource:
    capture = cv2.VideoCapture(index, camera_backend())
    if not capture.isOpened():
        raise EdgevisionError(f"cannot open camera {index} (/dev/video{index}): missing, busy, or no permission")
    # Ask for compressed frames (USB bandwidth) and the smallest driver queue (latency).
    capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
    if options.width:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, options.width)
    if options.height:
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, options.height)
    if options.fps:
        capture.set(cv2.CAP_PROP_FPS, options.fps)
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    return OpenCvSource(capture, f"camera {index} ({width}x{height})", live=True)


def open_stream(url: str, options: SourceOptions) -> OpenCvSource:
    if options.rtsp_transport not in ("tcp", "udp"):
        raise EdgevisionError(f"--rtsp-transport must be tcp or udp, got {options.rtsp_transport!r}")
    if url.lower().startswith(("rtsp://", "rtsps://")):
        # Read by OpenCV's FFmpeg backend at each open.
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{options.rtsp_transport}"
    for name, seconds in (("--open-timeout", options.open_timeout_s), ("--read-timeout", options.read_timeout_s)):
        if not 0 < seconds <= MAX_TIMEOUT_S:  # OpenCV takes milliseconds as a 32-bit int
            raise EdgevisionError(f"{name} must be between 0 and {MAX_TIMEOUT_S:g} seconds, got {seconds:g}")
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(options.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(options.read_timeout_s * 1000),
    ]
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    if not capture.isOpened():
        raise EdgevisionError(f"cannot open stream {redact(url)} (refused, not found, or no frames within "
                              f"{options.open_timeout_s:g} s)")
    return OpenCvSource(capture, redact(url), live=True)


def open_gstreamer(pipeline: str, description: str) -> OpenCvSource:
    if not gstreamer_available():
        raise EdgevisionError(NO_GSTREAMER)
    if "appsink" not in pipeline:
        raise EdgevisionError(f"a gst: pipeline must end in appsink, got {redact(pipeline)!r}")
    capture = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
    if not capture.isOpened():
        raise EdgevisionError(f"GStreamer cannot start {description}")
    return OpenCvSource(capture, description, live=True)


def open_source(spec: SourceSpec, options: SourceOptions) -> OpenCvSource | ImageFilesSource | Picamera2Source:
    """Open what `spec` names, or raise EdgevisionError in one line."""
    if spec.kind == "camera":
        return open_camera(int(spec.target), options)
    if spec.kind == "stream":
        return open_stream(str(spec.target), options)
    if spec.kind == "gst":
        return open_gstreamer(str(spec.target), redact("gst:" + str(spec.target)))
    if spec.kind == "csi":
        pipeline = csi_pipeline(int(spec.target), options.width or 1280, options.height or 720, options.fps or 30)
        return open_gstreamer(pipeline, f"csi://{spec.target}")
    if spec.kind == "picam":
        return Picamera2Source(int(spec.target), options)
    if spec.kind == "images":
        paths = image_paths(str(spec.target))
        return ImageFilesSource(paths, f"{spec.target} ({len(paths)} images)", options.fps)
    if spec.kind == "file":
        capture = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture = cv2.VideoCapture(str(spec.target))
        if not capture.isOpened():
            raise EdgevisionError(f"cannot read video file {spec.target}: not a video OpenCV can decode")
        return OpenCvSource(capture, str(spec.target), live=False)
    raise EdgevisionError(f"unknown source kind {spec.kind!r}; choose from {', '.join(KINDS)}")
