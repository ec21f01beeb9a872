"""Refiners: what runs after the network's first answer, and the named lists of them.

A refiner takes the current accepted pass and returns the passes it ran; the
last accepted one becomes the estimate (a rejected refinement keeps the pose
before it). Its interface (:class:`Refiner`)::

    stage: str            # name in per-stage figures ("zoom", "align")
    in_tracking: bool     # run on the tracker's measurements too
    refine(estimator, image, current, T_pred=None) -> list[PassResult]

``T_pred`` (4, 4) is the tracker's prediction of this frame's pose; None for a
single image.

``--refine NAME`` picks one of :data:`REFINE_MODES`. To add a refiner, write its
class in a new module of this package and register it with one line in
:data:`REFINE_MODES` (see ``docs/architecture.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from xwing.infer.refine.align import AlignRefiner
from xwing.infer.refine.zoom import ZoomRefiner
from xwing.infer.result import PassResult


@runtime_checkable
class Refiner(Protocol):
    stage: str
    in_tracking: bool

    def refine(self, estimator, image: np.ndarray, current: PassResult, T_pred: np.ndarray | None = None
               ) -> list[PassResult]: ...


@dataclass(frozen=True)
class RefineMode:
    """A named list of refiners, run in order, each from the previous one's accepted pose."""

    refiners: tuple
    description: str

    def describe(self) -> str:
        return self.description


#: ``--refine`` names -> refiner lists. One line registers a new mode.
REFINE_MODES: dict[str, RefineMode] = {
    "none": RefineMode((), "the first pass only"),
    "zoom": RefineMode((ZoomRefiner(),), "plus zoomed passes around the ship"),
    "full": RefineMode((ZoomRefiner(), AlignRefiner()), "plus silhouette alignment (the accurate mode)"),
}


def stage_order() -> tuple[str, ...]:
    """Every stage an estimate can pass through, in pipeline order (for per-stage figures)."""
    stages = ["first", "locate"]
    for mode in REFINE_MODES.values():
        stages += [r.stage for r in mode.refiners if r.stage not in stages]
    return tuple(stages)
