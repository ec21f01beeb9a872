"""The ship's symmetries, in one place: the left/right mirror and the 180-degree roll.

Model frame (``docs/seed-facts.md``): x = wingspan, y = length, z = height (top,
with canopy and droid, toward +z).

* **Mirror** ``x -> -x``: an exact symmetry of the ship's shape. A horizontally
  flipped image shows the mirrored ship, so training flips relabel each keypoint
  as its mirror partner (:data:`MIRROR_PAIRS`).
* **Roll** ``(x, y, z) -> (-x, y, -z)``, a 180-degree turn about the length axis:
  a *near* symmetry. The box is almost roll-symmetric (z from -0.032 to +0.034)
  and the silhouette nearly so, so keypoints and outlines leave two poses,
  ``T`` and ``T @ T_ROLL180``, that fit almost equally well. Only the surface
  (canopy and droid on top, a plain belly) tells them apart. Everything that
  must choose between the two hypotheses (the detector's labelling, the side
  classifier, the tracker's roll evidence) uses the functions here.

Convention: a permutation ``p`` relabels keypoints as ``new[i] = old[p[i]]``.
"""

from __future__ import annotations

import numpy as np

#: Left/right mirror (x -> -x) exchanges these box corners (seed order).
MIRROR_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7))
#: The 180-degree roll, (x, y, z) -> (-x, y, -z), maps the box's corners onto each other so.
ROLL180_PAIRS = ((0, 5), (1, 4), (2, 7), (3, 6))
#: (8,) the roll's box-corner permutation (``new[i] = old[ROLL180_PERM[i]]``).
ROLL180_PERM = np.array([5, 4, 7, 6, 1, 0, 3, 2])
#: (4, 4) the 180-degree roll about the model's y axis, as a transform of model points.
T_ROLL180 = np.diag([-1.0, 1.0, -1.0, 1.0])
#: (3,) sign flips of model coordinates under each symmetry.
MIRROR_SIGNS = np.array([-1.0, 1.0, 1.0])
ROLL180_SIGNS = np.array([-1.0, 1.0, -1.0])


def pairs_to_permutation(pairs, n: int = 8) -> np.ndarray:
    """Index pairs -> (n,) permutation ``p`` with ``new[i] = old[p[i]]``."""
    perm = np.arange(n)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def mirror_permutation() -> np.ndarray:
    """(8,) box-corner permutation of the left/right mirror (0<->1, 2<->3, 4<->5, 6<->7)."""
    return pairs_to_permutation(MIRROR_PAIRS)


def symmetry_permutation(points_3d: np.ndarray, signs: np.ndarray, tol: float) -> np.ndarray | None:
    """(K,) index of each point's image under the sign flip ``signs`` (3,), or None where the
    set is not closed under it within ``tol`` (model units)."""
    pts = np.asarray(points_3d, np.float64).reshape(-1, 3)
    d = np.linalg.norm((pts * signs)[:, None, :] - pts[None, :, :], axis=2)  # (K, K)
    perm = d.argmin(axis=1)
    if d[np.arange(len(pts)), perm].max() > tol or len(set(perm.tolist())) != len(pts):
        return None
    return perm


def rolled(T_cam_obj: np.ndarray) -> np.ndarray:
    """(4, 4) the other roll hypothesis of a pose: ``T_cam_obj @ T_ROLL180``."""
    return np.asarray(T_cam_obj, np.float64) @ T_ROLL180


def top_faces_camera(T_cam_obj: np.ndarray) -> bool:
    """Whether the model's +z side faces the camera: its normal points towards the camera
    centre from the model origin. The two roll hypotheses of a pose seen off edge-on
    always disagree on this."""
    T = np.asarray(T_cam_obj, np.float64)
    return bool(T[:3, 2] @ (-T[:3, 3]) > 0.0)


def facing_cos(T_cam_obj: np.ndarray) -> float:
    """Cosine between the model's +z (up) axis and the line from the model origin to the
    camera: +1 top face-on, -1 belly face-on, 0 edge-on. Face-on views (``|cos| > 0.5``,
    within 60 degrees) show the canopy or the plain belly; edge-on ones (``|cos| < 0.2``)
    show neither, and there the side cue is right little more than half the time."""
    T = np.asarray(T_cam_obj, np.float64)
    to_cam = -T[:3, 3]
    return float(T[:3, 2] @ to_cam / max(float(np.linalg.norm(to_cam)), 1e-12))


#: Roll evidence: no weight edge-on (|cos| <= EDGE_COS), full weight face-on (|cos| >= FACE_COS).
EDGE_COS, FACE_COS = 0.2, 0.5
#: The most one frame's evidence counts (nats): a single confident frame cannot outvote a track.
MAX_FRAME_LLR = 3.0


def roll_llr(p_top: float, T_cam_obj: np.ndarray, edge_on_weight: float = 0.0) -> float:
    """Log-odds that ``T_cam_obj`` (rather than ``rolled(T_cam_obj)``) is the true roll, from
    the side cue's ``p_top`` (probability that the top faces the camera) at that pose.

    The cue's logit, signed by the side the pose shows, clipped to :data:`MAX_FRAME_LLR`
    and weighted from ``edge_on_weight`` edge-on to 1 face-on (:func:`facing_cos`): edge-on
    a cue that reads the mid-plane alone is barely better than a coin while its raw output
    can still be confident (weight 0); one that also reads the profile is worth more there
    (its measured weight: :attr:`xwing.infer.side.SideClassifier.edge_on_weight`). 0 where
    ``p_top`` is NaN (not asked). Additive over frames: a track sums it.
    """
    if not np.isfinite(p_top):
        return 0.0
    p = min(max(float(p_top), 1e-6), 1.0 - 1e-6)
    llr = float(np.clip(np.log(p / (1.0 - p)), -MAX_FRAME_LLR, MAX_FRAME_LLR))
    c = facing_cos(T_cam_obj)
    ramp = float(np.clip((abs(c) - EDGE_COS) / (FACE_COS - EDGE_COS), 0.0, 1.0))
    weight = edge_on_weight + (1.0 - edge_on_weight) * ramp
    return weight * (llr if c > 0 else -llr)


def choose_roll(p_top: float, T_a: np.ndarray, T_b: np.ndarray, min_margin: float = 0.15) -> int | None:
    """Which of two roll hypotheses agrees with a top/bottom probability: 0 (``T_a``), 1
    (``T_b``), or None when ``|p_top - 0.5| < min_margin`` or both poses show the camera the
    same side (then the evidence cannot tell them apart)."""
    if abs(p_top - 0.5) < min_margin:
        return None
    top = p_top > 0.5
    a, b = top_faces_camera(T_a), top_faces_camera(T_b)
    if a == b:
        return None
    return 0 if a == top else 1


def pick_roll(p_top: float, T_a: np.ndarray, T_b: np.ndarray, uv_a: np.ndarray, points_3d: np.ndarray,
              valid: np.ndarray | None = None, min_margin: float = 0.15) -> int:
    """Of two roll hypotheses, ``T_a`` (from keypoints ``uv_a`` (K, 2) of ``points_3d`` (K, 3)) and
    ``T_b`` (its relabelling), the one a top/bottom probability ``p_top`` picks: 0 or 1; 0 where
    the evidence is weaker than ``min_margin``.

    Near edge-on two noisy poses may show the camera the same side (:func:`choose_roll`
    cannot tell); the keypoints' own arrangement still does (:func:`side_of`, which the
    relabelling mirrors)."""
    pick = choose_roll(p_top, T_a, T_b, min_margin)
    if pick is None and abs(p_top - 0.5) >= min_margin:
        top = side_of(uv_a, points_3d, valid) < 0
        pick = 0 if top == (p_top > 0.5) else 1
    return 0 if pick is None else pick


def side_of(uv: np.ndarray, points_3d: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Which side of the model's x-y plane faces the camera, from 2D keypoints alone.

    Fits the affine map ``uv ~ A (x, y) + b`` from the model points' (x, y) to their
    pixels (least squares over finite, valid points) and returns ``det(A)`` (...,):
    negative when the top (+z) faces the camera (image y grows downwards), positive
    for the bottom; the sign also flips between a labelling and its roll relabelling
    (x -> -x). The network's *side* output is trained on the sign for the true labels,
    so at inference the labelling whose sign agrees with it is chosen (:func:`resolve_roll`).

    Args:
        uv: (K, 2) or (B, K, 2) pixels. points_3d: (K, 3). valid: (K,) or (B, K) bool.
    """
    uv = np.asarray(uv, np.float64)
    squeeze = uv.ndim == 2
    if squeeze:
        uv = uv[None]
    b, k, _ = uv.shape
    ok = np.isfinite(uv).all(axis=-1)
    if valid is not None:
        ok &= np.broadcast_to(np.asarray(valid, bool), (b, k))
    X = np.concatenate([np.asarray(points_3d, np.float64)[:, :2], np.ones((k, 1))], axis=1)  # (K, 3)
    out = np.zeros(b)
    for i in range(b):
        m = ok[i]
        if m.sum() < 3:
            continue
        coef, *_ = np.linalg.lstsq(X[m], uv[i, m], rcond=None)  # (3, 2): rows x, y, 1
        out[i] = np.linalg.det(coef[:2].T)
    return out[0] if squeeze else out


def resolve_roll(uv: np.ndarray, conf: np.ndarray, p_side: np.ndarray, points_3d: np.ndarray,
                 roll180_perm: np.ndarray):
    """Pick, per image, the labelling (as predicted, or roll-relabelled) whose
    :func:`side_of` agrees with the network's side probability.

    Args:
        uv: (B, K, 2), conf: (B, K) as decoded; p_side: (B,) probability that the bottom
            faces the camera (the sign :func:`side_of` gives the true labels).

    Returns:
        uv, conf (chosen), uv_alt, conf_alt (the other hypothesis), flip (B,): the
        probability that the prediction's own labelling was the rolled one.
    """
    s = side_of(uv, points_3d) > 0  # (B,) the side the predicted labelling implies
    flip = np.where(s, 1.0 - p_side, p_side)
    rp = np.asarray(roll180_perm)
    uv_r, conf_r = uv[:, rp], conf[:, rp]
    do = flip > 0.5
    uv_true = np.where(do[:, None, None], uv_r, uv)
    conf_true = np.where(do[:, None], conf_r, conf)
    uv_alt = np.where(do[:, None, None], uv, uv_r)
    conf_alt = np.where(do[:, None], conf, conf_r)
    return uv_true, conf_true, uv_alt, conf_alt, flip
