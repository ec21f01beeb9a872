"""``xwing bench --out DIR``: our pipeline against the seed's recipe, side by side, in one run.

Parts (``--only`` runs one; the others already in ``DIR/bench.json`` are kept):

``model`` (:mod:`~xwing.eval.bench.speed`)
    ONNX Runtime (CPU) latency of one image and throughput of batches of 16, at
    256 x 256 for both recipes (the seed's only size) and at 128 px and each
    model's own input size, plus the codec's decode time; at each ``--threads``
    setting (ONNX Runtime intra-op threads; default 1 and one per core: on a
    shared CPU fewer threads can win), the faster reported. "ours" is the shipped
    ``models/xwing.onnx`` if present, else ``--ours-ckpt``, else a randomly
    initialised ``--preset fast`` net; "seed" is ``--seed-ckpt`` or a randomly
    initialised ``--preset seed`` net (random weights cost the same time;
    :mod:`~xwing.eval.bench.recipes`). Making a random net needs torch (imported
    there only, never for ONNX files).
``track`` (:mod:`~xwing.eval.bench.speed`)
    End-to-end tracking fps (:func:`xwing.eval.tracking.run_tracking`: video decoding,
    inference, decoding, PnP, tracking) on one rendered flight: ours runs the
    tracker, the seed recipe runs full frames every frame (``per_frame``) with
    its integer-argmax codec and PnP. Two modes: ``cost`` (the oracle detector
    that pays each network's full cost, inference + decode, but answers with the
    true keypoints plus 1 px noise, so both recipes make the same decisions and
    only compute differs) and ``model`` (the trained networks themselves, where
    given: a network that loses the ship pays for full-frame searches). Each
    recipe at each ``--track-threads`` value; the faster is reported.
``render`` (:mod:`~xwing.eval.bench.speed`)
    The data engine's img/s: full 256 x 256 frames and 128 px training crops.
``accuracy`` (:mod:`~xwing.eval.bench.accuracy`)
    ``xwing eval`` metrics (all images, ``in_image`` and ``truncated``) of both
    recipes' checkpoints (``--ours-ckpt``: ``xwing train --preset fast``;
    ``--seed-ckpt``: ``--preset seed``; trained with the same wall-clock budget,
    which is read from the checkpoints and written down), and of the shipped
    model beside them, on the test set (``make testset``: data/test) or a
    smaller one (``--test-limit``, ``--test-count``). Skipped, with a note,
    without checkpoints.
``align`` (:mod:`~xwing.eval.bench.basin`)
    The silhouette alignment's convergence basin (:func:`xwing.infer.refine.align.align`):
    rendered samples, starts 1, 3, 6 and 12 px off (mean box-corner error, a
    random SE(3) direction scaled to that error); per start the final error's
    median, the share below 0.5 px and 1 px, the accepted share and ms.

Outputs (:mod:`~xwing.eval.bench.report`): ``DIR/bench.json`` (keys ``ours`` and
``seed``, each with ``ms_batch1``, ``fps_batch16``, ``fps_end_to_end`` and the eval
metrics; ``speedup_track``, ``rot_err_ratio``; the machine), ``DIR/bench.md``
(tables; each goal with what limits it where missed) and ``DIR/bench.png``
(accuracy vs speed).

Timing (:mod:`xwing.infer.latency`): a warm-up, then repetitions; medians with the
25-75 % range. The machine's load average is written beside the figures
(:mod:`~xwing.eval.bench.machine`): on a shared CPU the spread says how far to
trust them.
"""

from xwing.eval.bench.config import BenchConfig
from xwing.eval.bench.run import run_bench

__all__ = ["BenchConfig", "run_bench"]
