"""The packet codec of ``gearman._core`` against docs/protocol.md §1-§2.

The encoder and the incremental decoder are compared with ``reference_codec.py``, a
separate ``struct``-based implementation written from the protocol document, on
random packets, random read boundaries and randomly damaged streams (hypothesis).
Hand-written cases pin the document's example bytes, every error path of the
decoder (with its exception class), encoder validation, the unique generators and
the server-spec parser.  Pure in-process tests: no server, no sockets.
"""
import bisect
import collections
import importlib.util
import os
import random
import re
import struct
import sys
import tracemalloc
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gearman import _core
from gearman import errors
from gearman.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    PacketTooLargeError,
    ProtocolError,
    UnknownCommandError,
)

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "fuzz" / "corpus"


def _load_reference():
    # --import-mode=importlib puts no test directory on sys.path: load by path.
    name = "cygearman_tests_reference_codec"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "reference_codec.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


ref = _load_reference()

PacketReader = _core.PacketReader
WriteBuffer = _core.WriteBuffer
pack_request = _core.pack_request
pack_response = _core.pack_response

REQ, RES = b"\x00REQ", b"\x00RES"
MIB = 1024 * 1024

PROPS = settings(max_examples=250, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def header(magic, cmd, length):
    return struct.pack(">4sII", magic, cmd, length)


# --- strategies --------------------------------------------------------------------------

# A non-data argument: any bytes but NUL (empty allowed, docs/protocol.md §1.1).
plain_arg = st.binary(max_size=24).map(lambda b: b.replace(b"\x00", b""))
# The trailing data argument: anything, NULs included; now and then large enough to make
# both buffers grow past their initial size (cheaply, by repetition).
small_data = st.binary(max_size=64)
large_data = st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=8),
                       st.integers(1200, 5000))
data_arg = st.integers(0, 9).flatmap(lambda i: large_data if i == 0 else small_data)
commands = st.integers(ref.FIRST, ref.LAST)
magics = st.sampled_from([REQ, RES])


@st.composite
def packet(draw, cmd=commands):
    c = draw(cmd)
    k = ref.nargs(c)
    args = [draw(plain_arg) for _ in range(k)]
    if ref.has_data(c):
        args[-1] = draw(data_arg)
    return c, tuple(args)


# An admin text line: first byte not NUL, no LF inside; CR allowed anywhere.
text_body = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").lstrip(b"\x00"))
text_line = st.tuples(text_body, st.sampled_from([b"\n", b"\r\n"]))

binary_item = packet().map(lambda p: ("bin", p))
text_item = text_line.map(lambda t: ("text", t))
# A well-framed packet whose body may have the wrong shape for its type (NULs anywhere).
raw_item = st.tuples(commands, st.lists(st.sampled_from([b"\x00", b"a", b"bc"]), max_size=9)
                     .map(b"".join)).map(lambda r: ("raw", r))


def encode_items(items, magic):
    out = []
    for kind, value in items:
        if kind == "bin":
            out.append(ref.encode(value[0], value[1], magic))
        elif kind == "raw":
            out.append(struct.pack(">4sII", magic, value[0], len(value[1])) + value[1])
        else:
            out.append(ref.encode_text(*value))
    return b"".join(out)


def to_bytes_like(chunk, how):
    if how == 1:
        return bytearray(chunk)
    if how == 2:
        return memoryview(b"##" + chunk + b"##")[2:-2]
    return chunk


# How to cut a stream into reads: all in one, byte by byte, or at random points; each
# read is handed over as bytes, bytearray or a memoryview slice (seeded choice).
splits = st.tuples(st.sampled_from(["whole", "bytes", "random", "random"]),
                   st.lists(st.integers(0, 2 ** 20), max_size=12),
                   st.integers(0, 2 ** 32 - 1))


def make_chunks(data, spec):
    mode, cuts, seed = spec
    if mode == "whole" or not data:
        inner = []
    elif mode == "bytes":
        inner = range(1, len(data))
    else:
        inner = [c % (len(data) + 1) for c in cuts]
    bounds = [0] + sorted(set(inner)) + [len(data)]
    rnd = random.Random(seed)
    return [(data[a:b], rnd.randrange(3)) for a, b in zip(bounds, bounds[1:])]


def run_reader(chunks, check_prefix=None, **kw):
    """Feed ``chunks``, draining after each; return (packets, error, reader)."""
    r = PacketReader(**kw)
    out = []
    fed = 0
    try:
        for chunk, how in chunks:
            r.feed(to_bytes_like(chunk, how))
            fed += len(chunk)
            while True:
                p = r.gets()
                if p is None:
                    break
                out.append(p)
            if check_prefix is not None:
                check_prefix(fed, out, r)
    except ProtocolError as e:
        return out, e, r
    return out, None, r


def assert_kind(err, kind):
    """The core's exception matches the reference decoder's error kind."""
    assert isinstance(err, ProtocolError), repr(err)
    if kind == "command":
        assert isinstance(err, UnknownCommandError), repr(err)
    elif kind == "too_large":
        assert isinstance(err, PacketTooLargeError), repr(err)
    else:
        assert not isinstance(err, (UnknownCommandError, PacketTooLargeError)), repr(err)


# --- tables ------------------------------------------------------------------------------

def test_command_tables_match_protocol_md():
    assert len(_core.COMMAND_NAMES) == len(_core.COMMAND_ARGC) == len(_core.COMMAND_HAS_DATA) == 43
    assert _core.COMMAND_NAMES[0] == "TEXT"
    for cmd, (name, _argc, data) in ref.TABLE.items():
        assert _core.COMMAND_NAMES[cmd] == name
        assert _core.COMMAND_ARGC[cmd] == ref.nargs(cmd), name
        assert _core.COMMAND_HAS_DATA[cmd] is data, name


# --- encoder -----------------------------------------------------------------------------

def test_protocol_md_submit_job_example_bytes():
    # docs/protocol.md §1.1: SUBMIT_JOB reverse / '' / test, 25 bytes on the wire.
    expected = bytes.fromhex("00524551" "00000007" "0000000d" "7265766572736500" "00" "74657374")
    assert len(expected) == 25
    assert pack_request(7, b"reverse", b"", b"test") == expected
    assert pack_request(7, "reverse", "", "test") == expected
    assert ref.encode(7, [b"reverse", b"", b"test"], REQ) == expected
    assert _core.parse_packets(expected, magic=REQ) == [(7, (b"reverse", b"", b"test"))]


def test_job_created_has_no_trailing_nul():
    pkt = pack_response(8, b"H:vm:1")
    assert pkt == b"\x00RES" + struct.pack(">II", 8, 6) + b"H:vm:1"


def test_protocol_md_work_packets_decode():
    # The relayed packets of docs/protocol.md §3.1 (data may contain NULs).
    stream = (header(RES, 12, 10) + b"H:vm:9\x003\x007"
              + header(RES, 28, 16) + b"H:vm:9\x00partial\x00x"
              + header(RES, 13, 17) + b"H:vm:9\x00result\x00bin")
    assert _core.parse_packets(stream) == [
        (12, (b"H:vm:9", b"3", b"7")),
        (28, (b"H:vm:9", b"partial\x00x")),
        (13, (b"H:vm:9", b"result\x00bin")),
    ]


@PROPS
@given(packet(), magics)
def test_encoder_matches_reference(pkt, magic):
    cmd, args = pkt
    expected = ref.encode(cmd, args, magic)
    pack = pack_request if magic == REQ else pack_response
    assert pack(cmd, *args) == expected
    wb = WriteBuffer()
    (wb.request if magic == REQ else wb.response)(cmd, *args)
    assert wb.getvalue() == expected
    assert len(wb) == len(expected)
    assert bytes(memoryview(wb)) == expected
    # and it decodes back to what was encoded
    assert _core.parse_packets(expected, magic=magic) == [(cmd, args)]


def test_large_payloads_go_by_reference_in_stream_order():
    """A data argument of 128 KiB or more is not copied into the buffer: the buffer
    holds the bytes object and the sender takes it in its place in the stream.
    The stream is the same as the reference encoder's, whatever the chunking; the
    buffer's own memory does not grow by the payload; a view is refused while a
    payload is held by reference (getvalue() still works)."""
    big = os.urandom(300 * 1024)
    other = os.urandom(200 * 1024)
    packets = [(7, [b"fn", b"u1", big]), (13, [b"H:x:1", b"small"]),
               (13, [b"H:x:2", other]), (16, [b"x"])]
    expected = b"".join(ref.encode(cmd, args, REQ) for cmd, args in packets)
    wb = WriteBuffer()
    tracemalloc.start()
    try:
        for cmd, args in packets:
            wb.request(cmd, *args)
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown              # no copy of 500 KiB of payloads
    assert len(wb) == len(expected)
    assert wb.getvalue() == expected
    with pytest.raises(BufferError):
        memoryview(wb)
    # consume it in odd steps across the chunk boundaries: what is left is always
    # the rest of the stream
    done = 0
    for step in (5, 40, 300 * 1024 - 3, 1, 17, 200 * 1024, 4):
        step = min(step, len(expected) - done)
        wb.advance(step)
        done += step
        assert len(wb) == len(expected) - done
        assert wb.getvalue() == expected[done:]
    wb.advance(len(wb))
    assert len(wb) == 0 and wb.getvalue() == b""
    wb.request(16, b"y")                         # usable again, plain bytes
    assert bytes(memoryview(wb)) == ref.encode(16, [b"y"], REQ)
    with pytest.raises(ValueError):
        wb.advance(len(wb) + 1)


@pytest.mark.parametrize("cmd", range(1, 43))
def test_encoder_rejects_wrong_argument_count(cmd):
    k = ref.nargs(cmd)
    for n in {k - 1, k + 1, k + 3} - {-1}:
        wb = WriteBuffer()
        wb.request(6)                         # something already queued
        before = wb.getvalue()
        with pytest.raises(InvalidArgumentError):
            wb.request(cmd, *([b"a"] * n))
        assert wb.getvalue() == before        # nothing half-written
        with pytest.raises(InvalidArgumentError):
            pack_response(cmd, *([b"a"] * n))
    pack_request(cmd, *([b"a"] * k))          # the right count passes


@pytest.mark.parametrize("cmd", range(1, 43))
def test_encoder_nul_only_in_trailing_data(cmd):
    k = ref.nargs(cmd)
    for i in range(k):
        args = [b"a"] * k
        args[i] = b"x\x00y"
        if ref.has_data(cmd) and i == k - 1:
            assert pack_request(cmd, *args) == ref.encode(cmd, args, REQ)
        else:
            # includes the last argument of a "no data" type (CAN_DO "fn\0", docs/protocol.md §1.1)
            with pytest.raises(InvalidArgumentError):
                pack_request(cmd, *args)
            wb = WriteBuffer()
            with pytest.raises(InvalidArgumentError):
                wb.response(cmd, *args)
            assert len(wb) == 0


@pytest.mark.parametrize("cmd", [0, 43, 44, 255, 1000, -1, 2 ** 31 - 1])
def test_encoder_rejects_unknown_command(cmd):
    with pytest.raises(InvalidArgumentError):
        pack_request(cmd)
    with pytest.raises(InvalidArgumentError):
        pack_response(cmd, b"x")


@pytest.mark.parametrize("cmd", [2 ** 32 + 7, -(2 ** 32) + 7, 2 ** 64 + 6])
def test_encoder_never_truncates_a_huge_command_number(cmd):
    # Must not wrap around to a valid type (7 = SUBMIT_JOB, 6 = NOOP).
    with pytest.raises((InvalidArgumentError, OverflowError)):
        pack_request(cmd, b"f", b"", b"w")
    with pytest.raises((InvalidArgumentError, OverflowError)):
        pack_request(cmd)


def test_encoder_str_args_are_utf8_and_ints_are_decimal():
    assert pack_request(1, "h\u00e9\u20ac") == ref.encode(1, ["h\u00e9\u20ac".encode("utf-8")], REQ)
    assert pack_response(12, "H:1", 3, 70000) == ref.encode(12, [b"H:1", b"3", b"70000"], RES)
    assert pack_request(23, "fn", 0) == ref.encode(23, [b"fn", b"0"], REQ)
    assert pack_request(7, bytearray(b"f"), memoryview(b"u"), "\u00ff\x00") == \
        ref.encode(7, [b"f", b"u", b"\xc3\xbf\x00"], REQ)
    with pytest.raises(InvalidArgumentError):      # a NUL smuggled in through str
        pack_request(1, "f\x00n")


@pytest.mark.parametrize("bad", [None, 1.5, True, False, object(), [b"x"]])
def test_encoder_rejects_other_types(bad):
    with pytest.raises(InvalidTypeError):
        pack_request(15, bad)
    wb = WriteBuffer()
    with pytest.raises(InvalidTypeError):
        wb.request(7, b"f", b"", bad)
    assert len(wb) == 0
    assert issubclass(InvalidTypeError, TypeError)
    assert issubclass(InvalidArgumentError, ValueError)


def test_write_buffer_text_lines():
    wb = WriteBuffer()
    wb.text(b"status")
    wb.text("workers")
    wb.request(16, b"ping")
    wb.text("")
    assert wb.getvalue() == b"status\nworkers\n" + ref.encode(16, [b"ping"], REQ) + b"\n"
    for bad in ("a\nb", "status\n", b"a\rb", "x\r"):
        with pytest.raises(InvalidArgumentError):
            wb.text(bad)


def test_write_buffer_text_rejects_nul():
    wb = WriteBuffer()
    with pytest.raises(InvalidArgumentError):
        wb.text(b"\x00REQ\x00\x00\x00\x03\x00\x00\x00\x00")


def test_write_buffer_advance_clear_and_errors():
    wb = WriteBuffer()
    wb.request(9)
    wb.request(15, b"H:x:1")
    full = ref.encode(9, [], REQ) + ref.encode(15, [b"H:x:1"], REQ)
    assert wb.getvalue() == full and len(wb) == len(full)
    wb.advance(5)
    assert wb.getvalue() == full[5:] and len(wb) == len(full) - 5
    with pytest.raises(ValueError):
        wb.advance(len(full))                 # past the end
    with pytest.raises(ValueError):
        wb.advance(-1)
    assert wb.getvalue() == full[5:]
    wb.advance(len(full) - 5)
    assert len(wb) == 0 and wb.getvalue() == b""
    wb.request(4)
    assert wb.getvalue() == ref.encode(4, [], REQ)
    wb.clear()
    assert len(wb) == 0 and wb.getvalue() == b""


def test_write_buffer_export_blocks_growth():
    wb = WriteBuffer(64)
    wb.request(16, b"abc")
    view = memoryview(wb)
    assert view.readonly and view.tobytes() == wb.getvalue()
    with pytest.raises(BufferError):
        wb.request(16, b"x" * 10000)          # would have to move the exported memory
    assert view.tobytes() == ref.encode(16, [b"abc"], REQ)
    view.release()
    wb.request(16, b"x" * 10000)
    assert wb.getvalue() == ref.encode(16, [b"abc"], REQ) + ref.encode(16, [b"x" * 10000], REQ)


write_ops = st.lists(st.one_of(
    packet().map(lambda p: ("request", p)),
    packet().map(lambda p: ("response", p)),
    text_body.map(lambda t: ("text", t.replace(b"\r", b"").replace(b"\x00", b""))),
    st.floats(0, 1).map(lambda f: ("advance", f)),
    st.just(("clear", None)),
), max_size=25)


@PROPS
@given(write_ops, st.sampled_from([64, 100, 4096]))
def test_write_buffer_matches_model(ops, initial):
    """Any mix of encodes, partial sends and clears equals a bytearray model."""
    wb = WriteBuffer(initial)
    model = bytearray()
    for op, arg in ops:
        if op == "request":
            wb.request(arg[0], *arg[1])
            model += ref.encode(arg[0], arg[1], REQ)
        elif op == "response":
            wb.response(arg[0], *arg[1])
            model += ref.encode(arg[0], arg[1], RES)
        elif op == "text":
            wb.text(arg)
            model += arg + b"\n"
        elif op == "advance":
            n = int(arg * len(model))
            wb.advance(n)
            del model[:n]
        else:
            wb.clear()
            model.clear()
        assert len(wb) == len(model)
    assert wb.getvalue() == bytes(model)
    assert bytes(memoryview(wb)) == bytes(model)


# --- decoder: properties ------------------------------------------------------------------

@PROPS
@given(st.lists(binary_item, max_size=10), magics, st.booleans(), splits)
def test_decoder_matches_reference_for_any_split(items, magic, allow_text, split):
    stream = encode_items(items, magic)
    expected, _ends, rest = ref.decode(stream, magic=magic)
    assert rest == 0
    assert expected == [v for _k, v in items]          # the reference round-trips too
    out, err, r = run_reader(make_chunks(stream, split), magic=magic, allow_text=allow_text)
    assert err is None
    assert out == expected
    assert r.buffered == 0 and r.gets() is None
    assert _core.parse_packets(stream, magic=magic) == expected


@PROPS
@given(st.lists(st.one_of(binary_item, text_item), max_size=12), magics, splits)
def test_text_lines_mixed_with_packets(items, magic, split):
    stream = encode_items(items, magic)
    expected, _ends, rest = ref.decode(stream, magic=magic, allow_text=True)
    assert rest == 0 and len(expected) == len(items)
    for (kind, value), got in zip(items, expected):
        if kind == "text" and not value[0].endswith(b"\r"):
            assert got == (0, (value[0],))
    out, err, r = run_reader(make_chunks(stream, split), magic=magic)
    assert err is None
    assert out == expected
    assert r.buffered == 0


@PROPS
@given(st.lists(st.one_of(binary_item, text_item), min_size=1, max_size=10), magics,
       st.floats(0, 1), splits)
def test_decoder_never_yields_a_partial_packet(items, magic, keep, split):
    """After every read, exactly the whole packets of the prefix are out; the rest is buffered."""
    full = encode_items(items, magic)
    packets, ends, _rest = ref.decode(full, magic=magic)
    # cut the stream somewhere, possibly mid-packet, and check after every read
    stream = full[:int(keep * len(full))]

    def check(fed, out, r):
        whole = bisect.bisect_right(ends, fed)         # packets that end within the prefix
        assert out == packets[:whole]
        assert r.buffered == fed - (ends[whole - 1] if whole else 0)

    out, err, r = run_reader(make_chunks(stream, split), check_prefix=check, magic=magic)
    assert err is None
    want, _ends, rest = ref.decode(stream, magic=magic)
    assert out == want and r.buffered == rest
    if rest:
        with pytest.raises(ProtocolError):
            _core.parse_packets(stream, magic=magic)


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10 ** 6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10 ** 6), st.binary(min_size=1, max_size=14)),
    st.tuples(st.just("delete"), st.integers(0, 10 ** 6), st.integers(1, 6)),
    # rewrite a header field of one packet: type or length
    st.tuples(st.just("field"), st.integers(0, 20), st.sampled_from([4, 8]),
              st.sampled_from([0, 5, 42, 43, 44, 0xFFFFFFFF, 0x7FFFFFFF, 2 ** 30, 1, 3, 64])),
)


def item_starts(items, magic):
    starts, pos = [], 0
    for item in items:
        starts.append(pos)
        pos += len(encode_items([item], magic))
    return starts


def mutate(stream, starts, muts):
    data = bytearray(stream)
    for m in muts:
        if m[0] == "field":
            if not starts:
                continue
            at = starts[m[1] % len(starts)] + m[2]
            if at + 4 <= len(data):
                data[at:at + 4] = struct.pack(">I", m[3])
            continue
        if not data:
            continue
        at = m[1] % (len(data) + 1)
        if m[0] == "set":
            if at < len(data):
                data[at] = m[2]
        elif m[0] == "insert":
            data[at:at] = m[2]
        else:
            del data[at:at + m[2]]
    return bytes(data)


def reference_outcome(data, **kw):
    try:
        packets, _ends, rest = ref.decode(data, **kw)
        return packets, None, rest
    except ref.RefError as e:
        return e.packets, e.kind, None


@PROPS
@given(st.lists(st.one_of(binary_item, text_item, raw_item), max_size=8),
       st.lists(mutation, max_size=4), magics, st.booleans(), splits)
def test_damaged_stream_matches_reference(items, muts, magic, allow_text, split):
    """Random damage: same packets as the reference, then the same error class (or none)."""
    good = encode_items(items, magic)
    stream = mutate(good, item_starts(items, magic), muts)
    want, kind, rest = reference_outcome(stream, magic=magic, allow_text=allow_text)
    event(f"reference outcome: {kind or 'no error'}")
    out, err, r = run_reader(make_chunks(stream, split), magic=magic, allow_text=allow_text)
    assert out == want
    if kind is None:
        assert err is None and r.buffered == rest
    else:
        assert_kind(err, kind)
        with pytest.raises(type(err)):        # sticky
            r.gets()


@PROPS
@given(st.lists(st.one_of(binary_item, raw_item, text_item), max_size=6),
       st.lists(mutation, max_size=3), magics, st.booleans(), st.integers(1, 300), splits)
def test_small_limits_match_reference(items, muts, magic, allow_text, limit, split):
    """max_packet_size bounds a body or a text line, with the same verdict at any read boundary."""
    good = encode_items(items, magic)
    stream = mutate(good, item_starts(items, magic), muts)
    want, kind, rest = reference_outcome(stream, magic=magic, allow_text=allow_text,
                                         max_body=limit)
    event(f"reference outcome: {kind or 'no error'}")
    out, err, r = run_reader(make_chunks(stream, split), magic=magic, allow_text=allow_text,
                             max_packet_size=limit)
    assert out == want
    if kind is None:
        assert err is None and r.buffered == rest
    else:
        assert_kind(err, kind)


# --- decoder: errors -----------------------------------------------------------------------

def _expect_sticky(r, exc_type, magic=RES):
    with pytest.raises(exc_type) as first:
        r.gets()
    r.feed(header(magic, 6, 0))                  # a perfectly good NOOP afterwards
    with pytest.raises(exc_type):
        r.gets()
    with pytest.raises(exc_type):
        list(r)
    with pytest.raises(exc_type):
        next(iter(r))
    return first.value


@pytest.mark.parametrize("bad", [REQ, b"\x00RE\x00", b"\x00res", b"\x00\x00\x00\x00",
                                 b"\x00RET", b"\x00\xffES"])
def test_bad_magic(bad):
    assert len(bad) == 4
    r = PacketReader()
    r.feed(header(RES, 6, 0))
    r.feed(bad + struct.pack(">II", 6, 0))
    assert r.gets() == (6, ())                   # packets before the fault still come out
    err = _expect_sticky(r, ProtocolError)
    assert not isinstance(err, (UnknownCommandError, PacketTooLargeError))


def test_request_magic_when_expecting_response_and_vice_versa():
    with pytest.raises(ProtocolError):
        _core.parse_packets(pack_request(9))                # expects \0RES
    with pytest.raises(ProtocolError):
        _core.parse_packets(pack_response(6), magic=REQ)
    assert _core.parse_packets(pack_request(9), magic=REQ) == [(9, ())]
    assert _core.parse_packets(pack_response(6), magic=RES) == [(6, ())]


def test_reader_constructor_validation():
    with pytest.raises(InvalidArgumentError):
        PacketReader(magic=b"\x00XYZ")
    with pytest.raises(InvalidArgumentError):
        PacketReader(max_packet_size=0)
    assert PacketReader().max_packet_size == 64 * MIB


def test_text_not_allowed():
    r = PacketReader(allow_text=False)
    r.feed(b"status\n")
    err = _expect_sticky(r, ProtocolError)
    assert not isinstance(err, (UnknownCommandError, PacketTooLargeError))
    r = PacketReader(allow_text=True)
    r.feed(b"status\n")
    assert r.gets() == (0, (b"status",))


@pytest.mark.parametrize("cmd", [0, 43, 44, 100, 0x01000007, 0xFFFFFFFF])
def test_unknown_command(cmd):
    r = PacketReader()
    r.feed(header(RES, cmd, 0))
    _expect_sticky(r, UnknownCommandError)
    assert issubclass(UnknownCommandError, ProtocolError)


@pytest.mark.parametrize("cmd", [c for c in range(1, 43) if ref.nargs(c) >= 2])
def test_too_few_separators(cmd):
    k = ref.nargs(cmd)
    body = b"\x00".join([b"a"] * (k - 1))        # one NUL short
    r = PacketReader(magic=REQ)
    r.feed(header(REQ, cmd, len(body)) + body)
    err = _expect_sticky(r, ProtocolError, magic=REQ)
    assert not isinstance(err, (UnknownCommandError, PacketTooLargeError))
    # an empty body is short too
    r = PacketReader()
    r.feed(header(RES, cmd, 0))
    _expect_sticky(r, ProtocolError)


@pytest.mark.parametrize("cmd", [c for c in range(1, 43) if ref.nargs(c) == 0])
def test_body_on_zero_argument_type(cmd):
    r = PacketReader()
    r.feed(header(RES, cmd, 1) + b"x")
    err = _expect_sticky(r, ProtocolError)
    assert not isinstance(err, (UnknownCommandError, PacketTooLargeError))
    assert _core.parse_packets(header(RES, cmd, 0)) == [(cmd, ())]


def test_extra_nuls_go_to_the_last_argument():
    # "no data" last argument = rest of the body (docs/protocol.md §1.1), NULs and all.
    assert _core.parse_packets(header(RES, 19, 7) + b"E\x00t\x00x\x00y") == \
        [(19, (b"E", b"t\x00x\x00y"))]
    assert _core.parse_packets(header(RES, 8, 3) + b"H\x00\x00") == [(8, (b"H\x00\x00",))]


def test_args_slack_matches_the_reference():
    """docs/reliability.md §6: max_packet_size bounds the payload; a packet may carry
    ARGS_SLACK more bytes for the arguments before it (handle, function name,
    unique, reducer, NULs).  Derived independently from docs/protocol.md §1.4."""
    assert _core.ARGS_SLACK == ref.ARGS_SLACK == 64 + 64 + 3 * 512 + 8


def test_max_packet_size_boundary():
    limit = 1000
    slack = _core.ARGS_SLACK
    exact = header(RES, 17, limit) + b"\x00" * limit
    assert _core.parse_packets(exact, max_packet_size=limit) == [(17, (b"\x00" * limit,))]
    r = PacketReader(max_packet_size=limit)
    r.feed(exact[:12])
    assert r.gets() is None and r.buffered == 12        # exactly the limit: wait for the body
    r.feed(exact[12:])
    assert r.gets() == (17, (b"\x00" * limit,))
    # The header alone is refused once it announces more than the limit plus the slack ...
    r = PacketReader(max_packet_size=limit)
    r.feed(header(RES, 17, limit + slack + 1))
    _expect_sticky(r, PacketTooLargeError)
    # ... and waited for up to that size: then the payload itself decides.
    r = PacketReader(max_packet_size=limit)
    r.feed(header(RES, 17, limit + slack))
    assert r.gets() is None
    r = PacketReader(max_packet_size=limit)
    r.feed(header(RES, 17, limit + 1))
    assert r.gets() is None
    r.feed(b"x" * (limit + 1))                            # ECHO_RES: all of it is payload
    err = _expect_sticky(r, PacketTooLargeError)
    assert "max_packet_size" in str(err) and err.code == errors.PacketTooLargeError.code
    with pytest.raises(PacketTooLargeError):
        _core.parse_packets(header(RES, 17, limit + 1) + b"x" * (limit + 1), max_packet_size=limit)


def test_payload_of_exactly_the_limit_passes_with_the_widest_arguments():
    """JOB_ASSIGN_ALL with a 63-byte handle, 512-byte function and reducer and a
    64-byte unique around a payload of exactly max_packet_size: accepted; one
    payload byte more is refused (but only once the body is in)."""
    limit = 4096
    fn, red, uniq, handle = b"f" * 512, b"r" * 512, b"u" * 64, b"H:" + b"h" * 61
    for size, ok in ((limit, True), (limit + 1, False)):
        data = bytes(random.Random(size).randrange(256) for _ in range(size))
        pkt = pack_response(40, handle, fn, uniq, red, data)
        assert len(pkt) - 12 > limit                      # the body is over the limit
        want, kind, rest = reference_outcome(pkt, magic=RES, max_body=limit)
        out, err, r = run_reader([(pkt[:100], 0), (pkt[100:], 0)], max_packet_size=limit)
        if ok:
            assert kind is None and err is None and out == want == [(40, (handle, fn, uniq, red, data))]
        else:
            assert kind == "too_large" and out == want == []
            assert isinstance(err, PacketTooLargeError) and "max_packet_size" in str(err)


def test_wrong_shape_is_reported_before_an_oversized_payload():
    """A body over the limit without its NUL separators is a shape error (like the
    reference), whatever the length of its last argument."""
    limit = 100
    body = b"H:1" + b"x" * 200                            # WORK_COMPLETE without the NUL
    stream = header(RES, 13, len(body)) + body
    _want, kind, _rest = reference_outcome(stream, magic=RES, max_body=limit)
    _out, err, _r = run_reader([(stream, 0)], max_packet_size=limit)
    assert kind == "args"
    assert_kind(err, kind)


def test_data_argument_over_the_limit_is_refused_after_the_body():
    limit = 100
    pkt = pack_response(28, b"H:1", b"d" * (limit + 1))  # WORK_DATA, one payload byte too many
    r = PacketReader(max_packet_size=limit)
    r.feed(pkt[:-1])
    assert r.gets() is None                               # within limit + slack: wait
    r.feed(pkt[-1:])
    err = _expect_sticky(r, PacketTooLargeError)
    assert "WORK_DATA payload of 101 bytes" in str(err)
    assert _core.parse_packets(pack_response(28, b"H:1", b"d" * limit),
                               max_packet_size=limit) == [(28, (b"H:1", b"d" * limit))]


def test_a_large_packet_costs_one_buffer_of_its_size_and_is_given_back():
    """The reader grows to the announced packet exactly (not to the next power
    of two, not twice), whatever the read sizes, and shrinks once it is consumed."""
    size = 6 * MIB + 5
    pkt = pack_response(17, b"e" * size)
    tracemalloc.start()
    try:
        r = PacketReader()
        for i in range(0, len(pkt), 65536):
            r.feed(pkt[i:i + 65536])
            if i == 0:
                assert r.gets() is None
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        got = r.gets()
        assert got is not None and len(got[1][0]) == size
        del got
        assert r.gets() is None                           # the next call gives the buffer back
        after, _ = tracemalloc.get_traced_memory()
        # and while it was filling
        r2 = PacketReader()
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        for i in range(0, len(pkt), 4096):
            r2.feed(pkt[i:i + 4096])
            r2.gets()
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert base - after > size - 4 * 65536, (base, after)  # released (down to a small buffer)
    assert peak - start < size + 12 + 2 * 65536 + size, peak - start   # buffer + the bytes result
    assert peak - start >= size                           # (it was measured at all)


@pytest.mark.parametrize("length", [2 ** 30, 2 ** 31, 0x7FFFFFF1, 0xFFFFFFFF])
def test_oversized_announcement_raises_before_the_body_and_allocates_nothing(length):
    tracemalloc.start()
    try:
        r = PacketReader()                                # 64 MiB limit
        r.feed(header(RES, 17, length))                   # only the 12-byte header of it
        with pytest.raises(PacketTooLargeError):
            r.gets()
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        # Control: the same measurement does see a body buffer reserved for an announcement
        # within the limit (so the assertion above could fail).
        r2 = PacketReader()
        r2.feed(header(RES, 17, 8 * MIB))
        assert r2.gets() is None
        _cur2, peak2 = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MIB, peak
    assert peak2 >= 8 * MIB, peak2


def test_unterminated_text_line_over_the_limit():
    r = PacketReader(max_packet_size=16)
    r.feed(b"x" * 16)
    assert r.gets() is None
    r.feed(b"x")
    _expect_sticky(r, PacketTooLargeError)


def test_text_line_limit_does_not_depend_on_read_boundaries():
    line = b"y" * 40 + b"\n"
    whole, err_whole, _ = run_reader([(line, 0)], max_packet_size=16)
    split, err_split, _ = run_reader([(line[:20], 0), (line[20:], 0)], max_packet_size=16)
    assert isinstance(err_split, PacketTooLargeError)
    assert (whole, type(err_whole)) == (split, type(err_split))


def test_large_packet_in_small_reads_between_small_packets():
    body = bytes(range(256)) * (3 * 4096 + 7)            # ~3 MiB, NULs included
    stream = (ref.encode(6, [], RES) + ref.encode(17, [body], RES)
              + ref.encode(13, [b"H:1", b"\x00done"], RES) + b"OK\r\n")
    step = 65531
    chunks = [(stream[i:i + step], 0) for i in range(0, len(stream), step)]
    out, err, r = run_reader(chunks)
    assert err is None
    assert out == [(6, ()), (17, (body,)), (13, (b"H:1", b"\x00done")), (0, (b"OK",))]
    assert r.buffered == 0


def test_feed_accepts_bytes_like_and_iteration():
    import array
    pkt = ref.encode(16, [b"\x01\x02\x03\x04"], RES)
    r = PacketReader()
    r.feed(bytearray(pkt))
    r.feed(memoryview(pkt))
    r.feed(array.array("B", pkt))
    r.feed(b"")
    assert r.buffered == 3 * len(pkt)
    assert list(r) == [(16, (b"\x01\x02\x03\x04",))] * 3
    assert r.buffered == 0 and r.gets() is None


def test_parse_packets_reports_trailing_bytes():
    assert _core.parse_packets(b"") == []
    with pytest.raises(ProtocolError):
        _core.parse_packets(pack_response(6)[:5])
    with pytest.raises(ProtocolError):
        _core.parse_packets(pack_response(17, b"abc")[:-1])
    with pytest.raises(ProtocolError):
        _core.parse_packets(b"status")                 # text without its LF


# --- fuzz corpus ---------------------------------------------------------------------------

def _corpus_files():
    return sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []


def test_corpus_is_present():
    assert len(_corpus_files()) >= 5


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_corpus_file_decodes_or_raises_protocol_error(path):
    data = path.read_bytes()
    outcomes = []
    for chunks in ([(data, 0)], [(data[i:i + 1], 0) for i in range(len(data))]):
        r = PacketReader()
        out = []
        err = None
        try:
            for chunk, _ in chunks:
                r.feed(chunk)
                out.extend(iter(r.gets, None))
        except ProtocolError as e:       # anything else (or a crash) fails the test
            err = type(e)
        outcomes.append((out, err, None if err else r.buffered))
    assert outcomes[0] == outcomes[1]
    want, kind, rest = reference_outcome(data)
    assert outcomes[0][0] == want
    assert (outcomes[0][1] is None) == (kind is None)


# --- uniques --------------------------------------------------------------------------------

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_new_unique_format():
    for _ in range(1000):
        u = _core.new_unique()
        assert isinstance(u, str) and len(u) == 36
        assert UUID_RE.match(u), u
        parsed = uuid.UUID(u)
        assert parsed.version == 8 and parsed.variant == uuid.RFC_4122
        assert len(u.encode("utf-8")) <= 64
        _core.validate_unique(u)


def test_new_unique_is_a_fixed_prefix_and_a_counter():
    """The first 18 characters are the process's random prefix; the last 62 bits
    (after the RFC variant) count up by one per unique."""
    us = [_core.new_unique() for _ in range(3000)]
    assert len({u[:18] for u in us}) == 1
    low = [int(u.replace("-", "")[16:], 16) & ((1 << 62) - 1) for u in us]
    assert all((b - a) % (1 << 62) == 1 for a, b in zip(low, low[1:]))


def test_new_unique_has_no_repeats():
    n = 100_000
    assert len({_core.new_unique() for _ in range(n)}) == n


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_new_unique_differs_in_forked_child():
    _core.new_unique()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                                      # child
        code = 1
        try:
            os.close(rfd)
            vals = ",".join(_core.new_unique() for _ in range(50))
            os.write(wfd, vals.encode("ascii"))
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    parent = [_core.new_unique() for _ in range(50)]
    chunks = []
    while True:
        b = os.read(rfd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    child = b"".join(chunks).decode("ascii").split(",")
    assert len(child) == 50 and all(UUID_RE.match(u) for u in child)
    assert not set(child) & set(parent)


def test_workload_hash_unique_is_deterministic_decimal():
    seen = set()
    for w in (b"", b"a", b"test", b"\x00\xff" * 33, bytes(range(256)), "h\u00e9"):
        h = _core.workload_hash_unique(w)
        assert isinstance(h, str) and h.isdigit() and h == str(int(h))
        assert 0 <= int(h) < 2 ** 32
        assert _core.workload_hash_unique(w) == h
        if isinstance(w, bytes):
            assert _core.workload_hash_unique(bytearray(w)) == h
            assert _core.workload_hash_unique(memoryview(w)) == h
        seen.add(h)
    assert len(seen) == 6
    assert _core.workload_hash_unique("h\u00e9") == _core.workload_hash_unique("h\u00e9".encode())


# "#" uniques that libgearman 1.1.20 actually sent: Debian's `gearman -b -u '#' -f fn WORKLOAD`
# against a live gearmand 1.1.20, read back with the admin command `show unique jobs`.
LIBGEARMAN_HASH_UNIQUES = {
    b"test": "3766773432",
    b"hello": "1067880409",
    b"abc": "634628250",
    b"The quick brown fox jumps over the lazy dog": "2603515018",
}


def test_reference_hash_unique_reproduces_libgearman():
    for w, want in LIBGEARMAN_HASH_UNIQUES.items():
        assert ref.libgearman_hash_unique(w) == want
    # and the murmur3 inside it is the standard one (published seed-0 vectors)
    assert ref.murmur3_x86_32(b"", 0) == 0
    assert ref.murmur3_x86_32(b"test", 0) == 0xBA6BD213


def test_workload_hash_unique_matches_libgearman():
    for w, want in LIBGEARMAN_HASH_UNIQUES.items():
        assert _core.workload_hash_unique(w) == want


def test_workload_hash_unique_matches_reference():
    rnd = random.Random(4730)
    for n in list(range(1, 40)) + [255, 256, 1000]:     # every tail length, several blocks
        w = bytes(rnd.randrange(256) for _ in range(n))
        assert _core.workload_hash_unique(w) == ref.libgearman_hash_unique(w), w


def test_validate_unique_and_function_name():
    assert _core.validate_unique("u" * 64) == b"u" * 64
    assert _core.validate_unique("") == b""
    assert _core.validate_unique("\u00e9") == "\u00e9".encode()
    with pytest.raises(InvalidArgumentError):
        _core.validate_unique("u" * 65)
    with pytest.raises(InvalidArgumentError):
        _core.validate_unique(b"a\x00b")
    with pytest.raises(InvalidTypeError):
        _core.validate_unique(5)
    assert _core.validate_function_name("f" * 512) == b"f" * 512
    assert _core.validate_function_name(b"rev") == b"rev"
    for bad in ("", "f" * 513, "a\x00b"):
        with pytest.raises(InvalidArgumentError):
            _core.validate_function_name(bad)
    with pytest.raises(InvalidTypeError):
        _core.validate_function_name(None)


# --- server specs ----------------------------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ("gm.example", ("gm.example", 4730)),
    ("gm.example:4731", ("gm.example", 4731)),
    ("127.0.0.1:1", ("127.0.0.1", 1)),
    ("  h:65535 ", ("h", 65535)),
    ("[::1]:4731", ("::1", 4731)),
    ("[::1]", ("::1", 4730)),
    ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
    ("::1", ("::1", 4730)),
    ("h:0", ("h", 4730)),
])
def test_parse_server_spec(spec, expected):
    assert _core.parse_server_spec(spec) == expected


def test_parse_server_spec_default_port():
    assert _core.parse_server_spec("h", 9999) == ("h", 9999)
    assert _core.parse_server_spec("h:12", 9999) == ("h", 12)


@pytest.mark.parametrize("spec", ["h:abc", "h:65536", "h:-1", "h:1.5", "[::1]:x", "[::1]4731",
                                  "[::1", "", "   ", "h:99999999999999999999"])
def test_parse_server_spec_rejects(spec):
    with pytest.raises(InvalidArgumentError):
        _core.parse_server_spec(spec)


def test_parse_server_spec_type():
    with pytest.raises(InvalidTypeError):
        _core.parse_server_spec(b"h:1")


def test_errors_come_from_gearman_errors():
    assert errors.PacketTooLargeError is PacketTooLargeError
    assert issubclass(PacketTooLargeError, ProtocolError)
    assert issubclass(UnknownCommandError, ProtocolError)
    r = PacketReader()
    r.feed(header(REQ, 6, 0))
    with pytest.raises(errors.ProtocolError) as e:
        r.gets()
    assert type(e.value).__module__ == "gearman.errors"


@pytest.mark.parametrize("cause,cls", [
    (ProtocolError("bad magic b'\\x00XYZ'"), errors.ProtocolLostConnectionError),
    (UnknownCommandError("unknown command number 43"), errors.UnknownCommandLostConnectionError),
    (PacketTooLargeError("WORK_COMPLETE packet of 4194304 bytes exceeds max_packet_size",
                         code=errors.PacketTooLargeError.code),
     errors.PacketTooLargeLostConnectionError),
])
def test_a_request_lost_to_protocol_damage_names_the_damage(cause, cls):
    """docs/reliability.md §1: outcome unknown (a LostConnectionError, handle kept) and the
    cause in type, code, message and __cause__."""
    err = errors._lost_connection_error("lost connection to h:1; its outcome is unknown",
                                        cause, server="h:1", handle="H:h:1")
    assert type(err) is cls
    assert isinstance(err, errors.LostConnectionError) and isinstance(err, type(cause))
    assert isinstance(err, ConnectionError)               # the builtin, too
    assert err.code == cause.code and err.handle == "H:h:1" and err.server == "h:1"
    assert err.__cause__ is cause and str(cause) in str(err) and "outcome is unknown" in str(err)


def test_a_request_lost_to_a_plain_disconnect_stays_a_plain_lost_connection():
    err = errors._lost_connection_error("lost", errors.LostConnectionError("eof"), server="h:1")
    assert type(err) is errors.LostConnectionError and err.__cause__ is None
    assert type(errors._lost_connection_error("lost")) is errors.LostConnectionError


def test_str_arguments_encode_as_utf8_with_surrogateescape():
    """Function names, uniques and handles given as str are sent as UTF-8; a str
    with lone surrogates (bytes decoded with surrogateescape) round-trips to the
    original bytes, on the cached-UTF-8 fast path and on the codec path alike."""
    from gearman import _core
    assert _core.validate_function_name("r\u00e9sum\u00e9") == "r\u00e9sum\u00e9".encode()
    raw = b"f\xff\xfe-\xc3\xa9"
    assert _core.validate_function_name(raw.decode("utf-8", "surrogateescape")) == raw
    engine = _core.ClientEngine()
    t = engine.new_request(_core.KIND_STATUS, b"H:\xff:1".decode("utf-8", "surrogateescape"))
    assert t.workload() == b"H:\xff:1" and t.jobHandle() == b"H:\xff:1".decode("utf-8", "surrogateescape")
    t = engine.new_request(_core.KIND_STATUS_UNIQUE, "u-\udcff")
    assert t.workload() == b"u-\xff"


# --- the request FIFO of a connection ---------------------------------------------------------

def test_fifo_keeps_order_across_wrap_around_and_growth():
    f = _core.Fifo()
    model = collections.deque()
    n = 0
    # pushes and pops in uneven runs: the ring wraps, grows while wrapped, empties
    for push, pop in [(5, 3), (10, 0), (0, 12), (20, 7), (3, 16), (1, 1), (40, 40)]:
        for _ in range(push):
            f.append(n)
            model.append(n)
            n += 1
        for _ in range(pop):
            assert f.popleft() == model.popleft()
        assert len(f) == len(model)
        assert list(f) == list(model)
    with pytest.raises(IndexError):
        f.popleft()
