"""External data in ONNX files: inside the model's folder is fine, anywhere else is refused."""

from __future__ import annotations

import numpy as np
import pytest

import deploy
from deploy.errors import EdgevisionError
from deploy.onnx_scan import check_external_data, external_data_locations

pytest.importorskip("onnx")

from tests.helpers import external_model


def test_inside_folder_is_accepted(tmp_path):
    np.arange(4, dtype=np.float32).tofile(tmp_path / "weights.bin")
    path = external_model(tmp_path, "weights.bin")
    assert check_external_data(path) == ["weights.bin"]


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
@pytest.mark.parametrize("in_subgraph", [False, True])
def test_escaping_location_is_refused(tmp_path, location, in_subgraph):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    path = external_model(folder, location, in_subgraph)
    assert set(external_data_locations(path.read_bytes())) == {location}  # found in both If branches too
    with pytest.raises(EdgevisionError, match="points outside the model's folder"):
        check_external_data(path)
    with pytest.raises(EdgevisionError, match="refusing external data location"):
        deploy.load(path, labels=None)


def test_symlink_out_of_folder_is_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    (folder / "weights.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(EdgevisionError, match="outside the model's folder"):
        check_external_data(external_model(folder, "weights.bin"))


def test_truncated_protobuf(tmp_path):
    path = external_model(tmp_path, "weights.bin")
    data = path.read_bytes()
    with pytest.raises(EdgevisionError, match="truncated or corrupt"):
        external_data_locations(data[:-5])
