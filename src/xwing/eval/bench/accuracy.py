"""The ``accuracy`` part: ``xwing eval`` metrics of each recipe's trained model on one test set.

Ours runs with the refinement every command runs by default (or ``--refine``), the
seed recipe without any (its own pipeline had none). Without checkpoints the part
is skipped with a note: random weights say nothing about accuracy.
"""

from __future__ import annotations

from pathlib import Path

from xwing.eval.bench.config import BenchConfig
from xwing.eval.evaluate import evaluate
from xwing.geometry.camera import seed_camera
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.factory import load_detector
from xwing.io.dataset import SeedDataset


def ensure_testset(cfg: BenchConfig, out: Path, progress: bool, notes: list[str]) -> Path | None:
    """The test set: ``--testset`` (default data/test); with ``--test-count N`` the first N
    images of the same stream (seed ``--test-seed``) rendered into ``out/testset`` when
    ``--testset`` is absent. None (and a note) when there is none."""
    p = Path(cfg.testset)
    if p.is_dir():
        return p
    if cfg.test_count > 0:
        from xwing.render.generator import GeneratorConfig
        from xwing.render.writer import render_dataset

        q = out / "testset"
        render_dataset(q, cfg.test_count, GeneratorConfig(seed=cfg.test_seed), seed_camera(), progress=progress)
        return q
    notes.append("accuracy skipped: no test set (run `make testset`, or pass --test-count N to render a smaller one)")
    return None


def accuracy(onnx_path: str, testset: Path, refine: str, limit: int, threads: int, progress: bool) -> dict:
    """``xwing eval`` metrics (with in_image / truncated subsets and per-stage figures), with
    ``threads`` ONNX Runtime intra-op threads (0: one per core)."""
    ds = SeedDataset(testset)
    det = load_detector(onnx_path, None, threads or None)
    est = PoseEstimator(det, ds.camera, PipelineConfig(refine=refine))
    metrics, _ = evaluate(est, ds, progress=progress, limit=limit or None)
    metrics["testset"] = str(testset)
    return metrics


def same_budget(training: dict) -> bool | None:
    """Both recipes trained with the same wall-clock budget (``max_minutes``), where stated."""
    a, b = (training.get("ours") or {}).get("budget_minutes"), (training.get("seed") or {}).get("budget_minutes")
    if not a or not b:
        return None
    return abs(a - b) <= 0.05 * max(a, b)
