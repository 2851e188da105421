"""An experiment: NNCF's post-training int8 for OpenVINO, to compare with our Q/DQ ONNX file.

    pip install nncf   # not an edgevision dependency: this script decides whether it should be
    python -m benchmarks.nncf_openvino runs/x/model.onnx --data ../shared/data/cats_vs_dogs \
        --out runs/x/model.nncf.xml

Reads the fp32 ONNX with OpenVINO, calibrates `nncf.quantize` on `--subset` training images
(preprocessed by the model's card, as deployed), writes an OpenVINO IR whose rt_info carries the
card (precision int8), ready for `deploy.load(..., backend="openvino")` and `edgevision bench`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.options import MAX_IMAGES, positive_int
from deploy.card import CARD_KEY
from deploy.cli_util import run_cli
from deploy.errors import EdgevisionError
from deploy.image_folder import list_labelled_images
from deploy.preprocess import preprocess, read_image


def quantize_for_openvino(
    onnx_path: Path, data: Path, out: Path, subset: int = 300, preset: str = "performance"
) -> Path:
    import nncf
    import openvino as ov

    import deploy

    card = deploy.load(onnx_path, backend="openvino").card
    if card is None:
        raise EdgevisionError(f"{onnx_path} has no model card; the calibration needs its preprocessing")
    items, _ = list_labelled_images(data, "train", subset)
    images = [preprocess(read_image(str(path)), card.preprocessing)[None] for path, _ in items]
    model = ov.Core().read_model(str(onnx_path))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(images),
        preset=nncf.QuantizationPreset(preset),
        subset_size=len(images),
    )
    quantized.set_rt_info(card.evolve(precision="int8", artifact_format="openvino").to_json(), ["framework", CARD_KEY])
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nncf_openvino", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="an fp32 .onnx with an edgevision card")
    parser.add_argument("--data", type=Path, required=True, help="class-folder tree; calibrates on its train split")
    parser.add_argument("--subset", type=positive_int(MAX_IMAGES), default=300, help="calibration images (default 300)")
    parser.add_argument("--preset", choices=("performance", "mixed"), default="performance",
                        help="NNCF preset: symmetric (performance) or asymmetric (mixed) activations")
    parser.add_argument("--out", type=Path, required=True, help="the OpenVINO IR to write (.xml, with its .bin)")
    args = parser.parse_args(argv)
    return run_cli(lambda: print(quantize_for_openvino(args.model, args.data, args.out, args.subset, args.preset)),
                   "nncf_openvino")


if __name__ == "__main__":
    raise SystemExit(main())
