"""The ``align`` part: the convergence basin of the silhouette alignment
(:func:`xwing.infer.refine.align.align`).

Rendered samples (the data engine's distribution, ship in view, truncated ones
included); from each, starts 1, 2, 3, 6 and 12 px off (:data:`ALIGN_STARTS_PX`: mean
box-corner error along a random SE(3) direction, :func:`xwing.geometry.perturb.perturb_to_error`).
Per start: the final error's median, the share below 0.5 px and 1 px, the accepted
share, ms and ms per stage (raster, unmixing, blur, Jacobian, solve, scores); from
the 2 px starts also the short schedule for close starts
(:data:`xwing.infer.refine.align.CLOSE_START`) and the tracker's
(:data:`~xwing.infer.refine.align.TRACKING`), as rows ``2 short`` and ``2 tracking``. Rendering needs
the render extras, imported only here.
"""

from __future__ import annotations

import time

import numpy as np

from xwing.eval.bench.config import ALIGN_SHORT_STARTS_PX, ALIGN_STARTS_PX
from xwing.geometry.camera import seed_camera
from xwing.geometry.perturb import perturb_to_error
from xwing.geometry.projection import project_points
from xwing.infer.latency import spread
from xwing.infer.refine.align import CLOSE_START, TRACKING, AlignConfig, align
from xwing.model.keypoints import SEED_BOX_CORNERS


def align_basin(n_samples: int, seed: int, starts=ALIGN_STARTS_PX, short_starts=ALIGN_SHORT_STARTS_PX,
                progress_update=None, config: AlignConfig | None = None) -> dict:
    """Convergence basin of :func:`xwing.infer.refine.align.align` on ``n_samples`` rendered 256 x 256
    images (the data engine's distribution, ship in view; truncated ones included)."""
    from xwing.render.generator import GeneratorConfig, SampleGenerator
    from xwing.render.gl import use_cpu_renderer

    use_cpu_renderer()
    cam = seed_camera()
    gen = SampleGenerator(GeneratorConfig(seed=seed, p_out_of_view=0.0), cam)
    verts = gen.mesh.vertices.astype(np.float64)
    faces = gen.mesh.faces
    config = config or AlignConfig()
    schedules = ([(f"{s:g}", s, config) for s in starts] + [(f"{s:g} short", s, CLOSE_START) for s in short_starts]
                 + [(f"{s:g} tracking", s, TRACKING) for s in short_starts])
    rows: dict = {name: [] for name, _, _ in schedules}
    stage_ms: dict = {name: [] for name, _, _ in schedules}
    index, taken, categories = 0, 0, {}
    while taken < n_samples and index < 20 * n_samples + 20:
        sample = gen.sample_index(index)
        index += 1
        if not sample.ship_visible:
            continue
        taken += 1
        categories[sample.category] = categories.get(sample.category, 0) + 1
        uv_gt = project_points(SEED_BOX_CORNERS, sample.T_cam_obj, cam.K)
        # one start per error (seeded by sample and error), shared by every schedule from it
        start_of = {s: perturb_to_error(sample.T_cam_obj, cam.K, SEED_BOX_CORNERS, s,
                                        np.random.default_rng([seed, index, int(round(10 * s))]))
                    for s in {s for _, s, _ in schedules}}
        for name, s, cfg in schedules:
            T0, e0 = start_of[s]
            t0 = time.perf_counter()
            res = align(sample.image, cam.K, verts, faces, T0, cfg)
            ms = (time.perf_counter() - t0) * 1e3
            e1 = float(np.linalg.norm(project_points(SEED_BOX_CORNERS, res.T_cam_obj, cam.K) - uv_gt, axis=1).mean())
            rows[name].append((e0, e1, res.ok, ms, res.quality))
            stage_ms[name].append(res.timings_ms)
        if progress_update is not None:
            progress_update()
    out = {"n_samples": taken, "seed": seed, "categories": categories, "config": config.to_dict(),
           "short_config": CLOSE_START.to_dict(), "tracking_config": TRACKING.to_dict(),
           "definition": "error = mean distance of the 8 box corners to their true projections (px); "
                         "final = the pose align() returns (its start when it rejects the result)",
           "by_start": {}}
    for name, r in rows.items():
        if not r:
            continue
        a = np.array(r, dtype=np.float64)  # (n, 5): start err, final err, ok, ms, quality
        ok = a[:, 2] > 0
        stages = sorted({k for t in stage_ms[name] for k in t})
        out["by_start"][name] = {
            "start_err_px_mean": float(a[:, 0].mean()), "final_err_px_median": float(np.median(a[:, 1])),
            "below_05px": float(np.mean(a[:, 1] < 0.5)), "below_1px": float(np.mean(a[:, 1] < 1.0)),
            "ok_rate": float(ok.mean()),
            "final_err_px_median_ok": float(np.median(a[ok, 1])) if ok.any() else None,
            "improved_rate": float(np.mean(a[:, 1] < a[:, 0])),
            # accepted although not converged: what the quality gate lets through
            "accepted_above_1px": float(np.mean(ok & (a[:, 1] >= 1.0))),
            "ms": spread(a[:, 3]),
            "stage_ms_median": {k: float(np.median([t.get(k, 0.0) for t in stage_ms[name]])) for k in stages}}
    return out
