"""``gearman.client``: python-gearman 2.x's module, and the one ``GearmanClient``.

``gearman.GearmanClient`` serves both surfaces (docs/design.md, "Layers"): it
is the PECL client (``gearman._pecl_client``) with python-gearman's methods
(``gearman._legacy_client``) on top, so ``GearmanClient()`` + ``addServer`` +
``doBackground`` and ``GearmanClient(["h1:4730"])`` + ``submit_job`` are the
same class.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from gearman import _config
from gearman._legacy_client import RANDOM_UNIQUE_BYTES, LegacyClientMixin
from gearman._pecl_client import GearmanTask, PeclClient

__all__ = ["GearmanClient", "GearmanTask", "RANDOM_UNIQUE_BYTES"]


class GearmanClient(PeclClient, LegacyClientMixin):
    """A Gearman client with PECL's API and python-gearman's.

    ``GearmanClient()`` then ``addServer()``/``addServers()``; with no server
    added, the servers ``$GEARMAN_SERVERS`` names, else the first call raises
    NoServersError.  ``GearmanClient(host_list)`` adds servers as python-gearman
    did: ``"h1:4730,h2"``, ``["h1:4730", ("h2", 4731)]`` or host dicts (TLS keys
    included); a bad entry raises InvalidArgumentError/InvalidTypeError here,
    before any I/O.  ``timeout`` is PECL's :meth:`setTimeout` (milliseconds);
    ``connect_timeout`` is in seconds.
    """

    def __init__(self, host_list: Optional[Any] = None,
                 random_unique_bytes: int = RANDOM_UNIQUE_BYTES, *,
                 timeout: Optional[int] = None, connect_timeout: float = 5.0,
                 max_packet_size: int = _config.MAX_PACKET_SIZE, ssl_context: Any = None,
                 keepalive: Optional[Tuple[int, int, int]] = _config.KEEPALIVE,
                 tcp_user_timeout: Optional[float] = None) -> None:
        servers = _config.parse_servers(host_list)
        PeclClient.__init__(self, timeout=timeout, connect_timeout=connect_timeout,
                            max_packet_size=max_packet_size, ssl_context=ssl_context,
                            keepalive=keepalive, tcp_user_timeout=tcp_user_timeout)
        self._init_legacy_client(random_unique_bytes)
        for server in servers:
            self._legacy_add(server)
        if servers:
            self._engine.exceptions = True
