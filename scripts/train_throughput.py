"""Where a training step's time goes on this machine, and what each change buys.

    .venv/bin/python scripts/train_throughput.py --out runs/throughput [--steps 30] [--items 64]

Three parts, each timed on its own (nothing else should run meanwhile; the parts that
render in this process run last, so that no DataLoader worker forks a GL context):

1. data, per crop, in this process (one thread): rendering (the generator), augmentation,
   target encoding;
2. compute, per step, on one batch held in memory: forward, loss, backward, optimiser,
   for the recipe as configured and for each variant (channels-last, one thread,
   input 96, batch 32, ``torch.compile``);
3. end to end, crops per second through the DataLoader as training runs it (rendering
   included), with 0, 1 and 2 workers, and with each rendered crop reused for several
   augmented items (pre-rendered shards; their rendering time counted).

Writes ``throughput.json`` and ``throughput.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _median_ms(samples: list[float]) -> float:
    return round(1e3 * statistics.median(samples), 3)


def data_costs(cfg, n_items: int) -> dict:
    """Median ms per crop of rendering, augmentation and encoding (one process, one thread)."""
    import cv2

    from xwing.geometry.projection import project_points
    from xwing.learn.augment import augment
    from xwing.learn.data import RenderedDataset, _fit_to_input
    from xwing.learn.train import augment_config, generator_options, make_parts

    cv2.setNumThreads(1)
    pts, codec, _ = make_parts(cfg)
    ds = RenderedDataset(pts, codec, cfg.input_size, cfg.seed, None, generator_options(cfg))
    aug = augment_config(cfg)
    gen = ds.generator()
    gen.sample(np.random.default_rng(0))  # GL context and mesh upload
    t_render, t_aug, t_enc = [], [], []
    for p in range(n_items):
        rng = np.random.default_rng([cfg.seed, p])
        t0 = time.perf_counter()
        g = gen.sample(rng)
        t1 = time.perf_counter()
        image, K = _fit_to_input(g.image, g.camera.K, cfg.input_size)
        uv = project_points(pts.points_3d, g.T_cam_obj, K)
        image, uv, K, T = augment(image, uv, K, g.T_cam_obj, pts, rng, aug)
        t2 = time.perf_counter()
        valid = np.isfinite(uv).all(axis=1) & bool(g.ship_visible)
        codec.encode(np.nan_to_num(uv, nan=-1e6), cfg.input_size, cfg.input_size, valid)
        t3 = time.perf_counter()
        t_render.append(t1 - t0), t_aug.append(t2 - t1), t_enc.append(t3 - t2)
    return {"items": n_items, "render_ms": _median_ms(t_render), "augment_ms": _median_ms(t_aug),
            "encode_ms": _median_ms(t_enc)}


def _training_data(cfg):
    """The run's on-the-fly training dataset, as ``xwing train`` builds it."""
    from xwing.learn.data import RenderedDataset
    from xwing.learn.train import augment_config, generator_options, make_parts

    pts, codec, _ = make_parts(cfg)
    return RenderedDataset(pts, codec, cfg.input_size, cfg.seed, augment_config(cfg), generator_options(cfg))


def _batch(cfg, n: int):
    """One training batch of ``n`` rendered items (collated tensors)."""
    from torch.utils.data import DataLoader

    from xwing.learn.data import collate

    ds = _training_data(cfg)
    # rendered in a worker, so this process never holds a GL context (as train does)
    return next(iter(DataLoader(ds, batch_size=n, sampler=range(n), num_workers=1, collate_fn=collate)))


def compute_costs(cfg, steps: int, channels_last: bool = False, compile_: bool = False,
                  threads: int | None = None) -> dict:
    """Median ms per step of forward, loss, backward and optimiser on one batch in memory."""
    import torch

    from xwing.learn.losses import compute_loss
    from xwing.learn.net import build_net
    from xwing.learn.train import make_optimizer, make_parts

    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    pts, _, net_cfg = make_parts(cfg)
    model = build_net(net_cfg)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt, _ = make_optimizer(cfg, model)
    fwd = torch.compile(model) if compile_ else model
    roll_perm = torch.as_tensor(np.asarray(pts.roll180_perm))
    batch = _batch(cfg, cfg.batch_size)
    model.train()
    t_compile = None
    times: dict[str, list[float]] = {"forward": [], "loss": [], "backward": [], "optimizer": []}
    for i in range(steps + 3):  # three warm-up steps (the first also compiles)
        t0 = time.perf_counter()
        x = batch["image"].permute(0, 3, 1, 2).float()
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        heat, scores = fwd(x)
        t1 = time.perf_counter()
        loss, _ = compute_loss(heat, scores, batch, roll_perm, cfg)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if i == 0:
            t_compile = t4 - t0
        if i >= 3:
            for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[k].append(v)
    total = [sum(v) for v in zip(*times.values())]
    out = {k + "_ms": _median_ms(v) for k, v in times.items()}
    out["step_ms"] = _median_ms(total)
    out["crops_per_s"] = round(cfg.batch_size / statistics.median(total), 1)
    out["first_step_s"] = round(t_compile, 2)
    torch.set_num_threads(threads_before)
    return out


class _Reused:
    """A dataset whose every rendered crop serves ``reuse`` consecutive positions, each with its own
    augmentation: what pre-rendered shards give, rendering counted where it happens."""

    def __init__(self, base, reuse: int):
        self.base, self.reuse = base, reuse
        self._cache: tuple[int, object] | None = None

    def __len__(self):
        return len(self.base)

    def __getitem__(self, position: int):
        from xwing.learn.data import make_item

        src = position // self.reuse
        if self._cache is None or self._cache[0] != src:
            rng = np.random.default_rng([self.base.seed, src])
            self._cache = (src, self.base.generator().sample(rng))
        g = self._cache[1]
        rng = np.random.default_rng([self.base.seed, 1, position])
        return make_item(g.image, g.camera.K, g.T_cam_obj, bool(g.ship_visible), self.base.pts, self.base.codec,
                         self.base.size, rng, self.base.aug)


def end_to_end(cfg, steps: int, workers: int, reuse: int = 1) -> dict:
    """Crops per second of the whole training loop (rendering, augmentation, step)."""
    import torch
    from torch.utils.data import DataLoader

    from xwing.learn.data import PositionSampler, collate
    from xwing.learn.losses import compute_loss
    from xwing.learn.net import build_net
    from xwing.learn.train import make_optimizer, make_parts

    torch.manual_seed(0)
    pts, _, net_cfg = make_parts(cfg)
    model = build_net(net_cfg)
    opt, _ = make_optimizer(cfg, model)
    roll_perm = torch.as_tensor(np.asarray(pts.roll180_perm))
    ds = _training_data(cfg)
    data = _Reused(ds, reuse) if reuse > 1 else ds
    warm = 3
    loader = DataLoader(data, batch_size=cfg.batch_size, sampler=PositionSampler(0, (steps + warm) * cfg.batch_size),
                        num_workers=workers, collate_fn=collate, drop_last=True,
                        prefetch_factor=4 if workers else None)
    model.train()
    t_first = None
    for i, batch in enumerate(loader):
        if i == warm:
            t_first = time.perf_counter()
        x = batch["image"].permute(0, 3, 1, 2).float()
        heat, scores = model(x)
        loss, _ = compute_loss(heat, scores, batch, roll_perm, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t_first
    return {"workers": workers, "reuse": reuse, "steps": steps, "crops_per_s": round(steps * cfg.batch_size / dt, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/throughput")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per compute variant (default 30)")
    ap.add_argument("--e2e-steps", type=int, default=40, help="timed steps per end-to-end variant (default 40)")
    ap.add_argument("--items", type=int, default=64, help="crops for the data costs (default 64)")
    ap.add_argument("--skip-compile", action="store_true", help="leave torch.compile out")
    args = ap.parse_args(argv)

    from xwing.learn.config import TrainConfig

    cfg = TrainConfig()  # the shipped recipe's data and network (xwing train --preset fast)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(),
                 "cpus": os.cpu_count(), "recipe": {"input_size": cfg.input_size, "batch_size": cfg.batch_size,
                                                    "backbone": cfg.backbone}}
    variants = [("as configured", cfg, {}), ("channels-last", cfg, {"channels_last": True}),
                ("one thread", cfg, {"threads": 1}), ("input 96", replace(cfg, input_size=96), {}),
                ("batch 32", replace(cfg, batch_size=32), {})]
    if not args.skip_compile:
        variants.append(("torch.compile", cfg, {"compile_": True}))
    res["compute"] = {}
    for name, c, kw in variants:
        print(f"compute: {name} ...", flush=True)
        try:
            res["compute"][name] = compute_costs(c, args.steps, **kw)
        except Exception as e:  # noqa: BLE001 - a variant that cannot run here is reported, not fatal
            res["compute"][name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
        print(res["compute"][name], flush=True)
    res["end_to_end"] = []
    # in-process rendering last: a forked worker must not inherit this process's GL context
    for workers, reuse in ((1, 1), (2, 1), (1, 2), (1, 4), (0, 1)):
        print(f"end to end: workers {workers}, reuse {reuse} ...", flush=True)
        res["end_to_end"].append(end_to_end(cfg, args.e2e_steps, workers, reuse))
        print(res["end_to_end"][-1], flush=True)
    print("data costs ...", flush=True)
    res["data"] = data_costs(cfg, args.items)
    print(res["data"], flush=True)
    (out / "throughput.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [f"# Training throughput ({res['machine']}, {res['cpus']} CPUs)", "", f"`{res['command']}`", "",
             "Data, per crop (one process, one thread): "
             + ", ".join(f"{k[:-3]} {v} ms" for k, v in res["data"].items() if k.endswith("_ms")), "",
             "| compute variant | forward | loss | backward | optimiser | step ms | crops/s | first step s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in res["compute"].items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | | | | |")
        else:
            lines.append(f"| {name} | {r['forward_ms']} | {r['loss_ms']} | {r['backward_ms']} | {r['optimizer_ms']} "
                         f"| {r['step_ms']} | {r['crops_per_s']} | {r['first_step_s']} |")
    lines += ["", "| end to end: workers | crops per render | crops/s |", "|---|---|---|"]
    lines += [f"| {r['workers']} | {r['reuse']} | {r['crops_per_s']} |" for r in res["end_to_end"]]
    (out / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
