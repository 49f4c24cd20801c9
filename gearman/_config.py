"""The one home of configuration: servers, TLS contexts, timeout units, the no-server policy.

Every door (the PECL classes, the python-gearman surface, asyncio, admin, the
command-line tools) reads its settings through this module, so a spec means
the same thing, and a bad one raises the same error, whichever door takes it.
The rules are written in docs/design.md ("Configuration").

Servers
    :func:`parse_servers` takes every form any door accepts: ``None`` or ``""``
    (none given), a comma-separated string (``"h1:4730,h2,[::1]:4731"``), a
    list/tuple/set of entries, one ``(host, port)`` pair, or python-gearman's
    host dict (``{"host": ..., "port": ..., "keyfile": ..., "certfile": ...,
    "ca_certs": ...}``, alone or in a list).  Each string entry is ``host``,
    ``host:port`` or ``[v6addr]:port`` (the core's parser); port 0 or none
    means 4730.  Anything else raises :class:`InvalidTypeError` or
    :class:`InvalidArgumentError` before any I/O.

No-server policy
    Library objects use the servers given, else ``$GEARMAN_SERVERS``, else
    raise :class:`NoServersError` (:func:`library_servers`; the compiled
    engines apply the same rule at their first call).  The tools use the
    servers given, else ``$GEARMAN_SERVERS``, else ``localhost:4730``
    (:func:`tool_servers`), as gearmand's own ``gearman`` and ``gearadmin`` do.

Timeouts
    The PECL classes keep PHP's milliseconds where PECL has them
    (``setTimeout``, ``timeout()``); every other duration is in seconds.  The
    engines take seconds as a float, ``-1.0`` meaning "no limit":
    :func:`ms_to_engine` and :func:`seconds_to_engine` are the two conversions.
"""
from __future__ import annotations

import math
import ssl
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

from gearman import _core
from gearman.errors import InvalidArgumentError, InvalidTypeError, NoServersError

__all__ = [
    "DEFAULT_HOST", "DEFAULT_PORT", "ENV_SERVERS", "TOOL_DEFAULT",
    "Server", "routing_key", "parse_server", "parse_servers", "env_servers",
    "library_servers", "tool_servers", "no_servers_error", "add_to_engine", "describe",
    "tls_context", "host_tls_context", "tool_tls_context",
    "ms_to_engine", "seconds_to_engine", "seconds_to_ms", "check_ms",
    "deadline", "remaining", "KEEPALIVE", "MAX_PACKET_SIZE", "Transport",
]

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 4730
#: the environment variable every door reads when it was given no server
ENV_SERVERS = "GEARMAN_SERVERS"
#: the tools' last resort (gearmand's ``gearman`` and ``gearadmin`` use the same)
TOOL_DEFAULT = f"{DEFAULT_HOST}:{DEFAULT_PORT}"

_TLS_KEYS = ("keyfile", "certfile", "ca_certs")


class Server(NamedTuple):
    """One job server as a door was given it."""

    host: str
    port: int
    #: this server's own TLS context (a python-gearman TLS host dict), or None:
    #: the object's ``ssl_context`` applies
    tls: Optional[ssl.SSLContext] = None
    #: the host dict's ``keyfile``/``certfile``/``ca_certs`` when ``tls`` came from
    #: one (``GearmanConnection`` views report them), else None
    tls_files: Optional[Dict[str, Optional[str]]] = None

    @property
    def key(self) -> str:
        """``host:port`` in lower case: the name routing hashes (docs/pool.md)."""
        return routing_key(self.host, self.port)


def routing_key(host: str, port: int) -> str:
    """The routing identity of a server: ``host:port``, the host in lower case."""
    return f"{host.lower()}:{port}"


def _port(value: Any, spec: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        else:
            raise InvalidTypeError(f"port must be an int, not {type(value).__name__} "
                                   f"(server {spec!r})")
    if not 0 <= value <= 65535:
        raise InvalidArgumentError(f"port {value} out of range (server {spec!r})")
    return value or DEFAULT_PORT


def parse_server(entry: Any) -> Server:
    """One server: ``'host'``, ``'host:port'``, ``'[v6addr]:port'``, ``(host, port)``
    or a python-gearman host dict (TLS keys included)."""
    if isinstance(entry, str):
        if "," in entry:
            raise InvalidArgumentError(f"one server expected, got the list {entry!r}")
        host, port = _core.parse_server_spec(entry, DEFAULT_PORT)
        return Server(host, port)
    if isinstance(entry, (tuple, list)) and len(entry) == 2 and not isinstance(entry[1], str):
        host, port = entry
        if not isinstance(host, str):
            raise InvalidTypeError(f"host must be a str, not {type(host).__name__} "
                                   f"(server {entry!r})")
        return Server(host or DEFAULT_HOST, _port(port, entry))
    if isinstance(entry, dict):
        if "host" not in entry:
            raise InvalidArgumentError(f"a server dict needs a 'host' key: {entry!r}")
        host = entry["host"]
        if not isinstance(host, str):
            raise InvalidTypeError(f"host must be a str, not {type(host).__name__} "
                                   f"(server {entry!r})")
        port = _port(entry.get("port", DEFAULT_PORT), entry)
        tls = host_tls_context(entry)
        files = {k: entry.get(k) for k in _TLS_KEYS} if tls is not None else None
        return Server(host or DEFAULT_HOST, port, tls, files)
    raise InvalidTypeError(f"cannot read a server from {type(entry).__name__} {entry!r} "
                           f"(expected 'host[:port]', (host, port) or a host dict)")


def parse_servers(spec: Any) -> List[Server]:
    """Every server spec any door accepts -> ``[Server]``, in the order given.

    ``None``, ``""`` and an empty list mean "none given" (``[]``); a string or
    list that names no server at all (``","``) is an InvalidArgumentError.
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        if not spec.strip():
            return []
        out = [parse_server(part) for part in spec.split(",") if part.strip()]
        if not out:
            raise InvalidArgumentError(f"no server in {spec!r}")
        return out
    if isinstance(spec, dict) or (isinstance(spec, tuple) and len(spec) == 2
                                  and not isinstance(spec[1], str)):
        return [parse_server(spec)]      # one host dict or one (host, port) pair
    if isinstance(spec, (list, tuple, set, frozenset)):
        out = []
        for entry in spec:
            if isinstance(entry, str) and "," in entry:
                out.extend(parse_servers(entry))
            else:
                out.append(parse_server(entry))
        return out
    raise InvalidTypeError(f"servers must be a str, a list of servers, a (host, port) pair "
                           f"or a host dict, not {type(spec).__name__}")


def env_servers() -> List[Server]:
    """The servers ``$GEARMAN_SERVERS`` names (``[]`` if unset); read by the core's
    parser, the one the compiled engines use for their own fallback."""
    return [Server(h, p) for h, p in _core.default_servers()]


def no_servers_error() -> NoServersError:
    """The error of a library object that was given no server and finds none in
    ``$GEARMAN_SERVERS``: it names both ways to give one (the compiled engines
    raise the same message)."""
    return NoServersError(_core.NO_SERVERS_MESSAGE)


def library_servers(spec: Any) -> List[Server]:
    """The library's rule: the servers given, else ``$GEARMAN_SERVERS``, else
    NoServersError.  A bad spec raises before the environment is read."""
    servers = parse_servers(spec)
    if servers:
        return servers
    servers = env_servers()
    if servers:
        return servers
    raise no_servers_error()


def tool_servers(spec: Any) -> Tuple[List[Server], str]:
    """The tools' rule: the servers given, else ``$GEARMAN_SERVERS``, else
    ``localhost:4730``.  Returns the servers and where they came from
    ("given", "$GEARMAN_SERVERS" or "default"), for the start-up line."""
    servers = parse_servers(spec)
    if servers:
        return servers, "given"
    servers = env_servers()
    if servers:
        return servers, f"${ENV_SERVERS}"
    return parse_servers(TOOL_DEFAULT), "default"


def describe(servers: Iterable[Server]) -> str:
    """``"h1:4730,h2:4731"``: servers as a ``-s`` option would name them."""
    return ",".join(f"[{s.host}]:{s.port}" if ":" in s.host else f"{s.host}:{s.port}"
                    for s in servers)


def add_to_engine(engine: Any, servers: Iterable[Server]) -> List[Any]:
    """Add ``servers`` to a compiled engine (no I/O); return its connections."""
    return [engine.add_server(s.host, s.port, s.tls) for s in servers]


# -- the transport settings of a client's or worker's connections ---------------------------

#: TCP keepalive of every connection by default: (idle s, interval s, probes): about 90 s
#: to notice a dead peer; TCP_USER_TIMEOUT (Linux) follows it (docs/reliability.md §5)
KEEPALIVE: Tuple[int, int, int] = (30, 10, 6)
#: the largest payload sent or accepted by default (64 MiB)
MAX_PACKET_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Transport:
    """How a door's engine connects: every client and worker constructor takes these
    (``connect_timeout`` in seconds) and hands them to its engine through :meth:`apply`,
    which checks them (InvalidTypeError / InvalidArgumentError) before any I/O."""

    connect_timeout: float = 5.0
    max_packet_size: int = MAX_PACKET_SIZE
    ssl_context: Any = None
    #: (idle, interval, count) in whole seconds and probes; None: keepalive off
    keepalive: Optional[Tuple[int, int, int]] = KEEPALIVE
    #: seconds sent data may stay unacknowledged (Linux); None: idle + interval x count
    #: of ``keepalive``; 0: not set (the system's limit)
    tcp_user_timeout: Optional[float] = None

    def apply(self, engine: Any) -> Any:
        """Give ``engine`` these settings; return it."""
        engine.connect_timeout = self.connect_timeout
        engine.max_packet_size = self.max_packet_size
        engine.ssl_context = self.ssl_context
        engine.keepalive = self.keepalive
        engine.tcp_user_timeout = self.tcp_user_timeout
        return engine


# -- TLS ----------------------------------------------------------------------------------

def tls_context(keyfile: Optional[str], certfile: Optional[str],
                ca_certs: Optional[str]) -> ssl.SSLContext:
    """The client-side TLS context of python-gearman's TLS host dicts.

    As python-gearman (master) did: the server's certificate must chain to
    ``ca_certs`` (CERT_REQUIRED), ``certfile``/``keyfile`` are our client
    certificate, and the host name is not matched against the certificate
    (python-gearman used ``ssl.wrap_socket``, which never checked it).  Unlike
    its ``PROTOCOL_TLSv1``, TLS 1.2 is the minimum.  Raises ``OSError`` /
    ``ssl.SSLError`` for unreadable or invalid files.
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_certs)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile:
        ctx.load_cert_chain(certfile, keyfile or None)
    return ctx


def host_tls_context(entry: Any) -> Optional[ssl.SSLContext]:
    """The TLS context a python-gearman host entry asks for, or None (plain TCP).

    Only a dict with all three of ``keyfile``, ``certfile`` and ``ca_certs``
    set asks for TLS, as in python-gearman (``use_ssl``).
    """
    if not isinstance(entry, dict):
        return None
    files = [entry.get(k) for k in _TLS_KEYS]
    if not all(files):
        return None
    return tls_context(*files)


def tool_tls_context(use_tls: bool, ca: Optional[str], cert: Optional[str],
                     key: Optional[str]) -> Optional[ssl.SSLContext]:
    """The tools' TLS context (``--ssl``, ``--ssl-ca``, ``--ssl-cert``, ``--ssl-key``):
    Python's defaults (certificate and host name checked against ``ca`` or the
    system store), or None when none of them was given.  Raises ValueError for
    a key without a certificate, ``OSError``/``ssl.SSLError`` for bad files."""
    if not (use_tls or ca or cert or key):
        return None
    if key and not cert:
        raise ValueError("--ssl-key needs --ssl-cert")
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


# -- timeouts ---------------------------------------------------------------------------------

def check_ms(value: Any, what: str = "timeout") -> int:
    """A PECL millisecond timeout: an int; negative means none (-1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(f"{what} must be an int (ms), not {type(value).__name__}")
    return value if value >= 0 else -1


def ms_to_engine(ms: int) -> float:
    """A PECL millisecond timeout (-1: none) as the engines take it: seconds, -1.0 none."""
    return ms / 1000.0 if ms >= 0 else -1.0


def seconds_to_engine(seconds: Optional[float]) -> float:
    """Seconds (None: none) as the engines take them: -1.0 means no limit."""
    return -1.0 if seconds is None else max(0.0, float(seconds))


def seconds_to_ms(seconds: Optional[float]) -> int:
    """Seconds (None: none) as a PECL millisecond timeout, rounded up (-1: none)."""
    return -1 if seconds is None else int(math.ceil(max(float(seconds), 0.0) * 1000))


def deadline(seconds: Optional[float]) -> Optional[float]:
    """The monotonic time ``seconds`` from now (None: no limit)."""
    return None if seconds is None else time.monotonic() + max(0.0, float(seconds))


def remaining(when: Optional[float]) -> float:
    """Seconds left until a :func:`deadline`, as the engines take them (-1.0: no limit)."""
    if when is None:
        return -1.0
    return max(0.0, when - time.monotonic())
