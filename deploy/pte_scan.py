"""Check a `.pte` file's header before ExecuTorch opens it, with no executorch package.

ExecuTorch logs a program's file identifier when it is not the one it expects; bytes that are not
UTF-8 there make its Python log hook throw inside C++, and the whole process aborts (exit 134,
which no `except` catches). So the few bytes that decide this are read here first.

A program is a flatbuffer (executorch `schema/program.fbs`): a little-endian uint32 offset to the
root table, then the 4-byte file identifier `ET12`. Programs with segments put an extended header
right after (executorch `exir/_serialize/_program.py` `_ExtendedHeader`): magic `eh00`, uint32
header length, uint64 program size, uint64 segment base offset and, when the length says so, uint64
segment data size. Every size and offset declared there must lie inside the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from deploy.errors import EdgevisionError

FILE_IDENTIFIER = b"ET12"
# Any ASCII "ET" + two digits: ExecuTorch itself reports a version it does not read, without aborting.
IDENTIFIER_PATTERN = re.compile(rb"ET[0-9]{2}")
EXTENDED_MAGIC = b"eh00"
EXTENDED_OFFSET = 8
EXTENDED_MIN_LENGTH = 24  # magic, length, program size, segment base offset
EXTENDED_FULL_LENGTH = 32  # ... and segment data size
HEAD_BYTES = 64


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def _u64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 8], "little")


def check_pte_head(head: bytes, size: int) -> None:
    """Refuse a program whose first bytes (`head`, at least `HEAD_BYTES` of them when the file has
    that many) are not an ExecuTorch header consistent with a file of `size` bytes."""
    if size < EXTENDED_OFFSET:
        raise EdgevisionError(f"not an ExecuTorch program: {size} bytes, too short for a header")
    identifier = head[4:8]
    if not IDENTIFIER_PATTERN.fullmatch(identifier):
        raise EdgevisionError(
            f"not an ExecuTorch program: file identifier {identifier!r} at bytes 4-8, "
            f"expected {FILE_IDENTIFIER.decode()}"
        )
    root = _u32(head, 0)
    if not EXTENDED_OFFSET <= root < size:
        raise EdgevisionError(f"corrupt ExecuTorch program: root table offset {root} outside the file ({size} bytes)")
    if head[EXTENDED_OFFSET : EXTENDED_OFFSET + 4] != EXTENDED_MAGIC:
        return  # a program without segments has no extended header
    length = _u32(head, EXTENDED_OFFSET + 4)
    if length < EXTENDED_MIN_LENGTH or EXTENDED_OFFSET + length > min(size, HEAD_BYTES):
        raise EdgevisionError(f"corrupt ExecuTorch program: extended header length {length}")
    program_size = _u64(head, EXTENDED_OFFSET + 8)
    segment_base = _u64(head, EXTENDED_OFFSET + 16)
    segment_size = _u64(head, EXTENDED_OFFSET + 24) if length >= EXTENDED_FULL_LENGTH else 0
    if program_size > size or root >= program_size:
        raise EdgevisionError(
            f"truncated or corrupt ExecuTorch program: its header declares a {program_size}-byte program, "
            f"the file has {size} bytes"
        )
    if segment_base and (segment_base < program_size or segment_base + segment_size > size):
        raise EdgevisionError(
            f"truncated or corrupt ExecuTorch program: its header declares data up to byte "
            f"{segment_base + segment_size}, the file has {size} bytes"
        )


def check_pte_file(path: str | os.PathLike) -> None:
    """Refuse `path` in one line naming it unless its header is one ExecuTorch can be given safely."""
    path = Path(path)
    with open(path, "rb") as file:
        head = file.read(HEAD_BYTES)
        size = os.fstat(file.fileno()).st_size
    try:
        check_pte_head(head, size)
    except EdgevisionError as exc:
        raise EdgevisionError(f"{path}: {exc}") from None
