"""PyTorch backend: the reference. Runs a training checkpoint (`model.pt`) in eager mode on CPU/CUDA.

Needs torch and `train/` (`pip install edgevision[train]`); the checkpoint's card comes with it.
Options: `device` (`cpu` default, or `cuda`), `threads`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.backends import check_classifier_shapes, import_library
from deploy.errors import EdgevisionError


class TorchBackend:
    name = "torch"

    def __init__(self, path: Path, model, card, torch, device: str) -> None:
        self.path = path
        self.model = model.eval().to(device)
        self.card = card
        self.torch = torch
        self.device = device
        height, width = card.preprocessing.input_size
        input_shape = [None, card.preprocessing.channels, height, width]
        check_classifier_shapes(path, input_shape, [None, card.num_classes])
        self.info = {
            "backend": self.name,
            "provider": f"torch {torch.__version__} eager ({device})",
            "precision": card.precision,
            "input_shape": input_shape,
            "output_shape": [None, card.num_classes],
            "max_batch": None,
        }

    @classmethod
    def load(cls, path: Path, options: dict) -> TorchBackend:
        torch = import_library("torch", "torch")
        checkpoint = import_library("torch", "train.checkpoint")
        path = Path(path)
        if not path.is_file():
            raise EdgevisionError(f"model file not found: {path}")
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        model, card = checkpoint.load_model(path)
        return cls(path, model, card, torch, options.get("device", "cpu"))

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            tensor = self.torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self.model(tensor).float().cpu().numpy()
