"""Decoder: packets in coding order -> pictures in display order (PyAV-style send/flush).

    Packet ─► framecodec.parse_payloads (validate, entropy-decode) ─► reconstruct (refs from DPB)
        ─► DPB (kept while referenced) ─► ReorderBuffer ─► Picture (display order)

``prefetch(packets)`` entropy-decodes upcoming packets together (their latents never depend on
a decoded picture): one merged wavefront loop for a whole group of frames instead of one per
frame, in a helper process (``worker``), so that it runs beside the reconstruction of the
frames before them on the other core. ``send`` then parses the packet's headers and takes its
NN and latent integers from the helper's reply; without a prefetch it decodes the packet alone.

    prefetch(group n+1) ─► [helper process] parse_payloads ─► latents + NN integers ─┐
    send(packets of group n) ─► parse_with_integers ─► reconstruct ◄───────────────────┘

At a cold start the first half of the group is entropy-decoded in the calling process (it has
nothing else to do yet) while the helper takes the second half (tools/bench_decode.py measures it).

A frame's modules may be copied or delta-coded from its references' networks, which the DPB
keeps with their pictures. Whatever was decoded ahead of time is checked against the DPB as
the frame is sent: it is used only if its predicted modules came from the very integers the DPB
holds for those references; otherwise the frame is decoded again here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from typing import TYPE_CHECKING

from .architecture import parameter_shapes
from .bitstream.frame import FrameHeader
from .bitstream.syntax import FramePrefix
from .bitstream.units import read_frame_format
from .dpb import DecodedPictureBuffer, LastDecoded, ReorderBuffer
from .entropy.nn_weights import predict_module
from .errors import BitstreamError, CorruptDataError, DecodeOrderError, Failed
from .gop import ReferenceTracker
from .spec import NNMode
from .types import FrameType, GopStructure, Packet, Picture, SequenceInfo
from .worker import Integers, NetworkStore, Undecoded, decode_results, entropy_worker
from .threads import torch_threads

if TYPE_CHECKING:
    import torch

    from .framecodec import CodedCoolChic, FrameNetworks, NetworkLookup, ParseResult


def _codec():
    """The reconstruction side (``framecodec``, ``recon``: torch), imported when a frame is first
    decoded: a stream refused from its headers never loads torch (a fast, small exit 4)."""
    from . import framecodec

    return framecodec


DEFAULT_THREADS = 1  # decoding is many small ops: one intra-op thread is fastest, two oversubscribe busy cores
PREFETCH_SAMPLES = 2_000_000  # luma samples per prefetched group: beyond this, bigger batches only cost memory traffic
_ENTROPY_THREAD: ThreadPoolExecutor | None = None


def _entropy_thread() -> ThreadPoolExecutor:
    """Fallback where no helper process can start: one background thread for the whole process."""
    global _ENTROPY_THREAD
    if _ENTROPY_THREAD is None:
        _ENTROPY_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ccv-entropy")
    return _ENTROPY_THREAD


def prefetch_group(sequence: SequenceInfo | None) -> int:
    """How many packets to entropy-decode together: a GOP (at least 8) of small frames, fewer of large ones."""
    if sequence is None:
        return 8
    frames = PREFETCH_SAMPLES // max(sequence.width * sequence.height, 1)
    return max(1, min(max(sequence.gop_size, 8), frames))


Ahead = "ParseResult | Failed | Integers | Undecoded"  # what a prefetch left for one packet


class _Deferred:
    """Packets entropy-decoded together in the calling thread when the first of them is sent
    (their predicted modules resolved from the DPB as it then stands, or from earlier packets
    of the group)."""

    def __init__(self, datas: list[bytes], lookup: NetworkLookup, last: LastDecoded) -> None:
        self._datas: list[bytes] | None = datas
        self._lookup = lookup
        self._last = last  # the decoder's: read when the group is decoded, not now
        self._results: list[ParseResult | Failed] = []

    def result(self) -> list[ParseResult | Failed]:
        if self._datas is not None:
            self._results, self._datas = _codec().parse_payloads(self._datas, self._lookup, self._last), None
        return self._results


def _resolve(data: bytes, item: Ahead, lookup: NetworkLookup) -> ParseResult | Failed:
    """A prefetched slot -> the packet's parse result: the helper's integers are joined with the
    packet's own headers and this decoder's references; a packet decoded nowhere, or that failed
    for want of a reference (which may be held now), is decoded here."""
    if isinstance(item, Integers):
        try:
            return _codec().parse_with_integers(data, item.data, lookup)
        except BitstreamError as exc:
            return Failed(exc)
        except ValueError:
            pass  # integers that do not fit, or decoded with another ARM: trust nothing, decode here
    elif isinstance(item, Failed):
        if not isinstance(item.error, DecodeOrderError):
            return item
    elif not isinstance(item, Undecoded):
        return item
    return _codec().parse_payloads([data], lookup)[0]


def _stale(header: FrameHeader, coded: list[CodedCoolChic], held: NetworkLookup) -> str | None:
    """Why a frame decoded ahead of time took a predicted module from other integers than the
    DPB holds for that reference (None: it did not)."""
    for c in coded:
        for name, p in c.predictions.items():
            if p.mode == NNMode.FRESH:
                continue
            networks = _codec().prediction_source(held(header.references[p.reference]), c.role, c.param)
            shapes = parameter_shapes(c.param)[name]
            if networks is None or not predict_module(networks.modules[name], shapes).same_integers(p.source):
                return f"{c.role.name.lower()} {name}"
    return None


class DropCause(Enum):
    """Why a frame did not come out of the decoder."""

    DAMAGED_UNIT = "damaged unit"  # the container lost it (CRC, syntax): reported through ``lost``
    UNDECODABLE = "undecodable"  # its payload failed a check or does not decode
    AFTER_LOSS = "after a loss"  # it may predict from a lost frame: skipped until the next I frame


@dataclass(frozen=True)
class DroppedFrame:
    """A frame the decoder did not output: its display index when its header was readable."""

    pts: int | None
    cause: DropCause
    message: str  # one line, naming the frame and the field


class DecodeErrors(Enum):
    """What ``Decoder.send`` does with a damaged or undecodable frame."""

    RESUME = "resume"  # drop it and what depends on it, say so in ``dropped``, resume at the next I frame
    RAISE = "raise"  # raise the BitstreamError (the caller recovers, e.g. with ``reset``)


def _frame_type(packet: Packet | bytes) -> FrameType | None:
    if isinstance(packet, Packet):
        return packet.frame_type
    try:
        return read_frame_format(packet, None)
    except BitstreamError:
        return None


def _pts(packet: Packet | bytes) -> int | None:
    if isinstance(packet, Packet):
        return packet.pts
    try:
        return int(FramePrefix.parse(packet).display_index)
    except Exception:  # noqa: BLE001 - unreadable header: no pts to name
        return None


class Decoder:
    """Packets in coding order -> pictures in display order; damage is recovered from here.

    By default (``DecodeErrors.RESUME``) a frame that fails to parse or decode is dropped, the
    decoder forgets its references and skips every frame until the next I frame (frames after a
    loss may predict from it: never decoded from stale samples or networks), and pictures decoded
    before the damage still come out. Each skipped frame is listed in ``dropped``, in stream
    order; ``lost(error)`` reports a unit the container could not read (the same recovery).
    """

    def __init__(
        self,
        sequence: SequenceInfo | None = None,
        threads: int = DEFAULT_THREADS,
        pipeline: bool = True,
        errors: DecodeErrors = DecodeErrors.RESUME,
    ) -> None:
        """pipeline: run prefetched entropy decoding in the helper process (False: at once, in
        the calling thread; same results)."""
        self.errors = DecodeErrors(errors)
        self.dropped: list[DroppedFrame] = []
        self.sequence = sequence
        # What every frame must match before anything is allocated for it: the sequence header,
        # or without one the first decoded frame's format (no stream changes size mid-way).
        self._format = sequence
        self.threads = threads
        self.pipeline = pipeline
        self.dpb = DecodedPictureBuffer()
        self._last = LastDecoded()  # what the frame decoded last holds: the next P/B frame inherits it
        self.reorder = ReorderBuffer()
        self._tracker = self._new_tracker()
        self._waiting_for_intra = False
        self._prefetched: deque[tuple[bytes, Future | _Deferred, int]] = deque()
        self._fixed: dict[int, torch.Tensor] = {}  # Q16 form of DPB pictures, computed at first use
        self._thread_store = NetworkStore()  # the background thread's networks, where no helper process runs

    def _networks(self, display_index: int) -> FrameNetworks:
        return self.dpb.networks(display_index)

    def _new_tracker(self) -> ReferenceTracker:
        s = self.sequence
        if s is None:
            return ReferenceTracker(None)
        return ReferenceTracker(s.gop_structure, s.gop_size, s.intra_period, s.frame_count)

    def send(self, packet: Packet | bytes) -> list[Picture]:
        """Decode one frame; returns the pictures whose display turn has come."""
        if self._waiting_for_intra and _frame_type(packet) != FrameType.I:
            # dropped until the next I frame: no need to entropy-decode it
            self._drop(packet, DropCause.AFTER_LOSS, "follows a lost frame")
            return []
        try:
            # before anything is allocated, decoded or even imported for it
            read_frame_format(packet.data if isinstance(packet, Packet) else packet, self._format)
            with torch_threads(self.threads):
                return self._send(packet)
        except BitstreamError as exc:
            if self.errors == DecodeErrors.RAISE:
                raise
            self._drop(packet, DropCause.UNDECODABLE, str(exc))
            self.reset()
            return []

    def lost(self, error: BitstreamError) -> None:
        """A unit the caller could not read (damaged, cut): frames may predict from it, so the
        decoder skips to the next I frame."""
        self.dropped.append(DroppedFrame(None, DropCause.DAMAGED_UNIT, str(error)))
        self.reset()

    def _drop(self, packet: Packet | bytes, cause: DropCause, message: str) -> None:
        pts = _pts(packet)
        who = f"frame pts {pts}" if pts is not None else "a frame"
        self.dropped.append(DroppedFrame(pts, cause, f"{who} {message}" if cause == DropCause.AFTER_LOSS else f"{who}: {message}"))

    def prefetch(self, packets: Iterable[Packet | bytes]) -> None:
        """Start entropy-decoding the packets about to be sent, all together, in the background.

        When nothing is in flight (the start of a stream, or after the caller caught up) the
        calling process has nothing to reconstruct until some latents are decoded, so it takes
        the first half of the group itself (decoded at the first ``send``) while the helper
        decodes the whole group (the second half's networks are predicted from the first's) and
        then the next groups: the first pictures come out after half a group's entropy decoding
        instead of a whole one, and neither core idles.
        """
        # A frame whose header breaks the format is left to send, which reports it: it must not
        # make the helper allocate what its header claims.
        datas = [d for p in packets if self._well_formed(d := p.data if isinstance(p, Packet) else p)]
        if not datas:
            return
        worker = entropy_worker() if self.pipeline else None
        if worker is not None:
            own = len(datas) // 2 if not self._prefetched else 0
            if own:
                deferred = _Deferred(datas[:own], self._networks, self._last)
                self._prefetched.extend((data, deferred, slot) for slot, data in enumerate(datas[:own]))
            # The helper decodes the caller's half too: its store must hold those frames' networks,
            # which the frames after them predict from (without them every frame of the segment
            # failed there and was decoded again here).
            future = worker.submit(datas)
            self._prefetched.extend((data, future, own + slot) for slot, data in enumerate(datas[own:]))
            return
        if self.pipeline:
            # ahead of the DPB: failures (a reference's networks not decoded yet) are retried at send
            future = _entropy_thread().submit(decode_results, datas, self._thread_store)
            self._prefetched.extend((data, future, slot) for slot, data in enumerate(datas))
        else:  # at the group's first send, when the DPB holds what came before it
            deferred = _Deferred(datas, self._networks, self._last)
            self._prefetched.extend((data, deferred, slot) for slot, data in enumerate(datas))

    def _well_formed(self, data: bytes) -> bool:
        try:
            read_frame_format(data, self._format)
        except BitstreamError:
            return False
        return True

    def _parsed(self, data: bytes) -> ParseResult:
        if any(pending is data for pending, _, _ in self._prefetched):
            while True:  # entries of packets the caller skipped are dropped on the way
                pending, future, slot = self._prefetched.popleft()
                if pending is data:
                    result = _resolve(data, future.result()[slot], self._networks)
                    break
            if not isinstance(result, Failed) and _stale(*result, self._networks_or_none) is not None:
                result = _resolve(data, Undecoded(), self._networks)  # decoded ahead from other integers
        else:
            result = _resolve(data, Undecoded(), self._networks)
        if isinstance(result, Failed):
            raise result.error
        return result

    def _networks_or_none(self, display_index: int) -> FrameNetworks:
        try:
            return self.dpb.networks(display_index)
        except DecodeOrderError:
            return {}

    def _send(self, packet: Packet | bytes) -> list[Picture]:
        data = packet.data if isinstance(packet, Packet) else packet
        codec = _codec()
        header, coded = self._parsed(data)
        out: list[Picture] = []
        if header.frame_type == FrameType.I:
            self._waiting_for_intra = False
            out += self.reorder.start_segment(header.display_index)
        refs = [self.dpb.get(r, referenced_by=header.display_index) for r in header.references]
        for r, ref in zip(header.references, refs):
            if ref.planes[0].shape != (header.height, header.width) or ref.data_type != header.data_type:
                raise CorruptDataError(
                    f"frame {header.display_index} ({header.width}x{header.height} {header.data_type.name}) "
                    f"predicts from frame {r} of another format"
                )
        fixed = None
        if header.coding_type != FrameType.I:
            for r, ref in zip(header.references, refs):
                if r not in self._fixed:
                    self._fixed[r] = codec.picture_to_fixed(ref)
            fixed = [self._fixed[r] for r in header.references]
        networks = codec.held_networks(header, coded, self._networks, self._last)  # before any sample is computed
        picture = codec.reconstruct(header, coded, refs, fixed)
        if self._format is None:
            self._format = SequenceInfo(
                header.width, header.height, header.data_type, header.bit_depth, gop_structure=GopStructure.RANDOM_ACCESS
            )
        self._fixed.pop(header.display_index, None)  # a replaced picture's Q16 form is stale
        self.dpb.insert(header.display_index, picture, networks)
        self._last.keep(header.coding_index, networks)
        self.dpb.release(self._tracker.decoded(header.display_index, header.frame_type, header.references))
        held = self.dpb.held()
        self._fixed = {r: t for r, t in self._fixed.items() if r in held}
        return out + self.reorder.push(picture)

    def flush(self) -> list[Picture]:
        return self.reorder.flush()

    def reset(self) -> None:
        """Forget every reference: decoding resumes at the next I frame."""
        self.dpb.clear()
        self._last.clear()
        self._fixed.clear()
        self._tracker = self._new_tracker()
        self._waiting_for_intra = True
