"""PyAV-backed input (mp4, mkv, png, jpg… anything FFmpeg demuxes) and PNG output.

Only this package imports PyAV. Decoded frames are turned into planes of the
nearest format the codec handles: yuv420p / yuv420p10le / yuv444p / yuv444p10le
are kept, RGB-like formats (rgb24, rgba, png palettes, grey) become 8-bit RGB
planes, other YUV layouts are resampled to 4:2:0 at 8 or 10 bits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from ..errors import MediaError, UnsupportedFormatError, reason
from ..types import ChromaSiting, ColorRange, DataType, Picture, SequenceInfo

_KEPT = {
    "yuv420p": (DataType.YUV420, 8),
    "yuvj420p": (DataType.YUV420, 8),
    "yuv420p10le": (DataType.YUV420, 10),
    "yuv444p": (DataType.YUV444, 8),
    "yuvj444p": (DataType.YUV444, 8),
    "yuv444p10le": (DataType.YUV444, 10),
    "rgb24": (DataType.RGB, 8),
}
_YUV = re.compile(r"^yuvj?(\d{3})p(\d+)?(le|be)?$")
# FFmpeg's AVChromaLocation values (PyAV 18 does not expose them by name).
_SITING_BY_AVCHROMA = {1: ChromaSiting.LEFT, 2: ChromaSiting.CENTER, 3: ChromaSiting.TOPLEFT}


def target_format(name: str) -> str:
    """The pixel format a decoded frame of format ``name`` is converted to."""
    if name in _KEPT:
        return name
    if any(k in name for k in ("rgb", "bgr", "gbr", "pal8", "gray", "ya8", "ya16", "monob", "monow")):
        return "rgb24"
    m = _YUV.match(name)
    if m:
        deep = m.group(2) is not None and int(m.group(2)) > 8
        if m.group(1) == "444":
            return "yuv444p10le" if deep else "yuv444p"
        return "yuv420p10le" if deep else "yuv420p"
    if name.startswith(("p010", "p016", "p210", "p410")):
        return "yuv420p10le"
    return "yuv420p"  # nv12, nv21, yuyv422, uyvy422, …


def frame_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Copies of a planar frame's planes without the stride padding."""
    bps = 2 if frame.format.name.endswith("le") else 1
    out = []
    for plane in frame.planes:
        raw = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        a = raw[:, : plane.width * bps]
        a = a.copy().view("<u2").astype(np.uint16) if bps == 2 else a.copy()
        out.append(a)
    return out


def frame_to_picture(frame: av.VideoFrame, pts: int) -> Picture:
    """A Picture holding a decoded frame, converted to the nearest supported format."""
    fmt = target_format(frame.format.name)
    if frame.format.name != fmt:
        try:
            frame = frame.reformat(format=fmt)
        except (av.FFmpegError, ValueError) as exc:
            raise UnsupportedFormatError(f"pixel format {frame.format.name} cannot be converted to {fmt}: {reason(exc)}") from None
    data_type, bit_depth = _KEPT[fmt]
    if data_type == DataType.RGB:
        rgb = np.frombuffer(frame.planes[0], np.uint8).reshape(frame.height, frame.planes[0].line_size)
        rgb = rgb[:, : frame.width * 3].reshape(frame.height, frame.width, 3)
        planes = tuple(np.ascontiguousarray(rgb[:, :, c]) for c in range(3))
    else:
        planes = tuple(frame_planes(frame))
    return Picture(planes, bit_depth, data_type, pts)


def _color_range(frame: av.VideoFrame) -> ColorRange:
    if frame.format.name.startswith("yuvj"):
        return ColorRange.FULL
    try:
        return ColorRange(int(frame.color_range))
    except (ValueError, TypeError):
        return ColorRange.UNSPECIFIED


class PyAVReader:
    """Decodes the first video stream of anything FFmpeg can open (a path or a readable file object)."""

    def __init__(self, source: str | Path | BinaryIO, name: str) -> None:
        self.name = name
        try:
            self._container = av.open(source if not isinstance(source, Path) else str(source), "r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(
                f"cannot read {name}: {reason(exc)}", "give a y4m, mp4, mkv, png or jpg file that ffmpeg can play"
            ) from None
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(f"{name} has no video stream")
        self._stream = self._container.streams.video[0]
        self._frames = self._decode()
        try:
            first = next(self._frames)
        except StopIteration:
            self.close()
            raise MediaError(f"{name} holds no decodable video frame") from None
        self._first: av.VideoFrame | None = first
        picture = frame_to_picture(first, 0)
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        if not rate or rate <= 0 or rate > 1000:
            rate = Fraction(25, 1)  # stills and odd demuxers: FFmpeg's own default
        sar = self._stream.sample_aspect_ratio or Fraction(0, 1)
        siting = ChromaSiting.UNSPECIFIED
        if picture.data_type == DataType.YUV420:
            siting = _SITING_BY_AVCHROMA.get(int(getattr(self._stream.codec_context, "chroma_location", 0) or 0), siting)
        self.sequence = SequenceInfo(
            width=picture.width,
            height=picture.height,
            data_type=picture.data_type,
            bit_depth=picture.bit_depth,
            frame_rate=Fraction(rate),
            sample_aspect_ratio=Fraction(sar),
            color_range=_color_range(first) if picture.data_type != DataType.RGB else ColorRange.UNSPECIFIED,
            chroma_siting=siting,
        )

    def _decode(self) -> Iterator[av.VideoFrame]:
        try:
            yield from self._container.decode(self._stream)
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"cannot decode {self.name}: {reason(exc)}") from None

    def __iter__(self) -> Iterator[Picture]:
        index = 0
        if self._first is not None:
            first, self._first = self._first, None
            yield frame_to_picture(first, index)
            index += 1
        for frame in self._frames:
            if (frame.width, frame.height) != (self.sequence.width, self.sequence.height):
                raise UnsupportedFormatError(
                    f"{self.name}: frame {index} is {frame.width}x{frame.height}, the first was "
                    f"{self.sequence.width}x{self.sequence.height}",
                    "coolchic-stream needs a constant frame size",
                )
            yield frame_to_picture(frame, index)
            index += 1

    def close(self) -> None:
        self._container.close()


# ------------------------------------------------------------------ PNG output


def _fill(frame: av.VideoFrame, planes: list[np.ndarray]) -> None:
    for plane, arr in zip(frame.planes, planes):
        dst = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        src = np.ascontiguousarray(arr).view(np.uint8).reshape(plane.height, -1)
        dst[:, : src.shape[1]] = src


def picture_to_rgb(picture: Picture) -> np.ndarray:
    """An (H, W, 3) RGB array (uint8, or uint16 above 8 bits) of a picture; YUV goes through swscale."""
    if picture.data_type == DataType.RGB:
        return np.stack(picture.planes, axis=-1)
    deep = picture.bit_depth > 8
    fmt = ("yuv420p" if picture.data_type == DataType.YUV420 else "yuv444p") + ("10le" if deep else "")
    frame = av.VideoFrame(picture.width, picture.height, fmt)
    _fill(frame, [p.astype("<u2") if deep else p for p in picture.planes])
    out = frame.reformat(format="rgb48le" if deep else "rgb24")
    bps = 6 if deep else 3
    raw = np.frombuffer(out.planes[0], np.uint8).reshape(out.height, out.planes[0].line_size)
    raw = np.ascontiguousarray(raw[:, : out.width * bps])
    if deep:
        return raw.view("<u2").reshape(out.height, out.width, 3).astype(np.uint16)
    return raw.reshape(out.height, out.width, 3)


def png_bytes(picture: Picture) -> bytes:
    """One PNG file (rgb24, or rgb48 above 8 bits) for a picture."""
    rgb = picture_to_rgb(picture)
    deep = rgb.dtype == np.uint16
    if deep and picture.data_type == DataType.RGB and picture.bit_depth < 16:
        rgb = (rgb.astype(np.uint32) * 65535 // ((1 << picture.bit_depth) - 1)).astype(np.uint16)
    fmt = "rgb48be" if deep else "rgb24"
    frame = av.VideoFrame(picture.width, picture.height, fmt)
    data = rgb.astype(">u2") if deep else rgb
    _fill(frame, [data.reshape(picture.height, -1)])
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = picture.width, picture.height, fmt
    codec.time_base = Fraction(1, 25)
    packets = list(codec.encode(frame)) + list(codec.encode(None))
    return b"".join(bytes(p) for p in packets)
