"""ExecuTorch backend: `.pte` programs through the `executorch.runtime` Python API (XNNPACK on CPU).

`executorch.runtime` exchanges torch tensors today, so this backend needs torch; it is imported
only when a `.pte` is loaded (`pip install edgevision[export]`). On a device without Python
packages, run the same `.pte` with ExecuTorch's C++ runtime. The card is the sidecar `<file>.json`.
Option `threads`: the size of ExecuTorch's thread pool (default `deploy.backends.cpu.default_threads()`,
0 leaves the pool as it is), and torch's intra-op threads when given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.backends import check_classifier_shapes, import_library
from deploy.backends.cpu import default_threads
from deploy.card import read_sidecar
from deploy.errors import EdgevisionError, first_line
from deploy.pte_scan import check_pte_file
from deploy.quiet import library_streams


def size_threadpool(threads: int) -> int:
    """Size ExecuTorch's process-wide thread pool (XNNPACK's threads) to `threads`; 0 keeps it.

    ExecuTorch's Python API offers only the experimental `_unsafe_reset_threadpool`: unsafe while
    a method runs on another thread, so it is called here, at load time, and only on a change.
    Returns the pool's size.
    """
    pybindings = import_library("executorch", "executorch.extension.pybindings.portable_lib")
    if threads > 0 and pybindings._threadpool_get_thread_count() != threads:
        pybindings._unsafe_reset_threadpool(threads)
    return int(pybindings._threadpool_get_thread_count())


class ExecuTorchBackend:
    name = "executorch"

    def __init__(self, path: Path, method, torch, card, threads: int) -> None:
        self.path = path
        self.method = method
        self.torch = torch
        self.card = card
        meta = method.metadata
        input_shape = list(meta.input_tensor_meta(0).sizes())
        output_shape = list(meta.output_tensor_meta(0).sizes())
        check_classifier_shapes(path, input_shape, output_shape)
        self.info = {
            "backend": self.name,
            "provider": "xnnpack/portable",
            "precision": card.precision if card else "fp32",
            "input_shape": input_shape,
            "output_shape": output_shape,
            "max_batch": input_shape[0],
            "threads": threads,
        }

    @classmethod
    def load(cls, path: Path, options: dict) -> ExecuTorchBackend:
        path = Path(path)
        if not path.is_file():
            raise EdgevisionError(f"model file not found: {path}")
        check_pte_file(path)  # before ExecuTorch: a bad identifier aborts the process there
        card = read_sidecar(path)
        with library_streams():  # ExecuTorch's runtime logs (cpuinfo, thread pool) come up through Python's streams
            torch, pool_threads, method = cls._load_method(path, options.get("threads"))
        if method.metadata.num_inputs() != 1:
            raise EdgevisionError(f"{path}: not an image classifier: {method.metadata.num_inputs()} inputs, expected 1")
        return cls(path, method, torch, card, pool_threads)

    @staticmethod
    def _load_method(path: Path, threads: int | None):
        """Import ExecuTorch, size its thread pool and load the program's `forward`."""
        torch = import_library("executorch", "torch")
        runtime = import_library("executorch", "executorch.runtime")
        if threads:
            torch.set_num_threads(int(threads))
        pool_threads = size_threadpool(default_threads() if threads is None else int(threads))
        try:
            program = runtime.Runtime.get().load_program(path)
            if "forward" not in program.method_names:
                raise EdgevisionError(f"{path}: the program has no 'forward' method ({sorted(program.method_names)})")
            method = program.load_method("forward")
        except EdgevisionError:
            raise
        except Exception as exc:  # the C++ runtime reports a bad file as RuntimeError / ValueError
            raise EdgevisionError(f"{path}: ExecuTorch cannot load this program: {first_line(exc)}") from None
        return torch, pool_threads, method

    def run(self, batch: np.ndarray) -> np.ndarray:
        tensor = self.torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        (logits,) = self.method.execute([tensor])[:1]
        return logits.detach().numpy().astype(np.float32, copy=False)
