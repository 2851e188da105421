"""The capture thread: reads frames while the model works, so the model always gets the newest one.

Two policies:
- newest (default): one slot. A source with its own clock (camera, stream, a file paced at its
  own frame rate with `realtime`) overwrites a frame nobody took, and that frame counts as dropped,
  so latency never grows behind a slow model. A file read as fast as it goes waits for the slot
  instead (nothing to drop: the next frame is decoded while the model runs on this one).
- buffer: every frame in order, through a queue of at most `buffer_frames` frames and `buffer_mb`
  megabytes (a 1080p frame is 6 MB). Files wait for room; a live source that outruns the model
  fills the queue (frames get older: the documented trade-off) and beyond it drops the oldest.

A live source that drops out is reopened with backoff (0.5 s doubling to 8 s); each event is kept
for the log. Reconnects count "in a row" until good frames flow again, so a stream that opens but
never yields a decodable frame (or one per connection) gives up after `max_reconnects` like one that
refuses. A file ends (or loops); one unreadable frame is skipped and counted, and a whole pass
without a readable frame ends the run with an error (a `--loop -1` over unreadable files would
otherwise spin forever). With `first_frame_within` (seconds from `start`) a source that has yielded
no frame by then ends the run with an error: the pipeline's own `--duration` clock starts at the
first frame, which may never come.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from camera_app.sources import UnreadableFrame
from deploy.errors import EdgevisionError

log = logging.getLogger("edgevision.camera")

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0
# A live source giving only bad frames this many times in a row is treated as dropped out.
MAX_BAD_IN_A_ROW = 30
# Reconnects count "in a row" until the source has given this many good frames in a row: a stream
# that yields one frame per connection and then fails is flapping, not back.
STABLE_FRAMES = 10
# "unreadable frame skipped" is logged for the first one, then summarised at most this often.
UNREADABLE_LOG_EVERY_S = 10.0


@dataclass
class Frame:
    """index: 0-based position in the source (across loops and reconnects); captured: monotonic
    seconds when the read returned; wall: the same moment as Unix time."""

    index: int
    image: np.ndarray
    captured: float
    wall: float


@dataclass
class CaptureCounters:
    read: int = 0
    dropped: int = 0
    unreadable: int = 0
    reconnects: int = 0


class Capture:
    """Runs `open_source()` results in a daemon thread; `get()` hands out each frame at most once."""

    def __init__(
        self,
        open_source: Callable[[], object],
        live: bool,
        buffer: bool = False,
        buffer_frames: int = 512,
        loops: int = 0,
        realtime: bool = False,
        fallback_fps: float = 30.0,
        max_reconnects: int = 10,
        buffer_mb: float = 256.0,
        first_frame_within: float | None = None,
    ) -> None:
        if buffer_frames < 1:
            raise EdgevisionError(f"--buffer-frames must be >= 1, got {buffer_frames}")
        if not (buffer_mb > 0 and math.isfinite(buffer_mb)):
            raise EdgevisionError(f"--buffer-mb must be a finite number > 0, got {buffer_mb:g}")
        self.open_source = open_source
        self.live = live
        self.realtime = realtime and not live
        self.fallback_fps = fallback_fps
        self.pace_fps: float | None = None
        self.own_clock = live or self.realtime
        self.capacity = buffer_frames if buffer else 1
        self.capacity_bytes = max(1, int(buffer_mb * (1 << 20)))
        self.queued_bytes = 0
        self.first_frame_within = first_frame_within
        self.deadline: float | None = None
        self.attempts_in_a_row = 0
        self.unreadable_logged = 0
        self.unreadable_logged_at = float("-inf")
        self.loops = loops
        self.max_reconnects = max_reconnects
        self.counters = CaptureCounters()
        self.events: list[dict] = []
        self.error: str | None = None
        self.queue: collections.deque[Frame] = collections.deque()
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.ended = False
        self.source = None
        self.thread: threading.Thread | None = None

    def open(self) -> str:
        """Open the source in the caller's thread, so a bad one fails at once; returns its description."""
        self.source = self.open_source()
        if self.realtime:
            self.pace_fps = self.source.fps or self.fallback_fps
        return self.source.description

    def start(self) -> None:
        """Start reading in the capture thread (after `open`); the `first_frame_within` clock starts here."""
        if self.first_frame_within is not None and math.isfinite(self.first_frame_within):
            self.deadline = time.monotonic() + self.first_frame_within
        self.thread = threading.Thread(target=self._run, name="camera-capture", daemon=True)
        self.thread.start()

    def get(self, timeout: float) -> Frame | None:
        """The next frame, or None if none came within `timeout` (see `finished`)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.queue and not self.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            if not self.queue:
                return None
            frame = self.queue.popleft()
            self.queued_bytes -= frame.image.nbytes
            self.cond.notify_all()
            return frame

    @property
    def finished(self) -> bool:
        with self.cond:
            return self.ended and not self.queue

    def drain_events(self) -> list[dict]:
        with self.cond:
            events, self.events = self.events, []
        return events

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the thread to end and wait up to `timeout`; True when it has ended."""
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join(timeout)
            return not self.thread.is_alive()
        return True

    def close(self, timeout: float = 1.0) -> bool:
        """End the capture: stop the thread (see `stop`), or release a source that was opened but
        never started (the model failed to load). True when nothing is left running."""
        if self.thread is None:
            if self.source is not None:
                self.source.release()
            return True
        return self.stop(timeout)

    def _event(self, kind: str, detail: str) -> None:
        log.warning("%s: %s", kind, detail)
        with self.cond:
            self.events.append({"event": kind, "time": time.time(), "detail": detail})

    def _full(self, incoming: int) -> bool:
        """No room for a frame of `incoming` bytes (an empty queue always takes one frame)."""
        return bool(self.queue) and (
            len(self.queue) >= self.capacity or self.queued_bytes + incoming > self.capacity_bytes
        )

    def _put(self, frame: Frame) -> None:
        size = frame.image.nbytes
        with self.cond:
            while self._full(size) and not self.own_clock:
                if self.stopping.is_set():
                    return  # the run is over: this frame was read but never handed out
                self.cond.wait(0.1)
            while self._full(size):
                self.queued_bytes -= self.queue.popleft().image.nbytes
                self.counters.dropped += 1
            self.queue.append(frame)
            self.queued_bytes += size
            self.cond.notify_all()

    def _past_deadline(self) -> bool:
        """True (and the run's error set) when no frame came before the deadline."""
        if self.deadline is None or self.counters.read or time.monotonic() < self.deadline:
            return False
        self.error = (f"no frame from {self.source.description} within {self.first_frame_within:g} s (--duration); "
                      f"{self.counters.unreadable} unreadable, {self.counters.reconnects} reconnects")
        self._event("gave_up", self.error)
        return True

    def _wait(self, seconds: float) -> bool:
        """Sleep `seconds`, cut short by the deadline; True when the run should end (stopping or past it)."""
        if self.deadline is not None and not self.counters.read:
            seconds = min(seconds, max(0.0, self.deadline - time.monotonic()))
        return self.stopping.wait(seconds) or self._past_deadline()

    def _note_unreadable(self, detail: str) -> None:
        """Log the first unreadable frame, then one summary line per UNREADABLE_LOG_EVERY_S at most."""
        now = time.monotonic()
        if now - self.unreadable_logged_at < UNREADABLE_LOG_EVERY_S:
            return
        skipped = self.counters.unreadable - self.unreadable_logged
        if self.unreadable_logged == 0 and skipped == 1:
            log.warning("unreadable frame skipped: %s", detail)
        else:
            log.warning("%d unreadable frames skipped (%d in all; last: %s)", skipped, self.counters.unreadable, detail)
        self.unreadable_logged = self.counters.unreadable
        self.unreadable_logged_at = now

    def _reopen(self) -> object | None:
        """Reopen a live source with backoff; None after `max_reconnects` attempts in a row or when stopping.

        An attempt that opens the source but then yields no good frame still counts: the count is
        reset only by STABLE_FRAMES good frames in a row (in `_run`)."""
        delay = BACKOFF_FIRST_S * 2 ** min(self.attempts_in_a_row, 4)
        while not self.stopping.is_set():
            self.attempts_in_a_row += 1
            attempt = self.attempts_in_a_row
            if 0 <= self.max_reconnects < attempt:
                self.error = (f"gave up on {self.source.description} after {self.max_reconnects} reconnect attempts "
                              f"in a row ({self.counters.unreadable} unreadable frames in all)")
                self._event("gave_up", self.error)
                return None
            if self._wait(delay):
                return None
            try:
                source = self.open_source()
            except EdgevisionError as exc:
                self._event("reconnect_failed", f"attempt {attempt}: {exc}")
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            self.counters.reconnects += 1
            self._event("reconnected", f"{source.description} after {attempt} attempt(s) in a row")
            return source
        return None

    def _run(self) -> None:
        index = 0
        loops_left = self.loops
        bad_in_a_row = good_in_a_row = 0
        good_this_pass = 0
        started = time.monotonic()
        paced = 0
        try:
            while not self.stopping.is_set():
                if self.pace_fps:
                    if self._wait(max(0.0, started + paced / self.pace_fps - time.monotonic())):
                        break
                    paced += 1
                elif self._past_deadline():
                    break
                try:
                    image = self.source.read()
                except UnreadableFrame as exc:
                    self.counters.unreadable += 1
                    index += 1
                    bad_in_a_row += 1
                    good_in_a_row = 0
                    self._note_unreadable(str(exc))
                    if not (self.live and bad_in_a_row >= MAX_BAD_IN_A_ROW):
                        continue
                    image = None
                if image is None:
                    if self.stopping.is_set():
                        break
                    if not self.live:
                        if not good_this_pass:
                            self.error = (f"no readable frame in a whole pass over {self.source.description} "
                                          f"({bad_in_a_row} unreadable)")
                            self._event("gave_up", self.error)
                            break
                        if loops_left == 0:
                            break
                        loops_left -= 1
                        good_this_pass = bad_in_a_row = 0
                        self.source.release()
                        self.source = self.open_source()
                        continue
                    why = (f"{bad_in_a_row} unreadable frames in a row" if bad_in_a_row >= MAX_BAD_IN_A_ROW
                           else "no frame (dropped out or read timeout)")
                    self._event("disconnected", f"{self.source.description}: {why}")
                    self.source.release()
                    source = self._reopen()
                    if source is None:
                        break
                    self.source = source
                    bad_in_a_row = good_in_a_row = 0
                    continue
                bad_in_a_row = 0
                good_in_a_row += 1
                if good_in_a_row >= STABLE_FRAMES:
                    self.attempts_in_a_row = 0
                good_this_pass += 1
                self.counters.read += 1
                self._put(Frame(index, image, time.monotonic(), time.time()))
                index += 1
        except EdgevisionError as exc:
            self.error = str(exc)
            self._event("error", self.error)
        finally:
            self.source.release()
            with self.cond:
                self.ended = True
                self.cond.notify_all()
