"""How far an `xwing` command's figures move under float noise.

Runs the command ``--runs`` times with every PnP input pixel moved by N(0, sigma)
(default 1e-12 px, far below any real measurement) and prints each run's summary
line. A refactor that reorders floating-point sums changes results at that
level; tracking and RANSAC turn such changes into discrete ones (an inlier at
the threshold, a frame coasting instead of tracking), so "unchanged to float
noise" means inside this band, not bitwise equal.

    .venv/bin/python scripts/noise_band.py --runs 3 -- track assets/demo --out out/band --refine none
    .venv/bin/python scripts/noise_band.py -- eval models/xwing.onnx data/test --out out/band --limit 300

Each run writes to ``OUT_seedN`` (the command's ``--out`` with the seed appended).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys

import numpy as np

from xwing.cli import main as xwing_main
from xwing.infer import estimator


def run_perturbed(argv: list[str], seed: int, sigma: float) -> str:
    """One run of ``xwing argv`` with perturbed PnP inputs -> its last stdout line."""
    rng = np.random.default_rng(seed)
    solve = estimator.solve_pnp

    def noisy(uv, *args, **kwargs):
        uv = np.asarray(uv, np.float64)
        return solve(uv + rng.normal(0.0, sigma, uv.shape), *args, **kwargs)

    estimator.solve_pnp = noisy
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            xwing_main(argv)
    finally:
        estimator.solve_pnp = solve
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip() and not ln.startswith("wrote")]
    return lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sigma", type=float, default=1e-12, help="pixel noise (px)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then an xwing command with --out")
    args = parser.parse_args()
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    if "--out" not in argv:
        parser.error("the xwing command needs --out DIR")
    at = argv.index("--out") + 1
    for seed in range(1, args.runs + 1):
        run = list(argv)
        run[at] = f"{argv[at]}_seed{seed}"
        print(f"seed {seed}: {run_perturbed(run, seed, args.sigma)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
