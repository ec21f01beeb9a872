"""Latency of an ONNX keypoint model under ONNX Runtime: the one timing loop behind
``xwing bench`` and ``xwing export --bench``.

A timing is wall-clock ms per call (``time.perf_counter``) after untimed warm-up
calls, summarised by :func:`spread` (median, 25-75 % range, min, max, count): on a
shared CPU one number hides how far it can be trusted. The inputs are random uint8
RGB images (B, S, S, 3): a network's cost does not depend on what it sees.

Stages :func:`onnx_latency` can time:

``network``
    ONNX Runtime alone (:meth:`~xwing.infer.detector.OnnxDetector.raw`).
``decode``
    the codec's decoding of that output alone (heatmaps -> keypoints).
``detect``
    both plus the roll resolution (:meth:`~xwing.infer.detector.OnnxDetector.batch`):
    what a pipeline pays per batch.
"""

from __future__ import annotations

import time

import numpy as np

from xwing.infer.detector import OnnxDetector

STAGES = ("network", "decode", "detect")


def spread(values_ms) -> dict:
    """Median, 25-75 % range, min, max and count of timings (ms)."""
    x = np.asarray(values_ms, dtype=np.float64)
    if x.size == 0:
        return {"median": None, "p25": None, "p75": None, "min": None, "max": None, "n": 0}
    return {"median": float(np.median(x)), "p25": float(np.percentile(x, 25)),
            "p75": float(np.percentile(x, 75)), "min": float(x.min()), "max": float(x.max()), "n": int(x.size)}


def time_calls(fn, warmup: int, repeats: int) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times: :func:`spread` of ms per call."""
    for _ in range(max(0, warmup)):
        fn()
    ms = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return spread(ms)


def onnx_latency(detector: OnnxDetector, size: int, *, batch: int = 1, warmup: int = 3, repeats: int = 20,
                 stages: tuple[str, ...] = ("network", "decode"), rng: np.random.Generator | None = None
                 ) -> dict[str, dict]:
    """:func:`spread` of ms per call of each of ``stages`` (names: :data:`STAGES`) on one random
    (batch, size, size, 3) uint8 image batch drawn from ``rng`` (default: seed 0); each stage
    gets ``warmup`` untimed calls (``decode`` at least one), then ``repeats`` timed ones."""
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown latency stages {sorted(unknown)} (known: {', '.join(STAGES)})")
    rng = np.random.default_rng(0) if rng is None else rng
    x = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    calls = {"network": lambda: detector.raw(x), "detect": lambda: detector.batch(x)}
    if "decode" in stages:
        heat, _ = detector.raw(x)
        calls["decode"] = lambda: detector.codec.decode(heat)
    return {s: time_calls(calls[s], max(1, warmup) if s == "decode" else warmup, repeats) for s in stages}
