# cython: language_level=3
"""The compiled core of cygearman: packet codec, connections and engines.

Assembled from focused fragments by ``include``; each fragment's classes are
declared in the .pxd of the same name (see _core.pxd). docs/design.md maps them.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.buffer cimport PyBuffer_FillInfo, PyBUF_READ, PyBUF_WRITE
from cpython.exc cimport PyErr_CheckSignals
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.object cimport PyObject, PyTypeObject
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memchr, memcpy, memmove

import errno
import logging
import os
import random
import socket
import ssl
import weakref

from gearman.errors import (
    GearmanError, GearmanTimeoutError, InvalidArgumentError, InvalidTypeError,
    JobExceptionError, JobFailedError, LostConnectionError, NoServersError, PacketTooLargeError, ProtocolError,
    SERVER_ERROR_CLASSES, ServerError, ServerSilentError, ServerUnavailable, UnknownCommandError,
)

log = logging.getLogger("gearman.core")

#: True: this module is the compiled extension (guard tests check it).
COMPILED = True

include "_consts.pxi"
include "_buffer.pxi"
include "_packet.pxi"
include "_convert.pxi"
include "_unique.pxi"
include "_connection.pxi"
include "_task.pxi"
include "_batch.pxi"
include "_engine_base.pxi"
include "_client_engine.pxi"
include "_worker_engine.pxi"
include "_admin_engine.pxi"
include "_caller.pxi"

# Task kinds for ClientEngine.new_request
KIND_STATUS = TASK_STATUS
KIND_STATUS_UNIQUE = TASK_STATUS_UNIQUE
KIND_ECHO = TASK_ECHO
# poll bits used by watch_list() (what an event loop must watch for)
POLL_IN = POLLIN
POLL_OUT = POLLOUT
EVENTS = ("none", "created", "data", "warning", "status", "complete", "fail", "exception",
          "workload")
# event name -> index in a callback table (Task.callbacks): the one table
EVENT_INDEX = {name: i for i, name in enumerate(EVENTS)}
# task states (Task.state), for the facades that translate them
TASK_STATE_NEW = TS_NEW
TASK_STATE_QUEUED = TS_QUEUED
TASK_STATE_CREATED = TS_CREATED
TASK_STATE_DONE = TS_DONE
