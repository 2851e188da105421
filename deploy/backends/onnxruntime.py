"""ONNX Runtime backend: `.onnx` files on the CPU, or on CUDA / TensorRT execution providers.

Options: `threads` (intra-op threads, 0 for onnxruntime's own choice) and `spin_wait` (idle pool
threads spin, as onnxruntime does on its own): on the CPU, what the caller leaves open is chosen at
load by timing the candidates on this device (`deploy.backends.tune`: 1 or
`deploy.backends.cpu.default_threads()` threads, spinning or not; about 0.3 s); `provider`
(`auto`: CUDA when available, else CPU; or `cpu`, `cuda`, `tensorrt`: the CUDA and TensorRT
providers need onnxruntime-gpu, the `gpu` extra, installed instead of `runtime`'s onnxruntime;
TensorRT's provider builds its engine while the session opens, so loading takes seconds to
minutes, and the first run of a new batch size may build again: bench reports both apart from
the steady latency). The card is read from the model's metadata (`deploy.card.CARD_KEY`).
External data that points outside the model's folder is refused before onnxruntime opens the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.backends import check_classifier_shapes, import_library, tune
from deploy.card import CARD_KEY, ModelCard
from deploy.errors import EdgevisionError, first_line
from deploy.onnx_scan import check_external_data
from deploy.preprocess import MAX_INPUT_SIDE

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def _dim(value) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


GPU_INSTALL = ("install onnxruntime-gpu in place of onnxruntime (pip install edgevision[gpu] in an environment "
               "without [runtime]; docs/deploy.md)")


def choose_providers(ort, provider: str) -> list[str]:
    """The execution providers to open a session with, best first, CPU last; `provider` asked for
    and not in this onnxruntime build is refused in one line naming the build and its providers."""
    available = ort.get_available_providers()
    if provider == "auto":
        wanted = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
    elif provider in PROVIDERS:
        wanted = [PROVIDERS[provider]]
        if provider == "tensorrt":  # nodes TensorRT cannot take run on CUDA, not on the CPU
            wanted.append(PROVIDERS["cuda"])
        missing = [name for name in wanted if name not in available]
        if missing:
            hint = f"; {GPU_INSTALL}" if "CUDAExecutionProvider" not in available else ""
            raise EdgevisionError(
                f"--provider {provider} needs onnxruntime's {' and '.join(missing)}, which this onnxruntime "
                f"{getattr(ort, '__version__', '')} lacks (it has {', '.join(available)}){hint}")
    else:
        raise EdgevisionError(f"unknown provider {provider!r}; choose from auto, {', '.join(PROVIDERS)}")
    return [*wanted, "CPUExecutionProvider"] if "CPUExecutionProvider" not in wanted else wanted


def preload_gpu_libraries(ort, providers: list[str]) -> None:
    """Let onnxruntime-gpu find CUDA and cuDNN from the nvidia-* wheels (PyTorch's) before a GPU
    session opens (`onnxruntime.preload_dlls`, onnxruntime-gpu >= 1.21); nothing on the CPU."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None and providers[0] != "CPUExecutionProvider":
        try:
            preload()
        except Exception:  # libraries on the system path may still do; the session says
            pass


def check_session_providers(path: Path, session, providers: list[str], asked: str) -> None:
    """onnxruntime opens a session on the CPU, with a warning only, when a GPU provider it lists
    cannot start (no GPU, a CUDA or cuDNN library missing): a provider asked for by name must be the
    one the session runs on."""
    running = session.get_providers()
    if asked in PROVIDERS and providers[0] not in running:
        raise EdgevisionError(
            f"{path}: onnxruntime could not start {providers[0]} (no NVIDIA GPU, or a CUDA/cuDNN library it "
            f"needs is missing; -v shows onnxruntime's reason); the session would run on {', '.join(running)}")


def open_session(ort, path: Path, setting: tune.Setting, providers: list[str]):
    """An InferenceSession with `setting`'s intra-op threads and spin policy."""
    session_options = ort.SessionOptions()
    session_options.log_severity_level = 3
    if setting.threads > 0:
        session_options.intra_op_num_threads = setting.threads
        session_options.inter_op_num_threads = 1
    session_options.add_session_config_entry("session.intra_op.allow_spinning", "1" if setting.spin else "0")
    try:
        return ort.InferenceSession(str(path), sess_options=session_options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... for a bad file
        raise EdgevisionError(f"{path}: onnxruntime cannot load this model: {first_line(exc)}") from None


def timing_input(session, card: ModelCard | None) -> np.ndarray | None:
    """A batch-1 input for timing `session`, or None when its size is unknown (no card and
    dynamic height or width) or no image network's (a side over `MAX_INPUT_SIDE`: refused with
    its reason after loading, never run)."""
    inp = session.get_inputs()[0]
    shape = [_dim(v) for v in inp.shape]
    if len(shape) == 4 and None in shape[2:] and card is not None:
        shape[2:] = list(card.preprocessing.input_size)
    shape[0] = 1
    if None in shape or max(shape[2:], default=0) > MAX_INPUT_SIDE:
        return None
    return np.random.default_rng(0).standard_normal(shape).astype(ORT_TYPES.get(inp.type, np.float32))


def choose_session(ort, path: Path, providers: list[str], first, card: ModelCard | None,
                   candidates: list[tune.Setting], rule: tune.Setting):
    """(setting, session, the timings it was chosen by) for the fastest candidate on this device now
    (`deploy.backends.tune`). `first` is the rule's session, already checked; the other candidates
    are opened only when there is something to time."""
    feed = timing_input(first, card)
    if feed is None or candidates == [rule]:
        return rule, first, {}
    sessions = {s: first if s == rule else open_session(ort, path, s, providers) for s in candidates}
    name = first.get_inputs()[0].name
    calls = {setting: (lambda s=session: s.run(None, {name: feed})) for setting, session in sessions.items()}
    setting, timed = tune.tune(calls, rule)
    return setting, sessions[setting], timed


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, path: Path, session, card: ModelCard | None) -> None:
        self.path = path
        self.session = session
        self.card = card
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        self.input_name = inp.name
        self.output_name = out.name
        self.input_dtype = ORT_TYPES.get(inp.type, np.float32)
        input_shape = [_dim(v) for v in inp.shape]
        self.info = {
            "backend": self.name,
            "provider": session.get_providers()[0],
            "precision": card.precision if card else ("fp16" if self.input_dtype == np.float16 else "fp32"),
            "input_name": inp.name,
            "input_shape": input_shape,
            "output_shape": [_dim(v) for v in out.shape],
            "max_batch": input_shape[0],
            "threads": session.get_session_options().intra_op_num_threads,
        }

    @classmethod
    def load(cls, path: Path, options: dict) -> OnnxRuntimeBackend:
        ort = import_library("onnxruntime", "onnxruntime")
        path = Path(path)
        if not path.is_file():
            raise EdgevisionError(f"model file not found: {path}")
        check_external_data(path)
        asked = options.get("provider") or "auto"
        providers = choose_providers(ort, asked)
        preload_gpu_libraries(ort, providers)
        threads = None if options.get("threads") is None else int(options["threads"])
        spin = None if options.get("spin_wait") is None else bool(options["spin_wait"])
        rule = tune.rule(threads, spin)
        session = open_session(ort, path, rule, providers)
        check_session_providers(path, session, providers, asked)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1:
            raise EdgevisionError(f"{path}: not an image classifier: it has {len(inputs)} inputs, expected 1")
        check_classifier_shapes(path, list(inputs[0].shape), list(outputs[0].shape))
        meta = session.get_modelmeta().custom_metadata_map
        card = None
        if CARD_KEY in meta:
            try:
                card = ModelCard.from_json(meta[CARD_KEY])
            except EdgevisionError as exc:
                raise EdgevisionError(f"{path}: metadata {CARD_KEY}: {exc}") from None
        setting, timed = rule, {}
        if providers == ["CPUExecutionProvider"]:
            setting, session, timed = choose_session(ort, path, providers, session, card,
                                                     tune.candidates(threads, spin), rule)
        backend = cls(path, session, card)
        backend.info["spin_wait"] = setting.spin
        backend.info["tuned"] = {s.label: round(st.p50_ms, 3) for s, st in timed.items()}
        return backend

    def run(self, batch: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(batch, dtype=self.input_dtype)
        (logits,) = self.session.run([self.output_name], {self.input_name: feed})
        return np.asarray(logits, dtype=np.float32)
