"""The doors' conformance table: one source for docs/reliability.md and tests/test_conformance.py.

Plain data, no gearman import: the renderer (``render()``, ``scripts/conformance_table.py
--write``) writes the markdown block of docs/reliability.md from it, and the test module runs
every cell that is not N/A against real gearmand, asserting ``Cell.expect``. A test asserts
the docs' block equals ``render()``, so the two cannot drift.

T is the call's timeout (PECL ``setTimeout``, python-gearman ``poll_timeout``, asyncio
``timeout=``, the tools' ``-t``). ``max_t`` bounds the elapsed time in multiples of T; the
subprocess doors get, on top, a start-up allowance measured in the same session.

Expectation tokens (``Expect.result``), checked by test_conformance.py:

* ``ok``: every call returned its answer (a handle, a result, a status, True).
* ``raises:Name``: the call raised an exception that is a ``Name`` (class name in its MRO);
  ``raises:Name/Inner``: and every error it carries per job (``errors``) is an ``Inner``.
* ``returns:Value``: python-gearman's ``timed_out`` / a PECL ``False`` (and its returnCode).
* ``exit:N``: the process exited with N.
* ``first:Tok``: two sequential calls on one object: the first ended with ``Tok`` (it found
  the server silent), the second succeeded (the server is demoted, routing goes around it).
* ``A|B``: either (a race between the fault and the answer that the cell names).
* ``then:Tok``: two sequential calls: the first answered, the second ended with ``Tok``.
* ``served``: (workers) the jobs given to the door are answered.
* ``up0:Name``: (exporter) the server's ``gearman_up`` is 0 and a scrape error ``Name`` counted.
* ``retries``: (cygearman-worker) the process keeps running and retrying the server it logged.

``Expect.fate``, what happened to the job, where the test can check it:

* ``none``: no job was queued on any server that answers.
* ``healthy``: the job(s) are queued on the healthy server of the pool.
* ``handles``: the error carries ``handles``; the accepted ones are queued on the healthy server.
* ``kept``: the job was accepted (JOB_CREATED) and stays queued on the server.
* ``next``: (workers, job raising) the worker goes on: its next job is answered.
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Tuple, Union


class Expect(NamedTuple):
    result: str
    max_t: float
    fate: Optional[str] = None


class Cell(NamedTuple):
    outcome: str            # what a user sees, for the docs
    expect: Expect


class Gap(NamedTuple):
    """A cell whose real outcome breaks the promise: the test asserts the real outcome
    (so a fix shows up as a failure to update), the docs footnote it."""
    key: str                # a key of GAPS
    cell: "Cell"


class NA(NamedTuple):
    reason: str             # a key of NA_REASONS


FAULTS: List[Tuple[str, str]] = [
    ("no_server", "no server configured"),
    ("refused_alone", "the only server refuses (down)"),
    ("refused_pool", "pool [refused, healthy]"),
    ("silent_alone", "the only server silent (SIGSTOP)"),
    ("silent_pool", "pool [silent, healthy], silent before the call"),
    ("silent_mid", "pool [silent, healthy], silent mid-call"),
    ("restart", "server restarted between two calls"),
    ("restart_tls", "server behind TLS restarted between two calls"),
    ("cut_mid", "link cut mid-call (netns)"),
    ("malformed", "malformed reply"),
    ("lock_held", "timeout passes while another thread holds the object"),
    ("bulk_timeout", "bulk submit times out (pool [healthy, silent])"),
    ("job_raises", "the worker's job raises"),
    ("worker_silent_pair", "worker with one silent and one healthy server"),
]

DOORS: List[Tuple[str, str, str]] = [
    # (id, title, kind)
    ("pecl_do", "PECL `do*`", "client"),
    ("pecl_job_status", "PECL `jobStatus`", "client"),
    ("pecl_ping", "PECL `ping`", "client"),
    ("pecl_status_unique", "PECL `jobStatusByUniqueKey`", "client"),
    ("pecl_tasks", "PECL `addTask*` + `runTasks`", "client"),
    ("submit_batch", "`submit_batch`", "client"),
    ("pg_submit_job", "python-gearman `submit_job`", "client"),
    ("pg_submit_multiple", "python-gearman `submit_multiple_jobs`", "client"),
    ("pg_get_job_status", "python-gearman `get_job_status`", "client"),
    ("aio_do", "asyncio `do_*`", "client"),
    ("aio_submit_many", "asyncio `submit_many`", "client"),
    ("aio_job_status", "asyncio `job_status`", "client"),
    ("cli_submit", "`cygearman submit`", "client"),
    ("cli_status", "`cygearman status`", "client"),
    ("pecl_work", "PECL `work()` / `serve()`", "worker"),
    ("pg_work", "python-gearman `work()`", "worker"),
    ("aio_worker", "`AsyncGearmanWorker`", "worker"),
    ("cli_worker", "`cygearman-worker`", "worker"),
    ("admin", "`Admin`", "admin"),
    ("exporter", "`cygearman exporter`", "admin"),
]

#: The groups the docs render as separate tables (one row per fault, one column per door).
GROUPS: List[Tuple[str, List[str]]] = [
    ("PECL client", ["pecl_do", "pecl_job_status", "pecl_ping", "pecl_status_unique",
                     "pecl_tasks", "submit_batch"]),
    ("python-gearman client", ["pg_submit_job", "pg_submit_multiple", "pg_get_job_status"]),
    ("asyncio client and the command line", ["aio_do", "aio_submit_many", "aio_job_status",
                                             "cli_submit", "cli_status"]),
    ("workers and monitoring", ["pecl_work", "pg_work", "aio_worker", "cli_worker",
                                "admin", "exporter"]),
]

NA_REASONS: Dict[str, str] = {
    "worker": "a worker's fault: the client doors meet it as \"the worker's job raises\" or not at all",
    "client": "a client's fault: not a case for this door",
    "nowait": "one round trip: the call never waits on a server after it answered, so a server "
              "falling silent within it is the \"silent before the call\" row",
    "nolock": "no object shared between threads (asyncio: one loop; a command: one process)",
    "notbulk": "not a bulk door",
    "nojob": "no job runs",
}

GAPS: Dict[str, str] = {
}

_S = "ServerSilentError (a GearmanTimeoutError)"

# -- cells shared by several doors -------------------------------------------------------------

NO_SERVER = Cell("NoServersError at the first call, before any I/O",
                 Expect("raises:NoServersError", 0.5, "none"))
REFUSED = Cell("ServerUnavailable at once; not submitted",
               Expect("raises:ServerUnavailable", 0.5, "none"))
REFUSED_POOL = Cell("answer from the healthy server at once",
                    Expect("ok", 0.5, "healthy"))
SILENT = Cell(f"{_S} after 1 T; `submitted` False/None",
              Expect("raises:ServerSilentError", 1.5))
SILENT_POOL = Cell(f"at most the first call: {_S} after 1 T, the server demoted; then answers "
                   "from the healthy one",
                   Expect("first:raises:ServerSilentError", 1.5, "healthy"))
MID = Cell("GearmanTimeoutError after 1 T; the job stays accepted (handle known)",
           Expect("raises:GearmanTimeoutError", 1.5, "kept"))
RESTART = Cell("both calls answered; the second costs nothing",
               Expect("ok", 1.0))
CUT = Cell("GearmanTimeoutError after 1 T; the job was accepted before the cut",
           Expect("raises:GearmanTimeoutError", 1.5))
MALFORMED = Cell("ProtocolLostConnectionError (a LostConnectionError) at once; outcome unknown",
                 Expect("raises:ProtocolLostConnectionError", 0.5))
LOCK = Cell("GearmanTimeoutError after 1 T, `submitted=False`: nothing sent",
            Expect("raises:GearmanTimeoutError", 1.5))
BULK = Cell("GearmanTimeoutError after 1 T with `handles` (the healthy server's, queued) and "
            f"`errors` ({_S} for the silent server's jobs)",
            Expect("raises:GearmanTimeoutError", 1.5, "handles"))
RAISES = Cell("JobExceptionError with the worker's text (WORK_EXCEPTION)",
              Expect("raises:JobExceptionError", 1.0))

W = NA("worker")
C = NA("client")
NOWAIT = NA("nowait")
NOLOCK = NA("nolock")
NOTBULK = NA("notbulk")
NOJOB = NA("nojob")

CellOrNA = Union[Cell, NA, Gap]


def _client(**over: CellOrNA) -> Dict[str, CellOrNA]:
    """A client door's column: the shared promises, with this door's differences."""
    col: Dict[str, CellOrNA] = {
        "no_server": NO_SERVER, "refused_alone": REFUSED, "refused_pool": REFUSED_POOL,
        "silent_alone": SILENT, "silent_pool": SILENT_POOL, "silent_mid": MID,
        "restart": RESTART, "restart_tls": RESTART, "cut_mid": CUT, "malformed": MALFORMED,
        "lock_held": LOCK, "bulk_timeout": NOTBULK, "job_raises": RAISES,
        "worker_silent_pair": W,
    }
    col.update(over)
    return col


_STATUS_REFUSED_POOL = Cell("answer at once (the healthy server's)", Expect("ok", 0.5))
_STATUS_SILENT_POOL = Cell("GearmanTimeoutError after 1 T on every call (by design: a handle or "
                           "unique this client did not make is asked of every server, §5b)",
                           Expect("raises:GearmanTimeoutError", 1.5))
_STATUS_OVER: Dict[str, CellOrNA] = dict(
    silent_mid=NOWAIT, cut_mid=NOWAIT, job_raises=NOJOB, refused_pool=_STATUS_REFUSED_POOL,
    silent_pool=_STATUS_SILENT_POOL)
_BATCH_SILENT = Cell(f"GearmanTimeoutError after 1 T, `errors`: {_S} per job (the batch "
                     "contract, §1)", Expect("raises:GearmanTimeoutError/ServerSilentError", 1.5))
_BATCH_SILENT_POOL = Cell("at most the first call: GearmanTimeoutError after 1 T (its jobs' "
                          f"`errors` {_S}), the server demoted; then answers from the healthy one",
                          Expect("first:raises:GearmanTimeoutError", 1.5, "healthy"))

# python-gearman's contract: a timeout is ``timed_out`` on the request, never an exception
_PG_SILENT = Cell("request returned after 1 T with `timed_out=True` (by design: python-gearman "
                  "never raises a timeout); not submitted, or outcome unknown",
                  Expect("returns:timed_out", 1.5))
_PG_SILENT_POOL = Cell("at most the first request `timed_out=True` after 1 T (by design), the "
                       "server demoted; then answers from the healthy one",
                       Expect("first:returns:timed_out", 1.5, "healthy"))
_PG_MID = Cell("request returned after 1 T with `timed_out=True` (by design); job accepted",
               Expect("returns:timed_out", 1.5, "kept"))
_PG_NO_SERVER = Cell("ServerUnavailable \"Found no valid connections in list: []\" (by design: "
                     "python-gearman's contract)", Expect("raises:ServerUnavailable", 0.5, "none"))
_PG_MALFORMED = Cell("ExceededConnectionAttempts at once (by design: python-gearman's contract "
                     "for a connection that broke after the job was sent)",
                     Expect("raises:ExceededConnectionAttempts", 0.5))
_PG_REFUSED = Cell("ServerUnavailable at once (python-gearman raises it too); not submitted",
                   Expect("raises:ServerUnavailable", 0.5, "none"))


CELLS: Dict[Tuple[str, str], CellOrNA] = {}


def _column(door: str, col: Dict[str, CellOrNA]) -> None:
    for fault, cell in col.items():
        CELLS[(fault, door)] = cell


_column("pecl_do", _client())
_column("pecl_job_status", _client(**_STATUS_OVER))
_column("pecl_ping", _client(**dict(
    _STATUS_OVER, refused_pool=Cell("ServerUnavailable at once (by design: `ping` is True only if "
                                    "every server echoes)", Expect("raises:ServerUnavailable", 0.5)),
    silent_pool=Cell("GearmanTimeoutError after 1 T on every call (by design: every server is "
                     "pinged)", Expect("raises:GearmanTimeoutError", 1.5)))))
_column("pecl_status_unique", _client(**_STATUS_OVER))
_column("pecl_tasks", _client(
    bulk_timeout=Cell("GearmanTimeoutError after 1 T; the healthy server's tasks keep their "
                      "handles (queued), the others carry their error",
                      Expect("raises:GearmanTimeoutError", 1.5, "handles")),
    silent_alone=Cell("GearmanTimeoutError after 1 T; each task ends with its error",
                      Expect("raises:GearmanTimeoutError", 1.5)),
    silent_pool=_BATCH_SILENT_POOL,
    job_raises=Cell("`runTasks` returns True; the task's `returnCode()` is GEARMAN_WORK_EXCEPTION "
                    "(by design: PECL reports job outcomes in the task and its callbacks)",
                    Expect("returns:task:GEARMAN_WORK_EXCEPTION", 1.0))))
_column("submit_batch", _client(
    bulk_timeout=BULK, silent_mid=NOWAIT, cut_mid=NOWAIT, job_raises=NOJOB,
    refused_alone=Cell("BatchError at once, `errors`: ServerUnavailable per job (the batch "
                       "contract); not submitted",
                       Expect("raises:BatchError/ServerUnavailable", 0.5, "none")),
    silent_alone=_BATCH_SILENT, silent_pool=_BATCH_SILENT_POOL,
    malformed=Cell("BatchError at once, `errors`: ProtocolLostConnectionError per job "
                   "(outcome unknown)",
                   Expect("raises:BatchError/ProtocolLostConnectionError", 0.5))))
_column("pg_submit_job", _client(
    no_server=_PG_NO_SERVER, malformed=_PG_MALFORMED, refused_alone=_PG_REFUSED,
    silent_alone=_PG_SILENT, silent_pool=_PG_SILENT_POOL,
    silent_mid=_PG_MID, cut_mid=_PG_MID,
    lock_held=Cell("request returned after 1 T with `timed_out=True` (by design); nothing sent",
                   Expect("returns:timed_out", 1.5)),
    job_raises=Cell("request returned, `state` JOB_FAILED, `exception` the worker's text",
                    Expect("returns:failed", 1.0))))
_column("pg_submit_multiple", _client(
    no_server=_PG_NO_SERVER, malformed=_PG_MALFORMED, refused_alone=_PG_REFUSED,
    silent_alone=_PG_SILENT, silent_pool=_PG_SILENT_POOL,
    silent_mid=_PG_MID, cut_mid=_PG_MID,
    lock_held=Cell("requests returned after 1 T with `timed_out=True` (by design); nothing sent",
                   Expect("returns:timed_out", 1.5)),
    bulk_timeout=Cell("the healthy server's requests accepted, the silent one's `timed_out=True` "
                      "after 1 T (by design)",
                      Expect("returns:timed_out", 1.5, "handles")),
    job_raises=Cell("requests returned, `state` JOB_FAILED, `exception` the worker's text",
                    Expect("returns:failed", 1.0))))
_column("pg_get_job_status", _client(**dict(
    _STATUS_OVER, no_server=_PG_NO_SERVER,
    refused_alone=_PG_REFUSED, silent_alone=_PG_SILENT,
    refused_pool=Cell("ServerUnavailable at once (by design: the status is asked of the server that "
                      "holds the job, here the down one)", Expect("raises:ServerUnavailable", 0.5)),
    silent_pool=Cell("`timed_out=True` after 1 T on every call (by design: asked of the job's "
                     "server, here the silent one)", Expect("returns:timed_out", 1.5)),
    malformed=Cell("ServerUnavailable at once, the protocol error as its cause (by design: "
                   "python-gearman's contract when every asked server failed)",
                   Expect("raises:ServerUnavailable", 0.5)),
    lock_held=Cell("request returned after 1 T with `timed_out=True` (by design); nothing sent",
                   Expect("returns:timed_out", 1.5)))))
_column("aio_do", _client(lock_held=NOLOCK))
_column("aio_submit_many", _client(
    lock_held=NOLOCK, bulk_timeout=BULK, silent_mid=NOWAIT, cut_mid=NOWAIT, job_raises=NOJOB,
    refused_alone=Cell("returns at once, handle None, ServerUnavailable in `last_batch_errors` (by "
                       "design: documented; `submit_batch` raises BatchError)",
                       Expect("returns:None/ServerUnavailable", 0.5, "none")),
    silent_alone=_BATCH_SILENT, silent_pool=_BATCH_SILENT_POOL,
    malformed=Cell("returns at once, handle None, ProtocolLostConnectionError in "
                   "`last_batch_errors`",
                   Expect("returns:None/ProtocolLostConnectionError", 0.5))))
_column("aio_job_status", _client(lock_held=NOLOCK, **_STATUS_OVER))
_column("cli_submit", _client(
    no_server=Cell("uses localhost:4730 (by design: gearmand's tools do); nothing there: exit 3",
                   Expect("exit:3", 0.5)),
    refused_alone=Cell("exit 3 at once; not submitted", Expect("exit:3", 0.5, "none")),
    refused_pool=Cell("exit 0, answer from the healthy server", Expect("exit:0", 0.5, "healthy")),
    silent_alone=Cell("exit 3 after 1 T (a silent server is unreachable)", Expect("exit:3", 1.5)),
    silent_pool=Cell("exit 0, the job on the healthy server: over a pool the command first "
                     "gives every server an ECHO (half of `-t` at most) and sends around a "
                     "server that does not answer, every run (a new process knows no demotion)",
                     Expect("exit:0", 1.0, "healthy")),
    silent_mid=Cell("exit 5 after 1 T (`-t` expired); job accepted", Expect("exit:5", 1.5, "kept")),
    cut_mid=Cell("exit 5 after 1 T (timed out waiting: the job may have been accepted); exit 3 "
                 "when nothing at all came back since the request left (ServerSilentError: "
                 "outcome unknown, or \"not sent\" only if its bytes never left)",
                 Expect("exit:5|exit:3", 1.5)),
    restart=Cell("exit 0 both times", Expect("exit:0", 1.0)),
    restart_tls=Cell("exit 0 both times", Expect("exit:0", 1.0)),
    malformed=Cell("exit 3 at once (connection lost)", Expect("exit:3", 0.5)),
    lock_held=NOLOCK,
    bulk_timeout=Cell("`-b -n`: exit 0, every job queued on the healthy server and its handle "
                      "printed (the probe set the silent server aside, as above)",
                      Expect("exit:0", 1.0, "healthy")),
    job_raises=Cell("exit 4, the worker's text on stderr", Expect("exit:4", 1.0))))
_column("cli_status", _client(**dict(
    _STATUS_OVER,
    no_server=Cell("uses localhost:4730 (by design); nothing there: exit 3", Expect("exit:3", 0.5)),
    refused_alone=Cell("exit 3 at once", Expect("exit:3", 0.5)),
    refused_pool=Cell("exit 3 at once, the healthy server's table printed (by design: the first "
                      "failure's code)", Expect("exit:3", 0.5)),
    silent_alone=Cell("exit 3 after 1 T (ServerSilentError, as `submit`)", Expect("exit:3", 1.5)),
    silent_pool=Cell("exit 3 after 1 T, the healthy server's table printed (by design: the "
                     "first failure's code)", Expect("exit:3", 1.5)),
    restart=Cell("exit 0 both times", Expect("exit:0", 1.0)),
    restart_tls=Cell("exit 0 both times", Expect("exit:0", 1.0)),
    malformed=Cell("exit 1 at once (ProtocolError)", Expect("exit:1", 0.5)),
    lock_held=NOLOCK)))

# -- workers: T is the worker's own timeout (PECL setTimeout, poll_timeout) or, for the doors
# that have none, the bound the test waits for a job in
_WORKER_NA = dict(silent_alone=C, silent_pool=C, silent_mid=C, restart_tls=C, cut_mid=C,
                  malformed=C, lock_held=C, bulk_timeout=C)
_SERVED = Expect("served", 2.0)
_column("pecl_work", dict(
    no_server=Cell("`work()` returns False, GEARMAN_NO_SERVERS", Expect("returns:False", 0.5)),
    refused_alone=Cell("`work()` returns False within T (returnCode says why)",
                       Expect("returns:False", 1.5)),
    refused_pool=Cell("jobs from the healthy server served", _SERVED),
    restart=Cell("reconnects, the next job served", Expect("served", 4.0)),
    job_raises=Cell("client gets WORK_EXCEPTION; the worker goes on", Expect("served", 2.0, "next")),
    worker_silent_pair=Cell("jobs from the healthy server served", _SERVED),
    **_WORKER_NA))
_column("pg_work", dict(
    no_server=Cell("ServerUnavailable \"Found no valid connections in list: []\" (by design: "
                   "python-gearman's contract)", Expect("raises:ServerUnavailable", 0.5)),
    refused_alone=Cell("ServerUnavailable at once (python-gearman's contract)",
                       Expect("raises:ServerUnavailable", 0.5)),
    refused_pool=Cell("jobs from the healthy server served", _SERVED),
    restart=Cell("reconnects, the next job served", Expect("served", 4.0)),
    job_raises=Cell("client gets WORK_EXCEPTION; the worker goes on", Expect("served", 2.0, "next")),
    worker_silent_pair=Cell("jobs from the healthy server served", _SERVED),
    **_WORKER_NA))
_column("aio_worker", dict(
    no_server=Cell("`run()` raises NoServersError", Expect("raises:NoServersError", 0.5)),
    refused_alone=Cell("keeps retrying (logged); serves once the server is up",
                       Expect("served", 4.0)),
    refused_pool=Cell("jobs from the healthy server served", _SERVED),
    restart=Cell("reconnects, the next job served", Expect("served", 4.0)),
    job_raises=Cell("client gets WORK_EXCEPTION; the worker goes on", Expect("served", 2.0, "next")),
    worker_silent_pair=Cell("jobs from the healthy server served", _SERVED),
    **_WORKER_NA))
_column("cli_worker", dict(
    no_server=Cell("uses localhost:4730 (by design: the tools' default), logs it; nothing "
                   "there: keeps retrying", Expect("retries", 4.0)),
    refused_alone=Cell("keeps retrying (logged); serves once the server is up",
                       Expect("served", 4.0)),
    refused_pool=Cell("jobs from the healthy server served", _SERVED),
    restart=Cell("reconnects, the next job served", Expect("served", 4.0)),
    job_raises=Cell("client gets WORK_EXCEPTION, traceback logged; the worker goes on",
                    Expect("served", 2.0, "next")),
    worker_silent_pair=Cell("jobs from the healthy server served", _SERVED),
    **_WORKER_NA))
# -- monitoring
_ADMIN_NA = {f: C for f, _ in FAULTS if f not in ("no_server", "refused_alone", "silent_alone",
                                                    "malformed")}
_column("admin", dict(
    no_server=Cell("NoServersError at construction", Expect("raises:NoServersError", 0.5)),
    refused_alone=Cell("ServerUnavailable at once", Expect("raises:ServerUnavailable", 0.5)),
    silent_alone=Cell(f"{_S} after 1 T", Expect("raises:ServerSilentError", 1.5)),
    malformed=Cell("ProtocolError at once", Expect("raises:ProtocolError", 0.5)),
    **_ADMIN_NA))
_column("exporter", dict(
    no_server=Cell("uses localhost:4730 (by design); `gearman_up` 0 there",
                   Expect("up0:ServerUnavailable", 0.5)),
    refused_alone=Cell("`gearman_up` 0, scrape error ServerUnavailable",
                       Expect("up0:ServerUnavailable", 0.5)),
    silent_alone=Cell("`gearman_up` 0 after 1 T, scrape error ServerSilentError",
                      Expect("up0:ServerSilentError", 1.5)),
    malformed=Cell("`gearman_up` 0, scrape error ProtocolError", Expect("up0:ProtocolError", 0.5)),
    **_ADMIN_NA))


def check() -> None:
    """Every (fault, door) pair has a cell or an N/A; every N/A has a known reason."""
    faults = [f for f, _ in FAULTS]
    doors = [d for d, _, _ in DOORS]
    missing = [(f, d) for f in faults for d in doors if (f, d) not in CELLS]
    extra = [k for k in CELLS if k[0] not in faults or k[1] not in doors]
    assert not missing and not extra, (missing, extra)
    assert sorted(d for _, ds in GROUPS for d in ds) == sorted(doors)
    for cell in CELLS.values():
        if isinstance(cell, NA):
            assert cell.reason in NA_REASONS, cell
        if isinstance(cell, Gap):
            assert cell.key in GAPS, cell


def runnable() -> List[Tuple[str, str]]:
    """The (fault, door) pairs the test runs: every cell that is not N/A."""
    return [(f, d) for f, _ in FAULTS for d, _, _ in DOORS if not isinstance(CELLS[(f, d)], NA)]


def cell_of(fault: str, door: str) -> "Cell":
    """The cell the test asserts (a known gap's real outcome included)."""
    c = CELLS[(fault, door)]
    assert not isinstance(c, NA), (fault, door)
    return c.cell if isinstance(c, Gap) else c


def render() -> str:
    """The markdown between docs/reliability.md's conformance-table markers."""
    check()
    titles = {d: t for d, t, _ in DOORS}
    letters = {r: chr(ord("a") + i) for i, r in enumerate(NA_REASONS)}
    out: List[str] = [
        "<!-- generated by scripts/conformance_table.py from tests/conformance_table.py; "
        "do not edit by hand -->",
        "",
        "T is the call's timeout (PECL `setTimeout`, python-gearman `poll_timeout`, asyncio "
        "`timeout=`, the tools' `-t`; for workers, the worker's own timeout or how long a job "
        "may take to be served). Each cell is run by `tests/test_conformance.py` against real "
        "gearmand, which asserts the outcome and that it came within the time given (the "
        "commands: plus their interpreter's start-up). \"—\" is not applicable, for the reason "
        "its letter gives below.",
    ]
    for group, doors in GROUPS:
        used = [(f, title) for f, title in FAULTS
                if any(not isinstance(CELLS[(f, d)], NA) for d in doors)]
        out += ["", f"**{group}**", "",
                "| fault | " + " | ".join(titles[d] for d in doors) + " |",
                "|---|" + "---|" * len(doors)]
        for f, title in used:
            row = []
            for d in doors:
                cell = CELLS[(f, d)]
                if isinstance(cell, NA):
                    row.append(f"— ({letters[cell.reason]})")
                elif isinstance(cell, Gap):
                    n = list(GAPS).index(cell.key) + 1
                    row.append(cell.cell.outcome.replace("|", "\\|") + f" **[gap {n}]**")
                else:
                    row.append(cell.outcome.replace("|", "\\|"))
            out.append(f"| {title} | " + " | ".join(row) + " |")
    out += ["", "Not applicable:", ""]
    out += [f"* ({letters[r]}) {text}." for r, text in NA_REASONS.items()]
    if GAPS:
        out += ["", "Known gaps (the test asserts today's outcome, so a fix must update the "
                "table):", ""]
        out += [f"{i}. {text}." for i, text in enumerate(GAPS.values(), 1)]
    return "\n".join(out) + "\n"


BEGIN = "<!-- conformance-table:begin -->"
END = "<!-- conformance-table:end -->"


def splice(doc: str, table: str) -> str:
    """``doc`` with the text between the markers replaced by ``table``."""
    head, rest = doc.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}{END}{tail}"


def block(doc: str) -> str:
    """The text between the markers (what ``splice`` put there)."""
    return doc.split(BEGIN, 1)[1].split(END, 1)[0][1:]
