"""Bad input, answered: inputs that declare more than they hold, or ask for more than a machine has.

Every size is checked before memory is committed: each case is refused in one line (exit 2) by a
process whose peak memory (VmHWM, measured in a fresh interpreter) stays under 1 GiB.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deploy.errors import EdgevisionError

PEAK_LIMIT_MIB = 1024
TOO_MANY_THREADS = str(4 * (os.cpu_count() or 1) + 1)


def run_measured(code: str, timeout: int = 180) -> tuple[subprocess.CompletedProcess, int]:
    """Run `code` (a function body that returns an exit status) in a fresh interpreter; (the finished
    process, its peak resident memory in MiB)."""
    wrapped = "import sys\ndef _main():\n" + textwrap.indent(code, "    ") + (
        "try:\n    status = _main()\nfinally:\n"
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "    print('VmHWM', int(hwm) // 1024, file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, timeout=timeout)
    peak = int(done.stderr.split("VmHWM")[-1].split()[0])
    print(f"peak {peak} MiB, exit {done.returncode}: {done.stderr.splitlines()[0][:150] if done.stderr else ''}")
    return done, peak


def cli(*argv: str) -> str:
    """Code that runs `edgevision ARGV` and returns its exit status."""
    return f"from edgevision import main\nreturn main({list(argv)!r})\n"


def one_error(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, done.stderr[-2000:]
    return lines[0]


# --- IDX files ------------------------------------------------------------------------------


def idx_header(*shape: int) -> bytes:
    return bytes([0, 0, 8, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


def test_a_gzipped_idx_that_inflates_past_its_header_is_refused_in_bounded_memory(tmp_path):
    """About 1.5 MB of gzip that inflates to 1.5 GB of zeros behind a header declaring 10 images:
    it used to be read whole (7 GB for the reporter's file) before the size was compared."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    zeros = bytes(16 << 20)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb", compresslevel=1) as handle:
        handle.write(idx_header(10, 28, 28))
        for _ in range(96):
            handle.write(zeros)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(idx_header(10) + bytes(10))
    done, peak = run_measured(cli("train", "--data", f"idx:{tmp_path}", "--model", "dense", "--epochs", "1",
                                  "--out", str(tmp_path / "run"), "--quiet"))
    assert done.returncode == 2
    assert "t10k-images-idx3-ubyte.gz does not match its header (10, 28, 28): holds more data" in one_error(done)
    assert peak < PEAK_LIMIT_MIB, peak


@pytest.mark.parametrize(("data", "says"), [
    (idx_header(65535, 65535, 65535), "more than the 1,073,741,824 an IDX file may hold"),
    (idx_header(10, 28, 28) + bytes(100), "found 100 of 7,840 values"),
    (b"\0\0\x08\x03" + bytes(5), "its header declares 3 dimensions"),
    (b"PK\x03\x04 not idx", "not an unsigned-byte IDX file"),
], ids=["huge-dims", "truncated", "short-header", "not-idx"])
@pytest.mark.parametrize("compress", [False, True])
def test_a_malformed_idx_file_is_one_line(tmp_path, data, says, compress):
    pytest.importorskip("torch")
    from train.data import read_idx

    path = tmp_path / ("x.gz" if compress else "x")
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(EdgevisionError, match=says):
        read_idx(path)


@pytest.mark.parametrize("data", [b"not gzip at all", gzip.compress(idx_header(10) + bytes(10))[:-12]],
                         ids=["not-gzip", "cut-gzip"])
def test_a_broken_gzip_idx_is_one_line(tmp_path, data):
    pytest.importorskip("torch")
    from train.data import read_idx

    path = tmp_path / "x.gz"
    path.write_bytes(data)
    with pytest.raises(EdgevisionError, match="cannot read IDX file .*x.gz"):
        read_idx(path)


def test_idx_labels_that_are_not_a_vector_are_one_line(tmp_path):
    pytest.importorskip("torch")
    from train.data import load_data

    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_header(10, 2, 2) + bytes(40))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_header() + bytes(1))  # a 0-d "array"
    with pytest.raises(EdgevisionError, match="do not match"):
        load_data(f"idx:{tmp_path}")


# --- model files ----------------------------------------------------------------------------


def test_an_onnx_declaring_a_12000_pixel_input_is_refused_naming_the_file(tmp_path):
    pytest.importorskip("onnx")
    from tests.runtime.onnx_models import make_onnx

    model = make_onnx(tmp_path / "huge.onnx", size=(12000, 12000))
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    done, peak = run_measured(cli("predict", "--model", str(model), "--labels", str(tmp_path / "labels.txt"),
                                  str(tmp_path / "x.png")))
    assert done.returncode == 2
    line = one_error(done)
    assert "huge.onnx: the model's input 12000x12000" in line and "exceed 8192 pixels" in line
    assert peak < PEAK_LIMIT_MIB, peak


@pytest.fixture
def checkpoint_with(tmp_path):
    """A real tiny checkpoint whose card is then edited as a hostile file would have it."""
    torch = pytest.importorskip("torch")
    from deploy.card import ModelCard
    from deploy.preprocess import Preprocessing
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    card = ModelCard("cnn", ["a", "b"], Preprocessing((16, 16), 18), model_options={"width": 4})
    path = save_checkpoint(tmp_path / "model.pt", card, build_model("cnn", 2, 3, (16, 16), width=4).state_dict())

    def edit(change) -> str:
        data = torch.load(path, weights_only=True)
        change(data["card"])
        torch.save(data, path)
        return str(path)

    return edit


def test_a_card_describing_a_huge_network_beside_small_weights_is_refused(checkpoint_with, tmp_path):
    """An 89 kB checkpoint whose card asked for a far wider network took 2.4 GB to build."""
    path = checkpoint_with(lambda card: card["model_options"].update(width=20000))
    done, peak = run_measured(cli("export", "--model", path, "--format", "onnx", "--out", str(tmp_path / "m.onnx")))
    assert done.returncode == 2
    line = one_error(done)
    assert "model.pt: its card describes a cnn of" in line and "the card does not match the weights" in line
    assert peak < PEAK_LIMIT_MIB, peak
    assert not (tmp_path / "m.onnx").exists()


def test_an_oversized_card_is_refused(checkpoint_with, capsys):
    from edgevision import main

    path = checkpoint_with(lambda card: card["metrics"].update(padding="x" * (2 << 20)))
    assert main(["info", path]) == 2
    assert "larger than the 1,048,576 a card may have" in capsys.readouterr().err


def test_an_oversized_sidecar_card_is_refused(tmp_path):
    from deploy.card import read_sidecar

    (tmp_path / "m.pte.json").write_text("{" + " " * (2 << 20) + "}")
    with pytest.raises(EdgevisionError, match="m.pte.json: model card of 2,097,154 bytes is larger"):
        read_sidecar(tmp_path / "m.pte")


# --- thread counts --------------------------------------------------------------------------


def test_predict_refuses_a_thread_count_no_machine_has(tmp_path, capsys):
    pytest.importorskip("onnx")
    from edgevision import main
    from tests.runtime.onnx_models import make_onnx, tiny_card

    model = make_onnx(tmp_path / "m.onnx", card=tiny_card())
    for threads in ("100000", TOO_MANY_THREADS, "-1"):
        assert main(["predict", "--model", str(model), "--threads", threads, str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert "--threads must be between 0 and" in err and len(err.strip().splitlines()) == 1


def test_deploy_load_refuses_a_thread_count_no_machine_has(tmp_path):
    """What camera and bench call: the check is in `deploy.load` itself."""
    pytest.importorskip("onnx")
    import deploy
    from tests.runtime.onnx_models import make_onnx, tiny_card

    model = make_onnx(tmp_path / "m.onnx", card=tiny_card())
    with pytest.raises(EdgevisionError, match="threads must be between 0 and"):
        deploy.load(model, threads=100000)


def test_quantize_refuses_a_thread_count_no_machine_has(tmp_path, capsys):
    pytest.importorskip("torch")
    from edgevision import main

    assert main(["quantize", "--model", str(tmp_path / "none.pt"), "--data", "digits", "-o", str(tmp_path / "q.onnx"),
                 "--threads", "100000"]) == 2
    err = capsys.readouterr().err
    assert "--threads must be between 1 and" in err and len(err.strip().splitlines()) == 1


# --- the parity check -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_parity_check_streams_its_images(tmp_path):
    """`--verify-images 100000` held every image in memory (5.6 GB after 2 minutes): images are now
    read and compared a chunk at a time, so 2,000 images peak where 32 do."""
    pytest.importorskip("onnx")
    from deploy.card import ModelCard
    from deploy.preprocess import Preprocessing
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    card = ModelCard("cnn", ["a", "b"], Preprocessing((16, 16), 18), model_options={"width": 4})
    model = save_checkpoint(tmp_path / "model.pt", card, build_model("cnn", 2, 3, (16, 16), width=4).state_dict())
    peaks = {}
    for count in (32, 2000):
        done, peaks[count] = run_measured(cli("export", "--model", str(model), "--format", "onnx",
                                              "--out", str(tmp_path / f"m{count}.onnx"), "--verify-images", str(count)))
        assert done.returncode == 0, done.stderr[-2000:]
    assert peaks[2000] - peaks[32] < 64, peaks  # all 2,000 generated images held at once: about 200 MiB more
