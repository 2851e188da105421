"""The pruned-structure record: a pruned checkpoint loads through train alone, never through quantize."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from deploy.preprocess import Preprocessing
from train.checkpoint import load_model, save_checkpoint
from train.models import build_model
from train.pruned import STRUCTURE_KEY, apply_pruned_structure, pruned_structure

ROOT = Path(__file__).resolve().parents[2]


def thin_checkpoint(path: Path) -> nn.Module:
    """A `cnn` of width 8 saved as a width-32 `cnn` with its thinner layers recorded, as prune writes it."""
    torch.manual_seed(0)
    thin = build_model("cnn", 10, 1, (8, 8), width=8).eval()
    structure = pruned_structure(thin, reference=build_model("cnn", 10, 1, (8, 8)))
    assert set(structure) == {"features.0", "features.3", "head"}, structure
    spec = Preprocessing((8, 8), None, (0.3,), (0.37,), "GRAY")
    card = ModelCard("cnn", [str(i) for i in range(10)], spec, model_options={STRUCTURE_KEY: structure})
    save_checkpoint(path, card, thin.state_dict())
    return thin


def test_pruned_checkpoint_rebuilds_the_thin_network(tmp_path: Path) -> None:
    thin = thin_checkpoint(tmp_path / "thin.pt")
    loaded, card = load_model(tmp_path / "thin.pt")
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(loaded(x), thin(x))
    assert loaded.features[0].out_channels == 8 and loaded.head.in_features == 16 * 2 * 2


def test_loading_a_pruned_checkpoint_imports_no_quantize(tmp_path: Path) -> None:
    thin_checkpoint(tmp_path / "thin.pt")
    code = (
        "import json, sys; from train.checkpoint import load_model; "
        f"model, _ = load_model({str(tmp_path / 'thin.pt')!r}); "
        "print(json.dumps({'channels': model.features[0].out_channels, "
        "'loaded': sorted(m for m in ('quantize', 'torch_pruning') if m in sys.modules)}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"channels": 8, "loaded": []}


def test_structure_that_does_not_fit_is_refused() -> None:
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8))
    with pytest.raises(EdgevisionError, match="does not have"):
        apply_pruned_structure(model, {"nope.conv": {"out_channels": 8}})
    with pytest.raises(EdgevisionError, match="0 has no num_features"):
        apply_pruned_structure(model, {"0": {"num_features": 4}})
