"""Structured pruning: MACs drop, channels stay multiples of 8, outputs kept, save -> load without code."""

from __future__ import annotations

import io
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")
torchvision = pytest.importorskip("torchvision")

from torch import nn

from deploy.errors import EdgevisionError
from quantize.prune import PruneSpec, channel_counts, count_macs_params, prune_model
from train.pruned import STRUCTURE_KEY, pruned_structure, rebuild_pruned


def tiny_cnn(num_classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 48, 3, padding=1), nn.BatchNorm2d(48), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, num_classes),
    ).eval()


def round_trip(model: nn.Module, fresh: nn.Module) -> nn.Module:
    """Save state_dict + JSON structure with weights_only, rebuild into `fresh`, load."""
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "options": {STRUCTURE_KEY: pruned_structure(model)}}, buffer)
    buffer.seek(0)
    data = torch.load(buffer, weights_only=True)  # plain tensors and JSON-like data, no code
    options = json.loads(json.dumps(data["options"]))
    rebuilt = rebuild_pruned(fresh, options)
    rebuilt.load_state_dict(data["state_dict"])
    return rebuilt.eval()


def test_tiny_cnn_prunes_to_multiples_of_8_and_round_trips():
    model = tiny_cnn()
    x = torch.randn(2, 1, 8, 8)
    report = prune_model(model, x[:1], PruneSpec(ratio=0.5, round_to=8))
    assert report.macs_after < 0.5 * report.macs_before
    counts = channel_counts(model)
    assert counts["0"] == 16 and counts["3"] == 24
    assert counts["8"] == 10, "the classifier's outputs must be kept"
    assert all(c % 8 == 0 for name, c in counts.items() if name != "8")
    rebuilt = round_trip(model, tiny_cnn())
    assert torch.equal(rebuilt(x), model(x))


def test_rounding_that_misses_the_target_macs_is_said_and_refined():
    """train's digits CNN (32 and 64 channels): multiples of 8 can keep 57 % or 33 % of the MACs, not 50 %."""
    from train.models import build_model

    torch.manual_seed(0)
    x = torch.randn(1, 1, 8, 8)
    insisted = build_model("cnn", 10, 1, (8, 8)).eval()
    report = prune_model(insisted, x, PruneSpec(target_macs=0.5, round_to=8, adapt_round_to=False))
    assert report.round_to == 8 and report.macs_kept == pytest.approx(0.33, abs=0.01)
    assert all(c % 8 == 0 for name, c in channel_counts(insisted).items() if name != "head")
    assert report.closer == {"round_to": 2, "macs_kept": pytest.approx(0.49, abs=0.01)}
    assert report.rounding_note() == (
        "kept 33% of the MACs, not the 50% asked: channel counts rounded down to multiples of 8 move this "
        "network's MACs in coarse steps; --round-to 2 keeps 49%")

    torch.manual_seed(0)
    adapted = build_model("cnn", 10, 1, (8, 8)).eval()
    report = prune_model(adapted, x, PruneSpec(target_macs=0.5, round_to=8))
    assert report.round_to == 2 and report.round_to_asked == 8 and abs(report.macs_kept - 0.5) <= 0.05
    assert report.to_dict()["macs_kept_asked"] == pytest.approx(0.33, abs=0.01)
    assert report.rounding_note().startswith("kept 49% of the MACs (target 50%) with channel counts in multiples "
                                             "of 2: this network's layers are too narrow")
    assert report.rounding_note().endswith("(--round-to 8 insists on them)")


def test_a_target_reached_within_five_points_says_nothing():
    model = tiny_cnn()
    report = prune_model(model, torch.randn(1, 1, 8, 8), PruneSpec(target_macs=0.3, round_to=8))
    assert abs(report.macs_kept - 0.3) * 100 <= 5 and report.round_to == 8 and report.round_to_asked is None
    assert report.rounding_note() is None
    assert prune_model(tiny_cnn(), torch.randn(1, 1, 8, 8), PruneSpec(ratio=0.5)).rounding_note() is None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "mobilenet_v2"])
def test_torchvision_target_macs(name):
    build = getattr(torchvision.models, name)
    model = build(num_classes=5).eval()
    x = torch.randn(1, 3, 32, 32)
    report = prune_model(model, x, PruneSpec(target_macs=0.5))
    assert 0.40 <= report.macs_after / report.macs_before <= 0.52
    assert report.params_after < report.params_before
    counts = channel_counts(model)
    assert model(x).shape == (1, 5)
    assert all(c % 8 == 0 for c in counts.values() if c != 5)
    rebuilt = round_trip(model, build(num_classes=5))
    assert torch.allclose(rebuilt(x), model(x))
    assert count_macs_params(rebuilt, x) == (report.macs_after, report.params_after)


def test_iterative_schedule_calls_finetune_each_step():
    model = tiny_cnn()
    calls = []
    report = prune_model(model, torch.randn(1, 1, 8, 8), PruneSpec(ratio=0.5, steps=3),
                         finetune=lambda m, s: calls.append(s))
    assert calls == [1, 2, 3]
    macs = [h["macs"] for h in report.history]
    assert macs == sorted(macs, reverse=True) and len(set(macs)) == 3


def test_global_pruning_and_round_to_one():
    model = tiny_cnn()
    report = prune_model(model, torch.randn(1, 1, 8, 8), PruneSpec(ratio=0.3, global_pruning=True, round_to=None))
    assert report.macs_after < report.macs_before
    assert channel_counts(model)["8"] == 10


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.2, 1.5])
def test_ratio_out_of_range(ratio):
    with pytest.raises(EdgevisionError, match="between 0 and 1"):
        prune_model(tiny_cnn(), torch.randn(1, 1, 8, 8), PruneSpec(ratio=ratio))


def test_target_macs_out_of_range():
    with pytest.raises(EdgevisionError, match="target-macs"):
        prune_model(tiny_cnn(), torch.randn(1, 1, 8, 8), PruneSpec(target_macs=1.2))


class Scaled(nn.Module):
    """A layer with its own parameter that structured pruning does not know."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x):
        return x * self.scale


def test_unsupported_layer_is_named():
    model = nn.Sequential(nn.Conv2d(1, 16, 3), Scaled(16), nn.Flatten(), nn.LazyLinear(3))
    model(torch.randn(1, 1, 8, 8))
    with pytest.raises(EdgevisionError, match=r"unsupported layer .*: 1 \(Scaled\).*--ignore 1"):
        prune_model(model, torch.randn(1, 1, 8, 8), PruneSpec(ratio=0.5))


def test_ignored_globs_keep_mobilenet_v2_residual_stream():
    """`features.*.conv.2` (the projections) + the stem keep every block's output width, so only
    the expanded channels inside the inverted residual blocks are pruned."""
    model = torchvision.models.mobilenet_v2(num_classes=3).eval()
    before = channel_counts(model)
    keep = ["features.*.conv.2", "features.1.conv.1", "features.0.0"]
    report = prune_model(model, torch.randn(1, 3, 32, 32), PruneSpec(ratio=0.5, ignored=keep, round_to=8))
    after = channel_counts(model)
    kept = [n for n in before if n.endswith(".conv.2") or n in ("features.1.conv.1", "features.0.0")]
    assert len(kept) == 18
    assert all(after[n] == before[n] for n in kept)
    assert after["features.2.conv.0.0"] == 48 and before["features.2.conv.0.0"] == 96
    assert report.macs_after < 0.6 * report.macs_before


def test_ignored_pattern_that_matches_nothing_is_an_error():
    with pytest.raises(EdgevisionError, match="no layer named 'classifier.*'"):
        prune_model(tiny_cnn(), torch.randn(1, 1, 8, 8), PruneSpec(ratio=0.5, ignored=["classifier.*"]))


@pytest.mark.parametrize("importance", ["bn-scale", "lamp"])
def test_other_importances_prune_the_same_amount(importance):
    model, reference = tiny_cnn(), tiny_cnn()
    with torch.no_grad():  # make BatchNorm scales disagree with weight norms
        model[1].weight.copy_(torch.linspace(2.0, 0.1, 32))
    prune_model(model, torch.randn(1, 1, 8, 8), PruneSpec(ratio=0.5, importance=importance))
    prune_model(reference, torch.randn(1, 1, 8, 8), PruneSpec(ratio=0.5))
    assert channel_counts(model) == channel_counts(reference)
    if importance == "bn-scale":  # the 16 largest BatchNorm scales are the first 16 channels
        assert torch.allclose(model[1].weight, torch.linspace(2.0, 0.1, 32)[:16])


def test_unknown_importance():
    with pytest.raises(EdgevisionError, match="unknown importance 'taylor'"):
        prune_model(tiny_cnn(), torch.randn(1, 1, 8, 8), PruneSpec(ratio=0.5, importance="taylor"))
