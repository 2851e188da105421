"""Lesson recipes: the table parses with the real train parser, a recipe sets defaults that the
command line overrides, the listing needs no torch, and a recipe's data comes from the data folder."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deploy.data_spec import NAMED_SETS
from deploy.errors import EdgevisionError
from tests.docs.workspace import write_cifar10, write_mnist
from train.catalog import ARCHITECTURES
from train.cli import build_train_parser, main, parse_train_args
from train.data import load_data
from train.lessons import LESSON_RECIPES, recipe_data, recipe_options_text
from train.models import build_model

REPO = Path(__file__).resolve().parents[2]
SHAPES = {"mnist": (1, (28, 28)), "cifar10": (3, (32, 32)), "cats_vs_dogs": (3, (224, 224))}


def fake_mnist(root: Path) -> Path:
    write_mnist(root / "mnist")
    return root


def fake_cifar10(root: Path) -> Path:
    write_cifar10(root / "cifar10")
    return root


# --- the table --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LESSON_RECIPES))
def test_every_recipe_parses_with_the_train_parser(name: str) -> None:
    recipe = LESSON_RECIPES[name]
    assert recipe.model in ARCHITECTURES and recipe.lesson and recipe.reported
    assert recipe.data in NAMED_SETS or recipe.data in SHAPES
    # the options as `--list-recipes` prints them are options of the real parser, with these values
    text = recipe_options_text(recipe).replace("DATA_ROOT", "/data")
    typed = vars(build_train_parser().parse_args(shlex.split(text)))
    assert {key: typed[key] for key in recipe.defaults()} == recipe.defaults()
    # and `--recipe NAME` alone gives the same values
    parsed = vars(parse_train_args(["--recipe", name]))
    assert {key: parsed[key] for key in recipe.defaults()} == recipe.defaults()


@pytest.mark.parametrize("name", [name for name, r in LESSON_RECIPES.items() if r.model != "vgg16"])
def test_every_recipe_model_builds_for_its_data(name: str) -> None:
    recipe = LESSON_RECIPES[name]
    channels, size = SHAPES[recipe.data]
    model = build_model(recipe.model, 10, channels, size, **recipe.options.get("model_options", {}))
    assert model.eval()(torch.zeros(1, channels, *size)).shape == (1, 10)


def test_recipe_sets_defaults_and_explicit_options_override() -> None:
    args = parse_train_args(["--recipe", "mnist-mlp"])
    assert (args.model, args.epochs, args.model_options) == ("mlp", 5, {"hidden": 100, "hidden_layers": 1})
    args = parse_train_args(["--recipe", "mnist-mlp", "--epochs", "1", "--model-options", '{"hidden": 64}'])
    assert (args.epochs, args.model_options) == (1, {"hidden": 64})
    # an explicit value equal to the parser's own default still wins over the recipe
    args = parse_train_args(["--recipe", "cats-dogs-mobilenet", "--freeze", "none", "--weights", "w.pth"])
    assert (args.freeze, args.weights, args.epochs) == ("none", "w.pth", 1)
    assert parse_train_args(["--data", "digits", "--model", "cnn"]).epochs is None  # no recipe, no defaults


def test_unknown_recipe_is_refused_by_the_parser(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_train_args(["--recipe", "mnist-nope"])
    assert exit_info.value.code == 2 and "mnist-dense" in capsys.readouterr().err


def test_list_recipes_imports_no_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
            "from edgevision import main; sys.exit(main(['train', '--list-recipes']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    for name, recipe in LESSON_RECIPES.items():
        assert f"{name}\n" in done.stdout and recipe.reported in done.stdout


# --- the lesson model -------------------------------------------------------------------


def test_lenet_has_the_lesson_shapes() -> None:
    model = build_model("lenet", 10, 3, (32, 32))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(3, 6, (5, 5)), (6, 16, (5, 5))]
    assert [(m.in_features, m.out_features) for m in linears] == [(400, 120), (120, 84), (84, 10)]
    assert sum(p.numel() for p in model.parameters()) == 62006
    assert build_model("lenet", 10, 1, (28, 28))(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(EdgevisionError, match="at least 16x16"):
        build_model("lenet", 10, 1, (8, 8))


def test_mlp_784_100_10() -> None:
    model = build_model("mlp", 10, 1, (28, 28), hidden=100, hidden_layers=1)
    shapes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert shapes == [(784, 100), (100, 10)]
    with pytest.raises(EdgevisionError, match="hidden_layers"):
        build_model("mlp", 10, 1, (28, 28), hidden_layers=3)


# --- the data folder --------------------------------------------------------------------


def test_named_set_comes_from_edgevision_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEVISION_DATA", str(fake_mnist(tmp_path / "data")))
    data = load_data("mnist")
    assert (len(data.train) + len(data.val), len(data.test)) == (160, 40)
    assert data.spec == "mnist" and data.size == (28, 28) and data.class_names == [str(i) for i in range(10)]
    # --data-root wins over the variable: an empty folder, and no network to download into it
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(EdgevisionError, match="elsewhere"):
        load_data("mnist", data_root=tmp_path / "elsewhere")


def test_cifar10_copy_is_read_from_its_archive_without_unpacking(tmp_path: Path) -> None:
    root = fake_cifar10(tmp_path / "data")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    data = load_data("cifar10", data_root=root)
    assert (len(data.train), len(data.val), len(data.test)) == (90, 10, 40)
    assert data.class_names == [f"c{i}" for i in range(10)] and data.size == (32, 32) and data.color == "RGB"
    assert data.train.images.shape[1:] == (3, 32, 32) and data.spec == "cifar10"
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written beside it


def test_recipe_trains_on_the_data_folder_and_options_override(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEVISION_DATA", str(fake_mnist(tmp_path / "data")))
    out = tmp_path / "run"
    assert main(["train", "--recipe", "mnist-dense", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["data"], config["model"], config["epochs"], config["augment"]) == ("mnist", "dense", 1, "none")
    assert json.loads((out / "metrics.json").read_text())["count"] == 40


def test_recipe_folder_missing_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--recipe", "cats-dogs-mobilenet", "--data-root", str(tmp_path), "--out",
                 str(tmp_path / "run")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 1 and str(tmp_path / "cats_vs_dogs") in lines[0] and "--data folder:PATH" in lines[0]
    with pytest.raises(EdgevisionError, match="cats_vs_dogs"):
        recipe_data(LESSON_RECIPES["cats-dogs-vgg16"], tmp_path)


def test_vgg16_offline_without_weights_says_so_in_one_line(tmp_path: Path) -> None:
    """A fresh torch cache and a proxy that refuses every connection: what a machine without the
    network sees, whether or not the one running the test has it."""
    root = tmp_path / "data"
    for split in ("train", "val"):
        for name in ("cats", "dogs"):
            folder = root / "cats_vs_dogs" / split / name
            folder.mkdir(parents=True)
            for index in range(2):
                cv2.imwrite(str(folder / f"{index}.jpg"), np.full((40, 40, 3), 99, np.uint8))
    env = {key: value for key, value in os.environ.items() if key.lower() != "no_proxy"}
    env.update(PYTHONPATH=str(REPO), TORCH_HOME=str(tmp_path / "torch"), EDGEVISION_DATA=str(root),
               HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-m", "edgevision", "train", "--recipe", "cats-dogs-vgg16", "--out",
                           str(tmp_path / "run")], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "VGG16" in lines[0] and "--weights FILE" in lines[0]
    assert not (tmp_path / "run" / "model.pt").exists()


# --- the real copies in ../shared/data, when there ---------------------------------------------


@pytest.mark.shared
def test_shared_mnist_is_the_named_set_mnist(shared_data: Path) -> None:
    named, idx = load_data("mnist", data_root=shared_data), load_data(f"idx:{shared_data / 'mnist'}")
    assert (len(named.train), len(named.val), len(named.test)) == (7200, 800, 2000)
    assert torch.equal(named.test.images, idx.test.images) and named.spec == "mnist" and named.augment == "digits"


@pytest.mark.shared
@pytest.mark.slow
def test_shared_cifar10_is_read_from_its_archive(shared_data: Path) -> None:
    data = load_data("cifar10", data_root=shared_data)
    assert (len(data.train), len(data.val), len(data.test)) == (45000, 5000, 5000)
    assert data.class_names[:3] == ["airplane", "automobile", "bird"] and data.size == (32, 32)
    assert np.bincount(data.test.labels.numpy()).tolist() == [500] * 10
