"""Benchmark cygearman against PHP/libgearman, pygearman and gear on the same workloads.

One command measures everything::

    python benchmarks/run.py            # default: 5 rounds
    python benchmarks/run.py --quick    # short run, smaller N
    python benchmarks/run.py --json results.json
    python benchmarks/run.py --workloads pipelined,rounds,ceiling   # pipelined only

Each measurement is one client process doing one workload sequentially against
a gearmand started for that measurement alone (fresh queue, fresh port on
127.0.0.1), and killed after it.  The client process times only its own loop
and prints one JSON line with ``ops`` and ``seconds``; this orchestrator only
starts processes, parses those lines and reports.  Clients are interleaved
(cygearman, php, pygearman, gear, cygearman, ...) and repeated for R rounds;
the table shows the median ops/s with min and max, and the ratios
cygearman ÷ peer.  The benchmark reports; it asserts nothing.

The pipelined workloads ("pipelined", "rounds", "ceiling") submit N
background jobs in one go, each way a client can (``variants()``: runTasks,
the batch call, with and without caller-given uniques); they report jobs/s,
the client's CPU per job, gearmand's CPU per job, ratios to PHP within each
round and, per round, the fraction of the server's ceiling: the best of
several client processes pipelining at once against one gearmand.  After each
such measurement gearmand's admin ``status`` must count every job queued.

pygearman and gear are imported as ``gearman``/``gear`` and the first collides
with this package, so they live in their own venv (``benchmarks/.venv-peers``,
created on first use) and run under that venv's interpreter.  See
``benchmarks/README.md`` for what each workload measures.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PHP_DIR = HERE / "php"
C_DIR = HERE / "c"
C_SOURCE = C_DIR / "gmbench.c"
C_BINARY = C_DIR / "build" / "gmbench"
PYCLIENTS = HERE / "pyclients.py"
CHART = HERE / "chart.py"
DEFAULT_VENV = HERE / ".venv-peers"
PEER_PACKAGES = ("pygearman==0.2.6", "gear==0.16.0", "aiogear==0.2.6", "matplotlib")

CLIENTS = ("cygearman", "libgearman", "php", "pygearman", "gear", "aiogear", "floor", "pyfloor")
PEER_CLIENTS = ("pygearman", "gear", "aiogear")
#: clients of the sequential workloads (aiogear only has a pipelined row)
SEQ_CLIENTS = ("cygearman", "libgearman", "php", "pygearman", "gear", "floor", "pyfloor")
#: one call at a time, every client
SEQ_WORKLOADS = ("background", "normal", "status")
#: per client the variants of ``variants()``: pipelined background submission,
#: the worker draining a queue, big payloads, memory
PIPE_WORKLOADS = ("pipelined", "rounds", "ceiling", "drain", "payload", "memory")
WORKLOADS = SEQ_WORKLOADS + PIPE_WORKLOADS
#: function name per workload; "normal" and "payload" have an echo worker, "drain"
#: the measured worker, the others just queue
FUNCTIONS = {"background": "bench_bg", "normal": "echo", "status": "bench_status",
             "pipelined": "bench_pipe", "rounds": "bench_rounds", "ceiling": "bench_ceiling",
             "drain": "bench_drain", "payload": "bench_echo_big", "memory": "bench_mem"}
WORKLOAD_TITLES = {
    "background": "doBackground, no worker (jobs queue)",
    "normal": "doNormal round trip, one libgearman (C) worker echoes",
    "status": "jobStatus of one queued handle",
    "pipelined": "N background jobs of one function, no worker, submitted pipelined in one go",
    "rounds": "N background jobs through runTasks as 1 round of N, or as R rounds of N/R",
    "ceiling": "several libgearman (C) processes at once, each pipelining N jobs with caller-given uniques",
    "drain": "one worker process draining N queued background jobs (empty results)",
    "payload": "doNormal round trips of a big payload, echoed by a cygearman worker",
    "memory": "memory of pending background jobs, and RSS over many jobs submitted in rounds",
}
FLOOR_TITLE = ("floor = no library: a hand-written C client on one blocking TCP socket "
               "(benchmarks/c/gmbench.c raw-*: send the packet, read the reply), the least any "
               "client can do per round trip; pyfloor = the same in Python: the socket module "
               "on one blocking socket, packets packed and framed by hand (benchmarks/pyclients.py "
               "run_pyfloor), the least a Python client can do")
#: (default N, --quick N) per workload; for "ceiling" N is per client process; for
#: "memory" N is the pending tasks/jobs of one call (the flat run has --n-memory-flat)
SIZES = {"background": (20000, 5000), "normal": (5000, 1000), "status": (20000, 5000),
         "pipelined": (100000, 20000), "rounds": (100000, 20000), "ceiling": (50000, 20000),
         "drain": (100000, 20000), "payload": (0, 0), "memory": (100000, 100000)}
#: "memory": jobs submitted in rounds of MEMORY_FLAT_ROUND with RSS sampled after each
MEMORY_FLAT_SIZE = (1000000, 200000)
MEMORY_FLAT_ROUND = 10000
#: "payload": sizes in MiB (default, --quick); round trips per process: enough for
#: MiB * trips >= PAYLOAD_BYTES_PER_MEASUREMENT (cygearman), one for libgearman (slow)
PAYLOAD_SIZES_MIB = ("1,16,64", "1,16")
PAYLOAD_MIB_PER_MEASUREMENT = 64
#: cygearman's default max_packet_size; "payload" raises it for its client and worker
DEFAULT_MAX_PACKET = 64 * 1024 * 1024
#: rounds of these workloads (they are slow or not timing-sensitive), at most --rounds
WORKLOAD_ROUNDS = {"payload": (3, 1), "memory": (1, 1)}
#: aiogear's per-job cost grows with the jobs its client has submitted (its answer
#: matching scans a list that keeps every background job's WORK_COMPLETE future), so
#: its pipelined row gets a small N of its own
AIOGEAR_PIPE_SIZE = (5000, 2000)
#: pygearman's submit_multiple_jobs costs more per job the more jobs it is given
#: (31 us/job at 10,000, 108 us/job at 100,000 on the development machine: 11 s
#: per measurement), so it gets a smaller N of its own in "pipelined"
PYGEARMAN_PIPE_SIZE = (20000, 5000)
CEILING_PROCS = 4
SPLIT_ROUNDS = 10


@dataclass(frozen=True)
class Variant:
    """One way a client does a workload: a row of that workload's table."""

    key: str          #: id in the JSON and for ratios, e.g. "cyg-tasks"
    label: str        #: row label
    client: str       #: cygearman / libgearman / php / ... (what ``--clients`` selects)
    mode: str         #: the client process's WORKLOAD argument
    n: int            #: jobs (operations) per client process (whole rounds)
    rounds: int = 1   #: the n jobs go in this many rounds (add n/rounds, runTasks)
    procs: int = 1    #: client processes at once, on one gearmand
    base: str = ""    #: the libgearman variant this one is compared with ("" = none)
    php: str = ""     #: the PHP variant this one is also compared with ("" = none)
    size: int = -1    #: payload bytes (-1: --payload-bytes)


def variants(workload: str, cfg: "Config") -> List[Variant]:
    """The rows of a non-sequential workload, in the order they run in each round."""
    n = cfg.sizes[workload]
    if workload == "pipelined":
        d = dict(base="c-tasks", php="php-tasks")
        u = dict(base="c-tasks-u", php="php-tasks-u")
        vs = [Variant("cyg-tasks", "cygearman runTasks", "cygearman", "tasks", n, **d),
              Variant("c-tasks", "libgearman run_tasks", "libgearman", "tasks", n),
              Variant("php-tasks", "php runTasks", "php", "tasks", n, base="c-tasks"),
              Variant("cyg-tasks-u", "cygearman runTasks +u", "cygearman", "tasks-u", n, **u),
              Variant("c-tasks-u", "libgearman run_tasks +u", "libgearman", "tasks-u", n),
              Variant("php-tasks-u", "php runTasks +u", "php", "tasks-u", n, base="c-tasks-u"),
              Variant("cyg-batch", "cygearman submit_batch", "cygearman", "batch", n, **d),
              Variant("cyg-batch-u", "cygearman submit_batch +u", "cygearman", "batch-u", n, **u),
              Variant("cyg-aio-many", "cygearman asyncio submit_many", "cygearman", "aio-many", n, **d),
              Variant("cyg-aio-gather", "cygearman asyncio gather(do_background)", "cygearman",
                      "aio-gather", n, **d),
              Variant("aiogear-gather", "aiogear gather(submit_job_bg)", "aiogear", "aio-gather",
                      cfg.aiogear_pipe_size, **d),
              Variant("pyg-multiple", "pygearman submit_multiple_jobs", "pygearman", "multiple",
                      cfg.pygearman_pipe_size, **d)]
    elif workload == "rounds":
        k = cfg.split_rounds
        n = n // k * k
        vs = [Variant("cyg-1", f"cygearman 1 x {n}", "cygearman", "tasks", n),
              Variant("cyg-split", f"cygearman {k} x {n // k}", "cygearman", "tasks", n, rounds=k),
              Variant("c-1", f"libgearman 1 x {n}", "libgearman", "tasks", n),
              Variant("c-split", f"libgearman {k} x {n // k}", "libgearman", "tasks", n, rounds=k),
              Variant("php-1", f"php 1 x {n}", "php", "tasks", n),
              Variant("php-split", f"php {k} x {n // k}", "php", "tasks", n, rounds=k)]
    elif workload == "ceiling":
        k = cfg.ceiling_procs
        vs = [Variant("ceiling-c", f"libgearman run_tasks +u, {k} proc.", "libgearman", "tasks-u",
                      n, procs=k),
              Variant("ceiling-cyg", f"cygearman submit_batch +u, {k} proc.", "cygearman", "batch-u",
                      n, procs=k, base="ceiling-c")]
    elif workload == "drain":
        d = dict(base="drain-c")
        vs = [Variant("drain-c", "libgearman worker_work", "libgearman", "drain", n),
              Variant("drain-cyg-work", "cygearman GearmanWorker.work()", "cygearman", "drain-work",
                      n, **d),
              Variant("drain-cyg-serve", "cygearman GearmanWorker.serve()", "cygearman",
                      "drain-serve", n, **d),
              Variant("drain-cyg-grab", "cygearman grabJob()+sendComplete()", "cygearman",
                      "drain-grab", n, **d),
              Variant("drain-cyg-aio", "cygearman AsyncGearmanWorker", "cygearman", "drain-aio",
                      n, **d)]
    elif workload == "payload":
        vs = []
        for mib in cfg.payload_sizes:
            size = mib * 1024 * 1024
            trips = max(1, PAYLOAD_MIB_PER_MEASUREMENT // mib) if not cfg.quick else 1
            vs += [Variant(f"cyg-{mib}m", f"cygearman doNormal {mib} MiB", "cygearman", "payload",
                           trips, base=f"c-{mib}m", size=size),
                   Variant(f"c-{mib}m", f"libgearman do {mib} MiB", "libgearman", "payload", 1,
                           size=size)]
    elif workload == "memory":
        flat = cfg.memory_flat_size // MEMORY_FLAT_ROUND * MEMORY_FLAT_ROUND
        k = flat // MEMORY_FLAT_ROUND
        vs = [Variant("mem-tasks", f"cygearman {n} x addTaskBackground", "cygearman", "mem-tasks", n),
              Variant("mem-c-tasks", f"libgearman {n} x add_task_background", "libgearman",
                      "mem-tasks", n),
              Variant("mem-batch", f"cygearman submit_batch of {n}", "cygearman", "mem-batch", n),
              Variant("mem-flat-batch", f"cygearman submit_batch {k} x {MEMORY_FLAT_ROUND}",
                      "cygearman", "mem-flat-batch", flat, rounds=k),
              Variant("mem-flat-tasks", f"cygearman runTasks {k} x {MEMORY_FLAT_ROUND}",
                      "cygearman", "mem-flat-tasks", flat, rounds=k)]
    else:
        raise ValueError(workload)
    return [v for v in vs if v.client in cfg.clients]


# --- processes -----------------------------------------------------------------------------------


def _child_setup(cpus: Optional[Sequence[int]]) -> Callable[[], None]:
    """What each child runs before exec: die with this orchestrator (Linux), pin to ``cpus``."""

    def setup() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except Exception:  # not Linux: the finally-blocks and signal handlers still clean up
            pass
        if cpus:
            os.sched_setaffinity(0, cpus)

    return setup


class Processes:
    """Every process this run started, so that each one is ended (by its pid) on any exit.

    Children get their own session, so a Ctrl-C reaches only the orchestrator,
    which then stops them in order; ``PR_SET_PDEATHSIG`` covers a killed
    orchestrator.
    """

    def __init__(self) -> None:
        self._live: List[subprocess.Popen[bytes]] = []

    def spawn(self, argv: Sequence[str], env: Optional[Dict[str, str]] = None,
              cpus: Optional[Sequence[int]] = None, **kw: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session, stdin closed, pinned to ``cpus`` if given; remember it."""
        p = subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_child_setup(cpus) if sys.platform.startswith("linux") else None,
            **kw,
        )
        self._live.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes], grace: float = 2.0) -> None:
        """SIGTERM ``p``, SIGKILL it after ``grace`` seconds, reap it."""
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()
        if p in self._live:
            self._live.remove(p)

    def stop_all(self) -> None:
        """Stop every process still remembered, newest first."""
        for p in reversed(list(self._live)):
            self.stop(p, grace=1.0)


PROCS = Processes()


def _on_signal(signum: int, frame: Any) -> None:
    """Treat SIGTERM/SIGHUP as Ctrl-C: stop the children, report what was measured."""
    raise KeyboardInterrupt(f"signal {signum}")


# --- gearmand and the worker ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gearmand_argv(port: object, tmp: Path) -> List[str]:
    """The gearmand command of every measurement (loopback only, no log, no config, big hash)."""
    return [
        "gearmand",
        "--listen=127.0.0.1",
        f"--port={port}",
        "--log-file=none",
        "--config-file=/dev/null",
        f"--pid-file={tmp / f'gearmand-{port}.pid'}",
        "--hashtable-buckets=1000003",
    ]


def _wait_connectable(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Return once 127.0.0.1:port accepts a connection; raise if ``proc`` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gearmand exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"gearmand not listening on {port} after {timeout} s") from None
            time.sleep(0.02)


def start_gearmand(tmp: Path, cpus: Optional[Sequence[int]]) -> tuple[subprocess.Popen[bytes], int]:
    """Start a fresh gearmand on a free loopback port; retry on a lost port race."""
    last: Optional[Exception] = None
    for _ in range(5):
        port = free_port()
        p = PROCS.spawn(gearmand_argv(port, tmp), cpus=cpus,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_connectable(port, p, timeout=10.0)
            return p, port
        except RuntimeError as e:
            last = e
            PROCS.stop(p)
    raise RuntimeError(f"could not start gearmand: {last}")


def admin_status(port: int) -> Dict[str, List[int]]:
    """gearmand's admin ``status``: function -> [queued, running, available workers]."""
    out: Dict[str, List[int]] = {}
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as s:
        s.sendall(b"status\n")
        buf = b""
        while not buf.endswith(b".\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    for line in buf.decode(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            out[parts[0]] = [int(x) for x in parts[1:]]
    return out


def start_worker(argv: Sequence[str], port: int, fn: str, cpus: Optional[Sequence[int]],
                 env: Optional[Dict[str, str]] = None) -> subprocess.Popen[bytes]:
    """Start an echo worker (``argv``) and wait until gearmand lists it for ``fn``."""
    p = PROCS.spawn(argv, cpus=cpus, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline:
        if p.poll() is not None:
            err = p.stderr.read().decode(errors="replace") if p.stderr else ""
            raise RuntimeError(f"worker {argv[0]} exited with {p.returncode}: {err.strip()[-800:]}")
        if admin_status(port).get(fn, [0, 0, 0])[2] >= 1:
            return p
        time.sleep(0.02)
    PROCS.stop(p)
    raise RuntimeError(f"worker {argv[0]} did not register within 15 s")


def c_worker_argv(port: int, fn: str) -> List[str]:
    """The libgearman echo worker (benchmarks/c/gmbench.c) of the "normal" workload;
    PHP's (also libgearman) if the C program could not be built."""
    if not C_AVAILABLE[0]:
        return ["php", str(PHP_DIR / "worker.php"), str(port), fn]
    return [str(C_BINARY), "worker", str(port), "0", "0", "0", fn]


#: whether benchmarks/c/gmbench.c was built (main() clears it if not)
C_AVAILABLE = [True]


def cyg_worker_argv(port: int, fn: str) -> tuple[List[str], Dict[str, str]]:
    """The cygearman echo worker of the "payload" workload, with the raised max_packet_size."""
    env = dict(os.environ, PYTHONPATH=str(REPO), BENCH_MAX_PACKET_SIZE=str(payload_max_packet()))
    return [sys.executable, str(PYCLIENTS), "cygearman", "worker", str(port), "0", "0", "0", fn], env


def payload_max_packet() -> int:
    """max_packet_size of the payload workload's cygearman client and worker: the default,
    or the largest payload if it is bigger (the limit bounds the payload argument)."""
    return PAYLOAD_MAX_PACKET[0]


def payload_limit_note() -> str:
    """What the report says about the payload workload's max_packet_size."""
    mps = payload_max_packet()
    if mps <= DEFAULT_MAX_PACKET:
        return f"cygearman's client and echo worker run with the default max_packet_size ({mps >> 20} MiB)"
    return (f"cygearman's client and echo worker run with max_packet_size={mps} ({mps >> 20} MiB), "
            f"not the default {DEFAULT_MAX_PACKET >> 20} MiB, to pass the largest payload asked for")


#: set by main(): max_packet_size of the payload workload (a one-element list: module state)
PAYLOAD_MAX_PACKET = [DEFAULT_MAX_PACKET]


def ensure_c_client() -> Optional[str]:
    """Compile benchmarks/c/gmbench.c against libgearman if the binary is missing or older
    than the source (idempotent); return an error text or None."""
    try:
        if C_BINARY.exists() and C_BINARY.stat().st_mtime >= C_SOURCE.stat().st_mtime:
            return None
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not cc:
            return "no C compiler (cc) found"
        C_BINARY.parent.mkdir(exist_ok=True)
        tmp = C_BINARY.with_suffix(".tmp")
        argv = [cc, "-O2", "-Wall", "-o", str(tmp), str(C_SOURCE), "-lgearman"]
        print("compiling " + shlex.join(argv), file=sys.stderr, flush=True)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            return (f"{shlex.join(argv)} failed (Debian: libgearman-dev): "
                    f"{(r.stderr or r.stdout).strip()[-1000:]}")
        tmp.replace(C_BINARY)
        return None
    except (OSError, subprocess.SubprocessError) as e:
        return f"{type(e).__name__}: {e}"


# --- clients --------------------------------------------------------------------------------------


@dataclass
class Config:
    """What to run, parsed from the command line."""

    rounds: int
    sizes: Dict[str, int]
    warmup: int
    payload_bytes: int
    clients: List[str]
    workloads: List[str]
    timeout: float
    venv: Path
    #: CPUs for the measuring client, and for gearmand and the worker (None: not pinned)
    client_cpus: Optional[List[int]] = None
    server_cpus: Optional[List[int]] = None
    #: pygearman's N in "pipelined"; rounds of the split run in "rounds"; processes in "ceiling"
    pygearman_pipe_size: int = PYGEARMAN_PIPE_SIZE[0]
    split_rounds: int = SPLIT_ROUNDS
    ceiling_procs: int = CEILING_PROCS
    aiogear_pipe_size: int = AIOGEAR_PIPE_SIZE[0]
    #: "payload" sizes in MiB; "memory": jobs of the flat run; rounds per slow workload
    payload_sizes: List[int] = field(default_factory=lambda: [1, 16, 64])
    memory_flat_size: int = MEMORY_FLAT_SIZE[0]
    workload_rounds: Dict[str, int] = field(default_factory=dict)
    quick: bool = False


def peer_python(venv: Path) -> Path:
    """The peers' venv interpreter."""
    return venv / "bin" / "python"


def ensure_peers_venv(venv: Path) -> Dict[str, str]:
    """Create ``venv`` and install each of PEER_PACKAGES that it lacks, one at a time.

    Returns {distribution: error text} for those that could not be installed
    (or imported): each is skipped on its own, and the report says why.
    """
    py = peer_python(venv)
    errors: Dict[str, str] = {}

    def have(spec: str) -> bool:
        name, _, want = spec.partition("==")
        probe = (f"import importlib.metadata as m; v = m.version({name!r}); "
                 f"assert {want!r} in ('', v), v; import {IMPORT_NAMES.get(name, name)}")
        r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, timeout=120)
        return r.returncode == 0

    try:
        if not py.exists():
            print(f"setting up {venv} ...", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)],
                           check=True, capture_output=True, timeout=300)
        for spec in PEER_PACKAGES:
            name = spec.partition("==")[0]
            if have(spec):
                continue
            print(f"pip install {spec} into {venv} ...", file=sys.stderr, flush=True)
            r = subprocess.run([str(py), "-m", "pip", "install", "-q", spec],
                               capture_output=True, text=True, timeout=900)
            if r.returncode != 0:
                errors[name] = f"pip install {spec} failed: {r.stderr.strip()[-1500:]}"
            elif not have(spec):
                errors[name] = f"{spec} installed but does not import in {venv}"
    except (OSError, subprocess.SubprocessError) as e:
        for spec in PEER_PACKAGES:
            errors.setdefault(spec.partition("==")[0], f"{type(e).__name__}: {e}")
    return errors


#: import name of a peer distribution where it differs from the distribution's
IMPORT_NAMES = {"pygearman": "gearman"}


def client_command(client: str, workload: str, port: int, cfg: Config, n: Optional[int] = None,
                   fn: Optional[str] = None, extra: Sequence[str] = (),
                   size: Optional[int] = None,
                   warmup: Optional[int] = None) -> tuple[List[str], Dict[str, str]]:
    """The argv and environment of one measuring client process.

    ``workload`` is the client's WORKLOAD argument (a pipelined variant's
    mode); ``n`` and ``fn`` default to the workload's; ``extra`` is ROUNDS,
    START_AT, PREFIX of the pipelined modes.
    """
    tail = [workload, str(port), str(cfg.sizes[workload] if n is None else n),
            str(cfg.warmup if warmup is None else warmup),
            str(cfg.payload_bytes if size is None or size < 0 else size), fn or FUNCTIONS[workload],
            *extra]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if client == "php":
        return ["php", str(PHP_DIR / "client.php"), *tail], env
    if client == "libgearman":
        return [str(C_BINARY), *tail], env
    if client == "floor":
        # gmbench's hand-written blocking-socket client: the round-trip floor
        return [str(C_BINARY), "raw-" + workload, *tail[1:]], env
    if client == "pyfloor":
        # this interpreter, nothing of this repository imported
        return [sys.executable, str(PYCLIENTS), client, *tail], env
    if client == "cygearman":
        env["PYTHONPATH"] = str(REPO)  # this checkout, with its in-place built core
        if workload == "payload":
            env["BENCH_MAX_PACKET_SIZE"] = str(payload_max_packet())
        return [sys.executable, str(PYCLIENTS), client, *tail], env
    # pygearman, gear, aiogear: the peers' venv, nothing of this repository on the path
    return [str(peer_python(cfg.venv)), str(PYCLIENTS), client, *tail], env


@dataclass
class Result:
    """One measurement: a client process's JSON line, or why there is none."""

    client: str
    workload: str
    round: int
    ops: int = 0
    seconds: float = 0.0
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    version: str = ""
    module: str = ""
    error: str = ""
    #: pipelined workloads: the variant's key, its client processes, the
    #: runTasks()-only part (0 where there is none), gearmand's CPU seconds over
    #: the whole client run (warmup included), and the latest start past START_AT
    variant: str = ""
    procs: int = 1
    run_seconds: float = 0.0
    run_cpu_user: float = 0.0
    run_cpu_sys: float = 0.0
    server_cpu: float = 0.0
    late: float = 0.0
    #: any other numbers the client reported (payload RSS, memory per task, ...)
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def ops_per_s(self) -> float:
        """Operations per second of the timed loop (0 on error)."""
        return self.ops / self.seconds if self.seconds > 0 and not self.error else 0.0

    @property
    def user_us_per_op(self) -> float:
        """Client user CPU time per operation, in microseconds (0 on error)."""
        return 1e6 * self.cpu_user / self.ops if self.ops and not self.error else 0.0

    @property
    def sys_us_per_op(self) -> float:
        """Client system (kernel) CPU time per operation, in microseconds (0 on error)."""
        return 1e6 * self.cpu_sys / self.ops if self.ops and not self.error else 0.0

    @property
    def cpu_us_per_op(self) -> float:
        """Client CPU (user + sys) per operation, in microseconds (0 on error)."""
        return self.user_us_per_op + self.sys_us_per_op

    @property
    def run_ops_per_s(self) -> float:
        """Jobs per second of the runTasks() calls alone (0 where not measured)."""
        return self.ops / self.run_seconds if self.run_seconds > 0 and not self.error else 0.0

    @property
    def run_cpu_us_per_op(self) -> float:
        """Client CPU (user + sys) per job in the runTasks() calls alone."""
        return (1e6 * (self.run_cpu_user + self.run_cpu_sys) / self.ops
                if self.run_seconds > 0 and self.ops and not self.error else 0.0)

    @property
    def server_us_per_op(self) -> float:
        """gearmand's CPU per timed job (its work on connections and warmup jobs included)."""
        return 1e6 * self.server_cpu / self.ops if self.ops and not self.error else 0.0


def measure(client: str, workload: str, rnd: int, cfg: Config, tmp: Path) -> Result:
    """Start gearmand (and the worker for "normal"), run one client process, stop them all."""
    res = Result(client, workload, rnd)
    started: List[subprocess.Popen[bytes]] = []
    try:
        gd, port = start_gearmand(tmp, cfg.server_cpus)
        started.append(gd)
        if workload == "normal":
            started.append(start_worker(c_worker_argv(port, FUNCTIONS[workload]), port,
                                        FUNCTIONS[workload], cfg.server_cpus))
        argv, env = client_command(client, workload, port, cfg)
        p = PROCS.spawn(argv, env=env, cpus=cfg.client_cpus,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(p)
        try:
            out, err = p.communicate(timeout=cfg.timeout)
        except subprocess.TimeoutExpired:
            res.error = f"timed out after {cfg.timeout:g} s"
            return res
        if p.returncode != 0:
            res.error = f"exit {p.returncode}: {err.decode(errors='replace').strip()[-800:]}"
            return res
        lines = out.decode(errors="replace").strip().splitlines()
        line = json.loads(lines[-1]) if lines else {}
        res.ops, res.seconds = int(line["ops"]), float(line["seconds"])
        res.cpu_user, res.cpu_sys = float(line["cpu_user"]), float(line["cpu_sys"])
        res.version, res.module = str(line.get("version", "")), str(line.get("module", ""))
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        res.error = f"{type(e).__name__}: {e}"
    finally:
        for proc in reversed(started):
            PROCS.stop(proc)
    return res


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads); 0 if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def measure_pipe(workload: str, v: Variant, rnd: int, cfg: Config, tmp: Path) -> Result:
    """Start gearmand, run ``v.procs`` client processes of one pipelined variant, stop them all.

    The clients wait for a common START_AT before their timed section when
    there are several; the result's ``seconds`` then spans the earliest start
    to the latest end, and ``ops`` and the CPU times are their sums.  After the
    clients exit, gearmand's admin ``status`` must show every job queued
    (N per process plus the warmup jobs), or the result is an error.
    """
    res = Result(v.client, workload, rnd, variant=v.key, procs=v.procs)
    started: List[subprocess.Popen[bytes]] = []
    fn = FUNCTIONS[workload]
    warmup = cfg.warmup if workload not in ("payload", "memory") else 0
    try:
        gd, port = start_gearmand(tmp, cfg.server_cpus)
        started.append(gd)
        if workload == "drain":
            fill_queue(port, fn, v.n + warmup, cfg)
        elif workload == "payload":
            argv, env = cyg_worker_argv(port, fn)
            started.append(start_worker(argv, port, fn, cfg.server_cpus, env=env))
        cpu0 = proc_cpu(gd.pid)
        # several processes: start the clock together, after every one has connected and warmed up
        start_at = time.time() + 1.0 + 0.25 * v.procs if v.procs > 1 else 0.0
        clients = []
        for k in range(v.procs):
            prefix = f"u{k}_" if v.procs > 1 else "u"
            argv, env = client_command(v.client, v.mode, port, cfg, n=v.n, fn=fn,
                                       extra=[str(v.rounds), repr(start_at), prefix],
                                       size=v.size, warmup=warmup)
            p = PROCS.spawn(argv, env=env, cpus=cfg.client_cpus,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            started.append(p)
            clients.append(p)
        deadline = time.monotonic() + cfg.timeout
        lines = []
        for p in clients:
            try:
                out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                res.error = f"timed out after {cfg.timeout:g} s"
                return res
            if p.returncode != 0:
                res.error = f"exit {p.returncode}: {err.decode(errors='replace').strip()[-800:]}"
                return res
            text = out.decode(errors="replace").strip().splitlines()
            lines.append(json.loads(text[-1]) if text else {})
        res.server_cpu = proc_cpu(gd.pid) - cpu0
        res.ops = sum(int(x["ops"]) for x in lines)
        if v.procs > 1:
            res.seconds = max(float(x["t_end"]) for x in lines) - min(float(x["t_start"]) for x in lines)
        else:
            res.seconds = float(lines[0]["seconds"])
        for attr in ("cpu_user", "cpu_sys", "run_seconds", "run_cpu_user", "run_cpu_sys"):
            setattr(res, attr, sum(float(x.get(attr, 0.0)) for x in lines))
        res.late = max(float(x.get("late", 0.0)) for x in lines)
        res.version, res.module = str(lines[0].get("version", "")), str(lines[0].get("module", ""))
        res.extra = {k: x for k, x in lines[0].items() if k not in STANDARD_KEYS}
        queued = admin_status(port).get(fn, [0])[0]
        if workload in ("pipelined", "rounds", "ceiling"):
            expected = res.ops + warmup * v.procs
            if queued != expected:
                res.error = f"gearmand has {queued} jobs queued, expected {expected}"
        elif workload == "drain" and queued != 0:
            res.error = f"gearmand still has {queued} jobs queued after the drain"
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        res.error = f"{type(e).__name__}: {e}"
    finally:
        for proc in reversed(started):
            PROCS.stop(proc)
    return res


#: keys of a client's JSON line that Result has fields for; the others go to Result.extra
STANDARD_KEYS = {"client", "workload", "ops", "pid", "seconds", "cpu_user", "cpu_sys", "version",
                 "module", "run_seconds", "run_cpu_user", "run_cpu_sys", "rounds", "t_start",
                 "t_end", "late"}


def fill_queue(port: int, fn: str, n: int, cfg: Config) -> None:
    """Queue ``n`` background jobs of ``fn`` (untimed, for "drain"): libgearman run_tasks."""
    argv = [str(C_BINARY), "tasks", str(port), str(n), "0", str(cfg.payload_bytes), fn]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=cfg.timeout)
    if r.returncode != 0:
        raise RuntimeError(f"filling the queue failed: {r.stderr.strip()[-500:]}")
    queued = admin_status(port).get(fn, [0])[0]
    if queued != n:
        raise RuntimeError(f"filling the queue: gearmand has {queued} jobs queued, expected {n}")


# --- the drain table: how close one worker process gets to gearmand's drain ceiling -------------

#: (label, client, worker mode, processes) of the drain table, in the order they run
DRAIN_ROWS = ([("ceiling: 8 libgearman workers at once", "libgearman", "drain", 8),
               ("libgearman worker (1 process)", "libgearman", "drain", 1)]
              + [(f"cygearman serve(), prefetch={k}", "cygearman", f"drain-serve-p{k}", 1)
                 for k in (1, 2, 4, 8, 16)]
              + [(f"cygearman asyncio, concurrency={k}", "cygearman", f"drain-aio-c{k}", 1)
                 for k in (1, 8)]
              + [("cygearman asyncio, concurrency=8, `async def`", "cygearman", "drain-aioasync-c8", 1)])
DRAIN_SIZES = (50000, 200000)


def measure_drain(label: str, client: str, mode: str, procs: int, n: int, cfg: Config,
                  tmp: Path) -> Dict[str, Any]:
    """One row of the drain table: a fresh gearmand with ``n`` (+ warmup) jobs queued,
    drained by ``procs`` worker processes at once (each takes n/procs after its warmup).

    jobs/s = n ÷ the longest timed section of the processes (several processes
    start within milliseconds of each other; the longest one spans nearly the
    whole drain, so this slightly overstates a multi-process ceiling, which only
    makes the single-process fractions below conservative); CPU = the worker
    processes' user + sys per job; gearmand's CPU per job over the whole run.
    """
    fn = FUNCTIONS["drain"]
    per = n // procs
    row: Dict[str, Any] = {"label": label, "n": per * procs, "procs": procs, "error": ""}
    started: List[subprocess.Popen[bytes]] = []
    try:
        gd, port = start_gearmand(tmp, cfg.server_cpus)
        started.append(gd)
        fill_queue(port, fn, (per + cfg.warmup) * procs, cfg)
        cpu0 = proc_cpu(gd.pid)
        workers = []
        for _ in range(procs):
            argv, env = client_command(client, "drain" if client == "libgearman" else mode, port, cfg,
                                       n=per, fn=fn, warmup=cfg.warmup)
            p = PROCS.spawn(argv, env=env, cpus=cfg.client_cpus, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
            started.append(p)
            workers.append(p)
        lines = []
        deadline = time.monotonic() + cfg.timeout
        for p in workers:
            out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            if p.returncode != 0:
                raise RuntimeError(f"exit {p.returncode}: {err.decode(errors='replace').strip()[-300:]}")
            lines.append(json.loads(out.decode().strip().splitlines()[-1]))
        row["seconds"] = max(float(x["seconds"]) for x in lines)
        row["jobs_s"] = row["n"] / row["seconds"]
        row["cpu_us"] = 1e6 * sum(float(x["cpu_user"]) + float(x["cpu_sys"]) for x in lines) / row["n"]
        row["server_us"] = 1e6 * (proc_cpu(gd.pid) - cpu0) / row["n"]
        # how often the worker slept and was woken, per job (cygearman's workers report it)
        row["wakeups"] = (sum(int(x["wakeups"]) for x in lines) / row["n"]
                          if all("wakeups" in x for x in lines) else None)
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
        row["error"] = f"{type(e).__name__}: {e}"
    finally:
        for proc in reversed(started):
            PROCS.stop(proc)
    return row


def drain_table(cfg: Config, sizes: Sequence[int], rounds: int, tmp: Path,
                only: Sequence[str] = ()) -> Tuple[str, List[Dict[str, Any]]]:
    """Run every drain row for every size, ``rounds`` times; the Markdown table (medians)
    and the chart's bars (each row's jobs/s ÷ the median ceiling of its size: median,
    min, max)."""
    results: Dict[tuple, List[Dict[str, Any]]] = {}
    rows = [r for r in DRAIN_ROWS if r is DRAIN_ROWS[0] or not only or any(o in r[0] for o in only)]
    for rnd in range(1, rounds + 1):
        for n in sizes:
            for label, client, mode, procs in rows:
                if client not in cfg.clients:
                    continue
                r = measure_drain(label, client, mode, procs, n, cfg, tmp)
                results.setdefault((n, label), []).append(r)
                shown = r["error"][:100] or (f"{r['jobs_s']:,.0f} jobs/s, {r['cpu_us']:.2f} us CPU/job"
                                             + (f", {r['wakeups']:.3f} wake-ups/job"
                                                if r.get("wakeups") is not None else ""))
                print(f"  round {rnd}/{rounds}  drain N={n:<7} {label:<40} {shown}",
                      file=sys.stderr, flush=True)
    out = ["| N | worker | jobs/s (median, min-max) | worker CPU us/job | worker wake-ups/job "
           "| gearmand CPU us/job | of ceiling |", "|---|---|---|---|---|---|---|"]
    bars: List[Dict[str, Any]] = []
    for n in sizes:
        ok = {label: [r for r in rs if not r["error"]] for (m, label), rs in results.items() if m == n}
        ceil = ok.get(DRAIN_ROWS[0][0]) or []
        ceiling = statistics.median(r["jobs_s"] for r in ceil) if ceil else None
        for label, _client, _mode, _procs in rows:
            rs = ok.get(label)
            if not rs:
                errs = [r["error"] for r in results.get((n, label), []) if r["error"]]
                if errs:
                    out.append(f"| {n:,} | {label} | failed: {errs[0][:80]} | | | | |")
                continue
            js = [r["jobs_s"] for r in rs]
            med = statistics.median(js)
            frac = f"{100 * med / ceiling:.0f}%" if ceiling else "—"
            if ceiling and label != DRAIN_ROWS[0][0]:
                bars.append({"group": f"N={n:,}", "label": label.replace("`", ""),
                             "median": med / ceiling, "min": min(js) / ceiling,
                             "max": max(js) / ceiling})
            wk = [r["wakeups"] for r in rs if r.get("wakeups") is not None]
            wake = f"{statistics.median(wk):.3f}" if wk else "—"
            out.append(f"| {n:,} | {label} | {med:,.0f} ({min(js):,.0f}-{max(js):,.0f}) | "
                       f"{statistics.median(r['cpu_us'] for r in rs):.1f} | {wake} | "
                       f"{statistics.median(r['server_us'] for r in rs):.1f} | {frac} |")
    return "\n".join(out), bars


# --- report ---------------------------------------------------------------------------------------


def _run_text(argv: Sequence[str]) -> str:
    """First line of a short command's output, or "?" if it fails."""
    try:
        r = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def _loadavg() -> Optional[List[float]]:
    """The 1, 5 and 15 minute load averages, rounded, where the OS has them."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info() -> Dict[str, Any]:
    """Facts that make a number comparable: interpreter, CPUs, load, versions, commit."""
    cpu_model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = _run_text(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    # only what is measured: the package, its sources and its build
    dirty = _run_text(["git", "-C", str(REPO), "status", "--porcelain", "--",
                       "gearman", "src", "setup.py", "pyproject.toml"])
    core = sorted(REPO.glob("gearman/_core*.so"))
    stale = bool(core) and any(src.stat().st_mtime > core[0].stat().st_mtime
                               for src in (REPO / "src").rglob("*.p*"))
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                        else os.cpu_count()),
        "cpu_model": cpu_model,
        "loadavg_at_start": _loadavg(),
        "gearmand": _run_text(["gearmand", "--version"]),
        "php": _run_text(["php", "-r", "echo PHP_VERSION, ' php-gearman ', phpversion('gearman'),"
                                       " ' libgearman ', gearman_version();"]),
        "cygearman_commit": commit + (" (+ uncommitted changes to the library)" if dirty not in ("", "?") else ""),
        "cygearman_core": str(core[0]) if core else "missing",
        "cygearman_core_stale": stale,
    }


def summarize(results: List[Result], cfg: Config) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """workload -> client -> ops/s {median, min, max, samples, errors} and ratios.

    ``ratio`` is cygearman ÷ this client and ``vs_lib`` this client ÷
    libgearman, each computed round by round (the two ran within seconds of
    each other, so a slow spell of the machine hits both) and then summarized
    as median, min and max: steadier than a ratio of medians when the machine
    is shared.
    """
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    clients = [c for c in cfg.clients if c in SEQ_CLIENTS]
    for w in cfg.workloads:
        if w not in SEQ_WORKLOADS:
            continue
        out[w] = {}
        by_round: Dict[str, Dict[int, float]] = {}
        for c in clients:
            mine = [r for r in results if r.workload == w and r.client == c]
            good = [r.ops_per_s for r in mine if not r.error]
            user = [r.user_us_per_op for r in mine if not r.error]
            kernel = [r.sys_us_per_op for r in mine if not r.error]
            by_round[c] = {r.round: r.ops_per_s for r in mine if not r.error}
            out[w][c] = dict(_stats(good),
                             user_us_per_op=statistics.median(user) if user else None,
                             sys_us_per_op=statistics.median(kernel) if kernel else None,
                             errors=[r.error for r in mine if r.error],
                             version=next((r.version for r in mine if r.version), ""))
        ours = by_round.get("cygearman", {})
        lib = by_round.get("libgearman", {})
        for c, s in out[w].items():
            s["ratio"] = _stats([ours[k] / v for k, v in by_round[c].items() if k in ours and v > 0])
            s["vs_lib"] = _stats([v / lib[k] for k, v in by_round[c].items() if lib.get(k)])
    return out


def _stats(xs: List[float]) -> Dict[str, Any]:
    """{median, min, max, samples} of ``xs`` (None for an empty list)."""
    return {"median": statistics.median(xs) if xs else None, "min": min(xs) if xs else None,
            "max": max(xs) if xs else None, "samples": xs}


def _derived(r: Result) -> Dict[str, float]:
    """Per-measurement figures computed from a result's extra numbers (payload workload)."""
    x = r.extra
    out: Dict[str, float] = {}
    size = float(x.get("bytes") or 0)
    if size and r.ops and r.seconds > 0:
        mib = size / 1048576.0
        out["ms_per_mib"] = 1e3 * r.seconds / r.ops / mib
        out["cpu_ms_per_mib"] = 1e3 * (r.cpu_user + r.cpu_sys) / r.ops / mib
        if x.get("rss_peak_kb", -1) > 0 and x.get("rss_base_kb", -1) > 0:
            # what the process held at its peak beyond the payload it sends, in payload sizes
            # (the one result alive at a time is 1.0 of it)
            out["peak_over_base_x"] = 1024.0 * (x["rss_peak_kb"] - x["rss_base_kb"]) / size
            out["peak_mib"] = x["rss_peak_kb"] / 1024.0
    return out


def summarize_pipe(results: List[Result], cfg: Config) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """workload -> variant key -> jobs/s, client CPU/job, gearmand CPU/job, per-round ratios.

    Every ratio is taken within a round and then summarized (see ``summarize``):
    ``ratio`` is this variant's jobs/s ÷ its libgearman variant (``Variant.base``),
    ``ratio_php`` ÷ its PHP variant; ``of_ceiling`` is jobs/s ÷ the "ceiling"
    measurement of that round; in "rounds", ``cpu_growth`` is per-job client CPU
    of one round ÷ that of the split run of the same client.  ``extra`` holds
    the medians (min, max) of the numbers a client reported beside its timing
    (memory, RSS) and ``derived`` those computed from them (payload per MiB).
    """
    # the server's ceiling in a round: the best of that round's "ceiling" measurements
    ceiling: Dict[int, float] = {}
    for r in results:
        if r.workload == "ceiling" and not r.error and r.ops_per_s > 0:
            ceiling[r.round] = max(ceiling.get(r.round, 0.0), r.ops_per_s)
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for w in cfg.workloads:
        if w not in PIPE_WORKLOADS:
            continue
        out[w] = {}
        rows = variants(w, cfg)
        mine = {v.key: [r for r in results if r.workload == w and r.variant == v.key] for v in rows}
        rate = {k: {r.round: r.ops_per_s for r in rs if not r.error} for k, rs in mine.items()}
        cpu = {k: {r.round: r.cpu_us_per_op for r in rs if not r.error} for k, rs in mine.items()}
        for v in rows:
            good = [r for r in mine[v.key] if not r.error]
            s: Dict[str, Any] = dict(_stats([r.ops_per_s for r in good]))
            s.update(label=v.label, client=v.client, mode=v.mode, n=v.n, rounds=v.rounds,
                     procs=v.procs, size=v.size,
                     cpu_us=_stats([r.cpu_us_per_op for r in good]),
                     user_us_per_op=statistics.median([r.user_us_per_op for r in good]) if good else None,
                     sys_us_per_op=statistics.median([r.sys_us_per_op for r in good]) if good else None,
                     server_us=_stats([r.server_us_per_op for r in good if r.server_cpu > 0]),
                     server_busy=_stats([r.server_cpu / r.seconds for r in good
                                         if r.server_cpu > 0 and r.seconds > 0]),
                     errors=[r.error for r in mine[v.key] if r.error],
                     version=next((r.version for r in mine[v.key] if r.version), ""),
                     late=max((r.late for r in good), default=0.0))
            numeric = sorted({k for r in good for k, x in r.extra.items()
                              if isinstance(x, (int, float)) and not isinstance(x, bool)})
            s["extra"] = {k: _stats([float(r.extra[k]) for r in good if k in r.extra]) for k in numeric}
            samples = [r.extra["rss_samples_kb"] for r in good if "rss_samples_kb" in r.extra]
            if samples:
                s["rss_samples_kb"] = samples[-1]
            derived = [_derived(r) for r in good]
            s["derived"] = {k: _stats([d[k] for d in derived if k in d])
                            for k in sorted({k for d in derived for k in d})}
            if v.procs == 1 and any(r.run_seconds > 0 for r in good):
                s["run"] = {"jobs_s": _stats([r.run_ops_per_s for r in good]),
                            "cpu_us": _stats([r.run_cpu_us_per_op for r in good])}
            for name, other in (("ratio", v.base), ("ratio_php", v.php)):
                base = rate.get(other, {}) if other else {}
                if base:
                    s[name] = dict(_stats([x / base[k] for k, x in rate[v.key].items() if base.get(k)]),
                                   vs=other)
            if w in ("pipelined", "ceiling") and ceiling:
                s["of_ceiling"] = _stats([x / ceiling[k] for k, x in rate[v.key].items() if k in ceiling])
            if w == "rounds" and v.rounds == 1:
                split = next((u.key for u in rows if u.client == v.client and u.rounds > 1), None)
                if split:
                    s["cpu_growth"] = dict(_stats([x / cpu[split][k] for k, x in cpu[v.key].items()
                                                   if cpu[split].get(k)]), vs=split)
            out[w][v.key] = s
    return out


def _fmt(x: Optional[float], spec: str = ",.0f") -> str:
    """Format a number, or an em dash for a missing one."""
    return "—" if x is None else format(x, spec)


def _ratio(r: Dict[str, Optional[float]]) -> str:
    """A paired ratio as ``1.23x (1.10-1.40)``."""
    if r.get("median") is None:
        return "—"
    return f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"


def _cpu(s: Dict[str, Any]) -> str:
    """Median client CPU per operation as ``user+sys`` microseconds."""
    if s["user_us_per_op"] is None:
        return "—"
    return f"{s['user_us_per_op']:.1f}+{s['sys_us_per_op']:.1f}"


def _spread(st: Optional[Dict[str, Any]], spec: str = ".1f", unit: str = "", scale: float = 1.0) -> str:
    """``median (min-max)`` of a ``_stats`` dict, or an em dash."""
    if not st or st.get("median") is None:
        return "—"
    m, lo, hi = (format(scale * st[k], spec) for k in ("median", "min", "max"))
    return f"{m}{unit} ({lo}-{hi})"


def _med(s: Dict[str, Any], group: str, key: str, spec: str = ".0f", scale: float = 1.0) -> str:
    """The median of ``s[group][key]`` formatted, or an em dash."""
    st = s.get(group, {}).get(key)
    if not st or st.get("median") is None:
        return "—"
    return format(scale * st["median"], spec)


def render_pipe(summary: Dict[str, Dict[str, Dict[str, Any]]], cfg: Config) -> str:
    """The pipelined and worker tables: one per workload, a row per variant (and its runTasks() part)."""
    lines: List[str] = []
    has_ceiling = "ceiling" in summary and any(s["median"] for s in summary["ceiling"].values())
    head = (f"{'variant':<39} {'N':>7} {'jobs/s median':>13} {'min':>8} {'max':>8}  "
            f"{'client CPU us/job':>18} {'user+sys':>9}  {'gearmand':>13}  ")
    for w, per in summary.items():
        if not per or w in ("payload", "memory"):
            continue
        extra = ""
        if w == "pipelined":
            extra = (f"{'÷ libgearman, per round':<24}{'÷ php':<20}"
                     + (f"{'of ceiling':<15}" if has_ceiling else ""))
        elif w == "ceiling":
            extra = f"{'÷ libgearman':<20}of ceiling"
        elif w == "drain":
            extra = "÷ libgearman, per round"
        elif w == "rounds":
            extra = "1 round ÷ split, CPU/job"
        cpu_title = "worker CPU us/job" if w == "drain" else "client CPU us/job"
        lines += ["", f"{w}: {WORKLOAD_TITLES[w]}", head.replace("client CPU us/job", cpu_title) + extra,
                  f"{'':<39} {'':>7} {'':>13} {'':>8} {'':>8}  {'median (min-max)':>18} {'median':>9}"
                  f"  {'us/job, busy':>13}", "-" * (len(head) + len(extra))]
        for s in per.values():
            n = f"{s['n']}" if s["procs"] == 1 else f"{s['procs']}x{s['n']}"
            gd = (f"{s['server_us']['median']:.1f}, {100 * s['server_busy']['median']:.0f}%"
                  if s["server_us"]["median"] is not None else "—")
            cells = ""
            if w in ("pipelined", "ceiling", "drain"):
                width = 24 if w == "pipelined" else 20
                if "ratio" in s:
                    cells = f"{_spread(s['ratio'], '.2f', 'x'):<{width}}"
                else:
                    cells = f"{'(baseline)' if s['client'] == 'libgearman' else '—':<{width}}"
            if w == "pipelined":
                cells += f"{_spread(s.get('ratio_php'), '.2f', 'x'):<20}"
            if "of_ceiling" in s:
                cells += f"{_spread(s['of_ceiling'], '.0f', '%', 100.0)}"
            if "cpu_growth" in s:
                cells = _spread(s["cpu_growth"], ".2f", "x")
            note = f"  ({len(s['errors'])} failed: {s['errors'][0][:70]})" if s["errors"] else ""
            cpu_split = (f"{s['user_us_per_op']:.1f}+{s['sys_us_per_op']:.1f}"
                         if s["user_us_per_op"] is not None else "—")
            lines.append(f"{s['label']:<39} {n:>7} {_fmt(s['median']):>13} {_fmt(s['min']):>8} "
                         f"{_fmt(s['max']):>8}  {_spread(s['cpu_us']):>18} {cpu_split:>9}  {gd:>13}  "
                         f"{cells}{note}".rstrip())
            if "run" in s:
                r = s["run"]["jobs_s"]
                lines.append(f"{'  of which runTasks() alone':<39} {'':>7} {_fmt(r['median']):>13} "
                             f"{_fmt(r['min']):>8} {_fmt(r['max']):>8}  "
                             f"{_spread(s['run']['cpu_us']):>18}")
        if w == "pipelined":
            lines.append("÷ libgearman: jobs/s ÷ libgearman run_tasks (default unique) or libgearman "
                         "run_tasks +u (rows marked +u), within each round; ÷ php likewise"
                         + ("; of ceiling: jobs/s ÷ that round's ceiling (below)" if has_ceiling else ""))
            for key, what in (("pyg-multiple", "pygearman's submit_multiple_jobs costs more per job the "
                                               "more jobs it is given (about 31 us/job at 10,000 and 108 "
                                               "us/job at 100,000 on the development machine)"),
                              ("aiogear-gather", "aiogear matches each answer by scanning a list that "
                                                 "keeps every background job's never-resolved "
                                                 "WORK_COMPLETE future, so its cost per job grows with "
                                                 "the jobs submitted (quadratic)")):
                if key in per and per[key]["n"] != cfg.sizes["pipelined"]:
                    lines.append(f"{per[key]['label']} runs N={per[key]['n']}, not "
                                 f"{cfg.sizes['pipelined']}: {what}, so its per-job figures flatter it")
            if "gear" in cfg.clients:
                lines.append("gear: not measured here; its submitJob() waits for each JOB_CREATED "
                             "(no pipelined path), which is the \"background\" workload")
        if w == "ceiling":
            late = max((s["late"] for s in per.values()), default=0.0)
            lines.append("jobs/s = all processes' jobs ÷ (last end - first start); client CPU is "
                         "the processes' sum per job; latest start past the common start: "
                         f"{late * 1e3:.1f} ms")
            lines.append("the ceiling of a round is the higher of these rows in that round (a "
                         "client-bound row only understates it); \"of ceiling\" is per round")
        if w == "drain":
            lines.append(f"each worker takes {cfg.warmup} jobs untimed, then N timed; the queue is "
                         "filled beforehand by libgearman run_tasks; CPU is the worker process's")
    if any(w in summary for w in ("pipelined", "rounds", "ceiling", "drain")):
        lines += ["", "client CPU = user + sys CPU time of the client process(es) per job over the "
                      "timed section (getrusage);",
                  "gearmand = gearmand's CPU per job over the whole client run (/proc, clock ticks; "
                  "connections and warmup included), and that CPU ÷ the timed section "
                  "(100% = one core busy);",
                  "+u = caller-given uniques (u0, u1, ...); otherwise each library makes its own "
                  "(libgearman: a UUID per task)"]
    if summary.get("payload"):
        lines += render_payload(summary["payload"], cfg)
    if summary.get("memory"):
        lines += render_memory(summary["memory"], cfg)
    return "\n".join(lines)


def render_payload(per: Dict[str, Dict[str, Any]], cfg: Config) -> List[str]:
    """The payload table: time and CPU per MiB, peak RSS over the base, ratio to libgearman."""
    head = (f"{'variant':<30} {'trips':>5} {'ms/MiB median':>15} {'min':>8} {'max':>8}  "
            f"{'client CPU ms/MiB':>17}  {'peak RSS':>9}  {'peak - base':>12}  ÷ libgearman (speed)")
    lines = ["", f"payload: {WORKLOAD_TITLES['payload']}", head, "-" * len(head)]
    for _key, s in per.items():
        d = s["derived"]
        note = f"  ({len(s['errors'])} failed: {s['errors'][0][:70]})" if s["errors"] else ""
        ms = d.get("ms_per_mib", {})
        lines.append(f"{s['label']:<30} {s['n']:>5} {_med(s, 'derived', 'ms_per_mib', '.1f'):>15} "
                     f"{_fmt(ms.get('min'), '.1f'):>8} {_fmt(ms.get('max'), '.1f'):>8}  "
                     f"{_med(s, 'derived', 'cpu_ms_per_mib', '.2f'):>17}  "
                     f"{_med(s, 'derived', 'peak_mib', '.0f') + ' MiB':>9}  "
                     f"{_med(s, 'derived', 'peak_over_base_x', '.2f') + ' x':>12}  "
                     f"{'(baseline)' if s['client'] == 'libgearman' else _spread(s.get('ratio'), '.2f', 'x')}{note}")
    lines += ["ms/MiB = wall time of one round trip ÷ payload MiB (linear in size: the same at every "
              "size); client CPU likewise; peak RSS = the client process's VmHWM; peak - base = "
              "(VmHWM - VmRSS with the payload allocated, before the first call) ÷ payload size: the "
              "one result alive at a time is 1.0 of it, anything above is the library's own copies "
              "and buffers",
              payload_limit_note(),
              "libgearman sets SO_SNDBUF/SO_RCVBUF to 32 KiB on its sockets (strace: setsockopt "
              "SO_SNDBUF [32768], SO_RCVBUF [32768]); its large transfers stall (40 ms gaps) "
              "and it gets one round trip per size"]
    return lines


def render_memory(per: Dict[str, Dict[str, Any]], cfg: Config) -> List[str]:
    """The memory table: bytes per pending task/job, and RSS over many jobs in rounds."""
    lines = ["", f"memory: {WORKLOAD_TITLES['memory']}"]
    fmt = {
        "mem-tasks": [("traced_pending_b", "pending, tracemalloc"), ("rss_pending_b", "pending, RSS"),
                      ("traced_run_peak_b", "peak in runTasks, tracemalloc"),
                      ("rss_run_peak_b", "peak in runTasks, RSS")],
        "mem-c-tasks": [("rss_pending_b", "pending, RSS"), ("rss_run_peak_b", "peak in run_tasks, RSS")],
        "mem-batch": [("traced_call_peak_b", "peak in the call, tracemalloc"),
                      ("traced_result_b", "of which the returned handles"),
                      ("rss_call_peak_b", "peak in the call, RSS"),
                      ("rss_result_b", "returned handles, RSS")],
    }
    for key, s in per.items():
        note = f"  ({len(s['errors'])} failed: {s['errors'][0][:70]})" if s["errors"] else ""
        if key in fmt:
            cells = "; ".join(f"{what} {_med(s, 'extra', k)} B" for k, what in fmt[key]
                              if k in s["extra"])
            lines.append(f"{s['label']:<44} bytes per task: {cells}{note}")
        else:
            x = s["extra"]
            rss_first = _med(s, 'extra', 'rss_first_kb', ',.0f', 1 / 1024)
            lines.append(f"{s['label']:<44} RSS after the first round {rss_first} MiB, "
                         f"after 1/10 {_med(s, 'extra', 'rss_tenth_kb', ',.1f', 1 / 1024)} MiB, "
                         f"last {_med(s, 'extra', 'rss_last_kb', ',.1f', 1 / 1024)} MiB, "
                         f"max {_med(s, 'extra', 'rss_max_kb', ',.1f', 1 / 1024)} MiB; growth after "
                         f"the first tenth {_med(s, 'extra', 'rss_growth_b', '.1f')} B/job; "
                         f"{_fmt(s['median'])} jobs/s, {_spread(s['cpu_us'])} us CPU/job{note}")
            if "rss_samples_kb" in s and x:
                smp = s["rss_samples_kb"]
                step = max(1, len(smp) // 10)
                lines.append(f"{'':<44} RSS MiB every {step} rounds: "
                             + " ".join(f"{k / 1024:.1f}" for k in smp[::step]))
    lines.append("pending = memory held by N tasks added and not yet run, ÷ N; peak = the highest "
                 "memory during the call over that before it, ÷ N (VmHWM reset through "
                 "/proc/self/clear_refs); tracemalloc counts Python's allocators, which the core's "
                 "buffers use; RSS counts everything, in pages")
    return lines


def render(summary: Dict[str, Dict[str, Dict[str, Any]]], cfg: Config) -> str:
    """The printed tables: ops/s per workload and client, then cygearman ÷ each peer."""
    pipe = {w: per for w, per in summary.items() if w in PIPE_WORKLOADS}
    summary = {w: per for w, per in summary.items() if w in SEQ_WORKLOADS}
    if not summary:
        return render_pipe(pipe, cfg).lstrip("\n")
    lines = []
    head = (f"{'workload':<11} {'client':<10} {'N':>6} {'ops/s median':>13} {'min':>8} {'max':>8} "
            f"{'us/op':>6} {'CPU user+sys':>12}  {'cyg ÷ this, per round':<22}  this ÷ libgearman")
    lines += [head, "-" * len(head)]
    for w, per in summary.items():
        for i, (c, s) in enumerate(per.items()):
            us = 1e6 / s["median"] if s["median"] else None
            ratio = "" if c == "cygearman" else _ratio(s["ratio"])
            vs_lib = "" if c == "libgearman" else _ratio(s["vs_lib"])
            note = f"  ({len(s['errors'])} failed: {s['errors'][0][:60]})" if s["errors"] else ""
            lines.append(f"{w if i == 0 else '':<11} {c:<10} {cfg.sizes[w]:>6} {_fmt(s['median']):>13} "
                         f"{_fmt(s['min']):>8} {_fmt(s['max']):>8} {_fmt(us, '.1f'):>6} "
                         f"{_cpu(s):>12}  {ratio:<22}  {vs_lib}{note}".rstrip())
    peers = [c for c in cfg.clients if c != "cygearman" and c in SEQ_CLIENTS]
    if "cygearman" in cfg.clients and peers:
        lines += ["", "cygearman ÷ peer, median of per-round ratios (> 1: cygearman is faster):"]
        lines.append(f"{'workload':<11} " + " ".join(f"{'vs ' + p:>14}" for p in peers))
        for w, per in summary.items():
            cells = [_fmt(per[p]["ratio"]["median"], ".2f") + ("x" if per[p]["ratio"]["median"] else "")
                     for p in peers]
            lines.append(f"{w:<11} " + " ".join(f"{c:>14}" for c in cells))
    lines += ["", "us/op = 1e6 / median ops/s (wall clock); CPU user+sys = median CPU time in us that the"
                  " client process itself spent per operation in its timed loop (user space + kernel)",
              "workloads: " + "; ".join(f"{w} = {WORKLOAD_TITLES[w]}" for w in cfg.workloads
                                        if w in SEQ_WORKLOADS)]
    if "floor" in cfg.clients or "pyfloor" in cfg.clients:
        lines.append(FLOOR_TITLE)
    return "\n".join(lines) + ("\n" + render_pipe(pipe, cfg) if pipe else "")


# --- Markdown and chart ---------------------------------------------------------------------------


def _md_ratio(st: Optional[Dict[str, Any]], spec: str = ".2f", unit: str = "×", scale: float = 1.0) -> str:
    """``1.23× (1.10–1.40)`` for Markdown, or an em dash."""
    if not st or st.get("median") is None:
        return "—"
    m, lo, hi = (format(scale * st[k], spec) for k in ("median", "min", "max"))
    return f"{m}{unit} ({lo}–{hi})"


def _md_rate(s: Dict[str, Any]) -> str:
    """``12,345 (11,000–13,000)`` ops/s, or an em dash."""
    if s.get("median") is None:
        return "—" + (f" (failed: {s['errors'][0][:60]})" if s.get("errors") else "")
    return f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"


def render_markdown(summary: Dict[str, Dict[str, Dict[str, Any]]], cfg: Config, command: str,
                    info: Dict[str, Any], notes: List[str], elapsed: float, load_end: Any,
                    versions: List[str], chart: Optional[Path] = None,
                    md_path: Optional[Path] = None) -> str:
    """The results as Markdown: machine, exact command, one table per workload."""
    out = ["# Benchmark results", "",
           f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} by `benchmarks/run.py`; every figure "
           f"is the median over the rounds, with (min–max); every ratio is computed within a round "
           f"(the two measurements ran seconds apart) and then summarized the same way.", "",
           "## Machine and command", "",
           "```sh", command, "```", "",
           f"- CPU: {info['cpu_model']}, {info['cpu_count']} CPUs ({info['cpus_usable']} usable); "
           f"{info['platform']}",
           f"- Python: {info['python']}",
           f"- gearmand: {info['gearmand']}; PHP: {info['php']}",
           f"- clients: {'; '.join(versions)}",
           f"- cygearman commit: {info['cygearman_commit']}",
           f"- load average at the start {info['loadavg_at_start']}, at the end {load_end} "
           f"(the machine is shared: absolute numbers are noisy, the per-round ratios hold up "
           f"better); wall time {elapsed:.0f} s",
           "- pinning: " + (f"client on CPU {cfg.client_cpus}, gearmand and workers on CPU "
                             f"{cfg.server_cpus}" if cfg.client_cpus else "none"),
           f"- a fresh `{shlex.join(gearmand_argv('PORT', Path('TMP')))}` per measurement",
           f"- rounds: {cfg.rounds}" + "".join(f", {w}: {r}" for w, r in cfg.workload_rounds.items()
                                               if w in cfg.workloads)
           + f"; warmup {cfg.warmup}; job payload {cfg.payload_bytes} B"]
    for n in notes:
        out.append(f"- note: {n}")
    if chart is not None:
        rel = os.path.relpath(chart.resolve(), (md_path or Path(".")).resolve().parent)
        out += ["", f"![ratios to libgearman]({rel})"]
    seq = {w: per for w, per in summary.items() if w in SEQ_WORKLOADS}
    if seq:
        out += ["", "## Sequential calls (one round trip each)", "",
                "| workload | client | N | ops/s | client CPU µs/op (user+sys) | cygearman ÷ this | "
                "this ÷ libgearman |", "|---|---|--:|--:|--:|--:|--:|"]
        for w, per in seq.items():
            for c, s in per.items():
                out.append(f"| {w} | {c} | {cfg.sizes[w]:,} | {_md_rate(s)} | {_cpu(s)} | "
                           f"{'' if c == 'cygearman' else _md_ratio(s['ratio'])} | "
                           f"{'' if c == 'libgearman' else _md_ratio(s['vs_lib'])} |")
        out += ["", "background = " + WORKLOAD_TITLES["background"] + "; normal = "
                + WORKLOAD_TITLES["normal"] + "; status = " + WORKLOAD_TITLES["status"] + ". "
                + FLOOR_TITLE + "."]
    pipe = summary.get("pipelined")
    if pipe:
        out += ["", "## Pipelined background submission", "",
                WORKLOAD_TITLES["pipelined"] + "; +u = caller-given uniques. ÷ libgearman / ÷ php: "
                "against the row of the same library with the same kind of unique; of ceiling: "
                "÷ that round's server ceiling (below).", "",
                "| variant | N | jobs/s | client CPU µs/job | gearmand µs/job | ÷ libgearman | ÷ php | "
                "of ceiling |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
        for _key, s in pipe.items():
            out.append(f"| {s['label']} | {s['n']:,} | {_md_rate(s)} | {_md_ratio(s['cpu_us'], '.2f', '')} | "
                       f"{_fmt(s['server_us']['median'], '.1f')} | "
                       f"{'baseline' if s['client'] == 'libgearman' else _md_ratio(s.get('ratio'))} | "
                       f"{_md_ratio(s.get('ratio_php'))} | "
                       f"{_md_ratio(s.get('of_ceiling'), '.0f', '%', 100.0)} |")
            if "run" in s:
                out.append(f"| ↳ of which runTasks() alone | | {_md_rate(s['run']['jobs_s'])} | "
                           f"{_md_ratio(s['run']['cpu_us'], '.2f', '')} | | | | |")
    rounds = summary.get("rounds")
    if rounds:
        out += ["", "## One round of N or ten rounds of N/10 (runTasks)", "",
                "| variant | jobs/s | client CPU µs/job | 1 round ÷ split, CPU/job |",
                "|---|--:|--:|--:|"]
        for _key, s in rounds.items():
            out.append(f"| {s['label']} | {_md_rate(s)} | {_md_ratio(s['cpu_us'], '.2f', '')} | "
                       f"{_md_ratio(s.get('cpu_growth'))} |")
    ceil = summary.get("ceiling")
    if ceil:
        out += ["", "## The server's ceiling", "",
                f"{cfg.ceiling_procs} client processes at once, each pipelining "
                f"{cfg.sizes['ceiling']:,} jobs with caller-given uniques; the ceiling of a round is "
                "the higher row of that round.", "",
                "| variant | jobs/s (all processes) | client CPU µs/job | gearmand µs/job, busy | "
                "÷ libgearman | of ceiling |", "|---|--:|--:|--:|--:|--:|"]
        for _key, s in ceil.items():
            busy = (f"{s['server_us']['median']:.1f}, {100 * s['server_busy']['median']:.0f}%"
                    if s["server_us"]["median"] is not None else "—")
            out.append(f"| {s['label']} | {_md_rate(s)} | {_md_ratio(s['cpu_us'], '.2f', '')} | {busy} | "
                       f"{_md_ratio(s.get('ratio'))} | {_md_ratio(s.get('of_ceiling'), '.0f', '%', 100.0)} |")
    drain = summary.get("drain")
    if drain:
        out += ["", "## Worker draining a queue", "",
                f"{WORKLOAD_TITLES['drain']}; N = {cfg.sizes['drain']:,}, after {cfg.warmup} untimed.", "",
                "| worker | jobs/s | worker CPU µs/job | gearmand µs/job | ÷ libgearman |",
                "|---|--:|--:|--:|--:|"]
        for _key, s in drain.items():
            out.append(f"| {s['label']} | {_md_rate(s)} | {_md_ratio(s['cpu_us'], '.1f', '')} | "
                       f"{_fmt(s['server_us']['median'], '.1f')} | "
                       f"{'baseline' if s['client'] == 'libgearman' else _md_ratio(s.get('ratio'))} |")
    pay = summary.get("payload")
    if pay:
        out += ["", "## Large payloads", "",
                f"{WORKLOAD_TITLES['payload']}. ms/MiB is the wall time of one round trip ÷ its size "
                "(linear in size = the same figure at every size). Peak − base: (VmHWM − VmRSS with "
                "the payload allocated) ÷ payload size; the one result alive at a time accounts for "
                "1.0. " + payload_limit_note() + ". libgearman "
                "shrinks its socket buffers to 32 KiB (SO_SNDBUF/SO_RCVBUF), which stalls its large "
                "transfers; it gets one round trip per size.", "",
                "| variant | round trips | ms/MiB | client CPU ms/MiB | peak RSS MiB | peak − base "
                "(payloads) | speed ÷ libgearman |", "|---|--:|--:|--:|--:|--:|--:|"]
        for _key, s in pay.items():
            d = s["derived"]
            out.append(f"| {s['label']} | {s['n']} | {_md_ratio(d.get('ms_per_mib'), '.1f', '')} | "
                       f"{_med(s, 'derived', 'cpu_ms_per_mib', '.2f')} | {_med(s, 'derived', 'peak_mib', '.0f')} | "
                       f"{_med(s, 'derived', 'peak_over_base_x', '.2f')} | "
                       f"{'baseline' if s['client'] == 'libgearman' else _md_ratio(s.get('ratio'))} |")
    mem = summary.get("memory")
    if mem:
        out += ["", "## Memory", "", "| measurement | result |", "|---|---|"]
        for line in render_memory(mem, cfg)[2:-1]:
            label, _, rest = line.partition("  ")
            out.append(f"| {line[:44].strip()} | {line[44:].strip()} |")
        out += ["", render_memory(mem, cfg)[-1] + "."]
    return "\n".join(out) + "\n"


def chart_bars(summary: Dict[str, Dict[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """The bars of the chart: every ratio to libgearman, grouped by workload."""
    bars: List[Dict[str, Any]] = []

    def add(group: str, label: str, st: Optional[Dict[str, Any]]) -> None:
        if st and st.get("median") is not None:
            bars.append({"group": group, "label": label, "median": st["median"],
                         "min": st["min"], "max": st["max"]})

    for w in SEQ_WORKLOADS:
        for c, s in summary.get(w, {}).items():
            if c != "libgearman":
                add(w, c, s.get("vs_lib"))
    for w in ("pipelined", "ceiling", "drain", "payload"):
        for _key, s in summary.get(w, {}).items():
            add(w, s["label"], s.get("ratio"))
    return bars


def draw_chart(summary: Dict[str, Dict[str, Dict[str, Any]]], cfg: Config, path: Path,
               info: Dict[str, Any]) -> Optional[str]:
    """Draw the ratios to libgearman as a PNG with benchmarks/chart.py in the peers' venv."""
    bars = chart_bars(summary)
    if not bars:
        return "no ratio to libgearman was measured"
    spec = {"title": "cygearman and peers ÷ libgearman (median, min–max over rounds)",
            "subtitle": f"{info['cpu_model']}, {info['cpus_usable']} CPUs; "
                        f"{info['gearmand'].split(' - ')[0]}; "
                        f"{time.strftime('%Y-%m-%d')}"}
    return draw_bars(bars, cfg, path, spec)


def draw_bars(bars: List[Dict[str, Any]], cfg: Config, path: Path, spec: Dict[str, Any]) -> Optional[str]:
    """Draw ``bars`` (and the ``title``, ``subtitle``, ``xlabel`` of ``spec``) with
    benchmarks/chart.py in the peers' venv; None, or why it was not drawn."""
    spec = dict(spec, bars=bars)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        r = subprocess.run([str(peer_python(cfg.venv)), str(CHART), f.name, str(path)],
                           capture_output=True, text=True, timeout=300)
        return None if r.returncode == 0 else (r.stderr or r.stdout).strip()[-800:]
    except (OSError, subprocess.SubprocessError) as e:
        return f"{type(e).__name__}: {e}"
    finally:
        os.unlink(f.name)


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[Config, argparse.Namespace]:
    """Command line -> Config (``--quick`` lowers the defaults that were not given)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="2 rounds, smaller N and warmup: a run of about a minute")
    ap.add_argument("--rounds", "-r", type=int,
                    help="rounds of interleaved measurements (default 5, quick 2)")
    for w in WORKLOADS:
        if w == "payload":
            continue
        ap.add_argument(f"--n-{w}", type=int, dest=f"n_{w}",
                        help=f"operations per {w} measurement (default {SIZES[w][0]}, quick {SIZES[w][1]})")
    ap.add_argument("--n-pipelined-pygearman", type=int,
                    help=f"pygearman's N in pipelined (default {PYGEARMAN_PIPE_SIZE[0]}, "
                         f"quick {PYGEARMAN_PIPE_SIZE[1]}; its cost per job grows with N)")
    ap.add_argument("--split-rounds", type=int, default=SPLIT_ROUNDS,
                    help="rounds workload: the split run submits N as this many runTasks rounds")
    ap.add_argument("--ceiling-procs", type=int, default=CEILING_PROCS,
                    help="ceiling workload: client processes at once (each pipelines --n-ceiling jobs)")
    ap.add_argument("--n-pipelined-aiogear", type=int,
                    help=f"aiogear's N in pipelined (default {AIOGEAR_PIPE_SIZE[0]}, "
                         f"quick {AIOGEAR_PIPE_SIZE[1]}; its cost per job grows with N)")
    ap.add_argument("--payload-sizes", metavar="MIB,...",
                    help=f"payload workload: payload sizes in MiB (default {PAYLOAD_SIZES_MIB[0]}, "
                         f"quick {PAYLOAD_SIZES_MIB[1]})")
    ap.add_argument("--n-memory-flat", type=int,
                    help=f"memory workload: jobs submitted in rounds of {MEMORY_FLAT_ROUND} with RSS "
                         f"sampled (default {MEMORY_FLAT_SIZE[0]}, quick {MEMORY_FLAT_SIZE[1]})")
    ap.add_argument("--warmup", type=int,
                    help="untimed operations before each loop (default 200, quick 20)")
    ap.add_argument("--payload-bytes", type=int, default=7, help="workload size of every job")
    ap.add_argument("--clients", default=",".join(CLIENTS),
                    help="comma-separated subset of " + ",".join(CLIENTS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of " + ",".join(WORKLOADS))
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds before one client process is killed")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                    help="venv for pygearman and gear (created if missing)")
    ap.add_argument("--pin", choices=("split", "none"), default="split",
                    help="split: the client on one CPU, gearmand and the worker on the others "
                         "(steadier numbers); none: leave placement to the scheduler")
    ap.add_argument("--drain-table", action="store_true",
                    help="run only the drain table (the server's drain ceiling with 8 libgearman "
                         "workers, one libgearman worker, cygearman serve() with prefetch 1-16, the "
                         "asyncio worker with concurrency 1 and 8) and print it as Markdown")
    ap.add_argument("--drain-sizes", default=",".join(map(str, DRAIN_SIZES)), metavar="N,...",
                    help="--drain-table: jobs queued per measurement")
    ap.add_argument("--drain-rounds", type=int, default=1, help="--drain-table: rounds")
    ap.add_argument("--drain-rows", metavar="TEXT,...",
                    help="--drain-table: only the rows whose label contains one of these "
                         "(e.g. 'ceiling,prefetch=8,concurrency=8'; the ceiling row always runs)")
    ap.add_argument("--json", type=Path, metavar="PATH",
                    help="also write results and machine info as JSON here")
    ap.add_argument("--markdown", type=Path, metavar="PATH",
                    help="also write the results as Markdown tables (machine, command, medians, "
                         "ratios with min/max, fraction of the server's ceiling) here")
    ap.add_argument("--chart", type=Path, metavar="PATH.png",
                    help="also draw the ratios to libgearman (with --drain-table: the fractions "
                         "of the drain ceiling) as a PNG bar chart here (matplotlib from the "
                         "peers' venv)")
    a = ap.parse_args(argv)
    clients = [c for c in a.clients.split(",") if c]
    workloads = [w for w in a.workloads.split(",") if w]
    for name, got, allowed in (("client", clients, CLIENTS), ("workload", workloads, WORKLOADS)):
        bad = [x for x in got if x not in allowed]
        if bad:
            ap.error(f"unknown {name}(s): {', '.join(bad)}")
    q = 1 if a.quick else 0
    rounds = a.rounds or (2 if a.quick else 5)
    cfg = Config(
        rounds=rounds,
        sizes={w: getattr(a, f"n_{w}", None) or SIZES[w][q] for w in WORKLOADS},
        warmup=a.warmup if a.warmup is not None else (20 if a.quick else 200),
        payload_bytes=a.payload_bytes,
        clients=clients,
        workloads=workloads,
        timeout=a.timeout,
        venv=a.venv.resolve(),
        pygearman_pipe_size=a.n_pipelined_pygearman or PYGEARMAN_PIPE_SIZE[q],
        split_rounds=max(1, a.split_rounds),
        ceiling_procs=max(1, a.ceiling_procs),
        aiogear_pipe_size=a.n_pipelined_aiogear or AIOGEAR_PIPE_SIZE[q],
        payload_sizes=[int(x) for x in (a.payload_sizes or PAYLOAD_SIZES_MIB[q]).split(",") if x],
        memory_flat_size=a.n_memory_flat or MEMORY_FLAT_SIZE[q],
        workload_rounds={w: min(rounds, r[q]) for w, r in WORKLOAD_ROUNDS.items()},
        quick=a.quick,
    )
    PAYLOAD_MAX_PACKET[0] = max(DEFAULT_MAX_PACKET, max(cfg.payload_sizes, default=1) << 20)
    if a.pin == "split":
        cfg.client_cpus, cfg.server_cpus = split_cpus()
    return cfg, a


def split_cpus() -> tuple[Optional[List[int]], Optional[List[int]]]:
    """(client CPUs, server CPUs): the last usable CPU for the client, the rest for the servers.

    Left to the scheduler, whether the client and gearmand's I/O thread share a
    CPU changes from run to run, and so does the cost of every round trip: on the
    2-CPU development machine the per-round cygearman ÷ php ratio on "background"
    ranged over 0.33-2.06 unpinned and 0.68-1.14 split (two runs of each).  A fixed split makes every run pay
    the same cross-CPU wake-up, as a client on another host would.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None, None
    return usable[-1:], usable[:-1]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run every round, print the report, optionally write JSON; 0 unless nothing could run."""
    cfg, args = parse_args(argv)
    command = shlex.join([sys.executable, *(sys.argv if argv is None else [__file__, *argv])])
    for tool in ("gearmand", "php"):
        if shutil.which(tool) is None:
            print(f"error: {tool} not found (Debian: gearman-job-server, php-cli php-gearman)",
                  file=sys.stderr)
            return 2
    # SIGINT too: a shell without job control starts background commands with it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    notes: List[str] = []
    if any(c in PEER_CLIENTS for c in cfg.clients) or args.chart:
        for dist, err in ensure_peers_venv(cfg.venv).items():
            client = {"pygearman": "pygearman", "gear": "gear", "aiogear": "aiogear"}.get(dist)
            notes.append(f"{dist} unavailable, {'the ' + client + ' rows are' if client else 'no chart is'}"
                         f" skipped: {err}")
            if client in cfg.clients:
                cfg.clients.remove(client)
    needs_c = ("libgearman" in cfg.clients or "floor" in cfg.clients
               or any(w in cfg.workloads for w in ("normal", "drain")))
    c_err = ensure_c_client() if needs_c else None
    if c_err:
        notes.append(f"the libgearman client could not be built, its rows are skipped: {c_err}")
        for gone in ("libgearman", "floor"):
            if gone in cfg.clients:
                cfg.clients.remove(gone)
        C_AVAILABLE[0] = False

    info = machine_info()
    header = [f"command: {command}"]
    header += [f"{k}: {v}" for k, v in info.items()]
    if cfg.client_cpus:
        header.append(f"pinning: client on CPUs {cfg.client_cpus}, "
                      f"gearmand + worker on CPUs {cfg.server_cpus}")
    else:
        header.append("pinning: none")
    load, cpus = info["loadavg_at_start"], info["cpus_usable"] or 1
    if load and load[0] > 0.5 * cpus:
        notes.append(f"load average {load[0]} on {cpus} CPUs before the start: other work is "
                     "running, so absolute numbers are noisy; the per-round ratios hold up better")
    if info["cygearman_core"] == "missing" or info["cygearman_core_stale"]:
        notes.append("gearman/_core*.so is missing or older than src/: run "
                     "'python setup.py build_ext --inplace' first")
    header.append(f"rounds: {cfg.rounds}, warmup: {cfg.warmup}, payload: {cfg.payload_bytes} B, "
                  f"N: " + ", ".join(f"{w}={cfg.sizes[w]}" for w in cfg.workloads)
                  + (f" (pygearman {cfg.pygearman_pipe_size})" if "pipelined" in cfg.workloads
                     and "pygearman" in cfg.clients else "")
                  + (f", split rounds: {cfg.split_rounds}" if "rounds" in cfg.workloads else "")
                  + (f", ceiling processes: {cfg.ceiling_procs}" if "ceiling" in cfg.workloads else "")
                  + (f", aiogear N: {cfg.aiogear_pipe_size}" if "pipelined" in cfg.workloads
                     and "aiogear" in cfg.clients else "")
                  + (f", payload sizes: {','.join(map(str, cfg.payload_sizes))} MiB"
                     if "payload" in cfg.workloads else "")
                  + (f", memory flat run: {cfg.memory_flat_size} jobs" if "memory" in cfg.workloads else "")
                  + (", rounds of " + ", ".join(f"{w}: {r}" for w, r in cfg.workload_rounds.items()
                                                if w in cfg.workloads) if cfg.workload_rounds else ""))
    if args.drain_table:
        with tempfile.TemporaryDirectory(prefix="gm-bench-") as tmpname:
            header = [header[0], *[h for h in header[1:] if h.startswith(("python", "cpu", "pinning",
                                                                         "loadavg", "cygearman"))]]
            header.append(f"warmup: {cfg.warmup} jobs per worker process, payload: "
                          f"{cfg.payload_bytes} B, rounds: {args.drain_rounds}")
            header.append("gearmand: " + shlex.join(gearmand_argv("PORT", Path(tmpname))))
            print("\n".join(header), flush=True)
            t0 = time.monotonic()
            try:
                table, bars = drain_table(cfg, [int(x) for x in args.drain_sizes.split(",") if x],
                                          max(1, args.drain_rounds), Path(tmpname),
                                          [o for o in (args.drain_rows or "").split(",") if o])
            finally:
                PROCS.stop_all()
            print(table)
            print(f"wall time: {time.monotonic() - t0:.0f} s; load average at the end: {_loadavg()}")
        if args.chart is not None and bars:
            info = machine_info()
            err = draw_bars(bars, cfg, args.chart, {
                "title": "one worker process ÷ the drain ceiling (8 libgearman workers at once)",
                "subtitle": f"median, min–max over {max(1, args.drain_rounds)} rounds; "
                            f"{info['cpus_usable']} CPUs; "
                            f"{info['gearmand'].split(' - ')[0]}; {time.strftime('%Y-%m-%d')}",
                "xlabel": "fraction of the drain ceiling measured in the same run (log scale)"})
            print(f"chart: {args.chart}" if err is None else f"chart not drawn: {err}")
        return 0
    with tempfile.TemporaryDirectory(prefix="gm-bench-") as tmpname:
        tmp = Path(tmpname)
        header.append("gearmand: " + shlex.join(gearmand_argv("PORT", tmp)))
        print("\n".join(header), flush=True)
        for n in notes:
            print("note: " + n, flush=True)
        results: List[Result] = []
        interrupted = False
        t_start = time.monotonic()
        try:
            for rnd in range(1, cfg.rounds + 1):
                for w in cfg.workloads:
                    if rnd > cfg.workload_rounds.get(w, cfg.rounds):
                        continue
                    if w in PIPE_WORKLOADS:
                        for v in variants(w, cfg):
                            r = measure_pipe(w, v, rnd, cfg, tmp)
                            results.append(r)
                            shown = (r.error[:100] if r.error else
                                     f"{r.ops_per_s:,.1f} ops/s, {r.cpu_us_per_op:.2f} us CPU/op")
                            print(f"  round {rnd}/{cfg.rounds}  {w:<10} {v.label:<39} {shown}",
                                  file=sys.stderr, flush=True)
                        continue
                    for c in cfg.clients:
                        if c not in SEQ_CLIENTS:
                            continue
                        r = measure(c, w, rnd, cfg, tmp)
                        results.append(r)
                        shown = r.error[:100] if r.error else f"{r.ops_per_s:,.0f} ops/s"
                        print(f"  round {rnd}/{cfg.rounds}  {w:<10} {c:<10} {shown}",
                              file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: reporting the measurements so far", file=sys.stderr)
        finally:
            PROCS.stop_all()
    elapsed = time.monotonic() - t_start

    summary = summarize(results, cfg)
    summary.update(summarize_pipe(results, cfg))
    print()
    print(render(summary, cfg))
    versions = sorted({r.version for r in results if r.version})
    print("versions: " + "; ".join(versions))
    load_end = _loadavg()
    print(f"wall time: {elapsed:.0f} s; load average at the end: {load_end}")

    if args.json:
        doc = {
            "command": command,
            "machine": info,
            "config": {"rounds": cfg.rounds, "sizes": cfg.sizes, "warmup": cfg.warmup,
                       "aiogear_pipe_size": cfg.aiogear_pipe_size, "payload_sizes_mib": cfg.payload_sizes,
                       "payload_max_packet_size": payload_max_packet(),
                       "memory_flat_size": cfg.memory_flat_size, "workload_rounds": cfg.workload_rounds,
                       "pygearman_pipe_size": cfg.pygearman_pipe_size,
                       "split_rounds": cfg.split_rounds, "ceiling_procs": cfg.ceiling_procs,
                       "payload_bytes": cfg.payload_bytes, "clients": cfg.clients,
                       "workloads": cfg.workloads, "client_cpus": cfg.client_cpus,
                       "server_cpus": cfg.server_cpus, "gearmand": gearmand_argv("PORT", Path("TMP"))},
            "notes": notes,
            "summary": summary,
            "measurements": [dict(vars(r), ops_per_s=r.ops_per_s, user_us_per_op=r.user_us_per_op,
                                  sys_us_per_op=r.sys_us_per_op, run_ops_per_s=r.run_ops_per_s,
                                  run_cpu_us_per_op=r.run_cpu_us_per_op,
                                  server_us_per_op=r.server_us_per_op, derived=_derived(r))
                             for r in results],
            "wall_seconds": elapsed,
            "loadavg_at_end": load_end,
            "interrupted": interrupted,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"json: {args.json}")
    if args.markdown:
        args.markdown.write_text(render_markdown(summary, cfg, command, info, notes, elapsed,
                                                 load_end, versions,
                                                 chart=args.chart, md_path=args.markdown))
        print(f"markdown: {args.markdown}")
    if args.chart:
        err = draw_chart(summary, cfg, args.chart, info)
        print(f"chart: {args.chart}" if not err else f"chart not drawn: {err}")
    if interrupted:
        return 130
    return 0 if any(not r.error for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
