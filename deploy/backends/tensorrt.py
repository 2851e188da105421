"""TensorRT backend: serialized engines (`.engine`/`.plan`) through the TensorRT 10.x and 11.x Python API.

An engine is built for one GPU and one TensorRT version (`deploy.export.onnx2trt`, or `trtexec`
on the device itself). Its card (the sidecar `<file>.json`) records both (`deploy.card.BuiltOn`),
and an engine whose card names another TensorRT version or GPU is refused before TensorRT reads
it. Inputs and outputs move through CUDA with cuda-python when it is installed (no torch, as on a
Jetson with JetPack's TensorRT), else through torch CUDA tensors. Execution uses the name-based
tensor API, the same in 10.x and 11.x: `set_input_shape`, `set_tensor_address`, `execute_async_v3`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from deploy.backends import check_classifier_shapes, import_library
from deploy.card import read_sidecar
from deploy.errors import EdgevisionError


def _dim(value: int) -> int | None:
    return int(value) if value >= 0 else None


def _cuda_runtime():
    """cuda-python's runtime bindings (`cuda.bindings.runtime`; `cuda.cudart` before cuda-python 12.6)."""
    try:
        return importlib.import_module("cuda.bindings.runtime")
    except ModuleNotFoundError:
        return importlib.import_module("cuda.cudart")


def current_gpu() -> tuple[str, str] | None:
    """(name, "MAJOR.MINOR" compute capability) of the current CUDA device, through cuda-python's
    `cudaGetDeviceProperties` (no torch), else torch; None when neither is installed or sees a GPU."""
    try:
        rt = _cuda_runtime()
    except ModuleNotFoundError:
        rt = None
    if rt is not None:
        err, device = rt.cudaGetDevice()
        if int(err) == 0:
            err, props = rt.cudaGetDeviceProperties(device)
            if int(err) == 0:
                name = props.name
                name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
                return name.rstrip("\0").strip(), f"{props.major}.{props.minor}"
        return None
    try:
        torch = importlib.import_module("torch")
    except ModuleNotFoundError:
        return None
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability()
    return torch.cuda.get_device_name(), f"{major}.{minor}"


def same_release(a: str, b: str) -> bool:
    """Whether two TensorRT versions are one release: equal MAJOR.MINOR.PATCH (a wheel's build number
    such as the 106 of 11.4.0.106 may be absent from JetPack's 10.3.0)."""
    return a.split(".")[:3] == b.split(".")[:3]


def check_built_on(path: Path, card, trt_version: str, gpu: tuple[str, str] | None) -> None:
    """Refuse an engine whose card says it was built with another TensorRT version or on another GPU
    (name or compute capability); one line naming both. A card without `built_on` (an engine from
    trtexec with a hand-made card) is left to TensorRT's own check."""
    built = card.built_on if card is not None else None
    if built is None:
        return
    rebuild = "rebuild it here: edgevision export --model MODEL.onnx --format tensorrt --out " + path.name
    if not same_release(built.tensorrt, trt_version):
        raise EdgevisionError(f"{path} was built with {built.line()}; this is TensorRT {trt_version}: {rebuild}")
    if gpu is not None and (gpu[0] != built.gpu or gpu[1] != built.compute_capability):
        raise EdgevisionError(f"{path} was built with {built.line()}; this is {gpu[0]} (compute capability "
                              f"{gpu[1]}): {rebuild}")


class _CudaPython:
    """Device buffers and copies through cuda-python's runtime bindings."""

    def __init__(self) -> None:
        self.rt = _cuda_runtime()
        self.stream = self._check(self.rt.cudaStreamCreate())
        self.buffers: dict[str, tuple[int, int]] = {}  # name -> (pointer, nbytes)

    def _check(self, result):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise EdgevisionError(f"CUDA error {err}")
        return rest[0] if len(rest) == 1 else (rest or None)

    def buffer(self, name: str, nbytes: int) -> int:
        pointer, size = self.buffers.get(name, (0, 0))
        if size < nbytes:
            if pointer:
                self._check(self.rt.cudaFree(pointer))
            pointer = int(self._check(self.rt.cudaMalloc(nbytes)))
            self.buffers[name] = (pointer, nbytes)
        return pointer

    def to_device(self, pointer: int, array: np.ndarray) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(pointer, array.ctypes.data, array.nbytes, kind, self.stream))

    def to_host(self, array: np.ndarray, pointer: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(array.ctypes.data, pointer, array.nbytes, kind, self.stream))

    def stream_handle(self) -> int:
        return int(self.stream)

    def synchronize(self) -> None:
        self._check(self.rt.cudaStreamSynchronize(self.stream))


class _TorchCuda:
    """The same through torch CUDA tensors, for machines with torch but no cuda-python."""

    def __init__(self, torch) -> None:
        self.torch = torch
        self.stream = torch.cuda.Stream()
        self.tensors: dict[int, object] = {}  # pointer -> tensor
        self.by_name: dict[str, object] = {}

    def buffer(self, name: str, nbytes: int) -> int:
        tensor = self.by_name.get(name)
        if tensor is None or tensor.numel() < nbytes:
            if tensor is not None:
                del self.tensors[tensor.data_ptr()]
            tensor = self.torch.empty(nbytes, dtype=self.torch.uint8, device="cuda")
            self.by_name[name] = tensor
            self.tensors[tensor.data_ptr()] = tensor
        return tensor.data_ptr()

    def to_device(self, pointer: int, array: np.ndarray) -> None:
        with self.torch.cuda.stream(self.stream):
            self.tensors[pointer][: array.nbytes].copy_(self.torch.from_numpy(array.reshape(-1).view(np.uint8)))

    def to_host(self, array: np.ndarray, pointer: int) -> None:
        with self.torch.cuda.stream(self.stream):
            host = self.tensors[pointer][: array.nbytes].cpu()
        array.reshape(-1).view(np.uint8)[:] = host.numpy()

    def stream_handle(self) -> int:
        return self.stream.cuda_stream

    def synchronize(self) -> None:
        self.stream.synchronize()


def _cuda_io():
    try:
        return _CudaPython()
    except ModuleNotFoundError:
        pass
    try:
        torch = importlib.import_module("torch")
    except ModuleNotFoundError:
        raise EdgevisionError(
            "the tensorrt backend needs cuda-python (pip install cuda-python) or torch with CUDA to move data"
        ) from None
    if not torch.cuda.is_available():
        raise EdgevisionError("the tensorrt backend needs a CUDA GPU; torch sees none")
    return _TorchCuda(torch)


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, path: Path, trt, engine, card) -> None:
        self.path = path
        self.trt = trt
        self.engine = engine
        self.card = card
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise EdgevisionError(f"{path}: not an image classifier: {len(inputs)} inputs, {len(outputs)} outputs")
        self.input_name, self.output_name = inputs[0], outputs[0]
        input_shape = [_dim(v) for v in engine.get_tensor_shape(self.input_name)]
        output_shape = [_dim(v) for v in engine.get_tensor_shape(self.output_name)]
        check_classifier_shapes(path, input_shape, output_shape)
        max_batch = input_shape[0]
        if max_batch is None and engine.num_optimization_profiles > 0:
            max_batch = int(engine.get_tensor_profile_shape(self.input_name, 0)[2][0])
        self.input_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.input_name)))
        self.output_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.output_name)))
        self.context = engine.create_execution_context()
        self.io = _cuda_io()
        self.info = {
            "backend": self.name,
            "provider": f"TensorRT {trt.__version__}",
            "precision": card.precision if card else "unknown",
            "input_shape": input_shape,
            "output_shape": output_shape,
            "max_batch": max_batch,
        }

    @classmethod
    def load(cls, path: Path, options: dict) -> TensorRTBackend:
        trt = import_library("tensorrt", "tensorrt")
        path = Path(path)
        if not path.is_file():
            raise EdgevisionError(f"model file not found: {path}")
        card = read_sidecar(path)
        check_built_on(path, card, str(trt.__version__), current_gpu() if card and card.built_on else None)
        logger = trt.Logger(trt.Logger.ERROR)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise EdgevisionError(
                f"{path}: TensorRT cannot deserialize this engine (corrupt, or built for another TensorRT "
                f"version or GPU; this is TensorRT {trt.__version__})"
            )
        return cls(path, trt, engine, card)

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        if not self.context.set_input_shape(self.input_name, tuple(batch.shape)):
            raise EdgevisionError(f"{self.path}: the engine does not take input shape {tuple(batch.shape)}")
        out_shape = tuple(self.context.get_tensor_shape(self.output_name))
        logits = np.empty(out_shape, dtype=self.output_dtype)
        in_ptr = self.io.buffer(self.input_name, batch.nbytes)
        out_ptr = self.io.buffer(self.output_name, logits.nbytes)
        self.context.set_tensor_address(self.input_name, in_ptr)
        self.context.set_tensor_address(self.output_name, out_ptr)
        self.io.to_device(in_ptr, batch)
        if not self.context.execute_async_v3(self.io.stream_handle()):
            raise EdgevisionError(f"{self.path}: TensorRT execution failed")
        self.io.to_host(logits, out_ptr)
        self.io.synchronize()
        return logits.astype(np.float32, copy=False)
