"""Grouped bar chart (or, with "chart": "line", a time series) of one figure's JSON result: plot.py RESULT.json OUT.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

result = json.load(open(sys.argv[1]))
rows = result["rows"]
groups = list(dict.fromkeys(row["group"] for row in rows))
impls = list(dict.fromkeys(row["impl"] for row in rows))

if result.get("chart") == "line":
    # A time series (bench/load.mjs): one line per contender, the groups are the sampling times in order.
    figure, axes = plt.subplots(figsize=(7.5, 3.6), dpi=110)
    for impl in impls:
        points = [(g, row["value"]) for g, group in enumerate(groups) for row in rows if row["group"] == group and row["impl"] == impl]
        axes.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=3, label=impl)
    axes.set_xticks(range(len(groups)), groups, rotation=60, ha="right", fontsize=7)
    axes.set_ylim(bottom=0)
else:
    width = 0.8 / len(impls)
    figure, axes = plt.subplots(figsize=(1.6 + 1.3 * len(groups) * max(1, len(impls) / 2), 3.6), dpi=110)
    for i, impl in enumerate(impls):
        xs, values = [], []
        for g, group in enumerate(groups):
            row = next((r for r in rows if r["group"] == group and r["impl"] == impl), None)
            if row is not None and row["value"] is not None:
                xs.append(g + (i - (len(impls) - 1) / 2) * width)
                values.append(row["value"])
        bars = axes.bar(xs, values, width * 0.95, label=impl)
        # Three significant digits, but never in exponent form: 1,390 rather than 1.39e+03.
        axes.bar_label(bars, labels=[f"{v:,.0f}" if v >= 100 else f"{v:.3g}" for v in values], fontsize=7, padding=1)
    axes.set_xticks(range(len(groups)), groups)
axes.set_ylabel(result["unit"])
axes.set_title(result.get("title", result["figure"]), fontsize=10)
axes.legend(fontsize=7, frameon=False)
axes.spines[["top", "right"]].set_visible(False)
load = result.get("loadBefore")
if load:
    figure.text(0.99, 0.01, f"load avg before {load[0]:.1f}, after {result['loadAfter'][0]:.1f} (2 cores)", ha="right", fontsize=6, color="gray")
figure.tight_layout()
figure.savefig(sys.argv[2])
