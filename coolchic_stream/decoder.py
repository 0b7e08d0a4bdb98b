"""Decoder: packets in coding order -> pictures in display order (PyAV-style send/flush).

    Packet ─► framecodec.parse_payloads (validate, entropy-decode) ─► reconstruct (refs from DPB)
        ─► DPB (kept while referenced) ─► ReorderBuffer ─► Picture (display order)

``prefetch(packets)`` entropy-decodes upcoming packets together (their latents never depend on
a decoded picture): one merged wavefront loop for a whole group of frames instead of one per
frame, on a background thread, so that it overlaps with the reconstruction of the frames
before them (numpy/torch kernels and the range decoder's work run side by side on two cores).
``send`` then uses those results; without a prefetch it decodes the packet alone.

    prefetch(group n+1) ─► [entropy thread] parse_payloads ──┐
    send(packets of group n) ─► reconstruct ◄── results ─────┘
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from .dpb import DecodedPictureBuffer, ReorderBuffer
from .errors import BitstreamError
from .framecodec import ParseResult, parse_payloads, reconstruct
from .gop import ReferenceTracker
from .types import FrameType, Packet, Picture, SequenceInfo


DEFAULT_THREADS = 1  # decoding is many small ops: one intra-op thread is fastest, two oversubscribe busy cores
PREFETCH_SAMPLES = 2_000_000  # luma samples per prefetched group: beyond this, bigger batches only cost memory traffic
_ENTROPY_THREAD: ThreadPoolExecutor | None = None


def _entropy_thread() -> ThreadPoolExecutor:
    """One background thread for every Decoder of the process: entropy decoding is serial per group."""
    global _ENTROPY_THREAD
    if _ENTROPY_THREAD is None:
        _ENTROPY_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ccv-entropy")
    return _ENTROPY_THREAD


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads (0: leave as is); results never depend on it."""
    old = torch.get_num_threads()
    if n <= 0 or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def prefetch_group(sequence: SequenceInfo | None) -> int:
    """How many packets to entropy-decode together: a GOP (at least 8) of small frames, fewer of large ones."""
    if sequence is None:
        return 8
    frames = PREFETCH_SAMPLES // max(sequence.width * sequence.height, 1)
    return max(1, min(max(sequence.gop_size, 8), frames))


class Decoder:
    def __init__(self, sequence: SequenceInfo | None = None, threads: int = DEFAULT_THREADS, pipeline: bool = True) -> None:
        """pipeline: run prefetched entropy decoding on the background thread (False: at once, in
        the calling thread; same results)."""
        self.sequence = sequence
        self.threads = threads
        self.pipeline = pipeline
        self.dpb = DecodedPictureBuffer()
        self.reorder = ReorderBuffer()
        self._tracker = self._new_tracker()
        self._waiting_for_intra = False
        self._prefetched: deque[tuple[bytes, Future, int]] = deque()

    def _new_tracker(self) -> ReferenceTracker:
        s = self.sequence
        if s is None:
            return ReferenceTracker(None)
        return ReferenceTracker(s.gop_structure, s.gop_size, s.intra_period, s.frame_count)

    def send(self, packet: Packet | bytes) -> list[Picture]:
        """Decode one frame; returns the pictures whose display turn has come."""
        with torch_threads(self.threads):
            return self._send(packet)

    def prefetch(self, packets: Iterable[Packet | bytes]) -> None:
        """Start entropy-decoding the packets about to be sent, all together, in the background."""
        datas = [p.data if isinstance(p, Packet) else p for p in packets]
        if datas:
            if self.pipeline:
                future = _entropy_thread().submit(parse_payloads, datas)
            else:
                future = Future()
                future.set_result(parse_payloads(datas))
            self._prefetched.extend((data, future, slot) for slot, data in enumerate(datas))

    def _parsed(self, data: bytes) -> ParseResult:
        if any(pending is data for pending, _, _ in self._prefetched):
            while True:  # entries of packets the caller skipped are dropped on the way
                pending, future, slot = self._prefetched.popleft()
                if pending is data:
                    result = future.result()[slot]
                    break
        else:
            result = parse_payloads([data])[0]
        if isinstance(result, BitstreamError):
            raise result
        return result

    def _send(self, packet: Packet | bytes) -> list[Picture]:
        if self._waiting_for_intra and isinstance(packet, Packet) and packet.frame_type != FrameType.I:
            return []  # dropped until the next I frame: no need to entropy-decode it
        data = packet.data if isinstance(packet, Packet) else packet
        header, coded = self._parsed(data)
        out: list[Picture] = []
        if header.frame_type == FrameType.I:
            self._waiting_for_intra = False
            out += self.reorder.start_segment(header.display_index)
        elif self._waiting_for_intra:
            return out  # after a reset, inter frames cannot be decoded until the next I frame
        refs = [self.dpb.get(r, referenced_by=header.display_index) for r in header.references]
        picture = reconstruct(header, coded, refs)
        self.dpb.insert(header.display_index, picture)
        self.dpb.release(self._tracker.decoded(header.display_index, header.frame_type, header.references))
        return out + self.reorder.push(picture)

    def flush(self) -> list[Picture]:
        return self.reorder.flush()

    def reset(self) -> None:
        """Forget every reference: decoding resumes at the next I frame."""
        self.dpb.clear()
        self._tracker = self._new_tracker()
        self._waiting_for_intra = True
