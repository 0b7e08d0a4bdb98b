"""coolchic-stream: Cool-chic overfitted neural video coding as an FFmpeg-style tool."""

__version__ = "0.1.0"

from .bitstream.container import open  # noqa: E402,A001 - coolchic_stream.open(path, mode) for .ccv streams

__all__ = ["__version__", "open"]
