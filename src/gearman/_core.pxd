# Declarations of the compiled core, one .pxd per fragment: each X.pxd declares
# the cdef classes (every field, with what it holds, its unit and who owns it)
# and the cdef methods that X.pxi implements. Being declared here, the classes
# can be used by any fragment whatever the include order in _core.pyx.
#
#   _platform.pxd       _compat.h: sockets, poll, clock, hashing
#   _buffer.pxd         WriteBuffer: where a packet is framed
#   _packet.pxd         PacketReader: where a byte stream is decoded into packets
#   _unique.pxd         UniqueGen: default uniques
#   _connection.pxd     Fifo, Connection: one server connection, its I/O and request FIFO
#   _task.pxd           Task: one client request
#   _batch.pxd          Batch, BatchRun: submit_batch without a Task per job
#   _engine_base.pxd    EngineBase: connections, the poll loop, the failure policy
#   _client_engine.pxd  ClientEngine: routing and reply matching
#   _worker_engine.pxd  WorkerJob, WorkerEngine: grabbing and answering jobs
#   _admin_engine.pxd   AdminEngine: one admin text-protocol connection (gearman.admin)
#   _caller.pxd         ClientLock, CallerState, ClientCore, WorkerCore: the facade's base
from libc.stdint cimport uint32_t, uint64_t

include "_platform.pxd"
include "_buffer.pxd"
include "_packet.pxd"
include "_unique.pxd"
include "_connection.pxd"
include "_task.pxd"
include "_batch.pxd"
include "_engine_base.pxd"
include "_client_engine.pxd"
include "_worker_engine.pxd"
include "_admin_engine.pxd"
include "_caller.pxd"
