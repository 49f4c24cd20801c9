"""What the command-line tools share (``cygearman``, ``cygearman-worker``, ``cygearman exporter``).

Exit codes, the usage error, the ``-v``/``-q`` logging levels, the TLS options
and the tools' server rule with its start-up line.  The library's own rules
(servers, TLS, timeouts) live in ``gearman._config``; this module only turns
command-line arguments into them.
"""
from __future__ import annotations

import argparse
import logging
import ssl
import sys
from typing import Any, List, Optional

from gearman import _config
from gearman.errors import (
    BatchError,
    ConnectionError as GearmanConnectionError,
    GearmanTimeoutError,
    InvalidArgumentError,
    InvalidTypeError,
    JobFailedError,
    NoServersError,
    QueueFullError,
    ServerSilentError,
)

__all__ = [
    "PROG", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_UNREACHABLE", "EXIT_JOB_FAILED",
    "EXIT_TIMEOUT", "EXIT_INTERRUPTED", "UsageError", "exit_code_for", "errors_exit_code",
    "log_level", "configure_logging", "build_ssl_context", "tool_servers",
]

PROG = "cygearman"

EXIT_OK = 0           #: success
EXIT_ERROR = 1        #: the server refused a request (ERR answer), or any other error
EXIT_USAGE = 2        #: bad command line or argument (argparse's own code)
EXIT_UNREACHABLE = 3  #: a server could not be reached, or the connection was lost
EXIT_JOB_FAILED = 4   #: a job failed or was refused (WORK_FAIL, WORK_EXCEPTION, queue full)
EXIT_TIMEOUT = 5      #: a timeout expired
EXIT_INTERRUPTED = 130  #: Ctrl-C


class UsageError(Exception):
    """Raised for a command line that parses but cannot be used (exit 2)."""

    __module__ = "gearman.cli"      # where it is documented


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an exception that ended a command."""
    if isinstance(exc, BatchError):
        return errors_exit_code(list(getattr(exc, "errors", {}).values()))
    if isinstance(exc, ServerSilentError):
        return EXIT_UNREACHABLE         # it answered nothing: as good as unreachable
    if isinstance(exc, (GearmanTimeoutError, TimeoutError)):
        return EXIT_TIMEOUT
    if isinstance(exc, (GearmanConnectionError, NoServersError, ConnectionError)):
        return EXIT_UNREACHABLE
    if isinstance(exc, (JobFailedError, QueueFullError)):
        return EXIT_JOB_FAILED
    if isinstance(exc, (UsageError, InvalidArgumentError, InvalidTypeError)):
        return EXIT_USAGE
    return EXIT_ERROR


def errors_exit_code(errors: List[BaseException]) -> int:
    """The exit code for the jobs of a bulk submit that were not accepted."""
    if errors and all(isinstance(e, GearmanTimeoutError) for e in errors):
        return EXIT_TIMEOUT
    if errors and all(isinstance(e, (GearmanConnectionError, NoServersError)) for e in errors):
        return EXIT_UNREACHABLE
    return EXIT_JOB_FAILED


def log_level(verbose: int, quiet: int, default: int = logging.WARNING) -> int:
    """The logging level for ``-v``/``-q`` counts: each ``-v`` one level more
    verbose than ``default``, each ``-q`` one less (DEBUG to CRITICAL)."""
    return max(logging.DEBUG, min(logging.CRITICAL, default + 10 * (quiet - verbose)))


def configure_logging(level: int, fmt: str = f"{PROG}: %(levelname)s: %(name)s: %(message)s") -> None:
    """Send log records to stderr at ``level``, unless the program already set up logging.

    The library only installs a ``NullHandler`` on the ``gearman`` logger (right for a
    library); a command line is a program, so it shows what the library logs: a
    worker that lost its server, a callback that raised (with its traceback).
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)


def build_ssl_context(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    """The TLS context asked for by ``--ssl``/``--ssl-ca``/``--ssl-cert``/``--ssl-key``, or None."""
    try:
        return _config.tool_tls_context(bool(getattr(args, "ssl", False)),
                                        getattr(args, "ssl_ca", None),
                                        getattr(args, "ssl_cert", None),
                                        getattr(args, "ssl_key", None))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load TLS files: {exc}") from exc


def tool_servers(spec: Any, log: logging.Logger) -> str:
    """The tools' servers (given, else ``$GEARMAN_SERVERS``, else localhost:4730), as a
    ``-s`` value; says at INFO on ``log`` which ones and where they came from.
    Raises UsageError for a bad spec."""
    try:
        servers, origin = _config.tool_servers(spec)
    except (InvalidArgumentError, InvalidTypeError) as exc:
        raise UsageError(f"--servers: {exc}") from None
    text = _config.describe(servers)
    where = {"given": "--servers", "default": "the default: no --servers and no "
             f"{_config.ENV_SERVERS}"}.get(origin, origin)
    log.info("servers: %s (%s)", text, where)
    return text
