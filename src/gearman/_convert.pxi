# Argument conversion and validation, done once per call at C speed.
# (MAX_FUNCTION_SIZE is defined in _packet.pxi, which sizes the reader's slack with it.)


cdef inline const unsigned char[::1] _as_buffer(object data):
    if isinstance(data, str):
        data = (<str>data).encode("utf-8")
    return memoryview(data).cast("B")


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


cdef inline bytes _utf8_se(str s):
    """``s.encode("utf-8", "surrogateescape")``, fast for the common case.

    A str without surrogates has one UTF-8 form, which CPython caches in the
    str object: the function name given with every call costs one copy, not a
    codec lookup.  A str with lone surrogates takes the codec path, so the
    bytes are the same either way.
    """
    cdef const char *p
    cdef Py_ssize_t n
    try:
        p = PyUnicode_AsUTF8AndSize(s, &n)
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape")
    return PyBytes_FromStringAndSize(p, n)


cdef bytes _name_bytes(object name, str what="function name"):
    """Validate a function name: str (UTF-8) or bytes, 1..512 bytes, no NUL."""
    cdef bytes b
    if isinstance(name, str):
        b = _utf8_se(<str>name)
    elif isinstance(name, bytes):
        b = <bytes>name
    elif isinstance(name, (bytearray, memoryview)):
        b = bytes(name)
    else:
        raise InvalidTypeError(f"{what} must be str or bytes, not {type(name).__name__}")
    if PyBytes_GET_SIZE(b) == 0:
        raise InvalidArgumentError(f"{what} must not be empty")
    if PyBytes_GET_SIZE(b) > MAX_FUNCTION_SIZE:
        raise InvalidArgumentError(
            f"{what} is {PyBytes_GET_SIZE(b)} bytes; the limit is {MAX_FUNCTION_SIZE}")
    _check_no_nul(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), what)
    return b


cdef object _payload(object data, Py_ssize_t limit, str what="workload"):
    """Validate a payload: bytes-like or str (UTF-8); returns bytes."""
    cdef object b
    if isinstance(data, bytes):
        b = data
    elif isinstance(data, str):
        b = (<str>data).encode("utf-8")
    elif isinstance(data, (bytearray, memoryview)):
        b = bytes(data)
    elif data is None:
        b = b""
    else:
        raise InvalidTypeError(
            f"{what} must be bytes, bytearray, memoryview or str, not {type(data).__name__}")
    if PyBytes_GET_SIZE(b) > limit:
        raise InvalidArgumentError(
            f"{what} is {PyBytes_GET_SIZE(b)} bytes; max_packet_size is {limit}",
            code=RC_DATA_TOO_LARGE)
    return b


cdef bytes _unique_bytes(object unique, str what="unique"):
    """Validate a caller-given unique: at most 64 UTF-8 bytes, no NUL."""
    cdef bytes b
    if isinstance(unique, str):
        b = _utf8_se(<str>unique)
    elif isinstance(unique, bytes):
        b = <bytes>unique
    elif isinstance(unique, (bytearray, memoryview)):
        b = bytes(unique)
    else:
        raise InvalidTypeError(f"{what} must be str or bytes, not {type(unique).__name__}")
    if PyBytes_GET_SIZE(b) > MAX_UNIQUE_SIZE:
        raise InvalidArgumentError(
            f"{what} is {PyBytes_GET_SIZE(b)} bytes; gearmand's limit is {MAX_UNIQUE_SIZE}")
    _check_no_nul(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), what)
    return b


cdef bytes _handle_bytes(object handle):
    cdef bytes b
    if isinstance(handle, str):
        b = _utf8_se(<str>handle)
    elif isinstance(handle, bytes):
        b = <bytes>handle
    else:
        raise InvalidTypeError(f"job handle must be str or bytes, not {type(handle).__name__}")
    if PyBytes_GET_SIZE(b) == 0:
        raise InvalidArgumentError("job handle must not be empty")
    if PyBytes_GET_SIZE(b) >= MAX_HANDLE_SIZE:
        raise InvalidArgumentError(f"job handle is {PyBytes_GET_SIZE(b)} bytes; the limit is 63")
    _check_no_nul(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), "job handle")
    return b


cdef inline bint _is_background(int cmd) noexcept:
    return (cmd == CMD_SUBMIT_JOB_BG or cmd == CMD_SUBMIT_JOB_HIGH_BG or
            cmd == CMD_SUBMIT_JOB_LOW_BG or cmd == CMD_SUBMIT_JOB_EPOCH or
            cmd == CMD_SUBMIT_REDUCE_JOB_BACKGROUND)


cdef inline bint _is_submit(int cmd) noexcept:
    return (cmd == CMD_SUBMIT_JOB or cmd == CMD_SUBMIT_JOB_HIGH or cmd == CMD_SUBMIT_JOB_LOW
            or _is_background(cmd))


cdef inline uint32_t _parse_u32(bytes b) except? 0:
    """Decimal text to uint32 the way gearmand's atoi does, but strict-ish."""
    return _parse_u32_at(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


cdef inline uint32_t _parse_u32_at(const char *p, Py_ssize_t n) noexcept:
    """_parse_u32 of n bytes at p (leading digits; capped at 2**32 - 1)."""
    cdef Py_ssize_t i
    cdef uint64_t v = 0
    for i in range(n):
        if p[i] < 48 or p[i] > 57:
            break
        v = v * 10 + <uint64_t>(p[i] - 48)
        if v > 0xFFFFFFFF:
            v = 0xFFFFFFFF
    return <uint32_t>v


cdef int _check_host(str host) except -1:
    """A host name or address a resolver can take, else InvalidArgumentError
    before any I/O (getaddrinfo would raise UnicodeError, or stop at a NUL)."""
    if not host:
        raise InvalidArgumentError("empty host")
    if "\0" in host:
        raise InvalidArgumentError(f"host {host!r} contains NUL")
    if ":" in host:                         # an IPv6 literal
        if not host.isascii():
            raise InvalidArgumentError(f"host {host!r} is not a valid IPv6 address")
        return 0
    if len(host) > 253:
        raise InvalidArgumentError(f"host name of {len(host)} characters (at most 253)")
    try:
        host.rstrip(".").encode("idna")     # labels of 1-63 characters, encodable
    except UnicodeError as e:
        raise InvalidArgumentError(f"host {host!r} is not a valid name: {e}") from None
    return 0


cdef double _check_seconds(object value, str what) except -1:
    """A finite, positive number of seconds."""
    cdef double v
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    v = value
    if not (0 < v < 1e9):                   # NaN fails too; inf would mean "never"
        raise InvalidArgumentError(f"{what} must be finite and positive, not {value!r}")
    return v


cdef Py_ssize_t _check_size(object value, str what) except -1:
    """A positive byte count a Py_ssize_t holds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 < value <= PY_SSIZE_T_MAX // 2:
        raise InvalidArgumentError(f"{what} {value} out of range (1-{PY_SSIZE_T_MAX // 2})")
    return value


def validate_function_name(name):
    """Return a function name as validated bytes (1..512 bytes, no NUL)."""
    return _name_bytes(name)


def validate_unique(unique):
    """Return a caller-given unique as validated bytes (<= 64 bytes, no NUL)."""
    return _unique_bytes(unique)


cdef inline uint64_t _route_hash(bytes function, const unsigned char *key, size_t n) noexcept:
    """The rendezvous key of a job: FNV-1a 64 of the function name, then (after a
    separator byte) of ``key``, the unique or, for the unique "-", the workload."""
    cdef uint64_t h = gm_fnv1a(GM_FNV_OFFSET, <const unsigned char *>PyBytes_AS_STRING(function),
                               <size_t>PyBytes_GET_SIZE(function))
    if n == 0:
        return h
    return gm_fnv1a(h ^ 0xff, key, n)
