"""python-gearman's ``gearman.protocol``: command numbers, names and the packet codec.

The constants and tables keep python-gearman's names (``GEARMAN_COMMAND_*``,
``GEARMAN_PARAMS_FOR_COMMAND``, ``GEARMAN_COMMAND_TO_NAME``...) and cover every
command gearmand 1.1 knows (1-42, where python-gearman stopped at 34), plus the
fake ``GEARMAN_COMMAND_TEXT_COMMAND = 9999`` used for admin text lines.

The pack/parse functions run on the compiled codec (``gearman._core``), so
they apply its checks: a NUL byte inside a non-final argument, a wrong
argument count, bad magic, an unknown command or an oversized packet raise
:class:`gearman.errors.ProtocolError` (or a subclass).  On Python 3 packed
packets and parsed binary arguments are ``bytes``; arguments to pack may be
``bytes`` or ``str`` (UTF-8).  Admin text lines parse to ``str``.
"""
from __future__ import annotations

import struct
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from gearman import _core
from gearman.constants import PRIORITY_NAME, SUBMIT_COMMANDS
from gearman.errors import GearmanError, ProtocolError

__all__ = [
    "NULL_CHAR", "MAGIC_RES_STRING", "MAGIC_REQ_STRING", "COMMAND_HEADER_SIZE",
    "GEARMAN_COMMAND_CAN_DO", "GEARMAN_COMMAND_CANT_DO", "GEARMAN_COMMAND_RESET_ABILITIES",
    "GEARMAN_COMMAND_PRE_SLEEP", "GEARMAN_COMMAND_UNUSED", "GEARMAN_COMMAND_NOOP",
    "GEARMAN_COMMAND_SUBMIT_JOB", "GEARMAN_COMMAND_JOB_CREATED", "GEARMAN_COMMAND_GRAB_JOB",
    "GEARMAN_COMMAND_NO_JOB", "GEARMAN_COMMAND_JOB_ASSIGN", "GEARMAN_COMMAND_WORK_STATUS",
    "GEARMAN_COMMAND_WORK_COMPLETE", "GEARMAN_COMMAND_WORK_FAIL", "GEARMAN_COMMAND_GET_STATUS",
    "GEARMAN_COMMAND_ECHO_REQ", "GEARMAN_COMMAND_ECHO_RES", "GEARMAN_COMMAND_SUBMIT_JOB_BG",
    "GEARMAN_COMMAND_ERROR", "GEARMAN_COMMAND_STATUS_RES", "GEARMAN_COMMAND_SUBMIT_JOB_HIGH",
    "GEARMAN_COMMAND_SET_CLIENT_ID", "GEARMAN_COMMAND_CAN_DO_TIMEOUT", "GEARMAN_COMMAND_ALL_YOURS",
    "GEARMAN_COMMAND_WORK_EXCEPTION", "GEARMAN_COMMAND_OPTION_REQ", "GEARMAN_COMMAND_OPTION_RES",
    "GEARMAN_COMMAND_WORK_DATA", "GEARMAN_COMMAND_WORK_WARNING", "GEARMAN_COMMAND_GRAB_JOB_UNIQ",
    "GEARMAN_COMMAND_JOB_ASSIGN_UNIQ", "GEARMAN_COMMAND_SUBMIT_JOB_HIGH_BG",
    "GEARMAN_COMMAND_SUBMIT_JOB_LOW", "GEARMAN_COMMAND_SUBMIT_JOB_LOW_BG",
    "GEARMAN_COMMAND_SUBMIT_JOB_SCHED", "GEARMAN_COMMAND_SUBMIT_JOB_EPOCH",
    "GEARMAN_COMMAND_SUBMIT_REDUCE_JOB", "GEARMAN_COMMAND_SUBMIT_REDUCE_JOB_BACKGROUND",
    "GEARMAN_COMMAND_GRAB_JOB_ALL", "GEARMAN_COMMAND_JOB_ASSIGN_ALL",
    "GEARMAN_COMMAND_GET_STATUS_UNIQUE", "GEARMAN_COMMAND_STATUS_RES_UNIQUE",
    "GEARMAN_COMMAND_TEXT_COMMAND",
    "GEARMAN_PARAMS_FOR_COMMAND", "GEARMAN_COMMAND_TO_NAME",
    "GEARMAN_SERVER_COMMAND_STATUS", "GEARMAN_SERVER_COMMAND_VERSION",
    "GEARMAN_SERVER_COMMAND_WORKERS", "GEARMAN_SERVER_COMMAND_MAXQUEUE",
    "GEARMAN_SERVER_COMMAND_SHUTDOWN", "GEARMAN_SERVER_COMMAND_GETPID",
    "GEARMAN_SERVER_COMMAND_SHOW_JOBS", "GEARMAN_SERVER_COMMAND_SHOW_UNIQUE_JOBS",
    "GEARMAN_SERVER_COMMAND_CANCEL_JOB",
    "get_command_name", "submit_cmd_for_background_priority",
    "parse_binary_command", "pack_binary_command", "parse_text_command", "pack_text_command",
]

# --- framing
NULL_CHAR = b"\x00"
MAGIC_RES_STRING = b"\x00RES"
MAGIC_REQ_STRING = b"\x00REQ"
COMMAND_HEADER_SIZE = 12

# Command numbers: one source, gearman.constants (libgearman 1.1.20's values).
from gearman.constants import (  # noqa: E402
    GEARMAN_COMMAND_CAN_DO,
    GEARMAN_COMMAND_CANT_DO,
    GEARMAN_COMMAND_RESET_ABILITIES,
    GEARMAN_COMMAND_PRE_SLEEP,
    GEARMAN_COMMAND_UNUSED,
    GEARMAN_COMMAND_NOOP,
    GEARMAN_COMMAND_SUBMIT_JOB,
    GEARMAN_COMMAND_JOB_CREATED,
    GEARMAN_COMMAND_GRAB_JOB,
    GEARMAN_COMMAND_NO_JOB,
    GEARMAN_COMMAND_JOB_ASSIGN,
    GEARMAN_COMMAND_WORK_STATUS,
    GEARMAN_COMMAND_WORK_COMPLETE,
    GEARMAN_COMMAND_WORK_FAIL,
    GEARMAN_COMMAND_GET_STATUS,
    GEARMAN_COMMAND_ECHO_REQ,
    GEARMAN_COMMAND_ECHO_RES,
    GEARMAN_COMMAND_SUBMIT_JOB_BG,
    GEARMAN_COMMAND_ERROR,
    GEARMAN_COMMAND_STATUS_RES,
    GEARMAN_COMMAND_SUBMIT_JOB_HIGH,
    GEARMAN_COMMAND_SET_CLIENT_ID,
    GEARMAN_COMMAND_CAN_DO_TIMEOUT,
    GEARMAN_COMMAND_ALL_YOURS,
    GEARMAN_COMMAND_WORK_EXCEPTION,
    GEARMAN_COMMAND_OPTION_REQ,
    GEARMAN_COMMAND_OPTION_RES,
    GEARMAN_COMMAND_WORK_DATA,
    GEARMAN_COMMAND_WORK_WARNING,
    GEARMAN_COMMAND_GRAB_JOB_UNIQ,
    GEARMAN_COMMAND_JOB_ASSIGN_UNIQ,
    GEARMAN_COMMAND_SUBMIT_JOB_HIGH_BG,
    GEARMAN_COMMAND_SUBMIT_JOB_LOW,
    GEARMAN_COMMAND_SUBMIT_JOB_LOW_BG,
    GEARMAN_COMMAND_SUBMIT_JOB_SCHED,
    GEARMAN_COMMAND_SUBMIT_JOB_EPOCH,
    GEARMAN_COMMAND_SUBMIT_REDUCE_JOB,
    GEARMAN_COMMAND_SUBMIT_REDUCE_JOB_BACKGROUND,
    GEARMAN_COMMAND_GRAB_JOB_ALL,
    GEARMAN_COMMAND_JOB_ASSIGN_ALL,
    GEARMAN_COMMAND_GET_STATUS_UNIQUE,
    GEARMAN_COMMAND_STATUS_RES_UNIQUE,
)

#: python-gearman's fake command number for one admin text line.
GEARMAN_COMMAND_TEXT_COMMAND = 9999

_SUBMIT = ["task", "unique", "data"]

#: command -> names of its arguments, in wire order (the last may hold NUL bytes if it is data).
GEARMAN_PARAMS_FOR_COMMAND: Dict[int, List[str]] = {
    GEARMAN_COMMAND_CAN_DO: ["task"],
    GEARMAN_COMMAND_CANT_DO: ["task"],
    GEARMAN_COMMAND_RESET_ABILITIES: [],
    GEARMAN_COMMAND_PRE_SLEEP: [],
    GEARMAN_COMMAND_NOOP: [],
    GEARMAN_COMMAND_SUBMIT_JOB: list(_SUBMIT),
    GEARMAN_COMMAND_JOB_CREATED: ["job_handle"],
    GEARMAN_COMMAND_GRAB_JOB: [],
    GEARMAN_COMMAND_NO_JOB: [],
    GEARMAN_COMMAND_JOB_ASSIGN: ["job_handle", "task", "data"],
    GEARMAN_COMMAND_WORK_STATUS: ["job_handle", "numerator", "denominator"],
    GEARMAN_COMMAND_WORK_COMPLETE: ["job_handle", "data"],
    GEARMAN_COMMAND_WORK_FAIL: ["job_handle"],
    GEARMAN_COMMAND_GET_STATUS: ["job_handle"],
    GEARMAN_COMMAND_ECHO_REQ: ["data"],
    GEARMAN_COMMAND_ECHO_RES: ["data"],
    GEARMAN_COMMAND_SUBMIT_JOB_BG: list(_SUBMIT),
    GEARMAN_COMMAND_ERROR: ["error_code", "error_text"],
    GEARMAN_COMMAND_STATUS_RES: ["job_handle", "known", "running", "numerator", "denominator"],
    GEARMAN_COMMAND_SUBMIT_JOB_HIGH: list(_SUBMIT),
    GEARMAN_COMMAND_SET_CLIENT_ID: ["client_id"],
    GEARMAN_COMMAND_CAN_DO_TIMEOUT: ["task", "timeout"],
    GEARMAN_COMMAND_ALL_YOURS: [],
    GEARMAN_COMMAND_WORK_EXCEPTION: ["job_handle", "data"],
    GEARMAN_COMMAND_OPTION_REQ: ["option_name"],
    GEARMAN_COMMAND_OPTION_RES: ["option_name"],
    GEARMAN_COMMAND_WORK_DATA: ["job_handle", "data"],
    GEARMAN_COMMAND_WORK_WARNING: ["job_handle", "data"],
    GEARMAN_COMMAND_GRAB_JOB_UNIQ: [],
    GEARMAN_COMMAND_JOB_ASSIGN_UNIQ: ["job_handle", "task", "unique", "data"],
    GEARMAN_COMMAND_SUBMIT_JOB_HIGH_BG: list(_SUBMIT),
    GEARMAN_COMMAND_SUBMIT_JOB_LOW: list(_SUBMIT),
    GEARMAN_COMMAND_SUBMIT_JOB_LOW_BG: list(_SUBMIT),
    GEARMAN_COMMAND_SUBMIT_JOB_SCHED: ["task", "unique", "minute", "hour", "day_of_month",
                                       "month", "day_of_week", "data"],
    GEARMAN_COMMAND_SUBMIT_JOB_EPOCH: ["task", "unique", "epoch", "data"],
    GEARMAN_COMMAND_SUBMIT_REDUCE_JOB: ["task", "unique", "reducer", "aggregator", "data"],
    GEARMAN_COMMAND_SUBMIT_REDUCE_JOB_BACKGROUND: ["task", "unique", "reducer", "aggregator",
                                                   "data"],
    GEARMAN_COMMAND_GRAB_JOB_ALL: [],
    GEARMAN_COMMAND_JOB_ASSIGN_ALL: ["job_handle", "task", "unique", "reducer", "data"],
    GEARMAN_COMMAND_GET_STATUS_UNIQUE: ["unique"],
    GEARMAN_COMMAND_STATUS_RES_UNIQUE: ["unique", "known", "running", "numerator",
                                        "denominator", "waiting_clients"],
    GEARMAN_COMMAND_TEXT_COMMAND: ["raw_text"],
}

#: command number -> ``'GEARMAN_COMMAND_<NAME>'``
GEARMAN_COMMAND_TO_NAME: Dict[int, str] = {
    number: "GEARMAN_COMMAND_" + name
    for number, name in enumerate(_core.COMMAND_NAMES) if number > 0
}
GEARMAN_COMMAND_TO_NAME[GEARMAN_COMMAND_TEXT_COMMAND] = "GEARMAN_COMMAND_TEXT_COMMAND"

# --- admin (text) commands
GEARMAN_SERVER_COMMAND_STATUS = "status"
GEARMAN_SERVER_COMMAND_VERSION = "version"
GEARMAN_SERVER_COMMAND_WORKERS = "workers"
GEARMAN_SERVER_COMMAND_MAXQUEUE = "maxqueue"
GEARMAN_SERVER_COMMAND_SHUTDOWN = "shutdown"
GEARMAN_SERVER_COMMAND_GETPID = "getpid"
GEARMAN_SERVER_COMMAND_SHOW_JOBS = "show jobs"
GEARMAN_SERVER_COMMAND_SHOW_UNIQUE_JOBS = "show unique jobs"
GEARMAN_SERVER_COMMAND_CANCEL_JOB = "cancel job"


_HEADER = struct.Struct(">4sII")
_ARG_TYPES = (bytes, bytearray, memoryview, str)


def get_command_name(cmd_type: Any) -> Any:
    """Return ``'GEARMAN_COMMAND_<NAME>'`` for a command number, else the argument itself."""
    return GEARMAN_COMMAND_TO_NAME.get(cmd_type, cmd_type)


def submit_cmd_for_background_priority(background: bool, priority: Optional[str]) -> int:
    """Return the SUBMIT_JOB* command for ``(background, priority)``.

    ``priority`` is ``PRIORITY_NONE`` (None), ``PRIORITY_LOW`` ('LOW') or
    ``PRIORITY_HIGH`` ('HIGH'); anything else raises ``KeyError``, as in python-gearman.
    """
    return SUBMIT_COMMANDS[(bool(background), PRIORITY_NAME[priority])]


def parse_binary_command(in_buffer: Union[bytes, bytearray, memoryview],
                         is_response: bool = True
                         ) -> Tuple[Optional[int], Optional[Dict[str, bytes]], int]:
    """Decode the first binary packet of ``in_buffer``.

    Returns ``(command, {param_name: bytes}, packet_size)``, or ``(None, None, 0)``
    when the buffer does not yet hold a whole packet.  Raises ProtocolError for
    bad magic (``\\0RES`` expected when ``is_response``, else ``\\0REQ``), an
    unknown command, an oversized packet or a body of the wrong shape.
    """
    view = memoryview(in_buffer).cast("B")
    if len(view) < COMMAND_HEADER_SIZE:
        return None, None, 0
    magic, cmd_type, cmd_len = _HEADER.unpack(view[:COMMAND_HEADER_SIZE])
    expected_magic = MAGIC_RES_STRING if is_response else MAGIC_REQ_STRING
    if magic != expected_magic:
        raise ProtocolError("Malformed Magic")
    params = GEARMAN_PARAMS_FOR_COMMAND.get(cmd_type)
    if params is None or cmd_type == GEARMAN_COMMAND_TEXT_COMMAND:
        raise ProtocolError(f"Received unknown binary command: {cmd_type}")
    size = COMMAND_HEADER_SIZE + cmd_len
    reader = _core.PacketReader(magic=expected_magic, allow_text=False)
    if cmd_len > reader.max_packet_size + _core.ARGS_SLACK:
        # refused from the header alone, before the body arrives
        reader.feed(view[:COMMAND_HEADER_SIZE])
        reader.gets()       # raises PacketTooLargeError
    if len(view) < size:
        return None, None, 0
    reader.feed(view[:size])
    packet = reader.gets()
    assert packet is not None
    command, args = packet
    return command, dict(zip(params, args)), size


def _as_arg(value: Any) -> Any:
    if isinstance(value, _ARG_TYPES):
        return bytes(value) if isinstance(value, (bytearray, memoryview)) else value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ProtocolError(f"Received non-binary arguments: {value!r}")


def pack_binary_command(cmd_type: int, cmd_args: Mapping[str, Any],
                        is_response: bool = False) -> bytes:
    """Encode one packet; ``cmd_args`` maps every name of ``GEARMAN_PARAMS_FOR_COMMAND[cmd_type]``.

    Values are bytes or str (UTF-8); ints are written in decimal.  Returns the
    packet (``\\0REQ`` magic, or ``\\0RES`` when ``is_response``).  Raises
    ProtocolError for an unknown command, missing or extra arguments, a
    non-binary value or a NUL byte in an argument that cannot hold one.
    """
    params = GEARMAN_PARAMS_FOR_COMMAND.get(cmd_type)
    if params is None or cmd_type == GEARMAN_COMMAND_TEXT_COMMAND:
        raise ProtocolError(f"Received unknown binary command: {get_command_name(cmd_type)}")
    if set(params) != set(cmd_args.keys()):
        raise ProtocolError(f"Received arguments did not match expected arguments: "
                            f"{set(params)!r} != {set(cmd_args.keys())!r}")
    items = [_as_arg(cmd_args[name]) for name in params]
    pack = _core.pack_response if is_response else _core.pack_request
    try:
        return pack(cmd_type, *items)
    except ProtocolError:
        raise
    except GearmanError as exc:
        raise ProtocolError(f"{get_command_name(cmd_type)}: {exc}") from exc


def parse_text_command(in_buffer: Union[bytes, bytearray, memoryview, str]
                       ) -> Tuple[Optional[int], Optional[Dict[str, str]], int]:
    """Decode the first admin text line of ``in_buffer``.

    Returns ``(GEARMAN_COMMAND_TEXT_COMMAND, {'raw_text': line}, consumed)`` with the
    line as ``str`` without its ``\\n`` (and without a ``\\r`` before it, which
    gearmand 1.1 sends after ``OK``/``ERR``), or ``(None, None, 0)`` when no whole
    line is buffered.  Raises ProtocolError if the line contains a NUL byte.
    """
    data = in_buffer.encode("utf-8") if isinstance(in_buffer, str) else bytes(in_buffer)
    end = data.find(b"\n")
    if end < 0:
        return None, None, 0
    line = data[:end]
    if NULL_CHAR in line:
        raise ProtocolError(f"Received unexpected character: {line!r}")
    if line.endswith(b"\r"):
        line = line[:-1]
    return (GEARMAN_COMMAND_TEXT_COMMAND,
            {"raw_text": line.decode("utf-8", "surrogateescape")}, end + 1)


def pack_text_command(cmd_type: int, cmd_args: Mapping[str, Any]) -> bytes:
    """Return ``cmd_args['raw_text']`` as bytes (the caller includes the ``\\n``).

    Raises ProtocolError unless ``cmd_type`` is ``GEARMAN_COMMAND_TEXT_COMMAND``
    and ``raw_text`` is given.
    """
    if cmd_type != GEARMAN_COMMAND_TEXT_COMMAND:
        raise ProtocolError(f"Unknown cmd_type: Received {get_command_name(cmd_type)}, "
                            f"expecting GEARMAN_COMMAND_TEXT_COMMAND")
    line = cmd_args.get("raw_text")
    if line is None:
        raise ProtocolError(f"Did not receive arguments any valid arguments: {cmd_args!r}")
    if isinstance(line, str):
        return line.encode("utf-8")
    return bytes(line)
