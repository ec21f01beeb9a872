"""``report.md`` (the metric table, per subset and per stage) and ``plots.png`` of an evaluation.

Cells: a number to 4 significant digits, ``inf`` for an infinite error (a
failed image), ``n/a`` where there is no data (NaN, None).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from xwing.eval.records import ImageRecord
from xwing.eval.summary import METRIC_KEYS
from xwing.io.atomic import atomic_write_text

SUBSETS = ("in_image", "truncated", "in_view", "truncated_in_view", "star_field", "cluttered")


def format_cell(v) -> str:
    """Raw metric -> table cell: inf stays "inf", NaN (no data) is "n/a"."""
    if v is None:
        return "n/a"
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "n/a"
        return "inf" if math.isinf(v) else f"{v:.4g}"
    return str(v)


def write_report(out_dir: Path, metrics: dict, title: str, notes: list[str] = ()) -> None:
    subsets = [s for s in SUBSETS if s in metrics]
    rows = ["| metric | all | " + " | ".join(subsets) + " |", "|---" * (len(subsets) + 2) + "|"]
    for k in METRIC_KEYS:
        rows.append(f"| {k} | {format_cell(metrics.get(k))} | "
                    + " | ".join(format_cell(metrics[s].get(k)) for s in subsets) + " |")
    lines = [f"# {title}", "", *rows, ""]
    if metrics.get("stages"):
        groups = [g for g in ("small_ships", "star_field", "cluttered") if g in next(iter(metrics["stages"].values()))]
        lines += ["## Per stage", "", "Median corner error (px) / share below 1 px / share below 0.5 px.", "",
                  "| stage | all | ms | " + " | ".join(g.replace("_", " ") for g in groups) + " |",
                  "|---" * (len(groups) + 3) + "|"]

        def cell(s):
            return " / ".join(format_cell(s[k]) for k in ("kp_err_px_median", "below_1px", "below_05px"))

        for name, s in metrics["stages"].items():
            lines.append(f"| {name} | {cell(s)} | {format_cell(s['ms_per_image'])} | "
                         + " | ".join(f"{cell(s[g])} (n={s[g]['n_images']})" for g in groups) + " |")
        lines.append("")
    c = metrics.get("confidence")
    if c:
        lines += ["## Confidence", "",
                  f"Over {c['n']} images with a pose: correct (rotation < 5 deg, corner median < 2 px) "
                  f"{format_cell(c['share_correct'])}, mean confidence {format_cell(c['mean_confidence'])}, "
                  f"expected calibration error {format_cell(c['ece'])}, AUROC {format_cell(c['auroc'])}, "
                  f"roll ambiguous {format_cell(c['roll_ambiguous_share'])}.", "",
                  "| confidence | images | mean confidence | share correct |", "|---|---|---|---|"]
        for b in c["reliability"]:
            lines.append(f"| {b['lo']:.1f}-{b['hi']:.1f} | {b['n']} | {format_cell(b['mean_confidence'])} | "
                         f"{format_cell(b['share_correct'])} |")
        lines.append("")
    for note in notes:
        lines.append(f"- {note}")
    atomic_write_text(out_dir / "report.md", "\n".join(lines) + "\n")


def write_plots(out_dir: Path, records: list[ImageRecord]) -> str | None:
    """Error CDFs, per-keypoint error, error vs distance and vs truncation -> ``plots.png``.
    Returns a note when matplotlib is missing (plots skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plots skipped: matplotlib is not installed (pip install 'xwing[plots]')"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # log axes over failed images (inf, clipped) warn; the plot is right
        _plots(out_dir, records, plt)
    return None


def _plots(out_dir: Path, records: list[ImageRecord], plt) -> None:
    err = np.stack([r.corner_err for r in records])  # (n, 8)
    fig, ax = plt.subplots(2, 2, figsize=(10, 8))
    e = np.sort(np.where(np.isfinite(err.ravel()), err.ravel(), 1e9))
    ax[0, 0].plot(e, np.arange(1, len(e) + 1) / len(e))
    ax[0, 0].set(xscale="log", xlabel="corner error (px)", ylabel="share of corners", title="corner error CDF",
                 xlim=(0.01, 100))
    med = [np.median(err[:, k]) for k in range(8)]
    ax[0, 1].bar(range(8), med)
    ax[0, 1].set(xlabel="corner", ylabel="median error (px)", title="per-keypoint error")
    dist = np.array([r.distance for r in records])
    img_med = np.median(err, axis=1)
    ax[1, 0].scatter(dist, np.minimum(img_med, 100), s=6)
    ax[1, 0].set(xlabel="distance", ylabel="median corner error (px)", yscale="log", title="error vs distance")
    n_out = np.array([8 - r.n_inside for r in records])
    for k in range(9):
        sel = n_out == k
        if sel.any():
            ax[1, 1].boxplot(np.minimum(img_med[sel], 100), positions=[k], widths=0.6)
    ax[1, 1].set(xlabel="true corners outside the image", ylabel="median corner error (px)", yscale="log",
                 title="error vs truncation")
    fig.tight_layout()
    fig.savefig(out_dir / "plots.png", dpi=90)
    plt.close(fig)
