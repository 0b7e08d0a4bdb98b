"""One Cool-chic's range-coder stream: NN bins, then latents, in one coder, its last word cut short.

    encoder: NN bins (Bernoulli) ─► latents (QuantizedLaplace) ─► u32 words, big-endian
             ─► drop up to 3 trailing bytes while the whole stream still decodes the same
    decoder: bytes ─► pad with 0xFF to whole words ─► RangeDecoder ─► NN bins ─► latents

One stream per Cool-chic spends one coder flush and one length field instead of two. The words
go big-endian so that the stream's last bytes are the least significant of its last word: the
seal only has to name some point of the final interval, and with the missing bytes read as
0xFF it usually still does. The encoder keeps a cut only after decoding every symbol of the
stream back with the same models (the symbols do not depend on how the decoder batches them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import constriction
import numpy as np

FILL = 0xFF  # what the decoder reads in place of the bytes cut from the last word
MAX_CUT = 3


@dataclass(frozen=True)
class Part:
    """Symbols coded with one model family: ``params`` are the per-symbol model parameters."""

    model: object
    symbols: np.ndarray
    params: tuple[np.ndarray, ...] = field(default_factory=tuple)


def _decodes(data: bytes, parts: list[Part]) -> bool:
    decoder = open_decoder(data)
    try:
        return all(np.array_equal(decoder.decode(p.model, *p.params), p.symbols) for p in parts)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException:  # noqa: BLE001 - pyo3 PanicException is not an Exception
        return False


def seal(parts: list[Part]) -> bytes:
    """Range-code ``parts`` in order into one stream, as short as still decodes the same."""
    parts = [p for p in parts if p.symbols.size]
    if not parts:
        return b""
    encoder = constriction.stream.queue.RangeEncoder()
    for p in parts:
        encoder.encode(p.symbols.astype(np.int32), p.model, *p.params)
    data = encoder.get_compressed().astype(">u4").tobytes()
    best = data
    for cut in range(1, min(MAX_CUT, len(data) - 1) + 1):
        # a longer cut reads a larger point (more 0xFF): once one leaves the interval, all do
        if not _decodes(data[:-cut], parts):
            break
        best = data[:-cut]
    return best


def open_decoder(data: bytes):
    """A range decoder over a stream written by :func:`seal`."""
    padded = data + bytes([FILL]) * (-len(data) % 4)
    return constriction.stream.queue.RangeDecoder(np.frombuffer(padded, dtype=">u4").astype(np.uint32))


__all__ = ["FILL", "MAX_CUT", "Part", "open_decoder", "seal"]
