"""The demo's runtime stage: classify image files with the ONNX model, as a device would."""

from __future__ import annotations

import deploy
from deploy.image_folder import list_labelled_images


def predict_stage(state) -> str:
    """Top-3 for a few held-out digits through `deploy.load` (numpy + OpenCV + onnxruntime)."""
    classifier = deploy.load(state.artifacts["onnx"], threads=1)
    items, classes = list_labelled_images(state.artifacts["images"], limit=30)
    correct = 0
    for path, label in items:
        prediction = classifier.predict(str(path), top_k=3)
        correct += prediction.label == classes[label]
    sample = classifier.predict(str(items[0][0]), top_k=3)
    shown = ", ".join(f"{name} {prob:.2f}" for name, prob in sample.top)
    ms = sample.timings_ms
    return (
        f"{correct}/{len(items)} correct with the torch-free runtime; {items[0][0].name} "
        f"(a {classes[items[0][1]]}) -> {shown} "
        f"[{ms['preprocess']:.2f} ms preprocess, {ms['inference']:.2f} ms inference]"
    )
