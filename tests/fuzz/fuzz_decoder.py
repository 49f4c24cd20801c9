#!/usr/bin/env python3
"""Fuzz harness for the incremental packet decoder, ``gearman._core.PacketReader``.

Usage (atheris, coverage-guided; the Cython core itself is not instrumented, the
reference decoder it is compared with is)::

    pip install atheris
    python tests/fuzz/fuzz_decoder.py -runs=100000 /tmp/fuzz-work tests/fuzz/corpus
    python tests/fuzz/fuzz_decoder.py -max_total_time=60 /tmp/fuzz-work tests/fuzz/corpus

libFuzzer writes the inputs it finds into the *first* corpus directory: give it a
scratch directory first so the checked-in seeds in ``tests/fuzz/corpus`` stay small.
A crash is written to ``crash-<sha1>`` in the current directory; replay it with
``python tests/fuzz/fuzz_decoder.py crash-<sha1>``.

Without atheris installed the same script runs a plain mutation loop (seeded, no
coverage feedback) over the corpus files, with the same options ``-runs=N`` and
``-max_total_time=S``, so it is usable anywhere; the pytest suite never needs atheris.

Every input is a raw byte stream as received from a job server.  It is decoded in
several configurations (expected magic, text lines allowed or not, default or tiny
``max_packet_size``) and at several read boundaries (all at once, byte by byte, random
cuts).  For each the harness checks:

* only :class:`gearman.errors.ProtocolError` (or a subclass) is ever raised;
* the outcome (packets, error class, bytes left buffered) does not depend on the read
  boundaries;
* it equals the outcome of the independent ``tests/reference_codec.py`` decoder
  (same packets, same error kind, same leftover);
* every decoded binary packet that the encoder accepts re-encodes to its exact bytes.

(Its first finding, within seconds: a text line longer than ``max_packet_size`` was
accepted when its LF was already buffered and refused when it arrived in pieces;
pinned by ``test_text_line_limit_does_not_depend_on_read_boundaries``.)
"""
import os
import random
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))              # for reference_codec

try:
    import atheris
except ImportError:                               # the plain loop below still works
    atheris = None

if atheris is not None:
    with atheris.instrument_imports():
        import reference_codec as ref
else:
    import reference_codec as ref

from gearman import _core                         # noqa: E402
from gearman.errors import (                      # noqa: E402
    InvalidArgumentError,
    PacketTooLargeError,
    ProtocolError,
    UnknownCommandError,
)

DEFAULT_LIMIT = 64 * 1024 * 1024
REQ, RES = b"\x00REQ", b"\x00RES"


def _kind(err):
    if err is None:
        return None
    if isinstance(err, UnknownCommandError):
        return "command"
    if isinstance(err, PacketTooLargeError):
        return "too_large"
    return "magic/args"


def _ref_kind(kind):
    return None if kind is None else ("magic/args" if kind in ("magic", "args") else kind)


def _run_core(chunks, magic, allow_text, limit):
    r = _core.PacketReader(max_packet_size=limit, magic=magic, allow_text=allow_text)
    out = []
    err = None
    try:
        for chunk in chunks:
            r.feed(chunk)
            while True:
                p = r.gets()
                if p is None:
                    break
                out.append(p)
    except ProtocolError as e:                    # anything else escapes: a finding
        err = e
        try:
            r.gets()
        except type(e):
            pass
        else:
            raise AssertionError("decoder error is not sticky")
    return out, _kind(err), (None if err is not None else r.buffered)


def _splits(data):
    yield [data]
    if len(data) <= 2048:
        yield [data[i:i + 1] for i in range(len(data))]
    rnd = random.Random(zlib.crc32(data))
    for _ in range(2):
        cuts = sorted(rnd.randrange(len(data) + 1) for _ in range(rnd.randrange(1, 9)))
        bounds = [0] + cuts + [len(data)]
        yield [data[a:b] for a, b in zip(bounds, bounds[1:])]


def _configs(data):
    small = 1 + zlib.crc32(data) % 256
    yield RES, True, DEFAULT_LIMIT
    yield REQ, True, DEFAULT_LIMIT
    yield RES, False, small
    yield REQ, True, small


def check(data):
    data = bytes(data)
    for magic, allow_text, limit in _configs(data):
        outcomes = [_run_core(chunks, magic, allow_text, limit) for chunks in _splits(data)]
        first = outcomes[0]
        for other in outcomes[1:]:
            if other != first:
                raise AssertionError(
                    f"outcome depends on read boundaries ({magic!r}, text={allow_text}, "
                    f"limit={limit}): {first[1:]} vs {other[1:]}")
        try:
            want, ends, rest = ref.decode(data, magic=magic, allow_text=allow_text,
                                          max_body=limit)
            want_kind = None
        except ref.RefError as e:
            want, ends, rest, want_kind = e.packets, e.ends, None, _ref_kind(e.kind)
        packets, kind, buffered = first
        if packets != want:
            raise AssertionError(f"packets differ from the reference ({magic!r}, "
                                 f"text={allow_text}, limit={limit})")
        if kind != want_kind or buffered != rest:
            raise AssertionError(f"outcome differs from the reference ({magic!r}, "
                                 f"text={allow_text}, limit={limit}): core {kind}/{buffered}, "
                                 f"reference {want_kind}/{rest}")
        # re-encode every binary packet the encoder accepts: exact bytes back
        pack = _core.pack_request if magic == REQ else _core.pack_response
        start = 0
        for (cmd, args), end in zip(packets, ends):
            if cmd != 0:
                try:
                    again = pack(cmd, *args)
                except InvalidArgumentError:
                    # only a NUL inside the unterminated last argument of a no-data type
                    assert not ref.has_data(cmd) and b"\x00" in args[-1], (cmd, args)
                else:
                    assert again == data[start:end], (cmd, args)
            start = end


def TestOneInput(data):                            # noqa: N802 (atheris' name)
    check(data)


# --- without atheris: a seeded mutation loop -------------------------------------------------

def _mutate(rnd, seeds):
    data = bytearray(rnd.choice(seeds))
    for _ in range(rnd.randrange(1, 5)):
        op = rnd.randrange(5)
        at = rnd.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(at, len(data) - 1)] = rnd.randrange(256)
        elif op == 1:
            data[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 8)))
        elif op == 2:
            del data[at:at + rnd.randrange(1, 8)]
        elif op == 3:
            other = rnd.choice(seeds)
            a = rnd.randrange(len(other) + 1)
            data[at:at] = other[a:a + rnd.randrange(1, 40)]
        elif data:                                 # rewrite a big-endian field
            v = rnd.choice([0, 1, 5, 42, 43, 0xFFFFFFFF, 1 << 30, rnd.randrange(1 << 32)])
            data[at:at + 4] = v.to_bytes(4, "big")
    return bytes(data)


def _plain_main(argv):
    runs, max_time, paths = 10000, None, []
    for a in argv:
        if a.startswith("-runs="):
            runs = int(a.split("=", 1)[1])
        elif a.startswith("-max_total_time="):
            max_time = float(a.split("=", 1)[1])
        elif a.startswith("-"):
            continue
        else:
            paths.append(Path(a))
    seeds = []
    for p in paths or [HERE / "corpus"]:
        files = sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
        seeds.extend(q.read_bytes() for q in files)
    seeds = seeds or [b""]
    for s in seeds:
        check(s)
    rnd = random.Random(int(os.environ.get("FUZZ_SEED", "4730")))
    deadline = None if max_time is None else time.monotonic() + max_time
    done = 0
    while done < runs and (deadline is None or time.monotonic() < deadline):
        data = _mutate(rnd, seeds)
        try:
            check(data)
        except BaseException:
            name = f"crash-plain-{zlib.crc32(data):08x}"
            Path(name).write_bytes(data)
            print(f"FAILED on input written to {name}", file=sys.stderr)
            raise
        done += 1
    print(f"plain mutation loop (atheris not installed): {len(seeds)} seeds, {done} runs, no failure")


def main():
    if atheris is None:
        _plain_main(sys.argv[1:])
        return
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
