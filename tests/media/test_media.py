"""Tests of media I/O: hand y4m reader/writer, PyAV inputs, sinks and stdin."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from coolchic_stream.errors import MediaError, UnsupportedFormatError, UsageError
from coolchic_stream.media import open_input, open_output, output_format, png_name, raw_bytes
from coolchic_stream.media.y4m import Y4mReader, Y4mWriter, header_bytes
from coolchic_stream.types import ChromaSiting, ColorRange, DataType, Picture, SequenceInfo, chroma_shape

ROOT = Path(__file__).resolve().parents[2]


def make_pictures(n: int, w: int, h: int, data_type: DataType, bit_depth: int, seed: int = 0) -> list[Picture]:
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if bit_depth <= 8 else np.uint16
    ch, cw = chroma_shape(data_type, h, w)
    out = []
    for i in range(n):
        planes = (
            rng.integers(0, 1 << bit_depth, (h, w), dtype=dtype),
            rng.integers(0, 1 << bit_depth, (ch, cw), dtype=dtype),
            rng.integers(0, 1 << bit_depth, (ch, cw), dtype=dtype),
        )
        out.append(Picture(planes, bit_depth, data_type, i))
    return out


def write_y4m(path: Path, seq: SequenceInfo, pictures: list[Picture]) -> None:
    with open(path, "wb") as f:
        w = Y4mWriter(f, seq)
        for p in pictures:
            w.write(p)


CASES = [
    (DataType.YUV420, 8, ChromaSiting.CENTER, "C420jpeg"),
    (DataType.YUV420, 8, ChromaSiting.LEFT, "C420mpeg2"),
    (DataType.YUV420, 8, ChromaSiting.TOPLEFT, "C420paldv"),
    (DataType.YUV444, 8, ChromaSiting.UNSPECIFIED, "C444"),
    (DataType.YUV420, 10, ChromaSiting.UNSPECIFIED, "C420p10"),
    (DataType.YUV444, 10, ChromaSiting.UNSPECIFIED, "C444p10"),
]


@pytest.mark.parametrize("data_type,bit_depth,siting,tag", CASES)
def test_y4m_round_trip_odd_size_and_tags(tmp_path: Path, data_type, bit_depth, siting, tag) -> None:
    seq = SequenceInfo(
        33, 17, data_type, bit_depth, Fraction(30000, 1001), Fraction(16, 15), ColorRange.FULL, siting
    )
    pics = make_pictures(3, 33, 17, data_type, bit_depth)
    path = tmp_path / "a.y4m"
    write_y4m(path, seq, pics)
    header = path.read_bytes().split(b"\n", 1)[0]
    assert header == f"YUV4MPEG2 W33 H17 F30000:1001 Ip A16:15 {tag} XCOLORRANGE=FULL".encode()
    with open_input(str(path)) as src:
        assert src.sequence == seq
        got = list(src)
    assert len(got) == 3 and all(a.same_samples(b) for a, b in zip(got, pics))
    assert [p.pts for p in got] == [0, 1, 2]
    # FFmpeg (through PyAV) reads the same samples, so the file is a real y4m.
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        layout = "yuv420p" if data_type == DataType.YUV420 else "yuv444p"
        assert frame.format.name == layout + ("10le" if bit_depth > 8 else "")
        y = np.frombuffer(frame.planes[0], np.uint8).reshape(17, -1)[:, : 33 * (2 if bit_depth > 8 else 1)]
        expect = pics[0].planes[0].astype("<u2" if bit_depth > 8 else np.uint8).view(np.uint8)
        assert np.array_equal(y, expect.reshape(17, -1))


def test_ten_bit_is_little_endian_on_disk(tmp_path: Path) -> None:
    seq = SequenceInfo(4, 2, DataType.YUV420, 10)
    planes = (np.full((2, 4), 0x0302, np.uint16), np.full((1, 2), 1, np.uint16), np.full((1, 2), 2, np.uint16))
    write_y4m(tmp_path / "b.y4m", seq, [Picture(planes, 10)])
    data = (tmp_path / "b.y4m").read_bytes()
    frame = data.split(b"FRAME\n", 1)[1]
    assert frame[:2] == b"\x02\x03" and len(frame) == 2 * (8 + 2 + 2)


def test_header_without_c_tag_and_frame_params() -> None:
    data = b"YUV4MPEG2 W6 H4 F25:1 Ip A0:0 XFOO=1\nFRAME Ixyz\n" + bytes(range(36))
    reader = Y4mReader(io.BytesIO(data))
    assert reader.sequence.chroma_siting == ChromaSiting.UNSPECIFIED
    assert reader.sequence.data_type == DataType.YUV420 and reader.sequence.bit_depth == 8
    (pic,) = list(reader)
    assert pic.planes[0][0, :3].tolist() == [0, 1, 2] and pic.planes[2].tolist() == [[30, 31, 32], [33, 34, 35]]
    # A tagless source stays tagless: no siting is invented on the way out.
    assert b" C" not in header_bytes(reader.sequence)


def test_header_limits_and_long_rates() -> None:
    seq = SequenceInfo(16383, 2048, DataType.YUV420, 10, Fraction(30000, 1001), Fraction(4, 3), ColorRange.LIMITED)
    assert len(header_bytes(seq)) <= 96


@pytest.mark.parametrize(
    "header,error",
    [
        (b"YUV4MPEG2 W6 F25:1\n", MediaError),
        (b"YUV4MPEG2 W6 H4 C422\n", UnsupportedFormatError),
        (b"YUV4MPEG2 Wsix H4\n", MediaError),
        (b"YUV4MPEG2 W6 H4 Fa:b\n", MediaError),
        (b"YUV4MPEG2 W6 H4 Im\n", UnsupportedFormatError),
        (b"YUV4MPEG2 W1 H4\n", UnsupportedFormatError),
    ],
)
def test_bad_headers(header: bytes, error: type) -> None:
    with pytest.raises(error) as info:
        Y4mReader(io.BytesIO(header + b"FRAME\n"))
    assert info.value.hint, "every header error says what a valid header holds"


def test_a_rate_with_a_zero_denominator_is_refused_not_read_as_25() -> None:
    with pytest.raises(MediaError, match="frame rate '25:0' has a zero denominator"):
        Y4mReader(io.BytesIO(b"YUV4MPEG2 W4 H2 F25:0\nFRAME\n" + bytes(12)))
    assert Y4mReader(io.BytesIO(b"YUV4MPEG2 W4 H2 F0:0\nFRAME\n" + bytes(12))).sequence.frame_rate == 25  # 0:0 = unknown


def test_a_cut_file_hints_at_the_complete_frames() -> None:
    reader = Y4mReader(io.BytesIO(b"YUV4MPEG2 W4 H2 C420jpeg\n" + (b"FRAME\n" + bytes(12)) * 2 + b"FRAME\n" + bytes(5)))
    with pytest.raises(MediaError, match="frame 2 is truncated") as info:
        list(reader)
    assert "--frames 2" in info.value.hint


def test_bad_frames() -> None:
    head = b"YUV4MPEG2 W4 H2 C420jpeg\n"
    with pytest.raises(MediaError, match="truncated"):
        list(Y4mReader(io.BytesIO(head + b"FRAME\n" + bytes(5))))
    with pytest.raises(MediaError, match="expected FRAME"):
        list(Y4mReader(io.BytesIO(head + b"FRAME\n" + bytes(12) + b"GARBAGE\n")))
    with pytest.raises(MediaError, match="longer than"):
        Y4mReader(io.BytesIO(b"YUV4MPEG2 " + b"X" * 5000))
    with pytest.raises(UnsupportedFormatError, match="exceed"):
        list(Y4mReader(io.BytesIO(b"YUV4MPEG2 W4 H2 C420p10\nFRAME\n" + b"\xff" * 24)))


def test_start_and_frames(tmp_path: Path) -> None:
    seq = SequenceInfo(8, 6)
    pics = make_pictures(6, 8, 6, DataType.YUV420, 8)
    write_y4m(tmp_path / "c.y4m", seq, pics)
    with open_input(str(tmp_path / "c.y4m"), frames=2, start=3) as src:
        assert src.frame_count == 2
        got = list(src)
    with open_input(str(tmp_path / "c.y4m"), start=4) as src:
        assert src.frame_count == 2 and len(list(src)) == 2
    assert [p.pts for p in got] == [0, 1]
    assert got[0].same_samples(pics[3]) and got[1].same_samples(pics[4])
    with pytest.raises(UsageError):
        open_input(str(tmp_path / "c.y4m"), frames=0)


def test_missing_empty_and_foreign_inputs(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot open"):
        open_input(str(tmp_path / "none.y4m"))
    (tmp_path / "empty.y4m").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        open_input(str(tmp_path / "empty.y4m"))
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(1).bytes(3000))
    with pytest.raises(MediaError):
        open_input(str(tmp_path / "junk.mp4"))


def _lavfi_mp4(path: Path, pix_fmt: str, codec: str, n: int = 5, size: str = "34x18") -> None:
    src = av.open(f"testsrc2=size={size}:rate=30:duration={n / 30}", format="lavfi")
    with av.open(str(path), "w") as c:
        w, h = (int(x) for x in size.split("x"))
        s = c.add_stream(codec, rate=30)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        for fr in src.decode(video=0):
            fr = fr.reformat(format=pix_fmt)
            fr.pts = None
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    src.close()


def test_mp4_through_pyav(tmp_path: Path) -> None:
    path = tmp_path / "t.mp4"
    _lavfi_mp4(path, "yuv420p", "libx264")
    with open_input(str(path), start=1) as src:
        assert (src.sequence.width, src.sequence.height, src.sequence.frame_rate) == (34, 18, Fraction(30))
        assert src.sequence.data_type == DataType.YUV420 and src.sequence.bit_depth == 8
        got = list(src)
    assert len(got) == 4 and got[0].planes[1].shape == (9, 17)
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    y = np.frombuffer(frames[1].planes[0], np.uint8).reshape(18, -1)[:, :34]
    assert np.array_equal(got[0].planes[0], y)


@pytest.mark.parametrize("pix_fmt,data_type,bit_depth", [("yuv444p10le", DataType.YUV444, 10), ("yuv422p", DataType.YUV420, 8)])
def test_mkv_formats_kept_or_converted(tmp_path: Path, pix_fmt: str, data_type: DataType, bit_depth: int) -> None:
    path = tmp_path / "t.mkv"
    _lavfi_mp4(path, pix_fmt, "ffv1", n=2, size="33x17")
    with open_input(str(path)) as src:
        got = list(src)
        assert (src.sequence.data_type, src.sequence.bit_depth) == (data_type, bit_depth)
    assert got[0].planes[1].shape == chroma_shape(data_type, 17, 33)


def test_png_still_is_rgb_and_png_sink_round_trips(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (17, 33, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    cc = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt, cc.time_base = 33, 17, "rgb24", Fraction(1, 25)
    (tmp_path / "in.png").write_bytes(b"".join(bytes(p) for p in list(cc.encode(frame)) + list(cc.encode(None))))
    with open_input(str(tmp_path / "in.png")) as src:
        (pic,) = list(src)
        assert src.sequence.data_type == DataType.RGB
    assert all(np.array_equal(pic.planes[c], rgb[:, :, c]) for c in range(3))
    sink = open_output(str(tmp_path / "out_%03d.png"), None, src.sequence)
    sink.write(pic)
    sink.close()
    with open_input(str(tmp_path / "out_000.png")) as again:
        assert next(iter(again)).same_samples(pic)


def test_rgb_to_y4m_is_full_range_444(tmp_path: Path) -> None:
    seq = SequenceInfo(4, 2, DataType.RGB)
    white = np.full((2, 4), 255, np.uint8)
    red = (white, np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.uint8))
    buf = io.BytesIO()
    w = Y4mWriter(buf, seq)
    w.write(Picture((white, white, white), 8, DataType.RGB))
    w.write(Picture(red, 8, DataType.RGB))
    reader = Y4mReader(io.BytesIO(buf.getvalue()))
    assert reader.sequence.data_type == DataType.YUV444 and reader.sequence.color_range == ColorRange.FULL
    a, b = list(reader)
    assert a.planes[0].min() == 255 and a.planes[1].max() == 128
    assert b.planes[0][0, 0] == 76 and b.planes[2][0, 0] == 255  # BT.601: Y=0.299*255, Cr saturates


def test_sinks_yuv_md5_null(tmp_path: Path) -> None:
    seq = SequenceInfo(5, 3, DataType.YUV420, 10)
    pics = make_pictures(2, 5, 3, DataType.YUV420, 10)
    for name in ("o.yuv", "o.md5", "x.null"):
        sink = open_output(str(tmp_path / name), "null" if name == "x.null" else None, seq)
        for p in pics:
            sink.write(p)
        sink.close()
    raw = (tmp_path / "o.yuv").read_bytes()
    assert len(raw) == 2 * 2 * (15 + 2 * 6)
    assert raw == b"".join(raw_bytes(p) for p in pics)
    assert (tmp_path / "o.md5").read_text() == hashlib.md5(raw).hexdigest() + "\n"
    assert not (tmp_path / "x.null").exists()


def test_output_format_rules() -> None:
    assert output_format("-", None) == "y4m"
    assert output_format("a.Y4M", None) == "y4m"
    assert output_format("a.yuv", "md5") == "md5"
    with pytest.raises(UsageError):
        output_format("a.mp4", None)
    with pytest.raises(UsageError):
        output_format("a.y4m", "gif")
    assert png_name("f_%04d.png", 3) == "f_0003.png"
    assert png_name("dir/f.png", 12) == "dir/f_0012.png"


STDIN_SCRIPT = r"""
import sys
from coolchic_stream.media import open_input
with open_input('-') as src:
    s = src.sequence
    pics = list(src)
print(s.width, s.height, s.data_type.name, s.bit_depth, s.chroma_siting.name, s.frame_rate, len(pics), int(pics[-1].planes[0].sum()))
"""


def test_stdin_y4m_and_stdin_mp4(tmp_path: Path) -> None:
    seq = SequenceInfo(33, 17, DataType.YUV420, 8, Fraction(24), chroma_siting=ChromaSiting.LEFT)
    pics = make_pictures(3, 33, 17, DataType.YUV420, 8)
    write_y4m(tmp_path / "s.y4m", seq, pics)
    out = subprocess.run(
        [sys.executable, "-c", STDIN_SCRIPT], stdin=open(tmp_path / "s.y4m", "rb"),
        capture_output=True, check=True, cwd=ROOT, timeout=60,
    ).stdout.decode().split()
    assert out == ["33", "17", "YUV420", "8", "LEFT", "24", "3", str(int(pics[-1].planes[0].sum()))]
    _lavfi_mp4(tmp_path / "t.mkv", "yuv420p", "ffv1", n=3)
    data = (tmp_path / "t.mkv").read_bytes()
    proc = subprocess.run([sys.executable, "-c", STDIN_SCRIPT], input=data, capture_output=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split()[:7] == ["34", "18", "YUV420", "8", "UNSPECIFIED", "30", "3"]
