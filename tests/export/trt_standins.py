"""Stand-ins for NVIDIA's `tensorrt` Python package (10.3, as JetPack 6 ships it, and 11.x, the
desktop wheel) and for cuda-python's runtime bindings: neither installs on a machine without a GPU.

They stand in for NVIDIA's libraries, not for anything edgevision ships. Their names follow each
version's documented Python API (TensorRT Python API reference, `Builder` / `IBuilderConfig` /
`NetworkDefinitionCreationFlag` pages for 10.x and 11.x; "Removed Python APIs and Replacements" in
the 10.x -> 11.x migration guide; the python samples of github.com/NVIDIA/TensorRT), as a subset:
what a builder and a runtime touch. The names that 11.x removed are absent from the 11 stand-in,
so code that uses one fails there with AttributeError, as it would with the real 11.x.

Behaviour is kept to what a test can check: the builder records what it was asked (network flags,
builder flags, memory pools, optimisation profiles, timing cache) and `build_serialized_network`
returns that record as a JSON "plan" (with the ONNX it parsed), so a test reads the engine file our
code wrote. As in 10.x, a strongly typed network with a precision flag set fails to build.
`Runtime.deserialize_cuda_engine` reads such a plan back (None for anything else, as TensorRT gives
for a corrupt file), and its execution context runs the ONNX with onnxruntime on the CPU, reading and
writing the stand-in CUDA runtime's "device memory" (a dict of bytearrays behind fake addresses), so
the backend's name-based tensor API, buffers and copies run as on a GPU.
"""

from __future__ import annotations

import base64
import ctypes
import enum
import importlib.machinery
import json
import sys
import types
from pathlib import Path

import numpy as np

TRT_10_3 = "10.3.0"
TRT_11 = "11.4.0.106"
ORIN = ("Orin", "8.7")

# Names present in 10.x and removed in 11.x (the migration guide's list, restricted to the stand-in's subset).
REMOVED_IN_11 = {
    "BuilderFlag": ("FP16", "BF16", "INT8", "FP8", "INT4", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                    "DIRECT_IO"),
    "IBuilderConfig": ("int8_calibrator", "set_calibration_profile", "get_calibration_profile", "set_quantization_flag",
                       "get_quantization_flag", "clear_quantization_flag", "quantization_flags", "algorithm_selector"),
    "Builder": ("platform_has_tf32", "platform_has_fast_fp16", "platform_has_fast_int8"),
    "tensorrt": ("IInt8EntropyCalibrator2", "IInt8EntropyCalibrator", "IInt8MinMaxCalibrator", "IInt8LegacyCalibrator",
                 "IInt8Calibrator", "CalibrationAlgoType", "QuantizationFlag", "IAlgorithmSelector"),
    "NetworkDefinitionCreationFlag": ("EXPLICIT_BATCH",),
}
PRECISION_FLAGS = ("FP16", "BF16", "INT8", "FP8", "INT4")


def _enum(name: str, members: list[str]) -> type[enum.IntEnum]:
    return enum.IntEnum(name, {member: i for i, member in enumerate(members)})


BUILDER_FLAGS_10_3 = [
    "FP16", "BF16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
    "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
    "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8", "ERROR_ON_TIMING_CACHE_MISS",
    "DISABLE_COMPILATION_CACHE", "STRIP_PLAN", "REFIT_IDENTICAL", "WEIGHT_STREAMING", "INT4",
]


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class Logger:
    Severity = _Severity
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (_Severity(i) for i in range(5))

    def __init__(self, min_severity=_Severity.WARNING) -> None:
        self.min_severity = min_severity
        self.messages: list[str] = []

    def log(self, severity, msg: str) -> None:
        self.messages.append(msg)


class _Tensor:
    def __init__(self, name: str, shape: tuple[int, ...], dtype) -> None:
        self.name, self.shape, self.dtype = name, shape, dtype


def _make_trt(version: str) -> types.ModuleType:
    eleven = version.split(".")[0] == "11"
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.__version__ = version
    trt.__file__ = f"<stand-in tensorrt {version}>"
    trt.calls = []  # (what, details) in call order, for tests

    trt.DataType = _enum("DataType",
                         ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8", "BF16", "INT64", "INT4"])
    trt.float32, trt.float16, trt.int8, trt.int32 = (trt.DataType.FLOAT, trt.DataType.HALF, trt.DataType.INT8,
                                                     trt.DataType.INT32)
    numpy_types = {trt.DataType.FLOAT: np.float32, trt.DataType.HALF: np.float16, trt.DataType.INT8: np.int8,
                   trt.DataType.INT32: np.int32}
    trt.nptype = lambda dtype: numpy_types[dtype]
    trt.TensorIOMode = _enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    trt.MemoryPoolType = _enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM",
                                                  "DLA_GLOBAL_DRAM", "TACTIC_DRAM", "TACTIC_SHARED_MEMORY"])
    if eleven:
        trt.NetworkDefinitionCreationFlag = _enum(
            "NetworkDefinitionCreationFlag",
            ["STRONGLY_TYPED", "PREFER_AOT_PYTHON_PLUGINS", "PREFER_JIT_PYTHON_PLUGINS"])
        removed = set(REMOVED_IN_11["BuilderFlag"])
        trt.BuilderFlag = _enum("BuilderFlag", [f for f in BUILDER_FLAGS_10_3 if f not in removed])
    else:
        trt.NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", ["EXPLICIT_BATCH", "STRONGLY_TYPED"])
        trt.BuilderFlag = _enum("BuilderFlag", BUILDER_FLAGS_10_3)
        trt.CalibrationAlgoType = _enum("CalibrationAlgoType", ["LEGACY_CALIBRATION", "ENTROPY_CALIBRATION",
                                                                "MINMAX_CALIBRATION", "ENTROPY_CALIBRATION_2"])
        trt.QuantizationFlag = _enum("QuantizationFlag", ["CALIBRATE_BEFORE_FUSION"])
        for name in ("IInt8Calibrator", "IInt8LegacyCalibrator", "IInt8EntropyCalibrator", "IInt8EntropyCalibrator2",
                     "IInt8MinMaxCalibrator", "IAlgorithmSelector"):
            setattr(trt, name, type(name, (), {"__init__": lambda self: None}))
    trt.Logger = Logger
    strongly_typed_bit = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)

    class INetworkDefinition:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.strongly_typed = eleven or bool(flags & strongly_typed_bit)  # 11.x: always; the flag is ignored
            self.inputs: list[_Tensor] = []
            self.outputs: list[_Tensor] = []
            self.onnx = b""

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        @property
        def num_outputs(self) -> int:
            return len(self.outputs)

        def get_input(self, index: int) -> _Tensor:
            return self.inputs[index]

        def get_output(self, index: int) -> _Tensor:
            return self.outputs[index]

        def get_flag(self, flag) -> bool:
            return bool(self.flags & (1 << int(flag)))

    class IOptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, list[tuple[int, ...]]] = {}

        def set_shape(self, input: str, min, opt, max) -> None:  # noqa: A002 - NVIDIA's parameter names
            self.shapes[input] = [tuple(min), tuple(opt), tuple(max)]

        def get_shape(self, input: str):  # noqa: A002
            return self.shapes[input]

    class ITimingCache:
        def __init__(self, blob: bytes) -> None:
            self.blob = bytes(blob)

        def serialize(self) -> memoryview:
            return memoryview(self.blob or b"stand-in timing cache")

    class IBuilderConfig:
        def __init__(self) -> None:
            self._flags: set[str] = set()
            self.pools: dict[str, int] = {}
            self.profiles: list[IOptimizationProfile] = []
            self.timing_cache: ITimingCache | None = None
            self.builder_optimization_level = 3
            self.avg_timing_iterations = 1

        def set_flag(self, flag) -> None:
            self._flags.add(trt.BuilderFlag(flag).name)

        def clear_flag(self, flag) -> None:
            self._flags.discard(trt.BuilderFlag(flag).name)

        def get_flag(self, flag) -> bool:
            return trt.BuilderFlag(flag).name in self._flags

        def set_memory_pool_limit(self, pool, pool_size: int) -> None:
            self.pools[trt.MemoryPoolType(pool).name] = int(pool_size)

        def get_memory_pool_limit(self, pool) -> int:
            return self.pools.get(trt.MemoryPoolType(pool).name, 0)

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        @property
        def num_optimization_profiles(self) -> int:
            return len(self.profiles)

        def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
            return ITimingCache(serialized_timing_cache)

        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> ITimingCache | None:
            return self.timing_cache

    if not eleven:
        def _calibration(self, profile=None):
            trt.calls.append(("calibration_profile", profile))

        IBuilderConfig.int8_calibrator = None
        IBuilderConfig.algorithm_selector = None
        IBuilderConfig.quantization_flags = 0
        IBuilderConfig.set_calibration_profile = _calibration
        IBuilderConfig.get_calibration_profile = lambda self: None
        IBuilderConfig.set_quantization_flag = lambda self, flag: None
        IBuilderConfig.get_quantization_flag = lambda self, flag: False
        IBuilderConfig.clear_quantization_flag = lambda self, flag: None

    class Builder:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger
            self.max_threads = 1
            self.num_DLA_cores = 0
            self.max_DLA_batch_size = 1

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            trt.calls.append(("create_network", flags))
            return INetworkDefinition(flags)

        def create_builder_config(self) -> IBuilderConfig:
            return IBuilderConfig()

        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig):
            trt.calls.append(("build_serialized_network", None))
            precision_flags = sorted(config._flags & set(PRECISION_FLAGS))
            if network.strongly_typed and precision_flags:
                self.logger.log(Logger.ERROR, f"{precision_flags} incompatible with a strongly typed network")
                return None
            dynamic = [t.name for t in network.inputs if t.shape and t.shape[0] < 0]
            covered = {name for profile in config.profiles for name in profile.shapes}
            if any(name not in covered for name in dynamic):
                self.logger.log(Logger.ERROR, "a dynamic input needs an optimization profile")
                return None
            plan = {
                "tensorrt": version, "network_flags": network.flags, "strongly_typed": network.strongly_typed,
                "builder_flags": sorted(config._flags), "memory_pools": config.pools,
                "profiles": [{k: [list(s) for s in v] for k, v in p.shapes.items()} for p in config.profiles],
                "inputs": {t.name: [list(t.shape), trt.DataType(t.dtype).name] for t in network.inputs},
                "timing_cache": config.timing_cache is not None,
                "outputs": {t.name: trt.DataType(t.dtype).name for t in network.outputs},
                "onnx": base64.b64encode(network.onnx).decode(),
            }
            return memoryview(json.dumps(plan, sort_keys=True).encode())

    if not eleven:
        Builder.platform_has_tf32 = True
        Builder.platform_has_fast_fp16 = True
        Builder.platform_has_fast_int8 = True

    class OnnxParser:
        """Reads the ONNX graph's inputs with the onnx package, as far as a builder needs them."""

        def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
            self.network, self.logger = network, logger
            self.errors: list[str] = []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, index: int) -> str:
            return self.errors[index]

        def parse_from_file(self, model: str) -> bool:
            import onnx

            trt.calls.append(("parse_from_file", model))
            try:
                graph = onnx.load(model).graph
            except Exception as exc:  # the real parser reports, it does not raise
                self.errors.append(f"cannot read {model}: {type(exc).__name__}")
                return False
            self.network.onnx = Path(model).read_bytes()
            types_ = {onnx.TensorProto.FLOAT: trt.float32, onnx.TensorProto.FLOAT16: trt.float16}
            initializers = {init.name for init in graph.initializer}
            for value in graph.input:
                if value.name in initializers:
                    continue
                dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)
                self.network.inputs.append(_Tensor(value.name, dims, types_[value.type.tensor_type.elem_type]))
            for value in graph.output:
                self.network.outputs.append(_Tensor(value.name, (), types_[value.type.tensor_type.elem_type]))
            return True

        def parse(self, model: bytes) -> bool:
            raise NotImplementedError("the stand-in reads files only (parse_from_file)")

    class IExecutionContext:
        """Runs the plan's ONNX with onnxruntime, on the stand-in CUDA runtime's memory."""

        def __init__(self, engine: ICudaEngine) -> None:
            import onnxruntime

            self.engine = engine
            self.session = onnxruntime.InferenceSession(engine.onnx, providers=["CPUExecutionProvider"])
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}

        def set_input_shape(self, name: str, shape) -> bool:
            low, _, high = self.engine.get_tensor_profile_shape(name, 0) or [self.engine.shapes[name]] * 3
            if len(shape) != len(low) or any(not lo <= s <= hi for s, lo, hi in zip(shape, low, high, strict=True)):
                return False
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            if name in self.shapes:
                return self.shapes[name]
            batch = next(iter(self.shapes.values()))[0]
            return (batch, *self.engine.shapes[name][1:])

        def set_tensor_address(self, name: str, memory: int) -> bool:
            self.addresses[name] = int(memory)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            name_in = self.engine.names[0]
            dtype = trt.nptype(self.engine.dtypes[name_in])
            shape = self.shapes[name_in]
            size = int(np.prod(shape)) * np.dtype(dtype).itemsize
            batch = np.frombuffer(bytes(DEVICE_MEMORY[self.addresses[name_in]][:size]), dtype).reshape(shape)
            outputs = self.session.run(None, {name_in: batch})
            for name, value in zip(self.engine.names[1:], outputs, strict=True):
                data = np.ascontiguousarray(value, trt.nptype(self.engine.dtypes[name])).tobytes()
                DEVICE_MEMORY[self.addresses[name]][: len(data)] = data
            return True

    class ICudaEngine:
        def __init__(self, plan: dict) -> None:
            self.onnx = base64.b64decode(plan["onnx"])
            self.names = [*plan["inputs"], *plan["outputs"]]
            self.inputs = set(plan["inputs"])
            self.dtypes = {name: trt.DataType[kind] for name, (_, kind) in plan["inputs"].items()}
            self.dtypes.update({name: trt.DataType[kind] for name, kind in plan["outputs"].items()})
            self.shapes = {name: tuple(shape) for name, (shape, _) in plan["inputs"].items()}
            self.shapes.update({name: (-1, onnx_output_dims(self.onnx)[-1]) for name in plan["outputs"]})
            self.profiles = plan["profiles"]

        @property
        def num_io_tensors(self) -> int:
            return len(self.names)

        def get_tensor_name(self, index: int) -> str:
            return self.names[index]

        def get_tensor_mode(self, name: str):
            return trt.TensorIOMode.INPUT if name in self.inputs else trt.TensorIOMode.OUTPUT

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return self.shapes[name]

        def get_tensor_dtype(self, name: str):
            return self.dtypes[name]

        @property
        def num_optimization_profiles(self) -> int:
            return max(1, len(self.profiles))

        def get_tensor_profile_shape(self, name: str, profile_index: int):
            if not self.profiles:
                return []
            return [tuple(s) for s in self.profiles[profile_index][name]]

        def create_execution_context(self) -> IExecutionContext:
            return IExecutionContext(self)

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, serialized_engine: bytes):
            trt.calls.append(("deserialize_cuda_engine", len(serialized_engine)))
            try:
                return ICudaEngine(json.loads(bytes(serialized_engine)))
            except (ValueError, KeyError, TypeError):
                self.logger.log(Logger.ERROR, "the plan is not a stand-in engine")
                return None

    trt.INetworkDefinition, trt.IBuilderConfig, trt.IOptimizationProfile = (INetworkDefinition, IBuilderConfig,
                                                                          IOptimizationProfile)
    trt.ITimingCache, trt.Builder, trt.OnnxParser, trt.Runtime = ITimingCache, Builder, OnnxParser, Runtime
    trt.ICudaEngine, trt.IExecutionContext = ICudaEngine, IExecutionContext
    return trt


def onnx_output_dims(model: bytes) -> list[int]:
    import onnx

    dims = onnx.load_from_string(model).graph.output[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else -1 for d in dims]


DEVICE_MEMORY: dict[int, bytearray] = {}  # fake device address -> its bytes (the stand-in CUDA runtime's)


class cudaError_t(enum.IntEnum):  # cuda-python's name
    cudaSuccess = 0
    cudaErrorNoDevice = 100


class cudaMemcpyKind(enum.IntEnum):  # cuda-python's name
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


class cudaStream_t(int):  # cuda-python's name; int() gives the handle
    pass


def _make_cuda(gpu: tuple[str, str] | None) -> dict[str, types.ModuleType]:
    """`cuda`, `cuda.bindings`, `cuda.bindings.runtime`: cudaGetDevice, cudaGetDeviceProperties, and
cudaMalloc / cudaFree / cudaMemcpyAsync / cudaStreamCreate / cudaStreamSynchronize on `DEVICE_MEMORY`."""
    runtime = types.ModuleType("cuda.bindings.runtime")
    runtime.cudaError_t = cudaError_t

    def cudaGetDevice():
        return (cudaError_t.cudaSuccess, 0) if gpu else (cudaError_t.cudaErrorNoDevice, 0)

    def cudaGetDeviceProperties(device: int):
        major, minor = (int(x) for x in gpu[1].split("."))
        properties = types.SimpleNamespace(name=gpu[0].encode() + b"\0" * 8, major=major, minor=minor)
        return cudaError_t.cudaSuccess, properties

    runtime.cudaGetDevice = cudaGetDevice
    runtime.cudaGetDeviceProperties = cudaGetDeviceProperties
    runtime.cudaMemcpyKind = cudaMemcpyKind
    next_address = [0x7F0000000000]

    def cudaMalloc(size: int):
        address = next_address[0]
        next_address[0] += (int(size) + 0xFFFF) & ~0xFFFF
        DEVICE_MEMORY[address] = bytearray(int(size))
        return cudaError_t.cudaSuccess, address

    def cudaFree(address: int):
        DEVICE_MEMORY.pop(int(address), None)
        return (cudaError_t.cudaSuccess,)

    def cudaMemcpyAsync(dst: int, src: int, count: int, kind, stream):
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            DEVICE_MEMORY[int(dst)][:count] = ctypes.string_at(src, count)
        else:
            ctypes.memmove(dst, bytes(DEVICE_MEMORY[int(src)][:count]), count)
        return (cudaError_t.cudaSuccess,)

    runtime.cudaMalloc, runtime.cudaFree, runtime.cudaMemcpyAsync = cudaMalloc, cudaFree, cudaMemcpyAsync
    runtime.cudaStreamCreate = lambda: (cudaError_t.cudaSuccess, cudaStream_t(1))
    runtime.cudaStreamSynchronize = lambda stream: (cudaError_t.cudaSuccess,)
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = runtime
    cuda = types.ModuleType("cuda")
    cuda.__path__ = []
    bindings.__path__ = []
    cuda.bindings = bindings
    for module in (cuda, bindings, runtime):
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None, is_package=module is not runtime)
    return {"cuda": cuda, "cuda.bindings": bindings, "cuda.bindings.runtime": runtime}


def install(monkeypatch, version: str, gpu: tuple[str, str] | None = ORIN) -> types.ModuleType:
    """Put the stand-ins in `sys.modules` for one test (undone after it); returns the tensorrt stand-in."""
    trt = _make_trt(version)
    monkeypatch.setattr(sys.modules[__name__], "DEVICE_MEMORY", {})
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    for name, module in _make_cuda(gpu).items():
        monkeypatch.setitem(sys.modules, name, module)
    return trt


def install_for_process(version: str, gpu: tuple[str, str] | None = ORIN) -> types.ModuleType:
    """The same for a whole (child) process, e.g. one that runs the CLI with torch blocked."""
    trt = _make_trt(version)
    sys.modules["tensorrt"] = trt
    sys.modules.update(_make_cuda(gpu))
    return trt


def read_plan(engine: str | Path) -> dict:
    """What the stand-in builder recorded, as written to the engine file."""
    return json.loads(Path(engine).read_bytes())
