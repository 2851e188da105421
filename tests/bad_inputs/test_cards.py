"""Bad input, answered: model cards with wrong types, in every carrier (ONNX metadata, a sidecar
`<file>.json` as `.pte` and TensorRT files have, a checkpoint's dictionary).

A card from elsewhere can hold anything JSON can; each wrong field is one line (exit 2) that names
it, never a TypeError from inside the runtime.
"""

from __future__ import annotations

import json

import pytest

from deploy.card import CARD_KEY, ModelCard, read_sidecar
from deploy.errors import EdgevisionError
from deploy.preprocess import Preprocessing

GOOD = ModelCard("cnn", ["a", "b", "c"], Preprocessing((32, 32), 40), model_options={"width": 4}).to_dict()
CONFIDENCE = {"edges": [0.0, 0.5, 1.0], "counts": [1, 3], "images": 4, "split": "val", "threshold_share": {"0.5": 0.25}}


def edited(**changes) -> dict:
    """The good card with `changes`; a key "preprocessing.X" or "parity.X" edits inside that part."""
    card = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        part, _, field = key.partition("__")
        if field:
            card[part] = {**(card.get(part) or {}), field: value}
        else:
            card[key] = value
    return card


BAD_CARDS = {
    "class_names is a string": (edited(class_names="abc"), "class_names must be a list of strs"),
    "class_names holds numbers": (edited(class_names=[1, 2, 3]), "class_names must be a list of strs"),
    "class_names is empty": (edited(class_names=[]), "class_names is empty"),
    "architecture is a number": (edited(architecture=5), "architecture must be a string"),
    "preprocessing is a list": (edited(preprocessing=[32, 32]), "preprocessing must be a mapping"),
    "preprocessing is missing": ({k: v for k, v in GOOD.items() if k != "preprocessing"}, "preprocessing is missing"),
    "input_size has one side": (edited(preprocessing__input_size=[32]), "preprocessing.input_size must be a list of 2"),
    "input_size is text": (edited(preprocessing__input_size="32x32"), "preprocessing.input_size must be a list"),
    "resize is text": (edited(preprocessing__resize="40"), "preprocessing.resize must be an integer"),
    "mean holds text": (edited(preprocessing__mean=["x", 0.4, 0.4]), "preprocessing.mean must be a list of numbers"),
    "std is a number": (edited(preprocessing__std=0.2), "preprocessing.std must be a list of numbers"),
    "color is a list": (edited(preprocessing__color=["RGB"]), "preprocessing.color must be a string"),
    "parity.passed is text": (edited(parity__passed="yes"), "parity.passed must be true or false"),
    "parity.images is a float": (edited(parity__images=2.5), "parity.images must be an integer"),
    "parity is a list": (edited(parity=[1]), "parity must be a mapping"),
    "metrics is a list": (edited(metrics=[0.9]), "metrics must be a mapping"),
    "model_options is text": (edited(model_options="width=4"), "model_options must be a mapping"),
    "precision is a number": (edited(precision=8), "precision must be a string"),
    "confidence is a list": (edited(confidence=[1, 3]), "confidence must be a mapping"),
    "confidence without edges": (edited(confidence={k: v for k, v in CONFIDENCE.items() if k != "edges"}),
                                 "confidence.edges is missing"),
    "confidence.counts hold text": (edited(confidence={**CONFIDENCE, "counts": ["1", 3]}),
                                    "confidence.counts must be a list of ints"),
    "confidence.counts negative": (edited(confidence={**CONFIDENCE, "counts": [-1, 5]}),
                                   "confidence.counts must be >= 0 and sum to confidence.images"),
    "confidence.counts off images": (edited(confidence={**CONFIDENCE, "images": 5}),
                                     "confidence.counts must be >= 0 and sum"),
    "confidence.edges fall": (edited(confidence={**CONFIDENCE, "edges": [0.0, 1.0, 0.5]}),
                              "confidence.edges must rise strictly from 0 to 1"),
    "confidence.edges NaN": (edited(confidence={**CONFIDENCE, "edges": [0.0, float("nan"), 1.0]}),
                             "confidence.edges must rise"),
    "confidence.edges a huge integer": (edited(confidence={**CONFIDENCE, "edges": [0, 10**400, 1]}),
                                        "confidence.edges must rise"),
    "confidence.edges one short": (edited(confidence={**CONFIDENCE, "edges": [0.0, 1.0]}),
                                   "confidence.edges must be a list of 3 numbers"),
    "confidence.bins too many": (edited(confidence={**CONFIDENCE, "counts": [0] * 1001, "edges": [0.0] * 1002}),
                                 "confidence.counts must hold 1 to 1000 bins"),
    "confidence.threshold_share over 1": (edited(confidence={**CONFIDENCE, "threshold_share": {"0.5": 2}}),
                                          r"confidence.threshold_share\['0.5'\] must be a fraction"),
    "confidence.split is a number": (edited(confidence={**CONFIDENCE, "split": 3}),
                                     "confidence.split must be a string"),
}


@pytest.mark.parametrize(("card", "says"), BAD_CARDS.values(), ids=BAD_CARDS.keys())
def test_from_dict_names_the_wrong_field(card, says):
    with pytest.raises(EdgevisionError, match=f"card field {says}"):
        ModelCard.from_dict(card)


def test_the_good_card_still_reads():
    assert ModelCard.from_dict(GOOD).to_dict() == GOOD
    with_confidence = edited(confidence=CONFIDENCE)
    assert json.loads(ModelCard.from_dict(with_confidence).to_json()) == with_confidence
    old = {k: v for k, v in GOOD.items() if k != "confidence"}  # written before the field existed
    assert ModelCard.from_dict(old).confidence is None


@pytest.mark.parametrize(("card", "says"), [BAD_CARDS["class_names is a string"], BAD_CARDS["mean holds text"],
                                            BAD_CARDS["parity.passed is text"]])
def test_in_onnx_metadata(tmp_path, capsys, card, says):
    pytest.importorskip("onnx")
    import onnx

    from edgevision import main
    from tests.runtime.onnx_models import make_onnx

    path = make_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    proto.metadata_props.add(key=CARD_KEY, value=json.dumps(card))
    onnx.save(proto, str(path))
    assert main(["info", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "m.onnx" in err and says in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("card", "says"), [BAD_CARDS["class_names holds numbers"], BAD_CARDS["resize is text"],
                                            BAD_CARDS["confidence.counts off images"]])
def test_in_a_sidecar(tmp_path, card, says):
    (tmp_path / "m.pte.json").write_text(json.dumps(card))
    with pytest.raises(EdgevisionError, match=f"m.pte.json: card field {says}"):
        read_sidecar(tmp_path / "m.pte")


def test_a_sidecar_that_is_not_text(tmp_path):
    (tmp_path / "m.pte.json").write_bytes(b'{"class_names": ["\xff\xfe"]}')
    with pytest.raises(EdgevisionError, match="m.pte.json: model card is not UTF-8 text"):
        read_sidecar(tmp_path / "m.pte")


@pytest.mark.parametrize(("card", "says"), [BAD_CARDS["input_size is text"], BAD_CARDS["architecture is a number"],
                                            BAD_CARDS["std is a number"]])
def test_in_a_checkpoint(tmp_path, capsys, card, says):
    torch = pytest.importorskip("torch")
    from edgevision import main
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    path = save_checkpoint(tmp_path / "model.pt", ModelCard.from_dict(GOOD),
                           build_model("cnn", 3, 3, (32, 32), width=4).state_dict())
    data = torch.load(path, weights_only=True)
    data["card"] = card
    torch.save(data, path)
    assert main(["info", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "model.pt" in err and says in err and len(err.strip().splitlines()) == 1
