"""From the parts' figures to the outputs: the headline keys and goals of bench.json
(:func:`assemble`), ``bench.md`` (tables; each goal with what limits it where missed)
and ``bench.png`` (accuracy vs speed).

The tracking headline uses the trained networks (mode ``model``) only where both
recipes have one and both keep the ship: a network that loses it skips PnP and
looks fast; otherwise the oracle's cost figures (mode ``cost``) stand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from xwing.eval.bench.config import COMPARE_SIZE, GOAL_ROT_ERR_RATIO, GOAL_SPEEDUP_TRACK
from xwing.eval.summary import METRIC_KEYS
from xwing.io.atomic import AtomicFile, atomic_write_text

RECIPE_KEYS = ("ms_batch1", "fps_batch16", "fps_end_to_end")
#: stages of one alignment, in the order they run (xwing.infer.refine.align.AlignResult.timings_ms)
STAGES = ("raster", "unmix", "blur", "jacobian", "solve", "score", "total")


def _num(v):
    """``v`` if it is a finite number (not a bool), else None."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


MAX_LOST_RATE_FOR_HEADLINE = 0.5


def headline_track_mode(doc: dict) -> tuple[str, str]:
    """``model`` (the trained networks) where both recipes have it and both keep the ship
    (a network that loses it skips PnP and looks fast), else ``cost``; and why."""
    tr = doc.get("track") or {}
    runs = {n: (tr.get(n) or {}).get("model") or {} for n in ("ours", "seed")}
    if not all(r.get("fps_end_to_end") for r in runs.values()):
        return "cost", "trained networks not given for both recipes: the oracle pays each network's cost"
    lost = {n: r.get("lost_rate") for n, r in runs.items()}
    bad = [n for n, v in lost.items() if v is None or v > MAX_LOST_RATE_FOR_HEADLINE]
    if bad:
        return "cost", (f"{' and '.join(bad)} lost the ship in more than {MAX_LOST_RATE_FOR_HEADLINE:.0%} of the "
                        "frames with its trained network, which skips work: the oracle's cost figures are used")
    return "model", "both trained networks kept the ship"


def assemble(doc: dict) -> dict:
    """Fill ``ours`` / ``seed`` (ms_batch1, fps_batch16, fps_end_to_end, eval metrics) and the
    ratios from the parts in ``doc``."""
    for name in ("ours", "seed"):
        r = doc.setdefault(name, {})
        for k in RECIPE_KEYS + METRIC_KEYS:
            r.setdefault(k, None)
        sp = doc.get("model", {}).get(name) or {}
        if sp.get("ms_batch1") is not None:
            r["ms_batch1"], r["fps_batch16"] = sp["ms_batch1"], sp["fps_batch16"]
            r["speed_model"] = sp.get("file")
        tr = doc.get("track", {}).get(name) or {}
        mode, why = headline_track_mode(doc)
        if (tr.get(mode) or {}).get("fps_end_to_end"):
            r["fps_end_to_end"] = tr[mode]["fps_end_to_end"]
            r["fps_end_to_end_mode"] = mode
            doc.setdefault("track", {})["headline_mode"] = {"mode": mode, "why": why}
        acc = doc.get("accuracy", {}).get(name)
        if acc:
            for k in METRIC_KEYS:
                r[k] = acc.get(k)
            r["in_image"], r["truncated"] = acc.get("in_image"), acc.get("truncated")
            r["refine"] = acc.get("refine")
    o, s = doc["ours"], doc["seed"]
    doc["speedup_track"] = (o["fps_end_to_end"] / s["fps_end_to_end"]
                            if _num(o["fps_end_to_end"]) and _num(s["fps_end_to_end"]) else None)
    eo, es = o.get("rot_err_deg_median"), s.get("rot_err_deg_median")
    doc["rot_err_ratio"] = (es / eo if _num(eo) and _num(es) and eo > 0 else None)
    doc["goals"] = {
        "speedup_track": {"goal": f">= {GOAL_SPEEDUP_TRACK:g}", "value": doc["speedup_track"],
                          "met": None if doc["speedup_track"] is None else doc["speedup_track"] >= GOAL_SPEEDUP_TRACK},
        "rot_err_ratio": {"goal": f">= {GOAL_ROT_ERR_RATIO:g}", "value": doc["rot_err_ratio"],
                          "met": None if doc["rot_err_ratio"] is None else doc["rot_err_ratio"] >= GOAL_ROT_ERR_RATIO},
    }
    return doc


def fmt(v, spec="{:.3g}", unit=""):
    """A figure for a table: ``n/a`` for a missing one, ``inf`` for an infinite one."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return spec.format(v) + unit


def speed_limits(doc: dict) -> list[str]:
    """Where the tracking time goes, from the measured parts: the honest account of a missed
    speed goal."""
    lines = []
    tr, md = doc.get("track", {}), doc.get("model", {})
    mo, ms_ = md.get("ours") or {}, md.get("seed") or {}
    o, s = tr.get("ours", {}), tr.get("seed", {})
    vid = (tr.get("video_read_ms") or {}).get("median")
    mode = doc["ours"].get("fps_end_to_end_mode", "cost")
    fo = (o.get(mode) or {}).get("fps_end_to_end")
    fs = (s.get(doc["seed"].get("fps_end_to_end_mode", "cost")) or {}).get("fps_end_to_end")
    if fo and fs:
        ms_o, ms_s = 1e3 / fo, 1e3 / fs
        lines.append(f"per frame: ours {ms_o:.2f} ms, seed recipe {ms_s:.2f} ms (speedup {ms_s / ms_o:.1f}x); "
                     f"a {GOAL_SPEEDUP_TRACK:g}x speedup needs ours at or below {ms_s / GOAL_SPEEDUP_TRACK:.2f} ms "
                     "per frame.")
        track_size = str(tr.get("track_size", 128))
        net_o = ((mo.get("by_size") or {}).get(track_size) or {}).get("ms_batch1", {}).get("median")
        dec_o = ((mo.get("by_size") or {}).get(track_size) or {}).get("ms_decode", {}).get("median")
        net_s = ((ms_.get("by_size") or {}).get(str(COMPARE_SIZE)) or {}).get("ms_batch1", {}).get("median")
        dec_s = ((ms_.get("by_size") or {}).get(str(COMPARE_SIZE)) or {}).get("ms_decode", {}).get("median")
        th_o = (o.get(mode) or {}).get("threads")
        th_s = (s.get(doc["seed"].get("fps_end_to_end_mode", "cost")) or {}).get("threads")
        lines.append(f"tracking ran with {th_o} (ours) and {th_s} (seed recipe) ONNX Runtime threads, the faster "
                     f"of those tried; the latencies below are at {mo.get('threads_batch1')} (ours) and "
                     f"{ms_.get('threads_batch1')} (seed) threads (0: one per core).")
        if net_o is not None:
            lines.append(f"ours: network {net_o:.2f} ms at {track_size} px + decode {fmt(dec_o)} ms; the rest (about "
                         f"{max(0.0, ms_o - net_o - (dec_o or 0)):.2f} ms) is video decoding, crops, PnP, "
                         "filtering and Python overhead.")
        if net_s is not None:
            lines.append(f"seed recipe: network {net_s:.2f} ms at {COMPARE_SIZE} px + argmax decode of "
                         f"full-resolution heatmaps {fmt(dec_s)} ms.")
        if vid:
            lines.append(f"reading and decoding the video alone costs {vid:.2f} ms/frame (a reader thread overlaps "
                         f"it with inference): fps cannot exceed about {1e3 / vid:.0f}, so the speedup cannot exceed "
                         f"about {ms_s / vid:.0f}x on this machine.")
    return lines


def accuracy_limits(doc: dict) -> list[str]:
    """Each recipe's accuracy beside what its training cost (the same budget is the premise)."""
    acc = doc.get("accuracy", {})
    if not acc.get("ours") or not acc.get("seed"):
        return [acc.get("note") or "not measured: no checkpoints given (--ours-ckpt, --seed-ckpt)."]
    lines = []
    tr = acc.get("training", {})
    for name in ("ours", "seed"):
        t = tr.get(name) or {}
        m = acc[name]
        lines.append(f"{name}: median rotation error {fmt(m.get('rot_err_deg_median'))} deg, corner error "
                     f"{fmt(m.get('kp_err_px_median'))} px, seed's NMAE {fmt(m.get('kp_nmae'))}, flip rate "
                     f"{fmt(m.get('flip_rate'))}, success "
                     f"{fmt(m.get('success_rate'))}; trained {fmt(t.get('minutes_at_last_validation'))} min "
                     f"(budget {fmt(t.get('budget_minutes'))} min), {t.get('images_seen', 'n/a')} images.")
    return lines


def write_markdown(out: Path, doc: dict) -> None:
    """``out/bench.md``: the headline table, the goals with what limits them, then each part's figures."""
    o, s = doc["ours"], doc["seed"]
    mach = doc.get("machine", {})
    L = ["# xwing bench: our pipeline against the seed's recipe", "",
         f"Machine: {mach.get('cpu_model', 'n/a')}, {mach.get('cpu_usable', 'n/a')} usable cores; "
         f"ONNX Runtime {mach.get('onnxruntime', 'n/a')}, threads tried {mach.get('ort_threads_tried', 'n/a')}; "
         "load average (1, 5, 15 min) at start and end: " + _loads(doc) + ".", "",
         *_commands(doc), *_busy_warning(doc),
         "| figure | ours | seed recipe | ours / seed |", "|---|---|---|---|"]

    def row(label, k, spec="{:.3g}", better="high"):
        a, b = o.get(k), s.get(k)
        ratio = None
        if _num(a) and _num(b) and a and b:
            ratio = a / b if better == "high" else b / a
        L.append(f"| {label} | {fmt(a, spec)} | {fmt(b, spec)} | {fmt(ratio, '{:.2f}', 'x')} |")

    row(f"ms per image, batch 1, {COMPARE_SIZE} px (ORT)", "ms_batch1", "{:.2f}", "low")
    row(f"img/s, batch 16, {COMPARE_SIZE} px (ORT)", "fps_batch16", "{:.1f}")
    row("end-to-end tracking fps (flight)", "fps_end_to_end", "{:.1f}")
    row("median rotation error, deg (test set)", "rot_err_deg_median", "{:.3g}", "low")
    row("median corner error, px (test set)", "kp_err_px_median", "{:.3g}", "low")
    row("seed's NMAE of the 8 corners, images with a pose (test set)", "kp_nmae", "{:.3g}", "low")
    row("ADD-0.1d (test set)", "add_01d", "{:.3f}")
    row("flip rate (test set)", "flip_rate", "{:.3f}", "low")
    for sub in ("in_image", "truncated"):
        a, b = (o.get(sub) or {}).get("rot_err_deg_median"), (s.get(sub) or {}).get("rot_err_deg_median")
        L.append(f"| median rotation error, deg, {sub} | {fmt(a)} | {fmt(b)} | "
                 f"{fmt(b / a if _num(a) and _num(b) and a else None, '{:.2f}', 'x')} |")
    L.append("")
    L += ["Sources: " + "; ".join(f"{k}: {v}" for k, v in (doc.get("sources") or {}).items()), ""]

    L += ["## Goals", "", "| goal | measured | met |", "|---|---|---|"]
    g = doc["goals"]
    L.append(f"| tracking fps, ours / seed recipe >= {GOAL_SPEEDUP_TRACK:g} | "
             f"{fmt(g['speedup_track']['value'], '{:.2f}')} | {_met(g['speedup_track']['met'])} |")
    L.append(f"| median rotation error, seed / ours >= {GOAL_ROT_ERR_RATIO:g} | "
             f"{fmt(g['rot_err_ratio']['value'], '{:.2f}')} | {_met(g['rot_err_ratio']['met'])} |")
    L.append("")
    L += ["What limits the speed figures:", ""] + [f"- {x}" for x in speed_limits(doc) or ["not measured."]]
    L += ["", "What limits the accuracy figures:", ""] + [f"- {x}" for x in accuracy_limits(doc)]
    L.append("")

    tr = doc.get("track")
    if tr:
        L += ["## Tracking", "", f"Flight: {tr.get('flight')} ({tr.get('n_frames')} frames). Mode `cost`: an "
              "oracle detector paying each network's full inference + decode cost with the true keypoints plus "
              f"{tr.get('oracle_noise_px')} px noise (only compute differs); mode `model`: the trained networks. "
              f"The table above uses `{(tr.get('headline_mode') or {}).get('mode', 'n/a')}`: "
              f"{(tr.get('headline_mode') or {}).get('why', '')}. Ours tracks with `--refine "
              f"{(tr.get('refine') or {}).get('ours', 'none')}` (the default mode of `xwing track`), the seed recipe "
              f"per frame without refinement; the goal is ours >= {GOAL_SPEEDUP_TRACK:g}x the seed recipe's fps "
              "in that mode.", "",
              "| recipe | mode | fps median | fps 25-75 % | threads | statuses | rotation error median |",
              "|---|---|---|---|---|---|---|"]
        for name in ("ours", "seed"):
            for mode in ("cost", "model"):
                t = (tr.get(name) or {}).get(mode)
                if not t:
                    continue
                sp = t["fps_spread"]
                L.append(f"| {name} | {mode} | {fmt(t['fps_end_to_end'], '{:.1f}')} | {fmt(sp['p25'], '{:.1f}')}-"
                         f"{fmt(sp['p75'], '{:.1f}')} | {t['threads']} | {_statuses(t.get('status_counts'))} | "
                         f"{fmt(t.get('rot_err_deg_median'))} |")
        L.append("")
    md = doc.get("model")
    if md:
        L += ["## Network latency (ONNX Runtime, CPU)", "",
              "| recipe | threads | input px | ms batch 1 (median, 25-75 %) | decode ms |", "|---|---|---|---|---|"]
        for name in ("ours", "seed"):
            m = md.get(name)
            if not m:
                continue
            for size, v in sorted(m["by_size"].items(), key=lambda kv: int(kv[0])):
                b = v["ms_batch1"]
                L.append(f"| {name} | {m.get('threads_batch1')} | {size} | {fmt(b['median'], '{:.2f}')} "
                         f"({fmt(b['p25'], '{:.2f}')}-{fmt(b['p75'], '{:.2f}')}) | "
                         f"{fmt(v['ms_decode']['median'], '{:.2f}')} |")
        L += ["", "Per thread setting (0: one per core): " + "; ".join(
            f"{name} {t}: {fmt(v['ms_batch1'], '{:.2f}')} ms batch 1, {fmt(v['fps_batch16'], '{:.1f}')} img/s batch 16"
            for name in ("ours", "seed") for t, v in ((md.get(name) or {}).get("by_threads") or {}).items()), ""]
    rd = doc.get("render")
    if rd:
        L += ["## Renderer", "", f"{rd.get('renderer')}: full 256 x 256 frames "
              f"{fmt(rd['full_256']['img_per_s'], '{:.1f}')} img/s, 128 px training crops "
              f"{fmt(rd['crop_128']['img_per_s'], '{:.1f}')} img/s (one process).", ""]
    al = doc.get("align")
    if al:
        L += ["## Alignment convergence basin", "",
              f"{al['n_samples']} rendered samples (seed {al['seed']}); {al['definition']}.", "",
              "| start px | final median px | < 0.5 px | < 1 px | accepted | median of accepted px | "
              "accepted but >= 1 px | ms median |",
              "|---|---|---|---|---|---|---|---|"]
        for k, v in al["by_start"].items():
            L.append(f"| {k} ({fmt(v['start_err_px_mean'], '{:.2f}')}) | {fmt(v['final_err_px_median'])} | "
                     f"{fmt(v['below_05px'], '{:.2f}')} | {fmt(v['below_1px'], '{:.2f}')} | "
                     f"{fmt(v['ok_rate'], '{:.2f}')} | "
                     f"{fmt(v['final_err_px_median_ok'])} | {fmt(v.get('accepted_above_1px'), '{:.2f}')} | "
                     f"{fmt(v['ms']['median'], '{:.1f}')} |")
        L += ["", "Median ms per stage of one alignment (`2 short`: the schedule for close starts, "
              "`2 tracking`: the tracker's, both from the same 2 px starts):", "",
              "| start px | " + " | ".join(STAGES) + " |",
              "|---|" + "---|" * len(STAGES)]
        for k, v in al["by_start"].items():
            st = v.get("stage_ms_median") or {}
            L.append(f"| {k} | " + " | ".join(fmt(st.get(s), '{:.2f}') for s in STAGES) + " |")
        L.append("")
    acc = doc.get("accuracy")
    if acc and acc.get("training"):
        L += ["## Training budgets", ""] + [f"- {k}: {json.dumps(v)}" for k, v in acc["training"].items()] + [""]
    if acc and acc.get("shipped"):
        m = acc["shipped"]
        L += ["Shipped model (not a same-budget recipe): rotation error median "
              f"{fmt(m.get('rot_err_deg_median'))} deg, corner error median {fmt(m.get('kp_err_px_median'))} px.", ""]
    if doc.get("notes"):
        L += ["## Notes", ""] + [f"- {n}" for n in doc["notes"]] + [""]
    atomic_write_text(out / "bench.md", "\n".join(L))


def _loads(doc: dict) -> str:
    """Load averages per part, merged where parts ran together."""
    groups: dict = {}
    for part, r in (doc.get("part_runs") or {}).items():
        la = r.get("load_average") or {}
        groups.setdefault(f"{la.get('start')} -> {la.get('end')}", []).append(part)
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{', '.join(ps)}: {k}" for k, ps in groups.items())


def _commands(doc: dict) -> list[str]:
    """The command(s) that made the figures: one, or one per part after partial reruns."""
    runs = doc.get("part_runs") or {}
    cmds: dict = {}
    for part, r in runs.items():
        cmds.setdefault(r["command"], []).append(part)
    if len(cmds) <= 1:
        return [f"Command: `{next(iter(cmds), doc.get('command', 'xwing bench'))}`", ""]
    return ["Commands:", ""] + [f"- `{c}` ({', '.join(ps)})" for c, ps in cmds.items()] + [""]


def _busy_warning(doc: dict) -> list[str]:
    """A warning line when other work shared the CPU while timings ran."""
    cores = (doc.get("machine") or {}).get("cpu_usable") or 1
    loads = [r.get("load_average") or {} for r in (doc.get("part_runs") or {}).values()] or [doc.get("load_average")
                                                                                             or {}]
    worst = max([x[0] for la in loads for x in (la.get("start"), la.get("end")) if x] or [0.0])
    if worst <= 0.5 * cores + 0.5:
        return []
    return [f"**The machine was busy** (1-minute load average up to {worst:.1f} on {cores} cores while this ran): "
            "the timings are inflated and noisy, and multi-threaded figures suffer most. Rerun on an idle machine "
            "for clean numbers; ratios measured in the same run are more robust than absolute figures.", ""]


def _statuses(c) -> str:
    return "n/a" if not c else " / ".join(f"{c.get(k, 0)} {k}" for k in ("tracked", "predicted", "detected", "lost"))


def _met(v) -> str:
    return "n/a" if v is None else ("yes" if v else "**no**")


def write_plot(out: Path, doc: dict) -> str | None:
    """Accuracy vs speed (``bench.png``); a note when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install 'xwing[plots]')"
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    pts = [(n, doc[n].get("fps_end_to_end"), doc[n].get("rot_err_deg_median")) for n in ("ours", "seed")]
    shipped = doc.get("accuracy", {}).get("shipped")
    if shipped and doc["ours"].get("fps_end_to_end"):
        pts.append(("shipped", doc["ours"]["fps_end_to_end"], shipped.get("rot_err_deg_median")))
    good = [(n, x, y) for n, x, y in pts if _num(x) and _num(y) and y > 0]
    if good:
        for n, x, y in good:
            ax[0].scatter([x], [y], s=60)
            ax[0].annotate(n, (x, y), textcoords="offset points", xytext=(6, 4))
        ax[0].set(xscale="log", yscale="log", xlabel="end-to-end tracking fps", ylabel="median rotation error (deg)",
                  title="accuracy vs speed (lower right is better)")
    else:
        ax[0].text(0.5, 0.5, "accuracy not measured\n(no checkpoints)", ha="center", va="center")
        ax[0].set_axis_off()
    labels, vals = [], []
    for n in ("ours", "seed"):
        for k, lab in (("fps_end_to_end", "track fps"), ("fps_batch16", "img/s b16")):
            if _num(doc[n].get(k)):
                labels.append(f"{n}\n{lab}")
                vals.append(doc[n][k])
    if vals:
        ax[1].bar(range(len(vals)), vals, color=["C0" if lab.startswith("ours") else "C1" for lab in labels])
        ax[1].set_xticks(range(len(vals)), labels, fontsize=8)
        ax[1].set(yscale="log", ylabel="frames per second", title="speed (this CPU)", ylim=(1, 2 * max(vals)))
        for i, v in enumerate(vals):
            ax[1].annotate(f"{v:.0f}", (i, v), ha="center", va="bottom", fontsize=8)
    else:
        ax[1].set_axis_off()
    fig.tight_layout()
    try:
        with AtomicFile(out / "bench.png") as f:
            fig.savefig(f.tmp, dpi=90, format="png")
    finally:
        plt.close(fig)
    return None
