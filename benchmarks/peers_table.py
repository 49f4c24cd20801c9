"""The users' table: cygearman against its peers, one row per workload, from run.py's JSON.

    python benchmarks/peers_table.py benchmarks/results.json > table.md

Reads what ``python benchmarks/run.py --json PATH`` wrote and prints the table of
docs/benchmarks.md (Markdown): per workload and client, the rate and the client's CPU
per job (user + system), medians over the rounds, and cygearman ÷ libgearman computed
round by round (median, min–max). Prints the machine and the command of the run under it.
Nothing is measured here.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional

PEERS = ("cygearman", "libgearman", "php", "pygearman", "gear", "aiogear")
HEAD = ("cygearman", "libgearman (C)", "PHP php-gearman", "python-gearman (pygearman)", "gear",
        "aiogear")


def _rate(x: Optional[float], unit: str = "/s") -> str:
    return "—" if x is None else f"{x:,.0f}{unit}"


def _cell(rate: Optional[float], cpu: Optional[float], cpu_unit: str = "µs",
          rate_fmt: str = "{:,.0f}/s") -> str:
    if rate is None:
        return "—"
    s = rate_fmt.format(rate)
    return s if cpu is None else f"{s}, {cpu:.1f} {cpu_unit}"


def _ratio(st: Optional[Dict[str, Any]]) -> str:
    if not st or st.get("median") is None:
        return "—"
    return f"{st['median']:.2f}× ({st['min']:.2f}–{st['max']:.2f})"


def rows(doc: Dict[str, Any]) -> List[List[str]]:
    s = doc["summary"]
    out: List[List[str]] = []

    def seq(w: str, title: str) -> None:
        per = s.get(w, {})
        cells = []
        for c in PEERS:
            x = per.get(c)
            if not x or x.get("median") is None:
                cells.append("—")
                continue
            cpu = (x["user_us_per_op"] or 0) + (x["sys_us_per_op"] or 0)
            cells.append(_cell(x["median"], cpu))
        out.append([title] + cells + [_ratio(per.get("cygearman", {}).get("vs_lib"))])

    def pipe(w: str, title: str, keys: Dict[str, str], ratio_key: str) -> None:
        per = s.get(w, {})
        cells = []
        for c in PEERS:
            x = per.get(keys.get(c, ""))
            if not x or x.get("median") is None:
                cells.append("—")
                continue
            cells.append(_cell(x["median"], (x.get("cpu_us") or {}).get("median")))
        out.append([title] + cells + [_ratio(per.get(ratio_key, {}).get("ratio"))])

    seq("background", "background (`doBackground`)")
    seq("normal", "normal (`doNormal`)")
    seq("status", "status (`jobStatus`)")
    pipe("pipelined", "pipelined (`runTasks`)",
         {"cygearman": "cyg-tasks", "libgearman": "c-tasks", "php": "php-tasks",
          "pygearman": "pyg-multiple"}, "cyg-tasks")
    pipe("pipelined", "bulk (`submit_batch`)",
         {"cygearman": "cyg-batch", "libgearman": "c-tasks", "php": "php-tasks"}, "cyg-batch")
    pipe("pipelined", "asyncio (`submit_many`)",
         {"cygearman": "cyg-aio-many", "aiogear": "aiogear-gather"}, "cyg-aio-many")
    pipe("drain", "worker drain (`serve()`)",
         {"cygearman": "drain-cyg-serve", "libgearman": "drain-c"}, "drain-cyg-serve")
    pipe("drain", "worker drain, asyncio",
         {"cygearman": "drain-cyg-aio"}, "drain-cyg-aio")
    per = s.get("payload", {})
    for key in sorted((k for k in per if k.startswith("cyg-")), key=lambda k: int(k[4:-1])):
        mib = key[4:-1]
        cells = []
        for k in (key, f"c-{mib}m"):  # cygearman, then libgearman
            d = (per.get(k) or {}).get("derived", {})
            ms = (d.get("ms_per_mib") or {}).get("median")
            cpu = (d.get("cpu_ms_per_mib") or {}).get("median")
            cells.append("—" if ms is None else f"{ms:,.1f} ms/MiB, {cpu:.2f} ms CPU/MiB")
        cells += ["—"] * (len(PEERS) - 2)
        out.append([f"payload {mib} MiB (`doNormal`)"] + cells + [_ratio(per[key].get("ratio"))])
    return out


def main(argv: List[str]) -> int:
    doc = json.loads(open(argv[0]).read())
    # the ratio next to cygearman's own column: a narrow page scrolls the table sideways
    head = ["workload", HEAD[0], "cygearman ÷ libgearman"] + list(HEAD[1:])
    print("| " + " | ".join(head) + " |")
    print("|---|" + "--:|" * (len(head) - 1))
    for r in rows(doc):
        print("| " + " | ".join([r[0], r[1], r[-1]] + r[2:-1]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
