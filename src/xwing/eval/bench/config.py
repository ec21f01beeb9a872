"""What a bench run depends on (:class:`BenchConfig`, saved in bench.json) and its fixed figures."""

from __future__ import annotations

from dataclasses import dataclass

from xwing.config import SavedConfig
from xwing.defaults import DEFAULT_MODEL, DEFAULT_REFINE

#: The parts, in the order they run (``--only`` picks some).
PARTS = ("model", "track", "render", "accuracy", "align")
#: Goals of issue 8 (ours against the seed recipe at the same training budget).
#: Ours in its default (aligned) tracking mode against the seed recipe's per-frame fast path
#: (the fast mode carried 10x before the default mode aligned every frame).
GOAL_SPEEDUP_TRACK = 4.0
GOAL_ROT_ERR_RATIO = 2.0
#: Input side of every cross-recipe latency figure (the seed's frames).
COMPARE_SIZE = 256
#: Starts of the alignment basin: mean box-corner error (px) from the true pose.
ALIGN_STARTS_PX = (1.0, 2.0, 3.0, 6.0, 12.0)
#: Starts from which the short schedule for close starts and the tracker's are measured too.
ALIGN_SHORT_STARTS_PX = (2.0,)


@dataclass(frozen=True)
class BenchConfig(SavedConfig):
    """Everything a bench run depends on (saved in bench.json).

    ``threads`` and ``track_threads`` are ONNX Runtime intra-op thread counts, each
    measured (0: one per core); the faster is reported. ``track_refine``: our
    tracker's mode in the tracking part (default: ``xwing track``'s); the seed
    recipe tracks per frame without refinement, as it did.
    """

    parts: tuple[str, ...] = PARTS
    model: str = DEFAULT_MODEL
    ours_ckpt: str = ""
    seed_ckpt: str = ""
    threads: tuple[int, ...] = (1, 0)
    warmup: int = 3
    repeats: int = 20
    flight: str = ""
    flight_frames: int = 150
    flight_seed: int = 11
    track_threads: tuple[int, ...] = (1, 2)
    track_repeats: int = 3
    track_modes: tuple[str, ...] = ("cost", "model")
    track_refine: str = DEFAULT_REFINE
    oracle_noise_px: float = 1.0
    render_count: int = 20
    testset: str = "data/test"
    test_limit: int = 0
    test_count: int = 0
    test_seed: int = 2026
    refine: str = ""
    align_samples: int = 20
    align_seed: int = 777
