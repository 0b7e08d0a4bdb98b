"""Torch's intra-op thread count, set for a block of work and put back after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads (0: leave as is).

    Many small operations (our decoder, our training) run fastest on one thread; two oversubscribe a
    busy 2-core machine. The decoder's results never depend on it; the encoder's float training
    does (reductions split across threads add in another order), so an encode fixes its count.
    """
    import torch

    old = torch.get_num_threads()
    if n <= 0 or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
