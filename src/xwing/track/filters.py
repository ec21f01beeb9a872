"""Pose filters behind one interface: smoothing and prediction of a track's poses (4, 4).

Interface (:class:`PoseFilter`)::

    reset(T=None)                         forget the past (optionally start at T)
    predict() -> T | None                 the filter's own prediction of the next pose
    update(T_meas, dt, noise_scale) -> T  filter one measurement
    coast(T_pred)                         a frame without a measurement: move on with T_pred

To add a filter, write its class here (or in a module of this package) and
register it with one line in :data:`FILTERS`.

Both filter rotation and translation apart, with a
One-Euro style adaptive gain ``alpha = 1 / (1 + 1 / (2 pi f_c dt))``:

* ``alphabeta`` (default): constant-velocity alpha-beta filter in the body
  frame (the steady-state Kalman filter of that model): no lag on steady
  motion; ``f_c = min_cutoff_hz / smooth / noise + beta * |innovation| / dt``, so a
  real manoeuvre raises the gain at once, and a precise measurement (``noise``:
  its estimated angular noise over ``noise_ref``) is smoothed less;
* ``oneeuro`` (Casiez et al., CHI 2012): adaptive low-pass,
  ``f_c = min_cutoff_hz / smooth + beta * speed``; lags on fast steady motion.

``smooth`` scales the strength (0: off).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np

from xwing.geometry.pose import R_to_rotvec, invert_T, make_T, rotvec_to_R


@runtime_checkable
class PoseFilter(Protocol):
    T: np.ndarray | None

    def reset(self, T: np.ndarray | None = None) -> None: ...

    def predict(self) -> np.ndarray | None: ...

    def update(self, T_meas: np.ndarray, dt: float, noise_scale: float = 1.0) -> np.ndarray: ...

    def coast(self, T_pred: np.ndarray) -> None: ...


def _alpha(cutoff_hz: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class PoseOneEuro:
    """One-Euro filter of poses (4, 4): rotation on SO(3) (geodesic steps), translation in R^3."""

    def __init__(self, min_cutoff_hz: float, beta_rot: float, beta_trans: float, d_cutoff_hz: float):
        self.min_cutoff_hz, self.beta_rot, self.beta_trans, self.d_cutoff_hz = (
            min_cutoff_hz, beta_rot, beta_trans, d_cutoff_hz)
        self.T: np.ndarray | None = None
        self.speed_rot = 0.0
        self.speed_trans = 0.0

    def reset(self, T: np.ndarray | None = None) -> None:
        self.T = None if T is None else T.copy()
        self.speed_rot = self.speed_trans = 0.0

    def predict(self) -> np.ndarray | None:
        """None: a low-pass filter has no motion model (the tracker extrapolates itself)."""
        return None

    def coast(self, T_pred: np.ndarray) -> None:
        if self.T is not None:
            self.reset(T_pred)

    def update(self, T_meas: np.ndarray, dt: float, noise_scale: float = 1.0) -> np.ndarray:
        """Filter one measurement (4, 4) taken ``dt`` s after the last (``noise_scale`` unused)."""
        if self.T is None:
            self.reset(T_meas)
            return self.T.copy()
        R, t = self.T[:3, :3], self.T[:3, 3]
        w = R_to_rotvec(R.T @ T_meas[:3, :3])  # (3,) body-frame rotation to the measurement
        dtr = T_meas[:3, 3] - t  # (3,)
        ad = _alpha(self.d_cutoff_hz, dt)
        dist = max(float(np.linalg.norm(t)), 1e-6)
        self.speed_rot += ad * (float(np.linalg.norm(w)) / dt - self.speed_rot)
        self.speed_trans += ad * (float(np.linalg.norm(dtr)) / dist / dt - self.speed_trans)
        a_rot = _alpha(self.min_cutoff_hz + self.beta_rot * self.speed_rot, dt)
        a_trans = _alpha(self.min_cutoff_hz + self.beta_trans * self.speed_trans, dt)
        self.T = make_T(R @ rotvec_to_R(a_rot * w), t + a_trans * dtr)
        return self.T.copy()


class PoseAlphaBeta:
    """Constant-velocity alpha-beta filter of poses (4, 4), the steady-state Kalman filter
    of that motion model, with a One-Euro style adaptive gain.

    All in the ship's body frame (constant body velocity = the tracker's motion
    model): predict ``T_p = T @ D`` with the per-frame increment ``D = (exp(w), v)``;
    innovation ``E = T_p^-1 T_meas`` with ``e_w = log(R_E)``, ``e_t = t_E``; gain
    ``alpha = alpha(f_c)``, ``f_c = min_cutoff_hz + beta * |innovation| / dt`` (a real
    manoeuvre is followed at once), ``beta_v = alpha^2 / (2 - alpha)`` (Kalata's
    pairing); then ``T = T_p @ (exp(alpha e_w), alpha e_t)``, ``w += beta_v e_w``,
    ``v += beta_v e_t``. Unlike a plain low-pass filter it has no lag on constant motion.
    """

    def __init__(self, min_cutoff_hz: float, beta_rot: float, beta_trans: float, d_cutoff_hz: float = 1.0):
        self.min_cutoff_hz, self.beta_rot, self.beta_trans = min_cutoff_hz, beta_rot, beta_trans
        self.reset()

    def reset(self, T: np.ndarray | None = None) -> None:
        self.T = None if T is None else T.copy()
        self.w = np.zeros(3)  # body-frame rotation per frame
        self.v = np.zeros(3)  # body-frame translation per frame
        self.n = 0

    def predict(self) -> np.ndarray | None:
        """The filter's own prediction (4, 4) of the next pose (None before two measurements)."""
        if self.T is None or self.n == 0:
            return None
        return self.T @ make_T(rotvec_to_R(self.w), self.v)

    def coast(self, T_pred: np.ndarray) -> None:
        """A frame without a measurement: the filter moves on with the prediction (velocity kept)."""
        if self.T is not None:
            self.T = T_pred.copy()

    def update(self, T_meas: np.ndarray, dt: float, noise_scale: float = 1.0) -> np.ndarray:
        """Filter one measurement (4, 4) taken ``dt`` s after the last; ``noise_scale``:
        its noise relative to the reference (the minimum cut-off is divided by it)."""
        if self.T is None:
            self.reset(T_meas)
            return self.T.copy()
        if self.n == 0:  # the second measurement initialises the velocity
            D = invert_T(self.T) @ T_meas
            self.w, self.v = R_to_rotvec(D[:3, :3]), D[:3, 3].copy()
            self.T, self.n = T_meas.copy(), 1
            return self.T.copy()
        T_p = self.T @ make_T(rotvec_to_R(self.w), self.v)
        E = invert_T(T_p) @ T_meas
        e_w, e_t = R_to_rotvec(E[:3, :3]), E[:3, 3]
        dist = max(float(np.linalg.norm(T_p[:3, 3])), 1e-6)
        fc = self.min_cutoff_hz / noise_scale
        a_r = _alpha(fc + self.beta_rot * float(np.linalg.norm(e_w)) / dt, dt)
        a_t = _alpha(fc + self.beta_trans * float(np.linalg.norm(e_t)) / dist / dt, dt)
        b_r, b_t = a_r * a_r / (2.0 - a_r), a_t * a_t / (2.0 - a_t)
        self.T = T_p @ make_T(rotvec_to_R(a_r * e_w), a_t * e_t)
        self.w = self.w + b_r * e_w
        self.v = self.v + b_t * e_t
        self.n += 1
        return self.T.copy()


#: ``TrackerConfig.filter`` names -> filter classes, built as ``cls(min_cutoff_hz, beta_rot,
#: beta_trans, d_cutoff_hz)``. One line registers a new filter.
FILTERS = {"alphabeta": PoseAlphaBeta, "oneeuro": PoseOneEuro}
