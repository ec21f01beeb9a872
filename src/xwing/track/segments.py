"""The roll of a track: segments, their summed side evidence, and the decision.

Rolled 180 degrees about its length axis the ship leaves almost the same
silhouette (:mod:`xwing.model.symmetry`); only the surface tells top from
bottom, and the side cue is sure of it only where the track shows the top or the
belly face-on, often late in a flight. So the roll is not decided per frame.

A *segment* is a run of frames along which the tracker carried one pose to the
next: tracked and predicted frames, lost frames in between, and re-detections
that agree with the segment's last pose up to the roll (within ``segment_gap``
frames). Along a segment the two hypotheses are ``T`` and ``T @ T_ROLL180`` for
all its frames together: one binary unknown. Each frame keeps

* ``parity``: 0 where its pose is the segment's reference hypothesis (the roll
  its first frame took), 1 where the tracker has since turned the track over;
* ``roll_llr``: the evidence (:func:`xwing.model.symmetry.roll_llr`, log-odds)
  that its own pose has the right roll.

Causal (:class:`RollEvidence`, inside the tracker, for live input and
``--causal``): the evidence for the reference sums as frames arrive; the roll is
*decided* once the sum's magnitude reaches ``decide_llr``, and the track is
turned over whenever its current hypothesis' sum falls to ``-decide_llr``.

From a file (:func:`decide_rolls`, after the whole input is tracked): each
segment's roll from all its frames' evidence; frames whose parity disagrees with
the sum's sign are turned over, the frames before the first face-on view too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xwing.geometry.projection import project_points
from xwing.model.symmetry import ROLL180_PERM, rolled


def reference_llr(llr: float, parity: int) -> float:
    """Evidence for a segment's reference hypothesis from evidence ``llr`` for a pose of ``parity``."""
    return llr if parity == 0 else -llr


@dataclass
class RollEvidence:
    """The causal roll state of the tracker's current segment.

    Attributes:
        decide_llr: evidence (nats) at which the roll counts as decided.
        segment: the current segment's number (-1 before the first).
        parity: the track's current hypothesis relative to the segment's reference.
        total: summed evidence for the reference hypothesis.
    """

    decide_llr: float = 4.0
    segment: int = -1
    parity: int = 0
    total: float = 0.0

    def start(self) -> None:
        """A new segment: its reference is the roll the next pose has."""
        self.segment += 1
        self.parity, self.total = 0, 0.0

    def add(self, llr: float) -> None:
        """Add the evidence ``llr`` for the pose the track shows now."""
        self.total += reference_llr(llr, self.parity)

    @property
    def current(self) -> float:
        """Summed evidence for the hypothesis the track shows now."""
        return reference_llr(self.total, self.parity)

    @property
    def decided(self) -> bool:
        return abs(self.total) >= self.decide_llr

    def should_turn(self) -> bool:
        return self.decide_llr > 0 and self.current <= -self.decide_llr

    def turn(self) -> None:
        self.parity ^= 1


def segment_totals(results) -> dict[int, float]:
    """Segment number -> summed evidence for its reference hypothesis, over all its frames."""
    totals: dict[int, float] = {}
    for r in results:
        if r.segment >= 0:
            totals[r.segment] = totals.get(r.segment, 0.0) + reference_llr(r.roll_llr, r.parity)
    return totals


def decide_rolls(results, corners_3d: np.ndarray, K: np.ndarray, dist=None, decide_llr: float = 4.0) -> list:
    """Each segment's roll from all its frames (see the module doc) -> new results.

    Args:
        results: :class:`~xwing.track.tracker.FrameResult` list, in frame order.
        corners_3d: (8, 3) box corners, to project the turned poses' corners.
        K, dist: the camera.
        decide_llr: ``roll_decided`` where the segment's summed evidence reaches this.

    A turned frame gets ``T @ T_ROLL180`` for its pose and measurement, its corners
    projected anew (their confidences follow the roll's corner permutation),
    ``parity`` and ``roll_llr`` flipped. Frames outside a segment are unchanged.
    """
    totals = segment_totals(results)
    out = []
    for r in results:
        if r.segment < 0:
            out.append(r)
            continue
        total = totals[r.segment]
        decided = abs(total) >= decide_llr
        want = 0 if total >= 0 else 1
        if r.T_cam_obj is None or r.parity == want:
            out.append(replace(r, roll_decided=decided))
            continue
        T = rolled(r.T_cam_obj)
        out.append(replace(r, T_cam_obj=T, T_meas=None if r.T_meas is None else rolled(r.T_meas),
                           corners_px=project_points(corners_3d, T, K, dist),
                           corner_conf=np.asarray(r.corner_conf)[ROLL180_PERM], parity=want,
                           roll_llr=-r.roll_llr, roll_decided=decided))
    return out
