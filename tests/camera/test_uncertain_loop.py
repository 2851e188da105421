"""The loop docs/camera.md describes, end to end on digits: the camera keeps the frames it was unsure
of, a person files them under their true class, and `train --init` fine-tunes the deployed model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

pytest.importorskip("torch")

import camera_app
from camera_app.video import write_video_from_images
from deploy.image_folder import list_labelled_images
from tests.digits_cnn import train_digits_cnn

HOLD = 3


def digits_tree(root: Path) -> Path:
    """sklearn's digits as PNG files: train/<class>/ and val/<class>/ (a user's own photos)."""
    from train.data import load_data

    splits = load_data("digits")
    for split, data in (("train", splits.train), ("val", splits.test)):
        for index, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
            path = root / split / splits.class_names[int(label)] / f"{index:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image[0].numpy())
    return root


@pytest.mark.slow  # a short training, an export, a camera run and a fine-tune: about 30 s
def test_save_uncertain_then_fine_tune_from_the_deployed_model(tmp_path):
    from deploy.export.pipeline import ExportSpec, export_checkpoint
    from train.checkpoint import load_model
    from train.cli import main as train_main

    checkpoint = train_digits_cnn(tmp_path / "model.pt")
    tree = digits_tree(tmp_path / "digits")
    model = export_checkpoint(checkpoint, "onnx", tmp_path / "model.onnx", ExportSpec(data=f"folder:{tree}")).path

    items, classes = list_labelled_images(tree / "val", limit=60)
    video = tmp_path / "held_out.avi"
    write_video_from_images([path for path, _ in items], video, hold_frames=HOLD, fps=30.0, size=(8, 8))
    unsure = tmp_path / "unsure"
    summary = camera_app.run(str(model), str(video), buffer=True, threads=1, threshold=0.999,
                             save_uncertain=str(unsure), save_every=0.0, save_max=12)
    saved = [json.loads(line) for line in (unsure / "uncertain.jsonl").read_text().splitlines()]
    assert 0 < len(saved) <= 12 and summary["uncertain_saved"]["saved"] == len(saved)
    assert all((unsure / record["file"]).is_file() for record in saved)
    assert all(record["file"].split("/")[0] == record["top_k"][0]["label"] for record in saved)

    # A person files each saved frame under its true class (the folder it was saved in is the model's guess).
    new_tree = tmp_path / "digits_more"
    shutil.copytree(tree, new_tree)
    for record in saved:
        truth = classes[items[record["frame"] // HOLD][1]]
        shutil.move(unsure / record["file"], new_tree / "train" / truth / Path(record["file"]).name)

    out = tmp_path / "tuned"
    assert train_main(["train", "--init", str(checkpoint), "--data", f"folder:{new_tree}", "--epochs", "1",
                       "--threads", "1", "--quiet", "--out", str(out)]) == 0
    _, card = load_model(out / "model.pt")
    _, deployed = load_model(checkpoint)
    assert card.class_names == deployed.class_names and card.preprocessing == deployed.preprocessing
    assert json.loads((out / "metrics.json").read_text())["init"]["checkpoint"] == "model.pt"
