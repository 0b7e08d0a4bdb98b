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
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import struct
import sys
import threading
from collections import deque
from concurrent.futures import Future

_COUNT = struct.Struct("<I")
_ITEM = struct.Struct("<BI")  # status, byte length
OK, FAILED = 0, 1

Reply = list[bytes | None]  # per payload: its decoded integers, or None to decode it in the caller


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
    for latents in reply:
        parts.append(_ITEM.pack(FAILED, 0) if latents is None else _ITEM.pack(OK, len(latents)))
        parts.append(latents or b"")
    return b"".join(parts)


def unpack_reply(message: bytes) -> Reply:
    (n,), pos, out = _COUNT.unpack_from(message), _COUNT.size, []
    for _ in range(n):
        status, size = _ITEM.unpack_from(message, pos)
        pos += _ITEM.size
        out.append(message[pos : pos + size] if status == OK else None)
        pos += size
    return out


def decode_group(payloads: list[bytes]) -> Reply:
    """What the helper computes for one request (also usable in-process)."""
    from .framecodec import integers_to_bytes, parse_payloads

    try:
        results = parse_payloads(payloads)
    except Exception:  # noqa: BLE001 - anything unexpected: the caller decodes and reports it
        return [None] * len(payloads)
    return [None if isinstance(r, BaseException) else integers_to_bytes(r[1]) for r in results]


def _serve(conn) -> None:
    """Helper process main loop: one reply per request, in order, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        conn.send_bytes(pack_reply(decode_group(unpack_payloads(message))))


class EntropyWorker:
    """A helper process with a FIFO of requests; ``submit`` returns a Future of the Reply."""

    def __init__(self) -> None:
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        context = multiprocessing.get_context(method)
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="ccv-entropy", daemon=True)
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
                future.set_result([None] * len(payloads))
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
                future.set_result([None] * n)


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


__all__ = ["EntropyWorker", "Reply", "decode_group", "entropy_worker"]
