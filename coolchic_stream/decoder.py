"""Decoder: packets in coding order -> pictures in display order (PyAV-style send/flush).

    Packet ─► framecodec.parse_payloads (validate, entropy-decode) ─► reconstruct (refs from DPB)
        ─► DPB (kept while referenced) ─► ReorderBuffer ─► Picture (display order)

``prefetch(packets)`` entropy-decodes upcoming packets together (their latents never depend on
a decoded picture): one merged wavefront loop for a whole group of frames instead of one per
frame. ``send`` then uses those results; without a prefetch it decodes the packet alone.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable
from typing import Iterator

import torch

from .dpb import DecodedPictureBuffer, ReorderBuffer
from .errors import BitstreamError
from .framecodec import ParseResult, parse_payloads, reconstruct
from .gop import ReferenceTracker
from .types import FrameType, Packet, Picture, SequenceInfo


DEFAULT_THREADS = 1  # decoding is many small ops: one intra-op thread is fastest, two oversubscribe busy cores


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


class Decoder:
    def __init__(self, sequence: SequenceInfo | None = None, threads: int = DEFAULT_THREADS) -> None:
        self.sequence = sequence
        self.threads = threads
        self.dpb = DecodedPictureBuffer()
        self.reorder = ReorderBuffer()
        self._tracker = self._new_tracker()
        self._waiting_for_intra = False
        self._prefetched: deque[tuple[bytes, ParseResult | BitstreamError]] = deque()

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
        """Entropy-decode the packets about to be sent, all together (results kept in order)."""
        datas = [p.data if isinstance(p, Packet) else p for p in packets]
        if datas:
            with torch_threads(self.threads):
                self._prefetched.extend(zip(datas, parse_payloads(datas)))

    def _parsed(self, data: bytes) -> ParseResult:
        if any(pending is data for pending, _ in self._prefetched):
            while True:  # entries of packets the caller skipped are dropped on the way
                pending, result = self._prefetched.popleft()
                if pending is data:
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
