"""deploy.load and Classifier on tiny real ONNX models: any image, bad files, bad labels."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

import deploy
from deploy.card import Parity
from deploy.classifier import softmax
from deploy.errors import EdgevisionError
from deploy.preprocess import preprocess
from tests.runtime.onnx_models import make_onnx, reference_logits, tiny_card

pytest.importorskip("onnx")


@pytest.fixture
def model(tmp_path):
    return make_onnx(tmp_path / "tiny.onnx", card=tiny_card())


def photo(h=45, w=61, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_predict_matches_numpy_reference(model):
    clf = deploy.load(model)
    image = photo()
    pred = clf.predict(image, top_k=3)
    expected = softmax(reference_logits(preprocess(image, clf.card.preprocessing)[None]))[0]
    np.testing.assert_allclose(pred.probabilities, expected, atol=1e-5)
    assert [label for label, _ in pred.top] == [f"class{i}" for i in np.argsort(-expected)]
    assert pred.label == pred.top[0][0] and abs(sum(p for _, p in pred.top) - 1) < 1e-5
    assert set(pred.timings_ms) >= {"preprocess", "inference", "postprocess"}
    assert clf.info["provider"] == "CPUExecutionProvider" and clf.card.architecture == "tiny"


def test_any_image_kind(model, tmp_path):
    clf = deploy.load(model, threads=1)
    gray = photo()[:, :, 0]
    bgr_of_gray = np.repeat(gray[:, :, None], 3, axis=2)
    np.testing.assert_allclose(clf.predict(gray).probabilities, clf.predict(bgr_of_gray).probabilities, atol=1e-6)
    bgr = photo(17, 300)
    rgba = np.dstack([bgr, np.full(bgr.shape[:2], 7, np.uint8)])
    np.testing.assert_allclose(clf.predict(rgba).probabilities, clf.predict(bgr).probabilities, atol=1e-6)
    deep = bgr.astype(np.uint16) * 257  # 16-bit with the same 8-bit content
    np.testing.assert_allclose(clf.predict(deep).probabilities, clf.predict(bgr).probabilities, atol=1e-6)
    path = tmp_path / "odd size.png"
    cv2.imwrite(str(path), deep)  # a 16-bit PNG file, read from disk
    from_file = clf.predict(str(path)).probabilities
    np.testing.assert_allclose(from_file, clf.predict(bgr).probabilities, atol=1e-6)
    batch = clf.predict_batch([gray, rgba, str(path), photo(300, 11)], top_k=10)
    assert len(batch) == 4 and all(len(p.top) == 3 for p in batch)
    np.testing.assert_allclose(batch[2].probabilities, from_file, atol=1e-6)


def test_fixed_batch_model_loops(tmp_path):
    path = make_onnx(tmp_path / "b1.onnx", batch=1, card=tiny_card())
    clf = deploy.load(path)
    assert clf.info["max_batch"] == 1
    images = [photo(seed=s) for s in range(3)]
    together = clf.predict_batch(images)
    for image, pred in zip(images, together, strict=True):
        np.testing.assert_allclose(pred.probabilities, clf.predict(image).probabilities, atol=1e-6)


def test_cardless_model_needs_labels_and_warns(tmp_path):
    path = make_onnx(tmp_path / "nocard.onnx", size=(40, 40), classes=2)
    with pytest.raises(EdgevisionError, match="no model card.*labels"):
        deploy.load(path)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\n")
    with pytest.warns(UserWarning,
                      match=r"no model card; assuming RGB input 40x40 \(from the model\), resize short side to 45"):
        clf = deploy.load(path, labels=labels)
    assert {label for label, _ in clf.predict(photo()).top} == {"cat", "dog"}
    dynamic = make_onnx(tmp_path / "dyn.onnx", size=None, classes=2)
    with pytest.warns(UserWarning, match=r"224x224 \(default\), resize short side to 256"):
        assert deploy.load(dynamic, labels=labels).card.preprocessing.input_size == (224, 224)


def test_wrong_number_of_labels(model, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    with pytest.raises(EdgevisionError, match="has 2 labels, but the model outputs 3 classes"):
        deploy.load(model, labels=labels)
    labels.write_text("a\nb\nc\n")
    assert deploy.load(model, labels=labels).card.class_names == ["a", "b", "c"]
    with pytest.raises(EdgevisionError, match="labels file not found"):
        deploy.load(model, labels=tmp_path / "missing.txt")


def test_card_that_disagrees_with_model(tmp_path):
    path = make_onnx(tmp_path / "m.onnx", card=tiny_card(classes=5))
    with pytest.raises(EdgevisionError, match="card has 5 labels, but the model outputs 3"):
        deploy.load(path)
    path = make_onnx(tmp_path / "m2.onnx", card=tiny_card(size=(64, 64)))
    with pytest.raises(EdgevisionError, match="takes 32x32 images but its card says"):
        deploy.load(path)


def test_corrupt_and_truncated_files(model, tmp_path):
    data = model.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgevisionError, match="truncated.onnx"):
        deploy.load(truncated)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\xfe not a model at all" * 10)
    with pytest.raises(EdgevisionError, match="garbage.onnx"):
        deploy.load(garbage)
    with pytest.raises(EdgevisionError, match="model file not found"):
        deploy.load(tmp_path / "absent.onnx")


def test_not_an_image_classifier(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    def write(name, in_shape, out_shape, op="Identity"):
        graph = helper.make_graph(
            [helper.make_node(op, ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 9
        path = tmp_path / name
        onnx.save(model, str(path))
        return path

    labels = tmp_path / "l.txt"
    labels.write_text("a\n")
    with pytest.raises(EdgevisionError, match="input has rank 2"):
        deploy.load(write("rank2.onnx", [1, 10], [1, 10]), labels=labels)
    with pytest.raises(EdgevisionError, match="input has 5 channels"):
        deploy.load(write("c5.onnx", [1, 5, 8, 8], [1, 5, 8, 8]), labels=labels)
    with pytest.raises(EdgevisionError, match="output has rank 4"):
        deploy.load(write("seg.onnx", [1, 3, 8, 8], [1, 3, 8, 8]), labels=labels)


def test_undecodable_image(model, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg")
    clf = deploy.load(model)
    with pytest.raises(EdgevisionError, match="cannot decode image"):
        clf.predict(str(bad))
    with pytest.raises(EdgevisionError, match="image not found"):
        clf.predict(str(tmp_path / "none.png"))


def test_failed_or_missing_parity_in_card_warns(tmp_path):
    card = tiny_card().evolve(parity=Parity(passed=False, images=8, source="generated", top1_agreement=0.5))
    path = make_onnx(tmp_path / "failed.onnx", card=card)
    with pytest.warns(UserWarning, match="failed parity check"):
        deploy.load(path)
    with pytest.warns(UserWarning, match="unverified"):
        deploy.load(make_onnx(tmp_path / "unchecked.onnx", card=tiny_card()))
    passed = tiny_card().evolve(parity=Parity(passed=True, images=8, source="generated", top1_agreement=1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deploy.load(make_onnx(tmp_path / "ok.onnx", card=passed))
