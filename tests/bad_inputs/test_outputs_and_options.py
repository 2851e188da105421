"""Bad input, answered: each case is what a user typed, and what the toolkit must answer.

Nothing that the user did not name is overwritten; two writers never share an output; options
that cannot mean anything are refused in one line (exit 2) before any work starts.
"""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from deploy.atomic import output_lock, write_text_atomic
from deploy.errors import EdgevisionError

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from train.cli import main as train_main

ONE_EPOCH = ["train", "--data", "digits", "--model", "dense", "--epochs", "1", "--quiet"]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert train_main([*ONE_EPOCH, "--out", str(out)]) == 0
    return out


def test_a_second_train_into_a_finished_run_is_refused_and_keeps_it(finished_run, capsys):
    before = sha(finished_run / "model.pt")
    assert train_main([*ONE_EPOCH, "--out", str(finished_run)]) == 2
    err = capsys.readouterr().err
    assert "already holds a training run" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert sha(finished_run / "model.pt") == before


def test_overwrite_replaces_the_whole_run(tmp_path, finished_run):
    out = tmp_path / "again"
    out.mkdir()
    for name in ("model.pt", "metrics.json"):
        (out / name).write_bytes((finished_run / name).read_bytes())
    (out / "last.pt").write_bytes(b"an older run's last.pt")
    assert train_main([*ONE_EPOCH, "--out", str(out), "--overwrite"]) == 0
    assert (out / "last.pt").read_bytes() != b"an older run's last.pt"


def test_a_run_folder_held_by_another_process_is_refused(tmp_path, capsys):
    out = tmp_path / "busy"
    with output_lock(out, "--out"):
        assert train_main([*ONE_EPOCH, "--out", str(out)]) == 2
    assert "another edgevision process is writing" in capsys.readouterr().err
    assert not (out / "model.pt").exists()


def test_an_unwritable_out_is_reported_before_training(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert train_main([*ONE_EPOCH, "--out", str(blocker / "run")]) == 2
    assert "cannot write the --out folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--threads", "-1"], "--threads must be between 1 and"),
        (["--threads", "100000"], "--threads must be between 1 and"),
        (["--lr", "nan"], "--lr must be a finite number"),
        (["--lr", "inf"], "--lr must be a finite number"),
        (["--seed", "-5"], "--seed must be between 0"),
        (["--label-smoothing", "1.5"], "--label-smoothing must be below 1"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--device", "cuda"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "--device"),
    ],
)
def test_options_that_cannot_mean_anything(tmp_path, capsys, option, message):
    assert train_main([*ONE_EPOCH, "--out", str(tmp_path / "r"), *option]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "model.pt").exists()


def test_written_files_follow_the_umask_not_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "card.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "card.json").stat().st_mode) == 0o644


def test_output_lock_is_released_with_its_holder(tmp_path):
    with output_lock(tmp_path / "x"):
        with pytest.raises(EdgevisionError, match="another edgevision process"):
            with output_lock(tmp_path / "x"):
                pass
    with output_lock(tmp_path / "x"):
        pass


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"std": (0.0, 0.2, 0.2)}, "std finite and > 0"),
        ({"mean": (float("nan"), 0.4, 0.4)}, "mean must be finite"),
        ({"input_size": (12000, 12000), "resize": None}, "exceed 8192 pixels"),
    ],
)
def test_a_card_whose_preprocessing_cannot_work_is_refused(fields, message):
    from deploy.preprocess import Preprocessing

    with pytest.raises(EdgevisionError, match=message):
        Preprocessing(**{"input_size": (224, 224), "resize": 256, **fields})


@pytest.fixture
def tiny_checkpoint(tmp_path):
    pytest.importorskip("onnx")
    from deploy.card import ModelCard
    from deploy.preprocess import Preprocessing
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    card = ModelCard("cnn", ["a", "b"], Preprocessing((16, 16), 18), model_options={"width": 4})
    return save_checkpoint(tmp_path / "model.pt", card, build_model("cnn", 2, 3, (16, 16), width=4).state_dict())


def test_a_failed_parity_check_never_replaces_the_verified_artifact(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    import deploy
    from deploy.export import verify
    from edgevision import main

    out = tmp_path / "model.onnx"
    assert main(["export", "--model", str(tiny_checkpoint), "--format", "onnx", "--out", str(out),
                 "--verify-images", "2"]) == 0
    verified = sha(out)
    # a real check that no export can pass: logits must match to the last bit
    monkeypatch.setitem(verify.TOLERANCES, "fp32", (1.0, 0.0))
    assert main(["export", "--model", str(tiny_checkpoint), "--format", "onnx", "--out", str(out),
                 "--verify-images", "2"]) == 1
    assert "left as it was" in capsys.readouterr().err
    assert sha(out) == verified and deploy.load(out).card.parity.passed
    with pytest.warns(UserWarning, match="failed parity check"):
        assert not deploy.load(tmp_path / "model.failed.onnx").card.parity.passed
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".model.onnx")) == [".model.onnx.lock"]


def test_an_export_without_a_check_loads_with_a_warning(tmp_path, tiny_checkpoint):
    import deploy
    from edgevision import main

    out = tmp_path / "model.onnx"
    assert main(["export", "--model", str(tiny_checkpoint), "--format", "onnx", "--out", str(out),
                 "--verify-images", "0"]) == 0
    with pytest.warns(UserWarning, match="unverified"):
        deploy.load(out)


def test_prune_never_writes_over_its_input(tiny_checkpoint, capsys):
    from edgevision import main

    before = sha(tiny_checkpoint)
    assert main(["prune", "--model", str(tiny_checkpoint), "-o", str(tiny_checkpoint), "--ratio", "0.5"]) == 2
    assert "is the checkpoint being pruned" in capsys.readouterr().err
    assert sha(tiny_checkpoint) == before


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path):
    """A 20000 x 20000 PNG of zeros is a few hundred kB on disk and 1.2 GB decoded: `predict`
    refuses it in one line, in a process whose peak memory stays far below that."""
    import subprocess
    import sys

    import cv2
    import numpy as np

    from tests.runtime.onnx_models import make_onnx, tiny_card

    model = make_onnx(tmp_path / "m.onnx", card=tiny_card())
    bomb = tmp_path / "bomb.png"
    stripe = np.zeros((20000, 20000), np.uint8)
    assert cv2.imwrite(str(bomb), stripe)
    del stripe
    assert bomb.stat().st_size < 2_000_000
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['edgevision', 'predict', '--model', {str(model)!r}, {str(bomb)!r}]\n"
        "try:\n    runpy.run_module('edgevision', run_name='__main__')\n"
        "finally:\n"
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "    print('VmHWM', int(hwm) // 1024, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    error = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and "more than 89,478,485 pixels" in error[0] and "EDGEVISION_MAX_IMAGE_PIXELS" in error[0]
    peak_mib = int(done.stderr.split("VmHWM")[-1].split()[0])
    print(f"peak {peak_mib} MiB, exit {done.returncode}: {error[0][:150]}")
    assert peak_mib < 1024, peak_mib


@pytest.mark.parametrize(("make", "says"), [
    (lambda tmp: tmp, "is a folder, not a model file"),
    (lambda tmp: (os.mkfifo(tmp / "fifo.onnx"), tmp / "fifo.onnx")[1], "not a regular file"),
    (lambda tmp: __import__("pathlib").Path("/dev/zero"), "not a regular file"),
])
@pytest.mark.parametrize("command", ["predict", "info"])
def test_a_model_path_that_is_no_file_says_what_it_is(tmp_path, capsys, make, says, command):
    from edgevision import main

    args = ["--model", str(make(tmp_path)), *([str(tmp_path / "x.png")] if command == "predict" else [])]
    assert main([command, *args]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def test_quantize_refuses_data_whose_classes_are_not_the_models(tiny_checkpoint, tmp_path, capsys):
    from edgevision import main

    # the tiny checkpoint knows classes a and b; digits has 0..9
    assert main(["quantize", "--model", str(tiny_checkpoint), "--data", "digits", "-o", str(tmp_path / "q.onnx")]) == 2
    err = capsys.readouterr().err
    assert "the model was trained on ['a', 'b']" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize("command", ["quantize", "prune"])
def test_a_second_writer_to_one_quantize_or_prune_output_is_refused(tiny_checkpoint, tmp_path, capsys, command):
    """Two runs to one -o once left one model's weights with the other's card: the second is refused
    at once (the lock is the one `export` takes: `.<name>.lock` beside the output)."""
    from deploy.atomic import artifact_lock
    from edgevision import main

    out = tmp_path / ("q.onnx" if command == "quantize" else "p.pt")
    args = ["--data", "digits"] if command == "quantize" else ["--ratio", "0.5"]
    with artifact_lock(out):
        assert main([command, "--model", str(tiny_checkpoint), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert f"another edgevision process is writing {out}" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_ratio_that_prunes_nothing_is_not_a_success(tiny_checkpoint, tmp_path, capsys):
    from edgevision import main

    out = tmp_path / "p.pt"
    # the tiny model's 4-channel layers cannot keep a multiple of 8 channels and lose any
    assert main(["prune", "--model", str(tiny_checkpoint), "-o", str(out), "--ratio", "0.99"]) == 2
    err = capsys.readouterr().err
    assert "--ratio 0.99 removed no channel" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("command", ["export", "quantize", "prune"])
def test_an_unwritable_output_is_reported_before_the_work(tiny_checkpoint, tmp_path, capsys, command):
    from edgevision import main

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "sub" / ("m.pt" if command == "prune" else "m.onnx")
    args = {
        "export": ["export", "--model", str(tiny_checkpoint), "--format", "onnx", "--out", str(out)],
        "quantize": ["quantize", "--model", str(tiny_checkpoint), "--data", "digits", "-o", str(out)],
        "prune": ["prune", "--model", str(tiny_checkpoint), "-o", str(out), "--ratio", "0.5"],
    }[command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cannot write the" in err and "Not a directory" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["quantize", "prune"])
def test_an_unwritable_report_is_reported_before_the_work(tiny_checkpoint, tmp_path, capsys, command):
    """--report is written last: it used to fail after the whole run, with a traceback."""
    from edgevision import main

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    args = ["--data", "digits"] if command == "quantize" else ["--ratio", "0.5"]
    out = tmp_path / ("q.onnx" if command == "quantize" else "p.pt")
    assert main([command, "--model", str(tiny_checkpoint), "-o", str(out), *args,
                 "--report", str(blocker / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the --report" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_an_atomic_write_into_an_impossible_folder_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(EdgevisionError, match="cannot write .*a_file/x.json: "):
        write_text_atomic(tmp_path / "a_file" / "x.json", "{}")


@pytest.mark.parametrize("command", [
    ["bench", "{model}", "--budget", "0.1", "--out", "{bad}"],
    ["camera", "--model", "{model}", "--source", "{video}", "--log", "{bad}/frames.jsonl"],
    ["camera", "--model", "{model}", "--source", "{video}", "--report", "{bad}/report.json"],
])
def test_an_unwritable_output_is_reported_before_the_run(tmp_path, capsys, command):
    import cv2
    import numpy as np

    from camera_app.video import write_video_from_images
    from edgevision import main
    from tests.runtime.onnx_models import make_onnx, tiny_card

    model = make_onnx(tmp_path / "m.onnx", card=tiny_card())
    cv2.imwrite(str(tmp_path / "i.png"), np.zeros((20, 20, 3), np.uint8))
    write_video_from_images([tmp_path / "i.png"], tmp_path / "v.avi", 2, 30.0, (32, 32))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    args = [a.format(model=model, video=tmp_path / "v.avi", bad=blocker) for a in command]
    assert main(args) == 2
    err = capsys.readouterr().err
    said = "is a file, not a folder" if command[0] == "bench" else "cannot write the"
    assert said in err and err.strip().splitlines()[-1].startswith("edgevision")
