"""Encoder: pictures in display order -> packets in coding order (PyAV-style send/flush).

    send(Picture) ─► GopScheduler ─► FrameJob (type, refs, depth) ─► train.coding (overfit, quantize)
        ─► entropy coding ─► FramePayload ─► Packet(pts, dts)     ▲ references' pictures and networks
                                └─► framecodec.reconstruct (the decoder's path) ─► DPB (references)

A P or B frame's networks start from, and may be copied or delta-coded from, its references'
(the DPB keeps each picture's decoded NN integers); I frames are self-contained.

With ``config.bitrate`` each frame's λ comes from a rate controller (:mod:`.ratecontrol`), one per
segment: the I frame's is steered during its training, the others' solved from what the
segment has left to spend.

A P or B frame whose prediction failed (it costs, in D + λ·R, more than a share of the last I frame) is
also coded without prediction, like an I frame at the stream's λ; the cheaper of the two in
D + λ·R at that λ goes into the stream. It keeps its place and references in the GOP, so it
is not a random-access point. With ``aside`` (:mod:`.parallel.aside`) that coding trains in a
helper process while the inter coding trains here, and is dropped when the check does not fire.

At most one GOP of pictures is buffered; every returned packet can be written at once.

Nothing crosses an intra period: at each segment start (an I frame at a multiple of the intra
period) the warm start and the lookahead begin afresh, so an ``Encoder(start=S)`` fed one
segment gives the same packets as one fed the whole stream (:mod:`coolchic_stream.parallel`
encodes segments side by side on that promise).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from collections.abc import Iterator
from itertools import takewhile
from typing import Callable

import numpy as np
import torch

from .architecture import parameter_shapes, residue_parameter
from .config import INTRA_CHECK_SHARE, SCRATCH_SHARE, EncoderConfig, IntraCheck, NNPrediction
from .dpb import DecodedPictureBuffer, LastDecoded
from .errors import ConfigError
from .framecodec import FrameHeader, FrameNetworks, build_payload, frame_networks, reconstruct
from .gop import FrameJob, GopScheduler, GroupPlan, lambda_scale
from .lookahead import Lookahead
from .parallel.aside import IntraAside, IntraRequest
from .rate_prior import PRIOR_LAMBDA
from .ratecontrol import FrameRate, RateController, Steer
from .segment_plan import beyond, look_distance, nominal_plan, released, segment_frames, segment_start
from .threads import torch_threads
from .train.coding import FrameCodingResult, code_intra
from .types import FrameStats, FrameType, GopStructure, Packet, Picture, TrainingProgress

ProgressCallback = Callable[[TrainingProgress], None]


def _mse(planes_a, planes_b, bit_depth: int) -> float:
    """MSE over every sample of the given planes, samples scaled to [0, 1] (the training distortion)."""
    sse = sum(float(np.sum((a.astype(np.float64) - b.astype(np.float64)) ** 2)) for a, b in zip(planes_a, planes_b))
    peak = float((1 << bit_depth) - 1)
    return sse / sum(b.size for b in planes_b) / (peak * peak)


def _psnr(planes_a, planes_b, bit_depth: int) -> float:
    """PSNR of the MSE over every sample of the given planes (100 dB when identical)."""
    mse = _mse(planes_a, planes_b, bit_depth)
    return 100.0 if mse == 0 else float(-10.0 * np.log10(mse))


def _mean_psnr(values: tuple[float, ...]) -> float:
    """PSNR of the mean MSE of several PSNRs (one per reference)."""
    return float(-10.0 * np.log10(np.mean([10.0 ** (-v / 10.0) for v in values])))


def picture_psnr(decoded: Picture, source: Picture) -> tuple[float, float]:
    """(PSNR-Y, PSNR of the sample-count weighted MSE over all planes: (4Y+U+V)/6 for 4:2:0)."""
    return (
        _psnr(decoded.planes[:1], source.planes[:1], source.bit_depth),
        _psnr(decoded.planes, source.planes, source.bit_depth),
    )


def check_device(device: str) -> None:
    """Fail early, with a usage error, when the requested training device does not exist here."""
    if device == "cpu":
        return
    try:
        index = torch.device(device).index or 0
    except RuntimeError:
        raise ConfigError(f"--device {device!r} is not valid", "use cpu, cuda or cuda:N") from None
    if not torch.cuda.is_available():
        why = "this torch build has no CUDA support" if torch.version.cuda is None else "no GPU is visible"
        raise ConfigError(f"--device {device!r} is not available: {why}", "use --device cpu")
    if index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device!r} is not available: {torch.cuda.device_count()} GPU(s) visible", "use cuda:0")


class Encoder:
    """Pictures in display order in, packets in coding order out.

    ``start``: display index of the first picture sent, the first frame of a segment (a multiple
    of the intra period); the packets are those a stream starting at 0 gives from there on.
    """

    def __init__(
        self,
        config: EncoderConfig | None = None,
        progress: ProgressCallback | None = None,
        warm_start: bool = True,
        start: int = 0,
        aside: IntraAside | None = None,
    ) -> None:
        self.config = config or EncoderConfig()
        self.aside = aside  # trains the intra check's alternative beside the inter coding (parallel.aside)
        check_device(self.config.device)
        self.progress = progress
        self.lookahead: Lookahead | None = None
        adaptive = self.config.adaptive_gop and self.config.gop != GopStructure.INTRA
        planner = self._plan if adaptive else None
        self.scheduler = GopScheduler(self.config.gop, self.config.gop_size, self.config.intra_period, planner, start)
        self.dpb = DecodedPictureBuffer()
        self._last = LastDecoded()  # what the frame coded last holds: the next P/B frame inherits it
        self._pending: dict[int, Picture] = {}
        self._next_display = start
        self._format: Picture | None = None  # the first picture: every other has its format
        self.reconstructions: dict[int, Picture] = {}  # filled only when keep_reconstructions is set
        self.keep_reconstructions = False
        self._warm_start = None
        self._use_warm_start = warm_start  # off only to measure what it brings
        self._last_intra: tuple[float, float] | None = None  # (MSE, bpp) of the last I frame
        self.rate: RateController | None = None  # with a bitrate: the current segment's
        self._held: list[FrameJob] = []  # jobs rate control holds until it has seen enough of the segment
        self._decision: FrameRate | None = None  # rate control's for the P/B frame being coded
        self._details: dict[int, float] = {}  # with a bitrate: the spatial detail of pictures not yet coded

    def send(self, picture: Picture) -> list[Packet]:
        """Queue one picture (display order); returns the packets now complete, in coding order."""
        return list(self.encode(picture))

    def flush(self) -> list[Packet]:
        """End of input: code the buffered tail."""
        return list(self.encode(None))

    def encode(self, picture: Picture | None) -> Iterator[Packet]:
        """``send`` (``None``: ``flush``) one packet at a time: each is yielded as soon as its frame
        is coded, so a caller that writes it at once keeps every finished frame if interrupted
        (a random-access group takes many frames' time). Consume the iterator fully: the frames
        it has not yet coded are lost otherwise."""
        jobs = self.scheduler.flush() if picture is None else self._queue(picture)
        if self.config.bitrate is not None:
            # rate control plans each frame seeing the pictures up to segment_plan.look_end
            jobs = self._held + jobs
            config = self.config
            ready = len(jobs) if picture is None else released(
                jobs, self._next_display, config.gop, config.gop_size, config.intra_period, config.stream_frames
            )  # fmt: skip
            jobs, self._held = jobs[:ready], jobs[ready:]
        held = list(self._held)
        return (self._encode(job, jobs[i + 1 :] + held) for i, job in enumerate(jobs))

    def _queue(self, picture: Picture) -> list[FrameJob]:
        if self._format is None:
            self._format = picture
        picture.check_format_of(self._format, self._next_display)
        index = self._next_display
        self._next_display += 1
        self._pending[index] = Picture(picture.planes, picture.bit_depth, picture.data_type, index)
        if self.scheduler.planner is not None:
            if self._segment_start(index):
                self.lookahead = Lookahead(self.config.lmbda if self.config.lmbda is not None else PRIOR_LAMBDA)
            assert self.lookahead is not None
            self.lookahead.add(self._pending[index])
        return self.scheduler.push(index)

    def _segment_start(self, display_index: int) -> bool:
        return segment_start(display_index, self.config.intra_period)

    def _segment_rate(self, start: int, first: Picture) -> RateController:
        """A new segment's rate controller: its budget covers the intra period, or what is left of
        a stream of known length; how dear its P/B frames will be is guessed from how well block
        flow predicts the latest picture in, up to ``segment_plan.look_distance`` after ``first``."""
        config = self.config
        assert config.bitrate is not None and config.frame_rate is not None
        left = None if config.stream_frames is None else config.stream_frames - start
        frames = segment_frames(config.gop, config.intra_period, left)
        later = [d for d in self._pending if start < d <= start + look_distance(config.intra_period)]
        share = None
        if later and config.gop != GopStructure.INTRA:
            from .lookahead import motion_share

            share = motion_share(first, self._pending[max(later)])
        plan = nominal_plan(config.gop, config.gop_size, config.intra_period, frames)
        return RateController(config.bitrate, config.frame_rate, plan, share, self._detail(start, first))

    def _base_lambda(self, job: FrameJob, source: Picture, later: list[FrameJob]) -> tuple[float, Steer | None]:
        """The frame's base λ (before depth scaling) and, for a rate-controlled I frame, its steer
        (``later``: the jobs released with it that follow it; rate control plans with their classes
        up to the next I frame)."""
        self._decision = None
        if self.config.bitrate is None:
            assert self.config.lmbda is not None
            return self.config.lmbda, None
        if job.frame_type == FrameType.I and (self.rate is None or self._segment_start(job.display_index)):
            self.rate = self._segment_rate(job.display_index, source)
        assert self.rate is not None
        detail = self._detail(job.display_index, source)
        if job.frame_type == FrameType.I:
            param = residue_parameter(source.height, source.width, 3, self.config.intra_complexity)
            parameters = sum(math.prod(shape) for ws, bs in parameter_shapes(param).values() for shape in (*ws, *bs))
            steer = self.rate.start_intra(
                source.height * source.width, parameters, self.config.intra_iterations, detail, self._ahead(job, []),
            )  # fmt: skip
            return steer.lmbda, steer
        jobs = list(takewhile(lambda j: j.frame_type != FrameType.I, later))
        known = [(j.frame_type, j.depth) for j in jobs]
        details = [detail]
        for j in takewhile(lambda j: j.display_index in self._pending, jobs):
            details.append(self._detail(j.display_index, self._pending[j.display_index]))
        self._decision = self.rate.next_frame(job.frame_type, job.depth, known, details, self._ahead(job, jobs[: len(details) - 1]))
        return self._decision.lmbda, None

    def _ahead(self, job: FrameJob, scheduled: list[FrameJob]) -> float:
        """The spatial detail rate control plans the frames beyond ``scheduled`` (those after
        ``job`` it is told of) at (``segment_plan.beyond``)."""
        told = {job.display_index, *(j.display_index for j in scheduled)}
        pictures = beyond(job.display_index, told, self._pending, self.config.intra_period)
        return sum(self._details[d] if d in told else self._detail(d, self._pending[d]) for d in pictures) / len(pictures)

    def _detail(self, index: int, picture: Picture) -> float:
        """Spatial detail of a picture not yet coded, each measured once (rate control plans by it)."""
        if index not in self._details:
            from .lookahead import spatial_detail

            self._details[index] = spatial_detail(picture)
        return self._details[index]

    def _plan(self, anchor: int, pending: list[int]) -> GroupPlan:
        """The scheduler's planner: this segment's lookahead."""
        assert self.lookahead is not None
        return self.lookahead.plan(anchor, pending)

    # ------------------------------------------------------------------ one frame
    def _encode(self, job: FrameJob, later: list[FrameJob]) -> Packet:
        with torch_threads(self.config.threads):
            return self._encode_job(job, later)

    def _encode_job(self, job: FrameJob, later: list[FrameJob]) -> Packet:
        start = time.perf_counter()
        if job.frame_type == FrameType.I and self._segment_start(job.display_index):
            self._warm_start = None  # nothing learnt before a segment carries into it
        source = self._pending.pop(job.display_index)
        refs = [self.dpb.get(r, referenced_by=job.display_index) for r in job.references]
        ref_networks = [self.dpb.networks(r, referenced_by=job.display_index) for r in job.references]
        distances = [abs(job.display_index - r) for r in job.references]
        # what the coded frame inherits, in order (framecodec.FrameNetworks)
        inherited = [] if job.frame_type == FrameType.I else [*ref_networks, self._last.before(job.coding_index)]
        base, steer = self._base_lambda(job, source, later)
        lmbda = base * lambda_scale(job.depth)

        def report(phase: str, iteration: int, total: int, loss: float, psnr_db: float) -> None:
            if self.progress is not None:
                self.progress(TrainingProgress(job.display_index, job.frame_type, phase, iteration, total, loss, psnr_db))

        intra_check, motion = "", None
        if job.frame_type == FrameType.I:
            result = code_intra(source, self.config, lmbda, self.config.intra_iterations, report, steer=steer)
            if steer is not None:  # what its bits and quality correspond to (not the λ steering ended at)
                base = lmbda = steer.effective
            coded = self._code(job, source, refs, inherited, result)
            self._last_intra = (coded.mse, coded.bpp)
            if self.lookahead is not None:
                self.lookahead.coded_quality(coded.mse)
        else:
            from .train.inter import WarmStart, code_inter  # motion code only when a stream has inter frames

            if self._warm_start is None and self._use_warm_start:
                self._warm_start = WarmStart()
            # The intra check's alternatives, coded like an I frame at the stream's λ (below). With
            # a target bitrate, the rate controller's λ for a frame coded without prediction.
            stream = base if self.rate is None or self._decision is None else self.rate.without_prediction(self._decision.solved)
            starts = (True, False) if ref_networks and self.config.nn_prediction != NNPrediction.OFF else (False,)
            alternatives = [
                IntraRequest(source, self.config, stream, self.config.intra_iterations, ref_networks, distances,
                             job.frame_type, from_references)  # fmt: skip
                for from_references in starts
            ]
            ticket = None
            if self.aside is not None and self.config.intra_check != IntraCheck.OFF:
                ticket = self.aside.submit(alternatives[0])  # trains while the inter coding does
            result = code_inter(source, refs, job, self.config, lmbda, report, self._warm_start, ref_networks)
            motion = result.motion
            coded = self._code(job, source, refs, inherited, result, result.translations)
            intra_check = self._intra_check_reason(coded.cost(stream), stream)
            if not intra_check and ticket is not None:
                self.aside.drop(ticket)
            if intra_check:
                # Coded like an I frame, at the stream's λ: the depth scaling of λ models how cheaply an
                # inter frame inherits its references' quality, which a frame without prediction does not.
                # Judged at that λ too, the slope every I frame of the stream is coded at. Its residue
                # may still copy or delta-code its modules from its references' networks: trained from
                # them (cheap networks) and, where that one costs nearly an I frame, from scratch
                # (networks made for this picture), the cheaper kept.
                best_intra = math.inf
                for i, request in enumerate(alternatives):
                    if i and not self._worth_fresh(best_intra, stream):
                        break
                    intra_result = None
                    if i == 0 and ticket is not None:
                        report("intra (helper)", 0, 1, 0.0, 0.0)  # what the encoder waits for, on the progress line
                        intra_result = self.aside.take(ticket)
                    if intra_result is None:  # no helper, or it died
                        intra_result = request.run(report)
                    intra = self._code(job, source, refs, inherited, intra_result, ((0, 0),) * len(refs), intra_coded=True)
                    best_intra = min(best_intra, intra.cost(stream))
                    if intra.cost(stream) < coded.cost(stream):
                        coded, lmbda = intra, stream
        if self.rate is not None:
            coded_at = lmbda if coded.header.intra_coded else base  # an intra-coded frame's λ is not depth-scaled
            detail = self._details.pop(job.display_index, None)
            self.rate.coded_frame(job.frame_type, job.depth, coded_at, 8 * len(coded.payload), coded.header.intra_coded, detail)
        self.dpb.insert(job.display_index, coded.decoded, coded.networks)
        self._last.keep(job.coding_index, coded.networks)
        self.dpb.release(self.scheduler.still_referenced(job.coding_index))
        if self.keep_reconstructions:
            self.reconstructions[job.display_index] = coded.decoded
        psnr_y, psnr_yuv = picture_psnr(coded.decoded, source)
        stats = FrameStats(
            job.frame_type, job.display_index, job.coding_index, 8 * len(coded.payload), psnr_y, psnr_yuv,
            time.perf_counter() - start, job.depth, coded.header.intra_coded, intra_check,
            _mean_psnr(motion.flow_psnr) if motion else None, _mean_psnr(motion.pretrained_psnr) if motion else None,
            motion.candidate if motion else "", coded.train_psnr, time.time(), lmbda=lmbda,
        )  # fmt: skip
        return Packet(coded.payload, job.display_index, job.coding_index, job.frame_type, stats)

    def _intra_cost(self, lmbda: float) -> float | None:
        """D + λ·bpp of the segment's last I frame at ``lmbda``, None before one is coded."""
        return None if self._last_intra is None else self._last_intra[0] + lmbda * self._last_intra[1]

    def _worth_fresh(self, from_references: float, lmbda: float) -> bool:
        """Whether a frame coded without prediction from fresh networks could beat the one trained from
        its references' networks, which cost ``from_references`` (D + λ·bpp at ``lmbda``): only
        where that one costs nearly as much as an I frame (``SCRATCH_SHARE``)."""
        intra_cost = self._intra_cost(lmbda)
        return intra_cost is None or from_references > SCRATCH_SHARE * intra_cost

    def _intra_check_reason(self, inter_cost: float, lmbda: float) -> str:
        """Why an inter frame of D + λ·bpp ``inter_cost`` (at the stream's λ ``lmbda``) is also tried without
        prediction, "" when it is not. The cost, not the bits: an inter frame whose prediction failed
        may come out cheap and blurred (its networks copied, few latents), not only expensive."""
        check = self.config.intra_check
        if check == IntraCheck.ALWAYS:
            return "always"
        intra_cost = self._intra_cost(lmbda) or 0.0
        share = inter_cost / intra_cost if intra_cost > 0 else math.inf
        if check == IntraCheck.AUTO and share > INTRA_CHECK_SHARE:
            return f"cost {share:.3f} of the I frame > {INTRA_CHECK_SHARE}"
        return ""

    @staticmethod
    def _code(
        job: FrameJob,
        source: Picture,
        refs: list[Picture],
        inherited: list[FrameNetworks],
        result: FrameCodingResult,
        translations: tuple[tuple[int, int], ...] = (),
        intra_coded: bool = False,
    ) -> "_CodedFrame":
        """Entropy-code a trained frame and run the decoder's reconstruction on it (``inherited``:
        what its references and the frame coded before it hold, for what it passes on)."""
        header = FrameHeader(
            job.display_index, job.coding_index, job.frame_type, job.depth, source.data_type, source.bit_depth,
            source.width, source.height, tuple(job.references), tuple(translations), intra_coded,
        )  # fmt: skip
        payload = build_payload(header, result.coded)
        decoded = reconstruct(header, result.coded, refs)
        return _CodedFrame(
            header, payload, decoded, _mse(decoded.planes, source.planes, source.bit_depth),
            frame_networks(result.coded, inherited), result.train_psnr,
        )


@dataclass(frozen=True)
class _CodedFrame:
    """One way of coding a frame: its payload and the decoder's picture."""

    header: FrameHeader
    payload: bytes
    decoded: Picture
    mse: float  # sample-weighted over all planes, on a [0, 1] scale: the training distortion
    networks: FrameNetworks  # what later frames may copy or delta-code their modules from
    train_psnr: float  # PSNR-YUV of the trained frame before NN quantization (dB)

    @property
    def bpp(self) -> float:
        """Bits per luma pixel of the payload."""
        return 8 * len(self.payload) / (self.header.width * self.header.height)

    def cost(self, lmbda: float) -> float:
        """D + λ·bpp with the real bytes."""
        return self.mse + lmbda * self.bpp
