"""python-gearman's ``gearman.util`` helpers, kept for code that imports them.

Nothing in cygearman's own I/O path uses these: the compiled engine has its own
poll loop.  They behave as python-gearman 2.x documented them, with two fixes:
:class:`Stopwatch` runs on the monotonic clock (a wall-clock jump can no longer
stretch or cut a timeout), and :func:`disambiguate_server_parameter` accepts
every host form the client accepts (``[v6addr]:port`` and dicts included).
"""
from __future__ import annotations

import errno
import select as _select
import time
from typing import Any, List, Optional, Sequence, Tuple, TypeVar

from gearman import _config
# python-gearman's TLS host dicts: the one definition is gearman._config's
from gearman._config import host_tls_context as host_tls_context
from gearman._config import tls_context as tls_context

__all__ = ["Stopwatch", "disambiguate_server_parameter", "select", "unlist",
           "tls_context", "host_tls_context"]

_T = TypeVar("_T")


class Stopwatch:
    """Counts down from ``time_remaining`` seconds; ``None`` means "never runs out"."""

    def __init__(self, time_remaining: Optional[float]) -> None:
        self.stop_time: Optional[float] = (
            None if time_remaining is None else time.monotonic() + float(time_remaining))

    def get_time_remaining(self) -> Optional[float]:
        """Return the seconds left (``0.0`` once expired), or ``None`` without a limit."""
        if self.stop_time is None:
            return None
        now = self.get_current_time()
        if not self.has_time_remaining(now):
            return 0.0
        return self.stop_time - now

    def has_time_remaining(self, time_comparison: Optional[float] = None) -> bool:
        """Return True while the stopwatch has not run out (always True without a limit)."""
        if self.stop_time is None:
            return True
        if time_comparison is None:
            time_comparison = self.get_current_time()
        return time_comparison < self.stop_time

    def get_current_time(self) -> float:
        """Return the clock the stopwatch counts on (``time.monotonic()``)."""
        return time.monotonic()


def disambiguate_server_parameter(hostport_tuple: Any) -> Tuple[str, int]:
    """Return ``(host, port)`` for ``'host'``, ``'host:port'``, ``(host, port)`` or a dict.

    The port defaults to 4730.  Raises :class:`gearman.errors.InvalidArgumentError`
    (a ``ValueError``) or :class:`gearman.errors.InvalidTypeError` (a ``TypeError``)
    for anything else, as every door does for a bad server (``gearman._config``).
    """
    server = _config.parse_server(hostport_tuple)
    return server.host, server.port


def select(rlist: Sequence[Any], wlist: Sequence[Any], xlist: Sequence[Any],
           timeout: Optional[float] = None) -> Tuple[List[Any], List[Any], List[Any]]:
    """``select.select`` that returns three empty lists when a signal interrupts it.

    Any other ``OSError`` propagates.
    """
    try:
        if timeout is None:
            r, w, x = _select.select(rlist, wlist, xlist)
        else:
            r, w, x = _select.select(rlist, wlist, xlist, timeout)
    except InterruptedError:
        return [], [], []
    except OSError as exc:
        if exc.errno != errno.EINTR:
            raise
        return [], [], []
    return list(r), list(w), list(x)


def unlist(given_list: Sequence[_T]) -> Optional[_T]:
    """Return the only item of a one-item list, ``None`` for an empty one.

    Raises ``ValueError`` (with the length) for two items or more.
    """
    size = len(given_list)
    if size == 0:
        return None
    if size == 1:
        return given_list[0]
    raise ValueError(size)
