"""ONNX -> TensorRT engine, built on the device that will run it; the card in a sidecar.

One code path for TensorRT 10.x (JetPack 6 has 10.3) and 11.x. The network is strongly typed
(`NetworkDefinitionCreationFlag.STRONGLY_TYPED`: an opt-in in 10.x, always on in 11.x where the flag
is accepted and ignored), so the precision is the ONNX's own: an fp32 ONNX gives an fp32 engine, an
fp16 ONNX (fp16 weights and casts) an fp16 one, a Q/DQ ONNX an int8 one. No `BuilderFlag`
precision flag is set and there is no calibrator (both removed in TensorRT 11); no torch is needed.
The APIs used exist in both versions: `Builder.create_network`, `create_builder_config`,
`create_optimization_profile`, `build_serialized_network`, `OnnxParser.parse_from_file`,
`IBuilderConfig.set_memory_pool_limit`, `add_optimization_profile`, `create_timing_cache`,
`set_timing_cache`, `get_timing_cache`, `IOptimizationProfile.set_shape`.

An engine runs only with the TensorRT version and on the GPU that built it: the card records
both (`deploy.card.BuiltOn`), and `deploy.backends.tensorrt` refuses an engine from elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from deploy.atomic import write_bytes_atomic
from deploy.backends import import_library
from deploy.card import BuiltOn, ModelCard, write_sidecar
from deploy.errors import EdgevisionError
from deploy.onnx_scan import check_external_data

PRECISIONS = ("fp32", "fp16", "int8")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def onnx_precision(onnx_path: str | os.PathLike) -> str:
    """The precision an ONNX graph carries: "int8" with Q/DQ nodes, "fp16" with float16 weights,
    inputs or casts to float16, else "fp32". A strongly typed TensorRT network keeps exactly these types."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    graph = model.graph
    if any(node.op_type in QDQ_OPS for node in graph.node):
        return "int8"
    half = onnx.TensorProto.FLOAT16
    if any(init.data_type == half for init in graph.initializer):
        return "fp16"
    if any(value.type.tensor_type.elem_type == half for value in [*graph.input, *graph.output]):
        return "fp16"
    for node in graph.node:
        if node.op_type == "Cast" and any(a.name == "to" and a.i == half for a in node.attribute):
            return "fp16"
    return "fp32"


def network_flags(trt) -> int:
    """The `create_network` flags: strongly typed, the one mode TensorRT 11 has."""
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def build_engine(
    trt,
    onnx_path: str | os.PathLike,
    max_batch: int = 8,
    workspace_gb: float = 2.0,
    timing_cache: str | os.PathLike | None = None,
    logger=None,
) -> bytes:
    """The serialized engine of `onnx_path` (strongly typed; a dynamic batch gets the profile 1..max_batch)."""
    if max_batch < 1:
        raise EdgevisionError(f"max_batch must be at least 1, got {max_batch}")
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgevisionError(f"TensorRT cannot parse {onnx_path}: {errors}")
    if network.num_inputs != 1:
        raise EdgevisionError(f"{onnx_path}: not an image classifier: {network.num_inputs} inputs, expected 1")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    tensor = network.get_input(0)
    shape = tuple(tensor.shape)
    if any(dim < 0 for dim in shape[1:]):
        raise EdgevisionError(
            f"{onnx_path}: input {tensor.name} has dynamic sizes {shape}; only the batch may be dynamic"
        )
    if shape[0] < 0:
        profile = builder.create_optimization_profile()
        chw = shape[1:]
        profile.set_shape(tensor.name, (1, *chw), (1, *chw), (max_batch, *chw))
        config.add_optimization_profile(profile)
    cache_file = Path(timing_cache) if timing_cache else None
    if cache_file is not None:
        cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgevisionError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    if cache_file is not None:
        write_bytes_atomic(cache_file, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def built_on(trt) -> BuiltOn:
    """This machine as an engine's card records it: TensorRT's version, the GPU, the L4T release."""
    from deploy.backends.tensorrt import current_gpu
    from deploy.jetson import l4t_release

    gpu = current_gpu()
    if gpu is None:
        raise EdgevisionError("building a TensorRT engine needs a CUDA GPU and cuda-python (pip install cuda-python) "
                              "or torch with CUDA to name it; neither sees one")
    name, capability = gpu
    return BuiltOn(str(trt.__version__), name, capability, l4t_release())


def onnx2trt(
    onnx_path: str | os.PathLike,
    card: ModelCard,
    path: str | os.PathLike,
    precision: str | None = None,
    workspace_gb: float = 2.0,
    timing_cache: str | os.PathLike | None = None,
    max_batch: int = 8,
) -> Path:
    """Build a TensorRT engine from `onnx_path` and write it, with its card, to `path`.

    `precision`, when given, must be the one the ONNX carries (`onnx_precision`): TensorRT takes
    the types of the graph as they are. The card gets that precision and `built_on`."""
    onnx_path = Path(onnx_path)
    check_external_data(onnx_path)
    carried = onnx_precision(onnx_path)
    check_precision(onnx_path, carried, precision)
    trt = import_library("tensorrt", "tensorrt")
    target = built_on(trt)
    engine = build_engine(trt, onnx_path, max_batch=max_batch, workspace_gb=workspace_gb, timing_cache=timing_cache)
    write_bytes_atomic(path, engine)
    write_sidecar(path, card.evolve(artifact_format="tensorrt", precision=carried, built_on=target))
    return Path(path)


def check_precision(onnx_path: str | os.PathLike, carried: str, requested: str | None) -> str:
    """The precision of an engine built from `onnx_path`: the one it carries; a different `requested` is an error."""
    if requested is not None and requested not in PRECISIONS:
        raise EdgevisionError(f"TensorRT precision must be fp32, fp16 or int8, got {requested}")
    if requested is not None and requested != carried:
        make = {"fp16": "`edgevision quantize --to onnx-fp16`", "int8": "`edgevision quantize --to onnx-int8-trt`",
                "fp32": "`edgevision export --format onnx`"}[requested]
        raise EdgevisionError(
            f"{Path(onnx_path).name} carries {carried} and TensorRT builds it as such; for a {requested} engine "
            f"give a {requested} ONNX (made with {make}) or leave out --precision"
        )
    return carried


def from_torch(model, card: ModelCard, out: str | os.PathLike, precision: str = "fp32", data: str | None = None,
               **options) -> Path:
    """The registry's entry point for a checkpoint (see `deploy.export`): torch -> fp32 ONNX (temporary)
    -> fp32 engine. fp16 and int8 engines come from an fp16 or Q/DQ ONNX (`from_onnx`)."""
    import tempfile

    from deploy.export.torch2onnx import torch2onnx

    if precision != "fp32":
        check_precision("the checkpoint's ONNX", "fp32", precision)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = torch2onnx(model, card, Path(tmp) / "model.onnx")
        return onnx2trt(onnx_path, card, out, "fp32", **options)


def from_onnx(onnx_path: str | os.PathLike, card: ModelCard, out: str | os.PathLike, precision: str | None = None,
              **options) -> Path:
    """The registry's entry point for an ONNX file (see `deploy.export`): no torch."""
    return onnx2trt(onnx_path, card, out, precision, **options)
