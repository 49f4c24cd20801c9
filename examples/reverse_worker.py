"""The seed's worker: "reverse" with an artificial delay, reporting progress.

    python examples/reverse_worker.py --port 4730 [--steps 14] [--delay 0.5]

Each job takes ``steps`` steps of ``delay`` seconds and sends WORK_STATUS
after every step, so a client polling jobStatus watches it advance.
"""
import argparse
import time

import gearman


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4730)
    ap.add_argument("--steps", type=int, default=14)
    ap.add_argument("--delay", type=float, default=0.5)
    ap.add_argument("--jobs", type=int, default=0, help="exit after this many jobs (0: never)")
    args = ap.parse_args()

    def reverse(job: gearman.GearmanJob, context: object) -> bytes:
        for step in range(1, args.steps + 1):
            time.sleep(args.delay)
            job.sendStatus(step, args.steps)
        return job.workload()[::-1]

    worker = gearman.GearmanWorker()
    worker.addServer(args.host, args.port)
    worker.addFunction("reverse", reverse)
    done = 0
    while worker.work():
        done += 1
        if args.jobs and done >= args.jobs:
            break


if __name__ == "__main__":
    main()
