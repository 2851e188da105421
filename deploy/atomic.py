"""Atomic file writes: a reader sees the old file or the new one, never half of either; and a lock
so that two processes never write one output at once.

Only regular files are replaced. An output that exists and is something else (`/dev/null`, a FIFO,
`/dev/stdout`, a symlink to a device) is written into in place: renaming over it would replace the
system's special file (as root) or silently swallow what the user meant to read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deploy.errors import EdgevisionError

# What the disk answers a write it cannot take: full, over quota, over RLIMIT_FSIZE, read-only, failing.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def special_file(path: str | os.PathLike) -> bool:
    """True for an output to write into rather than replace: an existing non-regular file (device,
    FIFO, socket, or a link to one) or a link under /dev or /proc (`/dev/stdout`, `/dev/fd/1` lead to
    a regular file when standard output is redirected, and are still not ours to replace)."""
    absolute = os.path.abspath(path)
    if absolute.startswith(("/dev/", "/proc/")) and os.path.realpath(absolute) != absolute:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextlib.contextmanager
def _write_errors(target: Path) -> Iterator[None]:
    """A full disk, a quota or a file-size limit while writing: one line naming the file, no traceback."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise EdgevisionError(f"cannot write {target}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    The temporary file lives in the same folder so that `os.replace` stays on one file system
    (and so stays atomic). On any error the temporary file is removed and `path` is untouched.
    A special file (`special_file`) is yielded itself, to be written in place.
    """
    target = Path(path)
    if special_file(target):
        with _write_errors(target):
            yield target
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # a file where a folder should be, no permission, a read-only disk
        raise EdgevisionError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _write_errors(target):
            yield tmp
        # mkstemp makes the file 0600; a deployed model must be readable as the umask allows, like any file.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def open_for_writing(path: str | os.PathLike, what: str, mode: str = "w", **options):
    """`open(path, mode)`, except that a named pipe is opened without waiting for a reader: with none,
    a plain open blocks for good (SIGTERM included, as Python retries it); this is one line instead."""
    try:
        fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        fifo = False
    if not fifo:
        return open(path, mode, **options)
    named = f"{what} {path}" if what else str(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise EdgevisionError(f"cannot open {named}: {exc.strerror or exc}") from None
        raise EdgevisionError(f"{named} is a named pipe with no reader: start its reader first") from None
    os.set_blocking(fd, True)  # a reader is there: write to it as to any pipe
    return os.fdopen(fd, mode, **options)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open_for_writing(tmp, "", "wb") as handle:
            handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def output_lock(
    folder: str | os.PathLike, what: str = "output", name: str = ".edgevision.lock",
    writing: str | os.PathLike | None = None,
) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (the file `name` inside it) while writing there.

    A second process asking for the same folder is refused at once with a one-line error instead
    of mixing its files with the first one's. The lock dies with its process (flock), so a killed
    run never leaves a stale one behind. An unwritable folder is reported here, before any work.
    `writing`: the one file the lock guards, when it guards a file (see `artifact_lock`), not the folder.
    The holder writes its process id into the lock file, so the refusal names it.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / name, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise EdgevisionError(f"cannot write the {what} folder {folder}: {exc.strerror}") from None
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            held = (f"{writing}{holder}; wait for it or choose another {what}" if writing
                    else f"{folder}{holder}; wait for it or choose another {what} folder")
            raise EdgevisionError(f"another edgevision process is writing {held}") from None
        with contextlib.suppress(OSError):  # a full disk must not stop the lock itself
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """' (pid N)' from a held lock file, or '' when it names none (an older edgevision, a race)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def artifact_lock(path: str | os.PathLike, what: str = "--out") -> contextlib.AbstractContextManager[None]:
    """`output_lock` for one output file (an artifact and its sidecar card): `.<name>.lock` beside it,
    so two commands writing one file refuse each other while others write into the same folder.
    A special file (`/dev/null`, a FIFO) takes no lock: no lock file is made in /dev."""
    path = Path(path)
    if special_file(path):
        return contextlib.nullcontext()
    return output_lock(path.parent, what, f".{path.name}.lock", writing=path)


def check_writable(path: str | os.PathLike, what: str) -> None:
    """Refuse, before any work, an output file that could not be written at the end: its folder
    cannot be made or written, or `path` is a folder."""
    path = Path(path)
    if special_file(path):
        if not os.access(path, os.W_OK):
            raise EdgevisionError(f"cannot write the {what} {path}: no permission")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgevisionError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise EdgevisionError(f"{what} {path} is a folder, not a file")
    if not os.access(path.parent, os.W_OK):
        raise EdgevisionError(f"cannot write the {what} {path}: its folder is not writable")
