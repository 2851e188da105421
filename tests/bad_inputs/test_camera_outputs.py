"""The camera app's outputs under bad luck: a kill mid-recording, frames of another size, outputs
that are inputs, two runs on one output, special files, a full disk."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

import camera_app
from deploy.atomic import artifact_lock, special_file, write_text_atomic
from deploy.errors import EdgevisionError
from tests.bad_inputs.camera_helpers import REPO, camera, error_lines

pytest.importorskip("onnx", reason="the tiny test model is built with onnx (the export extra)")

from tests.helpers import write_video


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tests.runtime.onnx_models import make_onnx, tiny_card

    return make_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx", card=tiny_card(classes=3))


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "clip.avi", 40)


def frames_in(path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    return count


def log_lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def background_run(model, video, *outputs: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "camera_app", "--model", str(model), "--source", str(video), "--loop", "-1",
               "--display", "none", "--quiet", *outputs]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def wait_for_lines(path, count: int, process: subprocess.Popen) -> None:
    stop = threading.Event()
    for _ in range(1200):  # 60 s: only turns a hang into a failure
        if len(log_lines(path)) >= count or process.poll() is not None:
            break
        stop.wait(0.05)
    assert len(log_lines(path)) >= count, process.stderr.read() if process.poll() is not None else "no frames"


def test_an_avi_recording_killed_mid_run_still_plays(model, video, tmp_path):
    log, record = tmp_path / "frames.jsonl", tmp_path / "run.avi"
    run = background_run(model, video, "--log", log, "--record", record)
    try:
        wait_for_lines(log, 60, run)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(60)
    assert frames_in(record) >= 30  # all but what the writer still held in its buffers


def test_mp4_recording_is_refused_in_one_line(model, video, tmp_path):
    done = camera("--model", model, "--source", video, "--record", tmp_path / "run.mp4", timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "record to .avi" in done.stderr and not (tmp_path / "run.mp4").exists()


def test_frames_of_another_size_are_letterboxed_into_the_recording(model, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        size = (160, 120) if i % 2 == 0 else (90, 200)
        cv2.imwrite(str(folder / f"{i}.png"), np.full((size[1], size[0], 3), 30 * i, np.uint8))
    summary = camera_app.run(model, folder, record=str(tmp_path / "out.avi"))
    assert summary["recorded"] == {"frames": 6, "resized": 3}
    assert frames_in(tmp_path / "out.avi") == 6
    capture = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert [int(capture.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT)] == [160, 120]


def linked(kind: str, target, link):
    (os.symlink if kind == "symlink" else os.link)(target, link)
    return link


@pytest.mark.parametrize(
    ("flag", "make", "message"),
    [
        ("record", lambda t, v, m: v, "is the --source"),
        ("log", lambda t, v, m: linked("symlink", v, t / "log.jsonl"), "is the --source"),
        ("report", lambda t, v, m: linked("hardlink", m, t / "report.json"), "is the --model"),
        ("report", lambda t, v, m: t / "frames" / "report.json", "inside the image folder being read"),
    ],
)
def test_an_output_that_is_an_input_is_refused(model, video, tmp_path, flag, make, message):
    local_model = tmp_path / "model.onnx"
    local_model.write_bytes(model.read_bytes())
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    source = tmp_path / "frames" if "folder" in message else video
    path = make(tmp_path, video, local_model)
    before = {p: p.read_bytes() for p in (video, local_model)}
    with pytest.raises(EdgevisionError, match=message):
        camera_app.run(local_model, source, **{flag: str(path)})
    assert {p: p.read_bytes() for p in before} == before


def test_two_outputs_on_one_file_are_refused(model, video, tmp_path):
    with pytest.raises(EdgevisionError, match="is also the --log"):
        camera_app.run(model, video, log=str(tmp_path / "x.json"), report=str(tmp_path / "x.json"))


def test_a_second_run_on_the_same_log_is_refused_naming_the_first(model, video, tmp_path):
    log = tmp_path / "frames.jsonl"
    first = background_run(model, video, "--log", log)
    try:
        wait_for_lines(log, 5, first)
        done = camera("--model", model, "--source", video, "--log", log, timeout=60)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
    assert done.returncode == 2 and f"another edgevision process is writing {log} (pid {first.pid})" in done.stderr
    frames = [json.loads(line) for line in log_lines(log)]  # every line whole: nobody else wrote into it
    assert [r["frame"] for r in frames if "frame" in r] == list(range(len([r for r in frames if "frame" in r])))


def test_report_and_record_take_the_lock_too(model, video, tmp_path):
    for flag, name in (("report", "r.json"), ("record", "r.avi")):
        with artifact_lock(tmp_path / name, f"--{flag}"):
            with pytest.raises(EdgevisionError, match=f"pid {os.getpid()}"):
                camera_app.run(model, video, **{flag: str(tmp_path / name)})


def test_atomic_writes_go_into_special_files_and_never_replace_them(tmp_path):
    null_link = tmp_path / "null.json"
    null_link.symlink_to("/dev/null")
    write_text_atomic(null_link, "{}\n")
    assert null_link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    with pytest.raises(EdgevisionError, match="named pipe with no reader"):  # would block for good
        write_text_atomic(fifo, "hello\n")
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the reader is there first, as `cat` would be
    try:
        write_text_atomic(fifo, "hello\n")
        got = os.read(reader, 100)
    finally:
        os.close(reader)
    assert got == b"hello\n" and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_report_to_standard_output_prints_it_and_leaves_the_link_alone(model, video, tmp_path):
    # A link of our own to /proc/self/fd/1, not /dev/stdout itself: code that renames over its target
    # must fail this test without replacing the system's /dev/stdout.
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    done = camera("--model", model, "--source", video, "--report", stdout, "--quiet", timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["frames"]["classified"] == 40
    assert stdout.is_symlink() and os.readlink(stdout) == "/proc/self/fd/1"
    assert special_file("/dev/stdout") and special_file("/dev/fd/1") and not special_file(tmp_path / "r.json")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs: a real full disk (needs root and mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_stops_the_log_with_one_line_and_the_run_ends_non_zero(model, video, tiny_disk, tmp_path):
    (tiny_disk / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 64 * 1024))
    done = camera("--model", model, "--source", video, "--loop", "20", "--display", "none",
                  "--log", tiny_disk / "frames.jsonl", "--report", tmp_path / "r.json", timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if "no space left" in line.lower()]
    assert len(warnings) == 2 and "--log" in warnings[0]  # the moment it filled, and the exit's error line
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames"]["classified"] == 840 and "--log" in report["output_errors"][0]
    lines = log_lines(tiny_disk / "frames.jsonl")
    assert len(lines) > 50 and all(json.loads(line) for line in lines[:-1])  # all but a cut last line whole


def test_a_full_disk_stops_the_recording_and_keeps_what_it_wrote(model, video, tiny_disk, tmp_path):
    done = camera("--model", model, "--source", video, "--loop", "20", "--display", "none",
                  "--record", tiny_disk / "run.avi", "--report", tmp_path / "r.json", timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames"]["classified"] == 840 and "no space left" in report["error"]
    recorded = report["recorded"]["frames"]
    assert 10 < recorded < 840 and frames_in(tiny_disk / "run.avi") >= recorded - 5


def test_a_full_disk_at_the_report_is_one_line_and_the_summary_still_prints(model, video, tiny_disk):
    (tiny_disk / "filler").write_bytes(b"\0" * (2 * 1024 * 1024))
    done = camera("--model", model, "--source", video, "--display", "none", "--report", tiny_disk / "r.json",
                  timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "classified 40" in done.stdout
    assert [line for line in error_lines(done.stderr) if "no space left" in line.lower()]
