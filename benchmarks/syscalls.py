"""System calls per sequential call, counted by strace.

    python benchmarks/syscalls.py            # needs strace (Debian package strace)

Starts its own gearmand (gearman.testing), then runs this script again under
``strace`` (the client process only, not gearmand): 2,000 ``doBackground`` and
2,000 ``jobStatus`` calls between markers written to stderr, and prints the
system calls of each stretch per call.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
N = 2000
TRACED = "sendto,recvfrom,poll,ppoll,select,read,write,connect,epoll_wait"


def child(port: int) -> None:
    import gearman
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", port)
    handle = c.doBackground("syscalls", b"x")
    c.jobStatus(handle)
    os.write(2, b"MARK-BG\n")
    for _ in range(N):
        c.doBackground("syscalls", b"x")
    os.write(2, b"MARK-ST\n")
    for _ in range(N):
        c.jobStatus(handle)
    os.write(2, b"MARK-END\n")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
        return 0
    if shutil.which("strace") is None:
        print("strace is not installed (apt-get install strace)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    from gearman.testing import GearmandServer
    with GearmandServer() as g, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        subprocess.run(["strace", "-e", f"trace={TRACED}", "-o", str(out), sys.executable,
                        __file__, "--child", str(g.port)], check=True, env=env,
                       stderr=subprocess.DEVNULL, timeout=300)
        lines = out.read_text().splitlines()
    marks = {m: next(i for i, line in enumerate(lines) if m in line)
             for m in ("MARK-BG", "MARK-ST", "MARK-END")}
    for name, a, b in (("doBackground", "MARK-BG", "MARK-ST"), ("jobStatus", "MARK-ST", "MARK-END")):
        calls = Counter(re.match(r"(\w+)", line).group(1) for line in lines[marks[a] + 1:marks[b]])
        per = ", ".join(f"{k} {v / N:g}" for k, v in sorted(calls.items()))
        print(f"{name:<13} {sum(calls.values()) / N:g} system calls per call ({per})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
