"""An independent, deliberately naive reference codec for the Gearman wire protocol.

Written from ``docs/protocol.md`` §1-§2 (and §4.1 for admin text lines) with
``struct`` and plain slicing, *not* from ``gearman._core``: the property tests
compare the compiled encoder/decoder against this module.  Speed is irrelevant
here; obviousness is the point.

Decoding model (docs/protocol.md §1.1-§1.2):

* a stream is a sequence of items; the first byte of each item decides its kind:
  NUL starts a 12-byte binary header, anything else starts an admin text line
  that ends at ``\\n`` (one ``\\r`` right before the ``\\n`` is dropped);
* header = 4-byte magic, 4-byte big-endian type, 4-byte big-endian body length;
* a type with ``k`` arguments in total (the table's ``argc`` plus one if it carries
  ``data``) has exactly ``k - 1`` NUL separators: the first ``k - 1`` arguments are
  NUL-terminated, the last one is the rest of the body (it may contain NULs); a
  zero-argument type has an empty body.

Limits (docs/reliability.md §6: ``max_packet_size`` bounds the *payload*, the data argument):
a header announcing more than ``max_body + ARGS_SLACK`` bytes is refused at once
(the slack is room for the arguments before the payload); once the body is in,
the data argument of a type that has one must be at most ``max_body`` bytes.  A
text line is bounded by ``max_body`` itself.

Errors are reported as :class:`RefError` with a ``kind``: ``"magic"`` (bad magic
or text where text is not allowed), ``"command"`` (type 0 or >= 43), ``"too_large"``
(announced body over the limit plus the slack, a data argument over the limit, or
a text line longer than the limit) and ``"args"`` (body does not have the shape
the type requires).  Check order for a header: magic, type, length; for a whole
body: shape, then the data argument's length.  An incomplete header or body is
not an error: it is left over.
"""
import struct

REQ = b"\x00REQ"
RES = b"\x00RES"
HEADER = struct.Struct(">4sII")
HEADER_SIZE = HEADER.size  # 12

# number -> (name, argc, data) transcribed from the docs/protocol.md §2 table
# ("argc/data" column: "2/data" means two NUL-terminated arguments + trailing data).
TABLE = {
    1: ("CAN_DO", 1, False),
    2: ("CANT_DO", 1, False),
    3: ("RESET_ABILITIES", 0, False),
    4: ("PRE_SLEEP", 0, False),
    5: ("UNUSED", 0, False),
    6: ("NOOP", 0, False),
    7: ("SUBMIT_JOB", 2, True),
    8: ("JOB_CREATED", 1, False),
    9: ("GRAB_JOB", 0, False),
    10: ("NO_JOB", 0, False),
    11: ("JOB_ASSIGN", 2, True),
    12: ("WORK_STATUS", 3, False),
    13: ("WORK_COMPLETE", 1, True),
    14: ("WORK_FAIL", 1, False),
    15: ("GET_STATUS", 1, False),
    16: ("ECHO_REQ", 0, True),
    17: ("ECHO_RES", 0, True),
    18: ("SUBMIT_JOB_BG", 2, True),
    19: ("ERROR", 2, False),
    20: ("STATUS_RES", 5, False),
    21: ("SUBMIT_JOB_HIGH", 2, True),
    22: ("SET_CLIENT_ID", 1, False),
    23: ("CAN_DO_TIMEOUT", 2, False),
    24: ("ALL_YOURS", 0, False),
    25: ("WORK_EXCEPTION", 1, True),
    26: ("OPTION_REQ", 1, False),
    27: ("OPTION_RES", 1, False),
    28: ("WORK_DATA", 1, True),
    29: ("WORK_WARNING", 1, True),
    30: ("GRAB_JOB_UNIQ", 0, False),
    31: ("JOB_ASSIGN_UNIQ", 3, True),
    32: ("SUBMIT_JOB_HIGH_BG", 2, True),
    33: ("SUBMIT_JOB_LOW", 2, True),
    34: ("SUBMIT_JOB_LOW_BG", 2, True),
    35: ("SUBMIT_JOB_SCHED", 7, True),
    36: ("SUBMIT_JOB_EPOCH", 3, True),
    37: ("SUBMIT_REDUCE_JOB", 4, True),
    38: ("SUBMIT_REDUCE_JOB_BACKGROUND", 4, True),
    39: ("GRAB_JOB_ALL", 0, False),
    40: ("JOB_ASSIGN_ALL", 4, True),
    41: ("GET_STATUS_UNIQUE", 1, False),
    42: ("STATUS_RES_UNIQUE", 6, False),
}
FIRST, LAST = 1, 42
TEXT = 0  # the command number the decoder reports for an admin text line

# Room for the arguments that precede the payload, from docs/protocol.md §1.4: the
# widest packets are JOB_ASSIGN_ALL (handle, function, unique, reducer) and
# SUBMIT_REDUCE_JOB (function, unique, reducer, aggregator), so a job handle (64),
# a unique (64), three function-sized names (3 x 512) and at most 8 NUL separators.
HANDLE_MAX, UNIQUE_MAX, FUNCTION_MAX, MAX_SEPARATORS = 64, 64, 512, 8
ARGS_SLACK = HANDLE_MAX + UNIQUE_MAX + 3 * FUNCTION_MAX + MAX_SEPARATORS


def nargs(cmd):
    """Total number of arguments of ``cmd`` as a Python API sees them (data counts as one)."""
    _name, argc, data = TABLE[cmd]
    return argc + (1 if data else 0)


def has_data(cmd):
    return TABLE[cmd][2]


class RefError(Exception):
    def __init__(self, kind, offset):
        super().__init__(f"{kind} at offset {offset}")
        self.kind = kind
        self.offset = offset


def encode(cmd, args, magic=REQ):
    """One binary packet.  ``args`` are bytes; the count and NULs are checked."""
    if cmd not in TABLE:
        raise ValueError(f"unknown command {cmd}")
    args = list(args)
    if len(args) != nargs(cmd):
        raise ValueError(f"{TABLE[cmd][0]} takes {nargs(cmd)} arguments, got {len(args)}")
    for i, a in enumerate(args):
        if not isinstance(a, bytes):
            raise TypeError("reference encoder takes bytes only")
        is_data = has_data(cmd) and i == len(args) - 1
        if b"\x00" in a and not is_data:
            raise ValueError(f"argument {i} of {TABLE[cmd][0]} contains NUL")
    body = b"\x00".join(args)
    return HEADER.pack(magic, cmd, len(body)) + body


def encode_text(line, ending=b"\n"):
    return line + ending


def split_body(cmd, body):
    """Arguments of a body of type ``cmd``; raises ValueError on a wrong shape."""
    k = nargs(cmd)
    if k == 0:
        if body:
            raise ValueError("zero-argument type with a body")
        return ()
    parts = body.split(b"\x00", k - 1)
    if len(parts) != k:
        raise ValueError("too few NUL separators")
    return tuple(parts)


def decode(data, magic=RES, allow_text=True, max_body=64 * 1024 * 1024):
    """Decode as much of ``data`` as forms whole items.

    Returns ``(packets, ends, rest)``: the list of ``(cmd, args)``, the stream
    offset just after each of them, and the number of trailing bytes that do
    not (yet) form a whole item.  Raises :class:`RefError` on malformed input;
    the exception carries ``packets`` and ``ends`` decoded before the fault.
    """
    data = bytes(data)
    pos = 0
    packets = []
    ends = []
    n = len(data)
    try:
        while pos < n:
            if data[pos] != 0:
                if not allow_text:
                    raise RefError("magic", pos)
                nl = data.find(b"\n", pos)
                if nl < 0:
                    if n - pos > max_body:
                        raise RefError("too_large", pos)
                    break
                if nl - pos > max_body:
                    raise RefError("too_large", pos)
                line = data[pos:nl]
                if line.endswith(b"\r"):
                    line = line[:-1]
                packets.append((TEXT, (line,)))
                pos = nl + 1
                ends.append(pos)
                continue
            if n - pos < HEADER_SIZE:
                break
            got_magic, cmd, length = HEADER.unpack_from(data, pos)
            if got_magic != magic:
                raise RefError("magic", pos)
            if cmd not in TABLE:
                raise RefError("command", pos)
            if length > max_body + ARGS_SLACK:
                raise RefError("too_large", pos)
            if n - pos - HEADER_SIZE < length:
                break
            body = data[pos + HEADER_SIZE:pos + HEADER_SIZE + length]
            try:
                args = split_body(cmd, body)
            except ValueError:
                raise RefError("args", pos) from None
            if has_data(cmd) and len(args[-1]) > max_body:
                raise RefError("too_large", pos)
            packets.append((cmd, args))
            pos += HEADER_SIZE + length
            ends.append(pos)
    except RefError as e:
        e.packets = packets
        e.ends = ends
        raise
    return packets, ends, n - pos


# --- the "#" unique ----------------------------------------------------------------------

def _rotl32(x, r):
    return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF


def murmur3_x86_32(data, seed):
    """MurmurHash3_x86_32 (Austin Appleby's public-domain algorithm), little-endian blocks."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & 0xFFFFFFFF
    n = len(data)
    nblocks = n // 4
    for (k,) in struct.iter_unpack("<I", data[:nblocks * 4]):
        k = (k * c1) & 0xFFFFFFFF
        k = _rotl32(k, 15)
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
        h = _rotl32(h, 13)
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[nblocks * 4:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & 0xFFFFFFFF
        k = _rotl32(k, 15)
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def libgearman_hash_unique(workload):
    """The unique libgearman 1.1.20 sends for ``unique="#"``.

    libgearman calls libhashkit's ``hashkit_murmur3``, which seeds MurmurHash3_x86_32
    with ``0xdeadbeef * length`` (not 0).  Checked against a live gearmand 1.1.20 fed by
    Debian's ``gearman -u '#'`` CLI (vectors in test_codec.py).
    """
    data = bytes(workload)
    return str(murmur3_x86_32(data, 0xDEADBEEF * len(data)))
