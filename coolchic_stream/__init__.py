"""coolchic-stream: Cool-chic overfitted neural video coding as an FFmpeg-style tool."""

__version__ = "0.1.0"
