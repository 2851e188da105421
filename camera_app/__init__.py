"""camera_app: classify camera or video frames live with any exported model (no torch).

    import camera_app
    summary = camera_app.run("model.onnx", "clip.avi", threads=2, log="frames.jsonl")
    print(summary["pipeline_fps"], summary["frames"])

`camera_app.video.write_video_from_images` makes a test video from still images.
"""

from __future__ import annotations

import deploy.limits  # noqa: F401  (before any cv2 import: OpenCV reads its image-size limit once)


def run(model: str, source: str, **options) -> dict:
    """Run the app headless (unless `display="auto"|"window"`) and return its summary dict.

    options: any `camera_app.app.AppConfig` field (threads, buffer, max_frames, log, report, ...).
    """
    from camera_app.app import AppConfig, run_app

    return run_app(AppConfig(model=str(model), source=str(source), **options))


__all__ = ["run"]
