"""The backend and export-format registries: names once, modules only when chosen."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from deploy import backends
from deploy.errors import EdgevisionError


def test_duplicate_backend_name_refused():
    with pytest.raises(ValueError, match="already registered"):
        backends.register_backend("onnxruntime", "somewhere:Else", (".onnx",))


def test_list_and_suffixes():
    assert {"onnxruntime", "executorch", "tensorrt", "torch"} <= set(backends.list_backends())
    assert backends.backend_for_path("m.onnx") == "onnxruntime"
    assert backends.backend_for_path("M.PTE") == "executorch"
    assert backends.backend_for_path("m.engine") == "tensorrt"
    assert backends.backend_for_path("m.plan") == "tensorrt"
    assert backends.backend_for_path("model.pt") == "torch"
    with pytest.raises(EdgevisionError, match="suffix '.tflite'"):
        backends.backend_for_path("m.tflite")
    with pytest.raises(EdgevisionError, match="unknown backend 'nope'"):
        backends.get_backend("nope")


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))  # the registration ends with the test
    name = f"test-{uuid.uuid4().hex[:8]}"
    backends.register_backend(name, "edgevision_no_such_module:Backend", (), "runtime", ("edgevision_no_such_module",))
    with pytest.raises(EdgevisionError, match=r"pip install edgevision\[runtime\]"):
        backends.get_backend(name)


def test_backend_modules_load_lazily():
    code = (
        "import sys, deploy, deploy.backends, deploy.classifier\n"
        "assert 'deploy.backends.onnxruntime' not in sys.modules\n"
        "assert 'onnxruntime' not in sys.modules\n"
        "cls = deploy.backends.get_backend('onnxruntime')\n"
        "assert cls.__name__ == 'OnnxRuntimeBackend'\n"
        "assert 'deploy.backends.onnxruntime' in sys.modules and 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_export_format_table_checked_up_front():
    from deploy.export import check_request, get_format, list_formats, register_format

    assert list_formats() == ["executorch", "onnx", "tensorrt"]
    with pytest.raises(EdgevisionError, match="takes precision fp32, not int8"):
        check_request("onnx", "int8")
    with pytest.raises(EdgevisionError, match="unknown export format"):
        check_request("tflite", "fp32")
    with pytest.raises(ValueError, match="already registered"):
        register_format(get_format("onnx"))


def test_every_export_format_names_an_importable_exporter():
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from deploy.export import get_exporter, list_formats

    for name in list_formats():
        exporter = get_exporter(name)
        assert callable(exporter) and exporter.__name__ == "from_torch", name
