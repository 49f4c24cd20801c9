"""Server-list parsing shared by client and worker (PECL strings, env var, host lists)."""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

from gearman import _core
from gearman.constants import DEFAULT_GEARMAN_PORT
from gearman.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["parse_servers", "parse_host_entry"]


def parse_servers(servers: Optional[str]) -> List[Tuple[str, int]]:
    """``"h1:4730,h2,[::1]:4731"`` -> ``[(host, port), ...]``; None/'' -> localhost:4730."""
    if servers is None or servers == "":
        return [("localhost", DEFAULT_GEARMAN_PORT)]
    if not isinstance(servers, str):
        raise InvalidTypeError(f"servers must be a str, not {type(servers).__name__}")
    out = []
    for part in servers.split(","):
        part = part.strip()
        if part:
            out.append(_core.parse_server_spec(part, DEFAULT_GEARMAN_PORT))
    if not out:
        raise InvalidArgumentError(f"no server in {servers!r}")
    return out


def parse_host_entry(entry: Any) -> Tuple[str, int]:
    """One python-gearman host-list entry: ``'host'``, ``'host:port'``, ``(host, port)``, dict."""
    if isinstance(entry, str):
        return _core.parse_server_spec(entry, DEFAULT_GEARMAN_PORT)
    if isinstance(entry, (tuple, list)) and len(entry) == 2:
        host, port = entry
        return str(host), int(port)
    if isinstance(entry, dict) and "host" in entry:
        return str(entry["host"]), int(entry.get("port", DEFAULT_GEARMAN_PORT))
    raise InvalidArgumentError(f"cannot understand server {entry!r}")
