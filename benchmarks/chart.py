"""Draw benchmarks/run.py's ratios to libgearman as a horizontal bar chart (PNG).

    python benchmarks/chart.py SPEC.json OUT.png

Run by ``run.py --chart`` with the peers' venv interpreter (matplotlib lives
there, not in the package's own dependencies).  SPEC has ``title``,
``subtitle``, ``bars``: ``{"group", "label", "median", "min", "max"}``, and
optionally ``xlabel`` (what the ratios are of; default: to libgearman).

The chart is drawn for the documentation page's width (about 700-800 CSS pixels): 8 inches at
100 dpi, fonts of 10-11 points, each value written to the right of its error bar's upper end
(never on the bar or the whisker), on a white box, the workloads separated by rules and
cygearman's rows in bold.
"""
from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import transforms  # noqa: E402


def main(argv: list[str]) -> int:
    spec = json.loads(open(argv[0]).read())
    bars = spec["bars"][::-1]                     # the first bar at the top
    n = len(bars)
    labels = [b["label"] for b in bars]          # the workload is written beside its rows
    med = [b["median"] for b in bars]
    lo = [b["median"] - b["min"] for b in bars]
    hi = [b["max"] - b["median"] for b in bars]
    groups = list(dict.fromkeys(b["group"] for b in spec["bars"]))
    palette = plt.get_cmap("tab10")
    colors = [palette(groups.index(b["group"]) % 10) for b in bars]
    fig, ax = plt.subplots(figsize=(8, 0.32 * n + 1.5))
    y = list(range(n))
    ax.barh(y, med, xerr=[lo, hi], color=colors, height=0.7,
            error_kw={"elinewidth": 0.9, "capsize": 2.5, "ecolor": "#333333"})
    ax.axvline(1.0, color="black", linewidth=0.9)
    ax.set_xscale("log")
    left = min(b["min"] for b in bars) / 1.5
    right = max(b["max"] for b in bars) * 12.0    # room for the largest value's label
    ax.set_xlim(left, right)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=10)
    for tick, b in zip(ax.get_yticklabels(), bars):   # cygearman's rows stand out
        if b["label"].startswith("cygearman"):
            tick.set_fontweight("bold")
    for i, b in enumerate(bars):
        ax.text(b["max"] * 1.12, i, f"{b['median']:.2f}×", va="center", ha="left", fontsize=10,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"})
    starts = [0] + [i for i in range(1, n) if bars[i]["group"] != bars[i - 1]["group"]]
    for i in starts[1:]:                          # a rule between two workloads
        ax.axhline(i - 0.5, color="#999999", linewidth=0.6)
    ax.set_xlabel(spec.get("xlabel", "ratio to libgearman (> 1: faster than libgearman; log scale)")
                  + "\nbar: median over the rounds, whisker: min–max", fontsize=10)
    ax.tick_params(axis="x", labelsize=10)
    ax.set_title(spec["title"] + "\n" + spec["subtitle"], fontsize=10)
    ax.grid(axis="x", which="major", linewidth=0.4, alpha=0.6)
    # each workload's name, vertical, left of its rows' labels
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    label_w = max(t.get_window_extent(renderer).width for t in ax.get_yticklabels())
    x = -(label_w + 12) / ax.get_window_extent(renderer).width
    side = transforms.blended_transform_factory(ax.transAxes, ax.transData)
    for k, i in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else n
        ax.text(x, (i + end - 1) / 2, bars[i]["group"], transform=side, rotation=90,
                ha="right", va="center", fontsize=10, fontweight="bold", clip_on=False,
                color=colors[i])
    fig.savefig(argv[1], dpi=100, bbox_inches="tight", pad_inches=0.15)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
