"""TensorRT: build engines from a tiny ONNX (fp32, fp16), run them through deploy.load, compare.

Needs the tensorrt package and a CUDA GPU; skipped with the reason where either is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

from deploy.errors import EdgevisionError

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


def require_tensorrt():
    try:
        import tensorrt  # noqa: F401
    except ModuleNotFoundError:
        pytest.skip("tensorrt is not installed (pip install edgevision[tensorrt], or JetPack's TensorRT on a Jetson)")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU and none is visible")


def test_missing_tensorrt_is_one_line(tmp_path):
    try:
        import tensorrt  # noqa: F401
    except ModuleNotFoundError:
        import deploy

        path = tmp_path / "m.engine"
        path.write_bytes(b"\0" * 64)
        with pytest.raises(EdgevisionError, match=r"needs the Python package 'tensorrt'.*pip install edgevision\[tensorrt\]"):
            deploy.load(path)
    else:
        pytest.skip("tensorrt is installed here")


@pytest.mark.gpu
@pytest.mark.parametrize("precision,atol", [("fp32", 1e-3), ("fp16", 5e-2)])
def test_engine_matches_torch(tmp_path, precision, atol):
    require_tensorrt()
    import deploy
    from deploy.card import ModelCard
    from deploy.export.onnx2trt import onnx2trt
    from deploy.export.torch2onnx import torch2onnx
    from deploy.preprocess import Preprocessing

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 3),
    ).eval()
    card = ModelCard("tiny", ["a", "b", "c"], Preprocessing((32, 32), 36), precision=precision, artifact_format="tensorrt")
    onnx_path = torch2onnx(model, card, tmp_path / "m.onnx")
    engine = onnx2trt(onnx_path, card, tmp_path / "m.engine", precision, max_batch=4, timing_cache=tmp_path / "cache")
    assert (tmp_path / "cache").stat().st_size > 0
    clf = deploy.load(engine)
    assert clf.card.precision == precision and clf.info["max_batch"] == 4
    batch = np.random.default_rng(0).normal(size=(6, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(clf.run(batch), expected, atol=atol)
    corrupt = tmp_path / "bad.engine"
    corrupt.write_bytes(engine.read_bytes()[:100])
    with pytest.raises(EdgevisionError, match="cannot deserialize"):
        deploy.load(corrupt, labels=None)
