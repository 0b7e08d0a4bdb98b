"""The entropy helper process: plain-bytes messages, same integers, errors and fallbacks as in-process."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from .conftest import encode_pictures, make_picture
from coolchic_stream import framecodec, worker
from coolchic_stream.decoder import DecodeErrors, Decoder, _resolve
from coolchic_stream.dpb import LastDecoded
from coolchic_stream.entropy.nn_weights import coded_values
from coolchic_stream.errors import BitstreamError
from coolchic_stream.spec import NNMode


@pytest.fixture(scope="module")
def stream():
    pictures = [make_picture(24, 16, pts=i, shift=i) for i in range(5)]
    enc, packets = encode_pictures(pictures, iterations=16, gop="ra", gop_size=4, intra_period=8)
    return enc, packets


def decode_all(packets, pipeline: bool, damaged: dict[int, bytes] | None = None):
    """Decode with one prefetched group; -> per packet: its pictures or the error it raised."""
    dec = Decoder(pipeline=pipeline, errors=DecodeErrors.RAISE)
    datas = [(damaged or {}).get(i, p.data) for i, p in enumerate(packets)]
    dec.prefetch(datas)
    out = []
    for data in datas:
        try:
            out.append(dec.send(data))
        except BitstreamError as exc:  # the damaged frame, then frames that refer to it
            out.append(f"{type(exc).__name__}: {exc}")
    return out + [dec.flush()]


def in_order_held(packets):
    """What a decoder holds for each frame once every frame has been decoded in order."""
    held, last = {}, LastDecoded()
    for p in packets:
        header, coded = framecodec.parse_payload(p.data, held.__getitem__)
        held[header.display_index] = framecodec.held_networks(header, coded, held.__getitem__, last)
        last.keep(header.coding_index, held[header.display_index])
    return held


def in_order_lookups(packets):
    """Per packet: the networks a decoder holds when that packet comes (every earlier frame decoded)."""
    held, lookups, last = {}, [], LastDecoded()
    for p in packets:
        lookups.append(dict(held).__getitem__)
        header, coded = framecodec.parse_payload(p.data, lookups[-1])
        held[header.display_index] = framecodec.held_networks(header, coded, held.__getitem__, last)
        last.keep(header.coding_index, held[header.display_index])
    return lookups


def same_networks(c, d) -> bool:
    """Same integers, steps and orders, sent the same way."""
    return (
        all(c.modules[n].same_integers(d.modules[n]) for n in c.modules)
        and [(m.weight_order, m.bias_order) for m in c.modules.values()] == [(m.weight_order, m.bias_order) for m in d.modules.values()]
        and np.array_equal(coded_values(c.modules, c.predictions), coded_values(d.modules, d.predictions))
        and {n: p.mode for n, p in c.predictions.items()} == {n: p.mode for n, p in d.predictions.items()}
    )


def same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return len(a) == len(b) and all(x.pts == y.pts and x.same_samples(y) for x, y in zip(a, b))


def test_messages_round_trip():
    payloads = [b"", b"\x00\x01", bytes(range(256)) * 3]
    assert worker.unpack_payloads(worker.pack_payloads(payloads)) == payloads
    reply = [worker.Integers(b"\x7f\x80"), worker.Undecoded(), worker.Integers(b"")]
    assert worker.unpack_reply(worker.pack_reply(reply)) == reply


def test_the_stream_predicts_networks(stream):
    """The tests below cover predicted modules: the encoder did copy or delta-code some."""
    _, packets = stream
    lookups = in_order_lookups(packets)
    modes = {
        p.mode for packet, lookup in zip(packets, lookups)
        for c in framecodec.parse_payload(packet.data, lookup)[1] for p in c.predictions.values()
    }  # fmt: skip
    assert modes & {NNMode.COPY, NNMode.DELTA}


def test_helper_integers_rebuild_the_parse_result(stream):
    _, packets = stream
    datas = [p.data for p in packets]
    reply = worker.decode_group(datas, worker.NetworkStore())
    for data, integers, lookup in zip(datas, reply, in_order_lookups(packets)):
        header, coded = framecodec.parse_payload(data, lookup)
        header2, coded2 = framecodec.parse_with_integers(data, integers.data, lookup)
        assert header2 == header
        pairs = [(a, b) for c, d in zip(coded, coded2) for a, b in zip(c.latents, d.latents)]
        assert pairs and all(np.array_equal(a, b) and b.dtype == np.int64 for a, b in pairs)
        assert all(same_networks(c, d) for c, d in zip(coded, coded2))  # as decoded in process


def test_helper_latents_decoded_with_another_arm_are_not_used(stream):
    """The helper resolved a predicted ARM from other networks than the caller holds (its store
    was stale): the caller must notice and decode the payload itself."""
    _, packets = stream
    lookups = in_order_lookups(packets)
    index = next(
        i for i, (p, lookup) in enumerate(zip(packets, lookups))
        if any("arm" in c.predictions for c in framecodec.parse_payload(p.data, lookup)[1])
    )  # fmt: skip
    header, coded = framecodec.parse_payload(packets[index].data, lookups[index])
    source = header.references[next(c for c in coded if "arm" in c.predictions).predictions["arm"].reference]
    store = worker.NetworkStore()
    worker.decode_group([p.data for p in packets[:index]], store)
    held = store(source)
    for networks in held.values():  # the helper's copy of the source's ARM, one integer off
        arm = networks.modules["arm"]
        arm.weights[0].reshape(-1)[0] += 1
    integers = worker.decode_group([packets[index].data], store)[0]
    with pytest.raises(ValueError, match="another ARM"):
        framecodec.parse_with_integers(packets[index].data, integers.data, lookups[index])
    got = _resolve(packets[index].data, integers, lookups[index])[1]
    assert all(np.array_equal(a, b) for c, d in zip(coded, got) for a, b in zip(c.latents, d.latents))


@pytest.mark.parametrize("cut", ["latent", "nn", "header"])
def test_integers_that_do_not_fit_are_decoded_again_in_process(stream, cut):
    _, packets = stream
    data, lookup = packets[1].data, in_order_lookups(packets)[1]
    store = worker.NetworkStore()
    integers = worker.decode_group([p.data for p in packets[:2]], store)[1].data
    (n_latents,) = struct.unpack_from("<I", integers)
    bad = {
        "latent": struct.pack("<I", n_latents - 1) + integers[4 : 4 + n_latents - 1] + integers[4 + n_latents :],
        "nn": integers[:-8],
        "header": integers[:3],
    }[cut]
    with pytest.raises(ValueError, match="decoded"):
        framecodec.parse_with_integers(data, bad, lookup)
    expected = framecodec.parse_payload(data, lookup)[1]
    got = _resolve(data, worker.Integers(bad), lookup)[1]
    assert all(np.array_equal(a, b) for c, d in zip(expected, got) for a, b in zip(c.latents, d.latents))
    assert all(same_networks(c, d) for c, d in zip(expected, got))


def test_decoding_through_the_helper_equals_in_process_and_the_encoder(stream):
    enc, packets = stream
    helper = decode_all(packets, pipeline=True)
    alone = decode_all(packets, pipeline=False)
    assert all(same(a, b) for a, b in zip(helper, alone))
    pictures = [p for group in helper for p in group]
    assert sorted(p.pts for p in pictures) == list(range(5))
    assert all(p.same_samples(enc.reconstructions[p.pts]) for p in pictures)


def test_a_damaged_packet_fails_with_the_same_error_through_the_helper(stream):
    _, packets = stream
    data = packets[2].data
    damaged = {2: data[: len(data) // 2]}
    helper = decode_all(packets, pipeline=True, damaged=damaged)
    alone = decode_all(packets, pipeline=False, damaged=damaged)
    assert isinstance(helper[2], str) and helper[2].startswith("CorruptDataError") and helper[2] == alone[2]
    assert all(same(a, b) for a, b in zip(helper, alone))


def test_a_dead_helper_falls_back_to_decoding_in_process(stream):
    enc, packets = stream
    helper = worker.entropy_worker()
    assert helper is not None and helper.alive
    helper._process.kill()
    helper._process.join(timeout=10)
    out = decode_all(packets, pipeline=True)
    pictures = [p for group in out for p in group]
    assert sorted(p.pts for p in pictures) == list(range(5))
    assert all(p.same_samples(enc.reconstructions[p.pts]) for p in pictures)
    restarted = worker.entropy_worker()  # the next group gets a new helper
    assert restarted is not None and restarted.alive and restarted._process.pid != helper._process.pid
    assert not helper.alive



def test_a_cold_prefetch_decodes_its_first_half_in_process(stream):
    """Nothing in flight: the first half of the group stays with the caller, the rest goes to
    the helper; a prefetch while packets are in flight goes to the helper whole."""
    enc, packets = stream
    dec = Decoder(pipeline=True)
    dec.prefetch(packets[:4])
    dec.prefetch(packets[4:])
    kinds = [type(f).__name__ for _, f, _ in dec._prefetched]
    assert kinds == ["_Deferred", "_Deferred", "Future", "Future", "Future"]
    # the helper decoded the caller's half too, so the frames predicting from it came back decoded
    ahead = [f.result()[slot] for _, f, slot in dec._prefetched if type(f).__name__ == "Future"]
    assert all(isinstance(item, worker.Integers) for item in ahead), ahead
    out = [p for packet in packets for p in dec.send(packet)] + dec.flush()
    assert sorted(p.pts for p in out) == list(range(5))
    assert all(p.same_samples(enc.reconstructions[p.pts]) for p in out)


def test_without_child_processes_the_decoder_falls_back_to_a_thread(stream, monkeypatch):
    """Inside a daemonic multiprocessing worker, Process.start() asserts: decoding still works."""

    def refuse(self):
        raise AssertionError("daemonic processes are not allowed to have children")

    monkeypatch.setattr(worker, "_WORKER", None)
    monkeypatch.setattr(worker.EntropyWorker, "__init__", refuse)
    assert worker.entropy_worker() is None
    enc, packets = stream
    out = decode_all(packets, pipeline=True)
    pictures = [p for group in out for p in group]
    assert sorted(p.pts for p in pictures) == list(range(5))
    assert all(p.same_samples(enc.reconstructions[p.pts]) for p in pictures)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_the_helper_ends_when_the_decoding_process_dies_without_cleanup():
    """A decoder killed (or ended by os._exit: no atexit) must not leave its helper running: the
    helper holds no copy of the main process's end of the pipe, so it sees the pipe close."""
    import os
    import time

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            helper = worker.EntropyWorker()
            os.write(write, str(helper._process.pid).encode())  # noqa: SLF001
        finally:
            os._exit(0)
    os.close(write)
    helper_pid = int(os.read(read, 32))
    os.close(read)
    os.waitpid(pid, 0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(helper_pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{helper_pid}/stat") as f:  # an exited orphan may linger as a zombie of init
            if f.read().split(") ")[1].startswith("Z"):
                return
        time.sleep(0.1)
    os.kill(helper_pid, 9)
    pytest.fail("the helper outlived the process that started it")


def test_a_helper_whose_reply_has_no_reader_ends_quietly(stream):
    """The decoding process ended while the helper was still decoding ahead (a short stream, an
    error): the helper's reply meets a closed pipe and it ends with status 0, no traceback."""
    import multiprocessing

    _, packets = stream
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    helper = context.Process(target=worker._serve, args=(theirs, ours))
    helper.start()
    theirs.close()
    ours.send_bytes(worker.pack_payloads([p.data for p in packets]))
    ours.close()  # gone before the reply
    helper.join(60)
    assert helper.exitcode == 0


def test_the_store_inherits_like_the_dpb_and_leaves_out_what_it_cannot(stream):
    """A P frame holds its I frame's picture residue (inherited); a frame whose reference the
    store never saw is left out rather than held with guessed networks."""
    from coolchic_stream.errors import DecodeOrderError

    _, packets = stream
    results = [framecodec.parse_payload(p.data, lookup) for p, lookup in zip(packets, in_order_lookups(packets))]
    assert [h.display_index for h, _ in results[:2]] == [0, 4]
    store = worker.NetworkStore()
    store.update(results[1:2])  # the P frame without its reference
    with pytest.raises(DecodeOrderError):
        store(4)
    store.update(results[:2])
    assert store(4)[framecodec.NetworkSlot.PICTURE] is store(0)[framecodec.NetworkSlot.PICTURE]
    assert framecodec.NetworkSlot.GATED in store(4) and framecodec.NetworkSlot.GATED not in store(0)


def test_the_store_keeps_what_a_frame_holds_when_it_missed_the_frame_before_it(stream):
    """B1 was decoded elsewhere (the caller's half of a group): B3, coded after it, still holds
    its own networks and its references' in the store; only what B1 would have passed on is
    unknown, never guessed."""
    _, packets = stream
    results = [framecodec.parse_payload(p.data, lookup) for p, lookup in zip(packets, in_order_lookups(packets))]
    assert [h.display_index for h, _ in results] == [0, 4, 2, 1, 3]
    store = worker.NetworkStore()
    store.update(results[:3] + results[4:])
    held, full = store(3), in_order_held(packets)[3]
    assert set(held) == set(framecodec.NetworkSlot)
    for slot, networks in held.items():
        if networks is not None:
            assert all(networks.modules[n].same_integers(full[slot].modules[n]) for n in networks.modules)
    header, coded = results[4]
    filled = {framecodec.slot_of(c.role, c.param) for c in coded}
    assert all(held[s] is not None for s in filled)
