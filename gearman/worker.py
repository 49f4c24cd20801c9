"""``gearman.worker``: python-gearman 2.x's module, and the one ``GearmanWorker``.

``gearman.GearmanWorker`` serves both surfaces (docs/design.md, "Layers"): it
is the PECL worker (``gearman._pecl_worker``) with python-gearman's methods
(``gearman._legacy_worker``) on top.  A callback registered with
``register_task`` gets the python-gearman job (``gearman.job.GearmanJob``), one
registered with ``addFunction`` the PECL one (``gearman.worker.GearmanJob``).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from gearman import _config
# python-gearman's gearman.worker.POLL_TIMEOUT_IN_SECONDS, where legacy code imports it
from gearman._legacy_worker import POLL_TIMEOUT_IN_SECONDS as POLL_TIMEOUT_IN_SECONDS
from gearman._legacy_worker import LegacyWorkerMixin
from gearman._pecl_worker import MAX_PREFETCH as MAX_PREFETCH
from gearman._pecl_worker import GearmanJob, PeclWorker

__all__ = ["GearmanWorker", "GearmanJob", "POLL_TIMEOUT_IN_SECONDS"]


class GearmanWorker(PeclWorker, LegacyWorkerMixin):
    """A Gearman worker with PECL's API (``addServer``, ``addFunction``, ``work``)
    and python-gearman's (``GearmanWorker(host_list)``, ``register_task``,
    ``work(poll_timeout)``).

    ``host_list`` takes every server form docs/design.md names (a bad entry
    raises InvalidArgumentError/InvalidTypeError here, before any I/O); a worker
    given one is a python-gearman worker: ``work()`` loops as python-gearman's
    did.  ``connect_timeout`` is in seconds.
    """

    def __init__(self, host_list: Optional[Any] = None, *, connect_timeout: float = 5.0,
                 max_packet_size: int = _config.MAX_PACKET_SIZE, ssl_context: Any = None,
                 prefetch: int = 1,
                 keepalive: Optional[Tuple[int, int, int]] = _config.KEEPALIVE,
                 tcp_user_timeout: Optional[float] = None) -> None:
        servers = _config.parse_servers(host_list)
        PeclWorker.__init__(self, connect_timeout=connect_timeout,
                            max_packet_size=max_packet_size, ssl_context=ssl_context,
                            prefetch=prefetch, keepalive=keepalive,
                            tcp_user_timeout=tcp_user_timeout)
        self._init_legacy_worker(host_list_given=host_list is not None)
        for server in servers:
            self._legacy_add(server)

    # python-gearman's work(poll_timeout) loop; without arguments on a worker
    # built PECL's way it is PECL's one-job work() (LegacyWorkerMixin.work says how)
    work = LegacyWorkerMixin.work  # type: ignore[assignment]  # (it takes poll_timeout)
