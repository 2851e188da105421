"""Read what an ONNX file points at before any runtime opens it, with no onnx package.

An ONNX tensor can keep its bytes in another file (`external_data` `location`). A model from
elsewhere could name `../../home/you/.ssh/id_rsa` or `/etc/shadow`, and a runtime would read
it. `external_data_locations` walks the protobuf wire format (ModelProto -> GraphProto ->
initializers, node attributes, subgraphs, functions) and returns every location, so
`check_external_data` can refuse any that leaves the model's folder. The runtime extra has no
`onnx`, hence this small reader of the few fields that matter (field numbers from onnx.proto3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from deploy.errors import EdgevisionError

# field numbers (onnx/onnx.proto3)
MODEL_GRAPH, MODEL_FUNCTIONS = 7, 25
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
NODE_ATTRIBUTE = 5
FUNCTION_NODE = 7
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS = 5, 6, 10, 11, 22, 23
SPARSE_VALUES, SPARSE_INDICES = 1, 2
TENSOR_EXTERNAL_DATA = 13
ENTRY_KEY, ENTRY_VALUE = 1, 2


class _Truncated(Exception):
    pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Truncated
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Truncated


def _fields(buf: memoryview) -> Iterator[tuple[int, memoryview | None]]:
    """(field number, payload) for each field; payload is None for non-length-delimited ones."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
            yield number, None
        elif wire == 1:
            pos += 8
            yield number, None
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _Truncated
            yield number, buf[pos : pos + length]
            pos += length
        elif wire == 5:
            pos += 4
            yield number, None
        else:
            raise _Truncated  # groups (3/4) never occur in ONNX; anything else is not protobuf
        if pos > len(buf):
            raise _Truncated


def _tensor(buf: memoryview) -> Iterator[str]:
    for number, payload in _fields(buf):
        if number == TENSOR_EXTERNAL_DATA and payload is not None:
            key = value = None
            for n, p in _fields(payload):
                if n == ENTRY_KEY and p is not None:
                    key = bytes(p).decode("utf-8", "replace")
                elif n == ENTRY_VALUE and p is not None:
                    value = bytes(p).decode("utf-8", "replace")
            if key == "location" and value is not None:
                yield value


def _sparse(buf: memoryview) -> Iterator[str]:
    for number, payload in _fields(buf):
        if number in (SPARSE_VALUES, SPARSE_INDICES) and payload is not None:
            yield from _tensor(payload)


def _node(buf: memoryview) -> Iterator[str]:
    for number, payload in _fields(buf):
        if number != NODE_ATTRIBUTE or payload is None:
            continue
        for n, p in _fields(payload):
            if p is None:
                continue
            if n in (ATTR_T, ATTR_TENSORS):
                yield from _tensor(p)
            elif n in (ATTR_G, ATTR_GRAPHS):
                yield from _graph(p)
            elif n in (ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS):
                yield from _sparse(p)


def _graph(buf: memoryview) -> Iterator[str]:
    for number, payload in _fields(buf):
        if payload is None:
            continue
        if number == GRAPH_INITIALIZER:
            yield from _tensor(payload)
        elif number == GRAPH_SPARSE_INITIALIZER:
            yield from _sparse(payload)
        elif number == GRAPH_NODE:
            yield from _node(payload)


def external_data_locations(data: bytes) -> list[str]:
    """Every external-data `location` named in a serialized ModelProto."""
    buf = memoryview(data)
    found: list[str] = []
    try:
        for number, payload in _fields(buf):
            if payload is None:
                continue
            if number == MODEL_GRAPH:
                found.extend(_graph(payload))
            elif number == MODEL_FUNCTIONS:
                for n, p in _fields(payload):
                    if n == FUNCTION_NODE and p is not None:
                        found.extend(_node(p))
    except _Truncated:
        raise EdgevisionError("not a valid ONNX file (truncated or corrupt protobuf)") from None
    return found


def check_external_data(path: str | os.PathLike, data: bytes | None = None) -> list[str]:
    """Refuse an ONNX file whose external data lies outside its own folder; return the locations."""
    path = Path(path)
    if data is None:
        data = path.read_bytes()
    try:
        locations = external_data_locations(data)
    except EdgevisionError as exc:
        raise EdgevisionError(f"{path}: {exc}") from None
    folder = path.resolve().parent
    for location in locations:
        if not location or "\0" in location:
            raise EdgevisionError(f"{path}: refusing external data location {location!r}: empty or holds a NUL byte")
        target = (folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(folder):
            raise EdgevisionError(
                f"{path}: refusing external data location {location!r}: it points outside the model's folder {folder}"
            )
    return locations
