"""`edgevision show-data` and `edgevision eval`'s pictures, read back from the PNG files: the grid
has a non-blank image in every cell and the class names under them; eval's confusion matrix adds
up to what it scored and its wrong-image grid holds the most confidently wrong images, in order."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.digits_cnn import train_digits_cnn
from train.gallery import Tile, draw_grid
from train.show_data import main as show_main
from train.show_data import pick_per_class, show_data


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, path
    return image


def caption_band(grid, index: int) -> tuple[slice, slice]:
    left, _, right, bottom = grid.cells[index]
    return slice(bottom + 1, bottom + grid.caption_height), slice(left, right)


def test_the_digits_grid_has_an_image_in_every_cell_and_a_label_under_each(tmp_path):
    labelled = show_data("digits", tmp_path / "grid.png", per_class=3, seed=1)
    bare = show_data("digits", tmp_path / "bare.png", per_class=3, seed=1, labels=False)
    with_labels, without = read_png(labelled.path), read_png(bare.path)
    assert with_labels.shape == without.shape == (labelled.height, labelled.width)
    assert len(labelled.cells) == 30 and labelled.cells == bare.cells
    for index, (left, top, right, bottom) in enumerate(labelled.cells):
        cell = with_labels[top:bottom, left:right]
        assert cell.std() > 20, f"cell {index} is blank"
        assert np.array_equal(cell, without[top:bottom, left:right])  # the same image either way
        rows, columns = caption_band(labelled, index)
        assert (without[rows, columns] == 255).all(), f"cell {index}: something under it without labels"
        assert (with_labels[rows, columns] < 128).sum() > 5, f"cell {index}: no label under it"


def test_the_same_seed_draws_the_same_images_and_another_seed_others(tmp_path):
    first = read_png(show_data("digits", tmp_path / "a.png", per_class=2, seed=3).path)
    again = read_png(show_data("digits", tmp_path / "b.png", per_class=2, seed=3).path)
    other = read_png(show_data("digits", tmp_path / "c.png", per_class=2, seed=4).path)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_pick_per_class_takes_each_class_in_order_and_at_most_what_it_has():
    labels = np.array([0, 1, 0, 2, 1, 0, 0, 2])
    picked = pick_per_class(labels, [0, 1, 2], 3, seed=0)
    assert [labels[i] for i in picked] == [0, 0, 0, 1, 1, 2, 2]
    assert picked == pick_per_class(labels, [0, 1, 2], 3, seed=0)
    assert pick_per_class(labels, [2], 5, seed=9) == [3, 7]


def test_a_class_folder_tree_draws_one_row_per_class_from_the_split_asked(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for name, colour in (("red", (0, 0, 200)), ("blue", (200, 0, 0))):
            folder = tmp_path / "tree" / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                image = np.clip(np.array(colour) + rng.normal(0, 30, (40, 60, 3)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(folder / f"{index}.png"), image)
    grid = show_data(f"folder:{tmp_path / 'tree'}", tmp_path / "val.png", split="val", per_class=5)
    colour = cv2.imread(str(grid.path))
    assert len(grid.cells) == 4  # 2 classes x the 2 val images each
    blue_row, red_row = grid.cells[:2], grid.cells[2:]  # classes in sorted order: blue, red
    assert all(colour[y0:y1, x0:x1, 0].mean() > colour[y0:y1, x0:x1, 2].mean() + 100 for x0, y0, x1, y1 in blue_row)
    assert all(colour[y0:y1, x0:x1, 2].mean() > colour[y0:y1, x0:x1, 0].mean() + 100 for x0, y0, x1, y1 in red_row)
    assert {top for _, top, _, _ in blue_row} != {top for _, top, _, _ in red_row}  # a row each


def test_bad_requests_are_one_line_errors(tmp_path, capsys):
    assert show_main(["show-data", "digits", "--per-class", "0", "--out", str(tmp_path / "g.png")]) == 2
    assert "--per-class must be at least 1" in capsys.readouterr().err
    tree = tmp_path / "flat" / "a"
    tree.mkdir(parents=True)
    cv2.imwrite(str(tree / "x.png"), np.zeros((4, 4, 3), np.uint8))
    assert show_main(["show-data", str(tmp_path / "nothing"), "--out", str(tmp_path / "g.png")]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()


def test_draw_grid_leaves_an_empty_place_for_none(tmp_path):
    tile = Tile(np.full((10, 10), 100, np.uint8), "x")
    grid = draw_grid(tmp_path / "g.png", [tile, None, tile], columns=2)
    assert len(grid.cells) == 2 and grid.cells[1][1] > grid.cells[0][1]  # the third tile on the next row


# --- eval: the confusion matrix and the most confidently wrong images ---------------------------


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory) -> Path:
    return train_digits_cnn(tmp_path_factory.mktemp("digits") / "model.pt")


def independent_predictions(model_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax and labels of every digits image in the order of `--split all` (train, val, test of
    seed 0), computed here without train.evaluate."""
    from deploy.data_spec import digits_arrays, digits_splits
    from tests.digits_cnn import SPEC
    from train.checkpoint import load_model

    images, labels = digits_arrays()
    order = np.concatenate([digits_splits(0)[split] for split in ("train", "val", "test")])
    images, labels = images[order], labels[order]
    x = (torch.from_numpy(images).float()[:, None] / 255 - SPEC.mean[0]) / SPEC.std[0]
    model, _ = load_model(model_path)
    with torch.no_grad():
        return model.eval()(x).softmax(1), torch.from_numpy(labels)


def test_eval_writes_a_confusion_matrix_that_adds_up_and_the_wrong_images_in_order(digits_model, tmp_path):
    from train.cli import main

    out = tmp_path / "eval"
    assert main(["eval", "--model", str(digits_model), "--data", "digits", "--split", "all", "--out", str(out),
                 "--wrong", "12"]) == 0
    metrics = json.loads((out / "eval_metrics.json").read_text())
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == metrics["count"] == 1797
    assert np.trace(confusion) / confusion.sum() == pytest.approx(metrics["top1"])
    assert read_png(out / "eval_confusion.png").shape[0] > 100

    probabilities, labels = independent_predictions(digits_model)
    confidence, predicted = probabilities.max(1)
    wrong = (predicted != labels).nonzero().flatten().tolist()
    assert len(wrong) == metrics["count"] - np.trace(confusion) > 12  # enough mistakes to choose from
    expected = sorted(wrong, key=lambda i: -float(confidence[i]))[:12]
    listed = metrics["most_confident_wrong"]
    assert [item["index"] for item in listed] == expected
    assert all(item["true"] != item["predicted"] == str(int(predicted[item["index"]])) for item in listed)
    assert all(a["confidence"] >= b["confidence"] for a, b in pairwise(listed))
    assert listed[0]["confidence"] == pytest.approx(float(confidence[expected[0]]), abs=1e-4)
    grid = read_png(out / "eval_wrong.png")
    assert grid.shape[1] > grid.shape[0] and (grid < 255).mean() > 0.2  # 8 then 4 wrong images drawn

    assert main(["eval", "--model", str(digits_model), "--data", "digits", "--split", "all", "--out", str(out),
                 "--wrong", "0"]) == 0
    assert json.loads((out / "eval_metrics.json").read_text())["most_confident_wrong"] == []
    assert not (out / "eval_wrong.png").exists()  # not the earlier evaluation's grid
