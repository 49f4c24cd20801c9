"""gearman._core.ClientLock: the client's re-entrant lock (RLock semantics)."""
import os
import signal
import threading
import time

import pytest

import gearman
from gearman import _core


def _held_elsewhere(lock):
    """Start a thread that takes ``lock`` and keeps it until the returned event is set."""
    taken, done = threading.Event(), threading.Event()

    def hold():
        with lock:
            taken.set()
            done.wait(10)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert taken.wait(5)
    return done, t


def test_re_entrant_and_released_by_its_owner_only():
    lock = _core.ClientLock()
    assert lock.acquire() is True
    assert lock.acquire() is True           # the same thread again
    assert lock._is_owned()
    errors = []

    def other():
        try:
            lock.release()
        except RuntimeError as e:
            errors.append(e)
        errors.append(lock.acquire(False))

    t = threading.Thread(target=other)
    t.start()
    t.join(5)
    assert isinstance(errors[0], RuntimeError) and errors[1] is False
    lock.release()
    lock.release()
    assert not lock._is_owned()
    with pytest.raises(RuntimeError, match="un-acquired"):
        lock.release()


def test_non_blocking_and_timed_acquire_fail_while_another_thread_holds_it():
    lock = _core.ClientLock()
    done, t = _held_elsewhere(lock)
    assert lock.acquire(False) is False
    assert lock.acquire(True, 0) is False
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.2) is False
    assert time.monotonic() - t0 >= 0.19
    done.set()
    t.join(5)
    assert lock.acquire(timeout=5) is True
    lock.release()
    with pytest.raises(ValueError):
        lock.acquire(False, 1.0)
    with pytest.raises(ValueError):
        lock.acquire(True, -5.0)


def test_threads_take_turns():
    lock = _core.ClientLock()
    inside, worst, count = [0], [0], [0]

    def work():
        for _ in range(2000):
            with lock:
                inside[0] += 1
                worst[0] = max(worst[0], inside[0])
                count[0] += 1
                if count[0] % 97 == 0:
                    time.sleep(0)       # let another thread try meanwhile
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert count[0] == 8000 and worst[0] == 1


def test_a_signal_handler_that_raises_ends_a_waiting_acquire():
    lock = _core.ClientLock()
    done, t = _held_elsewhere(lock)

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted()

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.monotonic()
        with pytest.raises(Interrupted):
            lock.acquire()          # would wait for ever: the other thread holds it
        assert time.monotonic() - t0 < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        done.set()
        t.join(5)
    assert not lock._is_owned()


def test_a_client_serialises_its_calls_with_it(gearmand, fn):
    """The lock a client's calls take is the one `with client._lock` takes."""
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port)
    assert isinstance(c._lock, _core.ClientLock)
    result = []
    with c._lock:
        t = threading.Thread(target=lambda: result.append(c.doBackground(fn, b"x")))
        t.start()
        t.join(0.3)
        assert t.is_alive() and not result     # waits for the lock
        assert c.doBackground(fn, b"y")        # re-entrant for the holder
    t.join(10)
    assert result and result[0].startswith("H:")
    for wrong in (None, threading.RLock()):
        with pytest.raises(gearman.errors.InvalidTypeError):
            c._lock = wrong
    assert c.doBackground(fn, b"z")
    c.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_gets_a_free_lock_even_if_a_thread_held_it(gearmand, fn):
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port)
    done, t = _held_elsewhere(c._lock)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if c.doBackground(fn, b"child").startswith("H:") else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    done.set()
    t.join(5)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    c.close()



def test_a_worker_holds_the_same_kind_of_lock():
    w = gearman.GearmanWorker()
    assert isinstance(w._lock, _core.ClientLock)
    with pytest.raises(gearman.errors.InvalidTypeError):
        w._lock = threading.RLock()
    with w._lock:
        assert w._lock._is_owned()
    assert not w._lock._is_owned()


def test_serve_jobs_wants_a_worker_core():
    engine = _core.WorkerEngine()
    with pytest.raises(TypeError):
        engine.serve_jobs(object(), gearman.GearmanJob, 1)
    with pytest.raises(TypeError):
        engine.work_one(object(), gearman.GearmanJob)
