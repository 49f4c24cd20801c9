"""Draw benchmarks/run.py's ratios to libgearman as a horizontal bar chart (PNG).

    python benchmarks/chart.py SPEC.json OUT.png

Run by ``run.py --chart`` with the peers' venv interpreter (matplotlib lives
there, not in the package's own dependencies).  SPEC has ``title``,
``subtitle``, ``bars``: ``{"group", "label", "median", "min", "max"}``, and
optionally ``xlabel`` (what the ratios are of; default: to libgearman).
"""
from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv: list[str]) -> int:
    spec = json.loads(open(argv[0]).read())
    bars = spec["bars"]
    labels = [f"{b['group']}: {b['label']}" for b in bars][::-1]
    med = [b["median"] for b in bars][::-1]
    lo = [b["median"] - b["min"] for b in bars][::-1]
    hi = [b["max"] - b["median"] for b in bars][::-1]
    groups = list(dict.fromkeys(b["group"] for b in bars))
    palette = plt.get_cmap("tab10")
    colors = [palette(groups.index(b["group"]) % 10) for b in bars][::-1]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(bars) + 1.6))
    y = range(len(bars))
    ax.barh(y, med, xerr=[lo, hi], color=colors, error_kw={"elinewidth": 0.8, "capsize": 2})
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(min(b["min"] for b in bars) / 1.5, max(b["max"] for b in bars) * 2.0)
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=8)
    for i, m in enumerate(med):
        ax.text(m * 1.05, i, f"{m:.2f}x", va="center", fontsize=7)
    ax.set_xlabel(spec.get("xlabel", "ratio to libgearman (> 1: faster than libgearman; log scale)"))
    ax.set_title(spec["title"] + "\n" + spec["subtitle"], fontsize=9)
    ax.grid(axis="x", which="both", linewidth=0.3, alpha=0.5)
    fig.tight_layout()
    fig.savefig(argv[1], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
