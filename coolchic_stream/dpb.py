"""Decoded picture buffer and display reordering, shared by the encoder and the decoder.

Pure Python (no torch). Two separate buffers because they answer different questions, and the
register of what the frame decoded last holds (:class:`LastDecoded`, format 6.0):

* :class:`DecodedPictureBuffer` holds the *references*: reconstructed pictures that frames still
  to be coded/decoded will predict from, keyed by display index, each with the decoded integers
  of its networks (a later frame may copy or delta-code its modules from them). Which ones to keep comes from
  :meth:`coolchic_stream.gop.GopScheduler.still_referenced` (encoder) or
  :class:`coolchic_stream.gop.ReferenceTracker` (decoder)::

      picture = decode(frame, refs=[dpb.get(r, referenced_by=pts) for r in references])
      dpb.insert(pts, picture, networks)
      dpb.release(keep)            # keep = scheduler.still_referenced(dts) / tracker.decoded(...)

* :class:`ReorderBuffer` turns pictures decoded in coding order into display order::

      coding order   0  8  4  2  1  3  6  5  7
      output after   0  .  .  .  1,2  3,4  .  5,6  7,8
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

from .errors import DecodeOrderError
from .spec import MAX_GOP_SIZE

__all__ = ["DecodedPictureBuffer", "LastDecoded", "MAX_HELD", "ReorderBuffer"]

# Most pictures either buffer holds: a random-access group of the longest GOP plus its past anchor.
MAX_HELD = MAX_GOP_SIZE + 1


class DecodedPictureBuffer:
    """Reference pictures (any object, typically :class:`~coolchic_stream.types.Picture`) by display
    index, each with its networks (any object, typically ``framecodec.FrameNetworks``)."""

    def __init__(self, limit: int = MAX_HELD) -> None:
        self.limit = limit
        self._pictures: dict[int, Any] = {}
        self._networks: dict[int, Any] = {}

    def insert(self, display_index: int, picture: Any, networks: Any = None) -> None:
        """Store (or replace) the reconstruction of frame ``display_index`` and its networks.

        Beyond ``limit`` pictures the one stored first goes: no stream the scheduler writes holds
        that many, so only a damaged or hostile one loses references (a frame predicting from it
        is then reported, not decoded), and memory stays bounded whatever a stream says.
        """
        self._pictures.pop(display_index, None)  # a replaced picture counts as stored now
        self._pictures[display_index] = picture
        self._networks[display_index] = networks
        while len(self._pictures) > self.limit:
            oldest = next(iter(self._pictures))
            del self._pictures[oldest]
            del self._networks[oldest]

    def get(self, display_index: int, referenced_by: int | None = None) -> Any:
        """The picture at ``display_index``; ``referenced_by`` (the asking frame's pts) is for errors."""
        self._check(display_index, referenced_by)
        return self._pictures[display_index]

    def networks(self, display_index: int, referenced_by: int | None = None) -> Any:
        """The networks the picture at ``display_index`` was decoded with (DecodeOrderError if not held)."""
        self._check(display_index, referenced_by)
        return self._networks[display_index]

    def _check(self, display_index: int, referenced_by: int | None) -> None:
        if display_index not in self._pictures:
            who = "a frame" if referenced_by is None else f"frame {referenced_by}"
            raise DecodeOrderError(
                f"{who} refers to display index {display_index} which the decoder does not hold",
                hint="the stream may start after a random-access point or be corrupted",
            )

    def release(self, keep: Iterable[int]) -> None:
        """Drop every picture (and its networks) whose display index is not in ``keep`` (no longer referenced)."""
        keep = set(keep)
        for display_index in [d for d in self._pictures if d not in keep]:
            del self._pictures[display_index]
            del self._networks[display_index]

    def clear(self) -> None:
        """Drop everything: at an I frame (segments are closed) or on a decoder reset."""
        self._pictures.clear()
        self._networks.clear()

    def held(self) -> frozenset[int]:
        """Display indices currently stored."""
        return frozenset(self._pictures)

    def __len__(self) -> int:
        return len(self._pictures)

    def __contains__(self, display_index: object) -> bool:
        return display_index in self._pictures

    def __repr__(self) -> str:
        return f"DecodedPictureBuffer({sorted(self._pictures)})"


class LastDecoded:
    """What the frame decoded last (coding order) holds (typically ``framecodec.FrameNetworks``):
    what the next P/B frame inherits last, whatever the reference structure (a leaf B frame's
    networks reach the frames coded after it).

    ``networks`` None: that frame was seen but what it holds is unknown here (it failed, or its
    references are not held): the next frame's holdings are unknown too, never guessed.
    """

    def __init__(self, coding_index: int | None = None, networks: Any = None) -> None:
        self.coding_index = coding_index
        self.networks = networks

    def keep(self, coding_index: int, networks: Any) -> None:
        self.coding_index, self.networks = coding_index, networks

    def clear(self) -> None:
        self.coding_index = self.networks = None

    def copy(self) -> "LastDecoded":
        return LastDecoded(self.coding_index, self.networks)

    def before(self, coding_index: int) -> Any:
        """What the frame at ``coding_index - 1`` holds (DecodeOrderError if that is not the frame
        decoded last, or what it holds is unknown)."""
        if self.coding_index != coding_index - 1 or self.networks is None:
            raise DecodeOrderError(
                f"the frame at coding index {coding_index} inherits networks from the frame coded before it, "
                "which the decoder did not decode",
                "the stream may start after a random-access point or be corrupted",
            )
        return self.networks


class ReorderBuffer:
    """Decoded pictures (coding order) in, display order out.

    Each picture must have a ``pts`` attribute (its display index). A picture comes out once every
    picture of smaller pts in its segment has come out. Call :meth:`start_segment` at each I frame:
    segments are closed, so anything still buffered then belongs to the previous segment and is
    flushed (that only happens when frames were lost). Without a :meth:`start_segment` call, the
    first picture pushed sets the expected pts.
    """

    def __init__(self, limit: int = MAX_HELD) -> None:
        self.limit = limit
        self._heap: list[tuple[int, int, Any]] = []  # (pts, arrival, picture); arrival breaks ties
        self._arrivals = 0
        self._next_pts: int | None = None

    def push(self, picture: Any) -> list[Any]:
        """Buffer ``picture``; returns the pictures whose turn has come, in display order."""
        pts = int(picture.pts)
        if self._next_pts is None:
            self._next_pts = pts
        elif pts < self._next_pts:
            # Its display slot has passed: emitting it would break display order.
            raise DecodeOrderError(
                f"picture with pts {pts} arrives after pts {self._next_pts - 1} was output",
                hint="the stream has duplicated or misordered frames",
            )
        if any(p == pts for p, _, _ in self._heap):
            raise DecodeOrderError(f"two pictures with pts {pts}", hint="the stream has duplicated frames")
        heapq.heappush(self._heap, (pts, self._arrivals, picture))
        self._arrivals += 1
        out = []
        while self._heap and (self._heap[0][0] == self._next_pts or len(self._heap) > self.limit):
            # Beyond ``limit`` waiting pictures the gap before the first is taken as lost frames
            # (a closed GOP never makes a picture wait for more): memory stays bounded.
            pts, _, oldest = heapq.heappop(self._heap)
            out.append(oldest)
            self._next_pts = pts + 1
        return out

    def start_segment(self, first_pts: int) -> list[Any]:
        """An I frame with pts ``first_pts`` begins a closed segment.

        Returns whatever the previous segment left buffered (pts order; gaps were lost frames);
        ``first_pts`` is expected next.
        """
        out = self.flush()
        self._next_pts = first_pts
        return out

    def flush(self) -> list[Any]:
        """End of stream: everything buffered, in pts order."""
        out = [heapq.heappop(self._heap)[2] for _ in range(len(self._heap))]
        if out:
            self._next_pts = int(out[-1].pts) + 1
        return out

    def __len__(self) -> int:
        return len(self._heap)
