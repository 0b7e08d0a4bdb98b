"""Entropy decoding of upcoming packets in a helper process, beside the reconstruction.

    main process                                         helper process
    submit(payloads) ─► sender thread ──► pipe ──► framecodec.parse_payloads ─┐
    Future ◄────────── receiver thread ◄── pipe ◄── latents + NN integers | "failed" ─┘
    Decoder: framecodec.parse_with_integers(payload, integers)  (headers only)

Why a process and not a thread: latent decoding is thousands of small numpy and range-coder
calls per frame, which hold the GIL most of the time, so a decoding thread stalls the
reconstruction it is meant to run beside (352x288, same code otherwise: 17 frames/s with a
thread, 23 with a process). Messages are plain bytes, never pickles: a request is the packets' payloads, a reply
one status byte and the decoded integers per payload (``framecodec.integers_to_bytes``).

A payload the helper could not decode comes back as "failed" and is decoded again in the main
process, which raises the error it gives -- so errors read the same with or without the helper.
If the helper dies or cannot start, pending and later groups are decoded in the main process.

Networks predicted across frames: a frame's latents decode with its ARM, which may be copied or
delta-coded from a reference picture's. The helper keeps the networks of the frames it decoded
(:class:`NetworkStore`, by display index, cleared at each I frame, and what the frame it decoded
last holds, which the next one inherits) and resolves predicted modules
from them; its reply carries the ARM each frame's latents were decoded with, and the main
process, which resolves every module from its own DPB, uses the latents only if its ARM is the
same (else it decodes the payload itself). The helper's store can only cost time, never a
wrong picture.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import struct
import sys
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass

from .dpb import LastDecoded
from .errors import Failed
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .framecodec import FrameNetworks, ParseResult

_COUNT = struct.Struct("<I")
_ITEM = struct.Struct("<BI")  # status, byte length
OK, FAILED = 0, 1



@dataclass(frozen=True)
class Integers:
    """A payload's NN and latent integers, decoded by the helper (``framecodec.integers_to_bytes``)."""

    data: bytes


@dataclass(frozen=True)
class Undecoded:
    """A payload decoded nowhere yet (it failed, or predicts from networks the helper does not
    hold): the caller decodes it, and reports whatever fails."""


HelperResult = Integers | Undecoded
Reply = list[HelperResult]  # per payload of a request, in order


def pack_payloads(payloads: list[bytes]) -> bytes:
    parts = [_COUNT.pack(len(payloads))]
    for data in payloads:
        parts += [_COUNT.pack(len(data)), data]
    return b"".join(parts)


def unpack_payloads(message: bytes) -> list[bytes]:
    (n,), pos, out = _COUNT.unpack_from(message), _COUNT.size, []
    for _ in range(n):
        (size,) = _COUNT.unpack_from(message, pos)
        pos += _COUNT.size
        out.append(message[pos : pos + size])
        pos += size
    return out


def pack_reply(reply: Reply) -> bytes:
    parts = [_COUNT.pack(len(reply))]
    for item in reply:
        data = item.data if isinstance(item, Integers) else b""
        parts += [_ITEM.pack(OK if isinstance(item, Integers) else FAILED, len(data)), data]
    return b"".join(parts)


def unpack_reply(message: bytes) -> Reply:
    (n,), pos, out = _COUNT.unpack_from(message), _COUNT.size, []
    for _ in range(n):
        status, size = _ITEM.unpack_from(message, pos)
        pos += _ITEM.size
        out.append(Integers(message[pos : pos + size]) if status == OK else Undecoded())
        pos += size
    return out


class NetworkStore:
    """The networks of the frames a background decoder decoded last, by display index: the
    lookup its predicted modules resolve through. Cleared at each I frame (segments are closed);
    at most ``limit`` frames, the oldest dropped first (a frame predicting from a dropped one is
    then decoded by the caller)."""

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._held: OrderedDict[int, FrameNetworks] = OrderedDict()
        self.last = LastDecoded()  # what the frame it decoded last holds

    def __call__(self, display_index: int) -> "FrameNetworks":
        from .framecodec import no_references

        if display_index in self._held:
            return self._held[display_index]
        return no_references(display_index)

    def update(self, results: "list[ParseResult | Failed]") -> None:
        """Keep the networks of the frames just decoded (coding order)."""
        from .errors import DecodeOrderError
        from .framecodec import held_networks
        from .types import FrameType

        for result in results:
            if isinstance(result, Failed):
                self.last.clear()  # what the next frame inherits is unknown
                continue
            header, coded = result
            if header.frame_type == FrameType.I:
                self._held.clear()
            self._held.pop(header.display_index, None)
            try:
                held = held_networks(header, coded, self, self.last, ahead=True)
            except DecodeOrderError:
                held = None  # what it inherits is not held here: frames predicting from it are decoded by the caller
            self.last.keep(header.coding_index, held)
            if held is None:
                continue
            self._held[header.display_index] = held
            while len(self._held) > self.limit:
                self._held.popitem(last=False)


_STORE = NetworkStore()  # the helper process's own (one helper serves one decoding process)


def decode_results(payloads: list[bytes], store: NetworkStore) -> "list[ParseResult | Undecoded]":
    """Parse and entropy-decode payloads (coding order) with predicted modules resolved through
    ``store``, then keep their networks there; what failed is left ``Undecoded`` for the caller."""
    from .framecodec import parse_payloads

    try:
        results = parse_payloads(payloads, store, store.last)
    except Exception:  # noqa: BLE001 - anything unexpected: the caller decodes and reports it
        return [Undecoded()] * len(payloads)
    store.update(results)
    return [Undecoded() if isinstance(r, Failed) else r for r in results]


def decode_group(payloads: list[bytes], store: NetworkStore | None = None) -> Reply:
    """What the helper computes for one request (also usable in-process)."""
    from .framecodec import integers_to_bytes

    results = decode_results(payloads, _STORE if store is None else store)
    return [r if isinstance(r, Undecoded) else Integers(integers_to_bytes(r[1])) for r in results]


def _serve(conn, parent_end=None) -> None:
    """Helper process main loop: one reply per request, in order, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    if parent_end is not None:
        # A forked helper inherits the main process's end of the pipe: closed here, the pipe
        # ends (EOF) when the main process does, however it dies (killed, os._exit), and the
        # helper with it.
        parent_end.close()
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        reply = pack_reply(decode_group(unpack_payloads(message)))
        try:
            conn.send_bytes(reply)
        except OSError:  # the decoding process ended (or died) before this reply: so does the helper
            return


class EntropyWorker:
    """A helper process with a FIFO of requests; ``submit`` returns a Future of the Reply."""

    def __init__(self) -> None:
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        context = multiprocessing.get_context(method)
        self._conn, child = context.Pipe()
        inherit = (child, self._conn) if method == "fork" else (child,)
        self._process = context.Process(target=_serve, args=inherit, name="ccv-entropy", daemon=True)
        self._process.start()
        child.close()
        self._lock = threading.Lock()
        self._pending: deque[tuple[Future, int]] = deque()
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.alive = True
        # Two I/O threads (blocked in system calls, without the GIL, nearly all the time) so that
        # neither side of the pipe ever waits for the other to read: no deadlock on full buffers,
        # and prefetch() returns at once even while the helper is busy.
        for target in (self._send_loop, self._receive_loop):
            threading.Thread(target=target, name=f"ccv-entropy-{target.__name__[1:5]}", daemon=True).start()

    def submit(self, payloads: list[bytes]) -> Future:
        future: Future = Future()
        with self._lock:
            if not self.alive:
                future.set_result([Undecoded()] * len(payloads))
                return future
            self._pending.append((future, len(payloads)))
            self._outbox.put(pack_payloads(payloads))
        return future

    def _send_loop(self) -> None:
        while (message := self._outbox.get()) is not None:
            try:
                self._conn.send_bytes(message)
            except OSError:
                self._fail()
                return

    def _receive_loop(self) -> None:
        while True:
            try:
                reply = unpack_reply(self._conn.recv_bytes())
            except (EOFError, OSError, struct.error):
                self._fail()
                return
            with self._lock:
                future, _ = self._pending.popleft()
            future.set_result(reply)

    def _fail(self) -> None:
        """The helper is gone: every pending request is answered 'decode it yourself'."""
        with self._lock:
            self.alive = False
            pending, self._pending = list(self._pending), deque()
        self._outbox.put(None)  # ends the sender thread
        for future, n in pending:
            if not future.done():
                future.set_result([Undecoded()] * n)


_WORKER: EntropyWorker | None = None
_WORKER_LOCK = threading.Lock()


def entropy_worker() -> EntropyWorker | None:
    """The process-wide helper (started on first use, restarted if it died); None if it cannot start."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None or not _WORKER.alive:
            try:
                _WORKER = EntropyWorker()
            except (OSError, ValueError, RuntimeError, AssertionError):
                # No child processes here (a daemonic multiprocessing worker asserts, a sandbox may
                # refuse fork): the decoder falls back to a thread.
                _WORKER = None
        return _WORKER


__all__ = [
    "EntropyWorker", "HelperResult", "Integers", "NetworkStore", "Reply", "Undecoded", "decode_group",
    "decode_results", "entropy_worker",
]
