"""`edgevision prune --preset NAME`: a named recipe expands to options, explicit options win, and a
preset for another architecture is a one-line error."""

from __future__ import annotations

import pytest

from deploy.errors import EdgevisionError
from quantize.cli import main, prune_parser
from quantize.presets import PRESETS, default_preset, parse_with_preset, resolve_preset

RESIDUAL = ["features.*.conv.2", "features.1.conv.1", "features.0.0"]
BASE = ["in.pt", "-o", "out.pt", "--target-macs", "0.5"]


def test_every_preset_sets_only_options_prune_has():
    parsed = vars(prune_parser().parse_args(BASE))
    for preset in PRESETS.values():
        assert set(preset.options) <= set(parsed), preset.name


def test_residual_preset_expands_to_the_recipe_of_results_md():
    preset = resolve_preset("mobilenet_v2-residual", "mobilenet_v2")
    args = parse_with_preset(prune_parser(), BASE, preset)
    assert args.ignore == RESIDUAL and args.round_to == 16 and args.lr == 5e-4
    assert args.target_macs == 0.5 and args.steps == 1  # options the preset leaves alone keep their defaults


def test_explicit_options_override_the_preset():
    preset = resolve_preset("mobilenet_v2-residual", "mobilenet_v2")
    argv = [*BASE, "--round-to", "8", "--ignore", "features.0.0", "--lr", "1e-3"]
    args = parse_with_preset(prune_parser(), argv, preset)
    assert args.ignore == ["features.0.0"] and args.round_to == 8 and args.lr == 1e-3
    again = parse_with_preset(prune_parser(), BASE, preset)
    assert again.ignore == RESIDUAL, "the preset's list must not be shared between parses"


def test_default_lookup():
    assert default_preset("mobilenet_v2").name == "mobilenet_v2-residual"
    assert default_preset("cnn") is None
    assert resolve_preset("default", "mobilenet_v2").name == "mobilenet_v2-residual"
    assert resolve_preset("default", "cnn") is None


def test_unknown_and_mismatched_presets_are_one_line_errors():
    with pytest.raises(EdgevisionError, match=r"unknown pruning preset 'nope'; choose from default, mobilenet_v2-r"):
        resolve_preset("nope", "cnn")
    with pytest.raises(EdgevisionError, match=r"'mobilenet_v2-residual' is for mobilenet_v2, but the checkpoint is"):
        resolve_preset("mobilenet_v2-residual", "cnn")


torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")
pytest.importorskip("torchvision")


def _checkpoint(path, architecture: str, input_size: tuple[int, int], **options):
    from deploy.card import ModelCard
    from deploy.preprocess import Preprocessing
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    torch.manual_seed(0)
    model = build_model(architecture, 3, 3, input_size, **options).eval()
    spec = Preprocessing(input_size=input_size, mean=(0.5,) * 3, std=(0.5,) * 3)
    save_checkpoint(path, ModelCard(architecture, ["a", "b", "c"], spec, model_options=options), model.state_dict())
    return path


def test_preset_for_another_architecture_exits_2(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "cnn.pt", "cnn", (8, 8), width=16)
    rc = main(["prune", "--model", str(ckpt), "-o", str(tmp_path / "p.pt"), "--ratio", "0.5",
               "--preset", "mobilenet_v2-residual"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0
    assert "is for mobilenet_v2, but the checkpoint is a cnn" in err
    assert not (tmp_path / "p.pt").exists()


def test_default_preset_prunes_a_tiny_mobilenet_v2_keeping_its_residual_stream(tmp_path):
    from quantize.prune import channel_counts
    from train.checkpoint import load_model

    ckpt = _checkpoint(tmp_path / "mnv2.pt", "mobilenet_v2", (32, 32))
    before = channel_counts(load_model(ckpt)[0])
    out = tmp_path / "p.pt"
    assert main(["prune", "--model", str(ckpt), "-o", str(out), "--ratio", "0.5", "--preset", "default"]) == 0
    after = channel_counts(load_model(out)[0])
    kept = [n for n in before if n.endswith(".conv.2") or n in ("features.1.conv.1", "features.0.0")]
    assert len(kept) == 18 and all(after[n] == before[n] for n in kept)
    assert after["features.2.conv.0.0"] == 48 and before["features.2.conv.0.0"] == 96
    assert all(after[n] % 16 == 0 for n in after if n.endswith("conv.0.0")), "round_to 16 from the preset"
