"""PyTorch backend: the reference. Runs a training checkpoint (`model.pt`) in eager mode on CPU/CUDA.

Needs torch and `train/` (`pip install edgevision[train]`); the checkpoint's card comes with it.
Options: `provider` (`cpu`, the default and what `auto` means here: the reference; or `cuda`,
refused in one line when this torch has no CUDA), `precision` (`fp32`, the default, `fp16` or
`bf16`: weights and inputs cast to it, logits returned as float32), `threads`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.backends import check_classifier_shapes, import_library
from deploy.errors import EdgevisionError

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def check_cuda(torch) -> None:
    """Refuse CUDA in one line naming what is missing: a CUDA build of torch, or a GPU it can use."""
    if torch.version.cuda is None:
        raise EdgevisionError(f"--provider cuda: torch {torch.__version__} is a CPU-only build; install a CUDA build "
                              "of torch (https://pytorch.org/get-started/locally/)")
    if not torch.cuda.is_available():
        raise EdgevisionError(f"--provider cuda: torch {torch.__version__} (CUDA {torch.version.cuda}) finds no "
                              "usable NVIDIA GPU (no device, or a driver too old for this CUDA)")


class TorchBackend:
    name = "torch"

    def __init__(self, path: Path, model, card, torch, device: str, precision: str = "fp32") -> None:
        self.path = path
        self.dtype = getattr(torch, DTYPES[precision])
        self.model = model.eval().to(device=device, dtype=self.dtype)
        self.card = card
        self.torch = torch
        self.device = device
        height, width = card.preprocessing.input_size
        input_shape = [None, card.preprocessing.channels, height, width]
        check_classifier_shapes(path, input_shape, [None, card.num_classes])
        self.info = {
            "backend": self.name,
            "provider": f"torch {torch.__version__} eager ({device})",
            "precision": precision if precision != "fp32" else card.precision,
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
        provider = options.get("provider") or "auto"
        if provider not in ("auto", "cpu", "cuda"):
            raise EdgevisionError(f"backend 'torch' runs on cpu or cuda, not --provider {provider}")
        precision = options.get("precision") or "fp32"
        if precision not in DTYPES:
            raise EdgevisionError(f"backend 'torch' takes --precision {', '.join(DTYPES)}, not {precision}")
        device = "cuda" if provider == "cuda" else "cpu"
        if device == "cuda":
            check_cuda(torch)
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        model, card = checkpoint.load_model(path)
        return cls(path, model, card, torch, device, precision)

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            tensor = self.torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            return self.model(tensor.to(device=self.device, dtype=self.dtype)).float().cpu().numpy()
