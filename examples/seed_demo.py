"""The seed's example, end to end, over cygearman and a real gearmand.

Starts gearmand on a free 127.0.0.1 port and the "reverse" worker of
examples/reverse_worker.py, then does what the PECL manual's example does:
submit a background job with doBackground and poll jobStatus until the job
is no longer known.

    python examples/seed_demo.py [--interval 1.0] [--steps 14] [--delay 0.5]
"""
import argparse
import os
import subprocess
import sys
import time

import gearman
from gearman.testing import GearmandServer


def main() -> int:
    ap = argparse.ArgumentParser(description="doBackground + jobStatus, as in the PECL manual")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between status polls")
    ap.add_argument("--steps", type=int, default=14)
    ap.add_argument("--delay", type=float, default=0.5, help="seconds per worker step")
    args = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    with GearmandServer() as server:
        print(f"gearmand {server.admin('version').split()[-1]} on {server.address}", flush=True)
        worker = subprocess.Popen([sys.executable, os.path.join(here, "reverse_worker.py"),
                                   "--port", str(server.port), "--steps", str(args.steps),
                                   "--delay", str(args.delay), "--jobs", "1"])
        try:
            client = gearman.GearmanClient()
            client.addServer("127.0.0.1", server.port)

            job_handle = client.doBackground("reverse", "this is a test")
            if client.returnCode() != gearman.GEARMAN_SUCCESS:
                print("bad return code")
                return 1
            print(f"submitted: {job_handle}", flush=True)

            done = False
            while not done:
                time.sleep(args.interval)
                known, running, numerator, denominator = client.jobStatus(job_handle)
                if not known:
                    done = True
                print(f"Running: {'true' if running else 'false'}, "
                      f"numerator: {numerator}, denominator: {denominator}", flush=True)
            print("done!")
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
