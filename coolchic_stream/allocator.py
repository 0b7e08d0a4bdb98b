"""Process allocator tuning: keep freed tensor memory for reuse instead of returning it to the OS.

Decoding (and training) allocates the same few-MiB tensors frame after frame. glibc serves
blocks above its mmap threshold with a fresh ``mmap`` and unmaps them on free, so every such
tensor pays a page fault per 4 KiB page on first touch -- at 352x288 that was ~20 % of the
reconstruction time, more than some of the convolutions. Raising the mmap threshold to its
maximum and the trim threshold far above it keeps those blocks in the heap, where the next
frame's tensors of the same size land on already-mapped pages. Results never depend on it.

    tune_allocator()  ─► mallopt(M_MMAP_THRESHOLD, 32 MiB), mallopt(M_TRIM_THRESHOLD, 1 GiB)

Only glibc (Linux) has ``mallopt``; elsewhere this is a no-op. The command line calls it once at
start; library users may call it themselves, since it changes the whole process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit systems
TRIM_THRESHOLD = 1 << 30

_tuned: bool | None = None


def tune_allocator() -> bool:
    """Apply the thresholds once per process; True when the C library accepted them."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if not sys.platform.startswith("linux"):
        return _tuned
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return _tuned
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _tuned


__all__ = ["tune_allocator"]
