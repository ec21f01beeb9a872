"""Robust, confidence-aware PnP: 2D keypoints + 3D model points -> ``T_cam_obj``.

Pipeline: undistort the keypoints (lens distortion is honoured), drop points with
low confidence or non-finite coordinates, then

1. fast path (about 0.2 ms for 8 points): one SQPnP solve on every usable point,
   then a vectorised Cauchy-weighted Gauss-Newton (:func:`refine_irls`); with a
   prior pose (the tracker's prediction) far from it, the prior is tried as a
   second start and the lower robust cost wins. If at least 75 % of the points
   agree with a small RMS error it finishes on the inliers alone, and is done;
2. otherwise RANSAC over minimal 4-point samples (drawn with probability
   proportional to confidence, seeded, so results are reproducible), each solved
   with SQPnP and scored by its inlier count and their weighted error;
3. float64 Levenberg-Marquardt on the inliers with the confidences as weights,
   after which inliers are re-classified and LM repeats once.

Fewer than 4 usable points, or no consensus of 4, gives ``PnPResult.ok == False``
with a reason: never an exception for bad data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xwing.geometry.camera import Camera
from xwing.geometry.pose import make_T, rotation_angle_deg, rotvec_to_R, se3_exp, transform_points
from xwing.geometry.projection import project_camera_points, projection_jacobian


@dataclass
class PnPResult:
    """Attributes:
        ok: a pose was found.
        T_cam_obj: (4, 4) pose (identity when not ok).
        inliers: (N,) bool over the input points.
        reproj_err_px: RMS reprojection error over inliers (inf when not ok).
        reason: why not ok ("" when ok).
        fast: the fast path gave it (no RANSAC).
    """

    ok: bool
    T_cam_obj: np.ndarray = field(default_factory=lambda: np.eye(4))
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    reproj_err_px: float = float("inf")
    reason: str = ""
    fast: bool = False

    @property
    def n_inliers(self) -> int:
        return int(self.inliers.sum())


def reprojection_errors(T_cam_obj: np.ndarray, pts_3d: np.ndarray, pts_2d: np.ndarray,
                        K: np.ndarray) -> np.ndarray:
    """Per-point pixel distance (N,) between projected ``pts_3d`` and ``pts_2d``
    (undistorted pixels); points behind the camera get inf."""
    X = transform_points(T_cam_obj, pts_3d)
    err = np.full(len(X), np.inf)
    front = X[:, 2] > 1e-9
    err[front] = np.linalg.norm(project_camera_points(X[front], K) - pts_2d[front], axis=1)
    return err


def refine_lm(T_cam_obj: np.ndarray, pts_3d: np.ndarray, pts_2d: np.ndarray, K: np.ndarray,
              weights: np.ndarray | None = None, iterations: int = 20) -> np.ndarray:
    """Weighted Levenberg-Marquardt on SE(3) (left perturbation), float64.

    Minimises ``sum_i w_i |proj(T X_i) - x_i|^2`` from ``T_cam_obj`` (4, 4);
    ``pts_3d`` (N, 3), ``pts_2d`` (N, 2) undistorted pixels, ``weights`` (N,).
    """
    w = np.ones(len(pts_3d)) if weights is None else np.asarray(weights, dtype=np.float64)
    sw = np.sqrt(w)[:, None]
    T = T_cam_obj.copy()

    def cost_of(T_):
        X_ = transform_points(T_, pts_3d)
        if np.any(X_[:, 2] <= 1e-9):
            return np.inf, None, X_
        r_ = (sw * (project_camera_points(X_, K) - pts_2d)).reshape(-1)
        return float(r_ @ r_), r_, X_

    cost, r, X = cost_of(T)
    if r is None:
        return T
    lam = 1e-3
    for _ in range(iterations):
        J = projection_jacobian(X, K)  # (N, 2, 6)
        J = (J * sw[:, :, None]).reshape(-1, 6)  # (2N, 6)
        H, g = J.T @ J, J.T @ r
        improved, old_cost = False, cost
        gn_step = _solve6(H + 1e-12 * np.eye(6), g)
        # Degenerate points (H singular), or Gauss-Newton predicts no useful decrease: done.
        if gn_step is None or -(g @ gn_step) <= 1e-12 * cost + 1e-24:
            break
        for _ in range(10):
            step = _solve6(H + lam * np.diag(np.diag(H) + 1e-12), g)
            if step is None:
                lam *= 10
                continue
            T_new = se3_exp(step) @ T
            new_cost, r_new, X_new = cost_of(T_new)
            if new_cost < cost:
                T, cost, r, X = T_new, new_cost, r_new, X_new
                lam = max(lam / 10, 1e-9)
                improved = True
                break
            lam *= 10
        # Converged: no progress, a negligible cost change, or a sub-nanometre step.
        if not improved or old_cost - cost <= 1e-12 * old_cost or np.linalg.norm(step) < 1e-10:
            break
    return T


def refine_irls(T_cam_obj: np.ndarray, pts_3d: np.ndarray, uv: np.ndarray, K: np.ndarray,
                weights: np.ndarray, scale_px: float, iterations: int = 3,
                tol: float = 1e-6) -> np.ndarray | None:
    """Robust Gauss-Newton on SE(3) (left perturbation), Cauchy-weighted, vectorised.

    Minimises ``sum_i w_i rho(|proj(T X_i) - x_i|)`` with ``rho`` Cauchy of scale
    ``scale_px`` (pixels), from ``T_cam_obj`` (4, 4). ``pts_3d`` (N, 3), ``uv``
    (N, 2) undistorted pixels, ``weights`` (N,). Stops when a step is below ``tol``
    (radians / model units) or after ``iterations`` (3 from SQPnP's start: more did
    not help the tracker, ``docs/tracking.md``).
    Returns the pose (4, 4), or None if a point falls behind the camera.
    """
    import cv2

    fx, s, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    R, t = T_cam_obj[:3, :3].copy(), T_cam_obj[:3, 3].copy()
    inv_c2 = 1.0 / float(scale_px) ** 2
    n = len(pts_3d)
    for _ in range(iterations):
        X = pts_3d @ R.T + t  # (N, 3) camera frame
        x, y, z = X[:, 0], X[:, 1], X[:, 2]
        if z.min() <= 1e-6:
            return None
        iz = 1.0 / z
        xn, yn = x * iz, y * iz
        ru = fx * xn + s * yn + cx - uv[:, 0]
        rv = fy * yn + cy - uv[:, 1]
        w = weights / (1.0 + (ru * ru + rv * rv) * inv_c2)  # (N,) IRLS weights of the Cauchy loss
        J = projection_jacobian(X, K).transpose(1, 0, 2)  # (u/v, point, [v | w])
        Jf = J.reshape(2 * n, 6)
        Jw = Jf * np.concatenate([w, w])[:, None]
        H = Jw.T @ Jf
        H[np.diag_indices(6)] += 1e-9
        ok, dx = cv2.solve(H, -(Jw.T @ np.concatenate([ru, rv])).reshape(6, 1), flags=cv2.DECOMP_CHOLESKY)
        if not ok:
            return None
        dx = dx.ravel()
        dR = cv2.Rodrigues(dx[3:])[0]
        R, t = dR @ R, dR @ t + dx[:3]  # a retraction of the left perturbation
        if np.abs(dx).max() < tol:
            break
    return make_T(R, t)


def robust_cost(T: np.ndarray, pts_3d: np.ndarray, uv: np.ndarray, K: np.ndarray, w: np.ndarray,
                scale_px: float) -> float:
    """Confidence-weighted Cauchy cost of pose ``T`` (4, 4) on points (N, 3) / pixels (N, 2)."""
    X = pts_3d @ T[:3, :3].T + T[:3, 3]
    if X[:, 2].min() <= 1e-6:
        return float("inf")
    r2 = np.sum((X[:, :2] / X[:, 2:3] @ K[:2, :2].T + K[:2, 2] - uv) ** 2, axis=1)
    return float(np.sum(w * np.log1p(r2 / scale_px**2)))


def angle_between_deg(T_a: np.ndarray, T_b: np.ndarray) -> float:
    """Rotation angle (degrees) between the rotations of two poses (4, 4)."""
    return rotation_angle_deg(T_a[:3, :3] @ T_b[:3, :3].T)


def _fast_path(x2, X3, w, K, threshold_px, T_prior):
    """SQPnP + robust Gauss-Newton (+ the prior as a second start) -> (T, inliers) or None."""
    T = None
    T0 = _sqpnp(X3, x2, K)
    if T0 is not None:
        T = refine_irls(T0, X3, x2, K, w, 0.5 * threshold_px)
    # SQPnP is global, so the flat box's second PnP minimum cannot trap us near a
    # prior that is a little off; a prior far from its answer is tried too.
    if T_prior is not None and (T is None or angle_between_deg(T, T_prior) > 10.0):
        T_alt = refine_irls(T_prior, X3, x2, K, w, 0.5 * threshold_px, iterations=10)
        if T_alt is not None and (T is None or robust_cost(T_alt, X3, x2, K, w, 0.5 * threshold_px)
                                  < robust_cost(T, X3, x2, K, w, 0.5 * threshold_px)):
            T = T_alt
    if T is None:
        return None
    e = reprojection_errors(T, X3, x2, K)
    inl = e < threshold_px
    if int(inl.sum()) < max(4, int(np.ceil(0.75 * len(x2)))):
        return None
    if not inl.all():  # outliers still pull a little under Cauchy: finish on inliers alone
        T2 = refine_irls(T, X3[inl], x2[inl], K, w[inl], 1e3 * threshold_px, iterations=3)
        if T2 is not None:
            T = T2
            e = reprojection_errors(T, X3, x2, K)
    if np.sqrt(np.mean(e[inl] ** 2)) > 0.5 * threshold_px:
        return None
    return T, inl


def _solve6(A: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    """The step ``-A^-1 g`` (6,), or None when ``A`` (6, 6) is singular or not finite."""
    try:
        step = -np.linalg.solve(A, g)
    except np.linalg.LinAlgError:
        return None
    return step if np.all(np.isfinite(step)) else None


def _sqpnp(pts_3d: np.ndarray, pts_2d: np.ndarray, K: np.ndarray) -> np.ndarray | None:
    import cv2

    try:
        ok, rvec, tvec = cv2.solvePnP(pts_3d.reshape(-1, 1, 3), pts_2d.reshape(-1, 1, 2), K, None,
                                      flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:
        ok = False
    if not ok or not np.all(np.isfinite(tvec)):
        try:
            ok, rvec, tvec = cv2.solvePnP(pts_3d.reshape(-1, 1, 3), pts_2d.reshape(-1, 1, 2), K, None,
                                          flags=cv2.SOLVEPNP_EPNP)
        except cv2.error:
            return None
        if not ok:
            return None
    T = make_T(rotvec_to_R(rvec.reshape(3)), tvec.reshape(3))
    return T if np.all(np.isfinite(T)) else None


def _undistorted(uv: np.ndarray, K: np.ndarray, dist: np.ndarray | None) -> np.ndarray:
    """Distorted pixels (N, 2) -> ideal pinhole pixels under ``K``; ``uv`` itself without distortion."""
    if dist is None or not np.size(dist) or not np.any(np.asarray(dist) != 0):
        return uv

    return Camera(K, 1, 1, dist).undistort_points(uv)


def solve_pnp(pts_2d: np.ndarray, pts_3d: np.ndarray, K: np.ndarray, dist: np.ndarray | None = None,
              conf: np.ndarray | None = None, min_conf: float = 0.1, threshold_px: float = 5.0,
              max_iterations: int = 100, seed: int = 0, T_prior: np.ndarray | None = None,
              fast: bool = True) -> PnPResult:
    """Robust PnP.

    Args:
        pts_2d: (N, 2) observed pixels (distorted, if ``dist`` is given).
        pts_3d: (N, 3) model points in the object frame.
        K: (3, 3) intrinsics.
        dist: OpenCV distortion coefficients, or None.
        conf: (N,) confidences in [0, 1] (None: all 1). Points below ``min_conf``
            are not used; the others weigh by confidence.
        threshold_px: inlier threshold on reprojection error.
        max_iterations: RANSAC hypotheses at most.
        seed: RANSAC's random seed.
        T_prior: (4, 4) a prior pose (e.g. the tracker's prediction), tried as a
            second start when SQPnP's answer is far from it.
        fast: allow the fast path (False: always RANSAC + LM).

    Returns:
        :class:`PnPResult`; ``inliers`` is over all N input points.
    """
    pts_2d = np.asarray(pts_2d, dtype=np.float64).reshape(-1, 2)
    pts_3d = np.asarray(pts_3d, dtype=np.float64).reshape(-1, 3)
    K = np.asarray(K, dtype=np.float64)
    n = len(pts_2d)
    if len(pts_3d) != n:
        raise ValueError(f"{n} 2D points but {len(pts_3d)} 3D points")
    conf = np.ones(n) if conf is None else np.asarray(conf, dtype=np.float64).reshape(n)
    usable = np.isfinite(pts_2d).all(axis=1) & np.isfinite(conf) & (conf >= min_conf)
    if usable.sum() < 4:
        return PnPResult(False, inliers=np.zeros(n, bool), reason=f"only {int(usable.sum())} usable keypoints (need 4)")
    idx = np.flatnonzero(usable)
    x2, X3, w = _undistorted(pts_2d[idx], K, dist), pts_3d[idx], conf[idx]
    if fast:
        found = _fast_path(x2, X3, w, K, threshold_px, T_prior)
        if found is not None:
            T, inl = found
            inliers = np.zeros(n, bool)
            inliers[idx[inl]] = True
            e = reprojection_errors(T, X3, x2, K)
            return PnPResult(True, T, inliers, float(np.sqrt(np.mean(e[inl] ** 2))), fast=True)

    def score(T):
        e = reprojection_errors(T, X3, x2, K)
        inl = e < threshold_px
        return inl, int(inl.sum()), float(np.sum(w[inl] * e[inl] ** 2))

    best_T, best_inl, best_key = None, None, (-1, 0.0)
    T = _sqpnp(X3, x2, K)
    if T is not None:
        T = refine_lm(T, X3, x2, K, w)
        inl, count, sse = score(T)
        best_T, best_inl, best_key = T, inl, (count, -sse)
    if best_inl is None or best_key[0] < len(idx):
        rng = np.random.default_rng(seed)
        p = w / w.sum()
        n_use = len(idx)
        it, needed = 0, max_iterations
        while it < min(needed, max_iterations):
            it += 1
            sample = rng.choice(n_use, size=4, replace=False, p=p if np.count_nonzero(p) >= 4 else None)
            T = _sqpnp(X3[sample], x2[sample], K)
            if T is None:
                continue
            inl, count, sse = score(T)
            # Local optimisation only for hypotheses that could win: LM on every one of
            # up to 100 samples was 80 % of a tracked frame's time on the demo flight.
            if count < 4 or count + 2 < best_key[0]:
                continue
            T = refine_lm(T, X3[inl], x2[inl], K, w[inl], iterations=5)
            inl, count, sse = score(T)
            if (count, -sse) > best_key:
                best_T, best_inl, best_key = T, inl, (count, -sse)
                ratio = count / n_use
                if ratio >= 1.0:
                    break
                # Standard RANSAC stopping rule for 99.9 % confidence.
                needed = int(np.ceil(np.log(1e-3) / np.log(max(1e-12, 1 - ratio**4))))
    if best_T is None or best_key[0] < 4:
        return PnPResult(False, inliers=np.zeros(n, bool), reason="no consensus of 4 keypoints")
    T, inl = best_T, best_inl
    for _ in range(2 if best_key[0] < len(idx) else 0):  # refine on inliers, re-classify, refine again
        # (skipped on the all-inlier fast path, which is already refined)
        T = refine_lm(T, X3[inl], x2[inl], K, w[inl])
        new_inl, count, _ = score(T)
        if count < 4 or np.array_equal(new_inl, inl):
            break
        inl = new_inl
    e = reprojection_errors(T, X3, x2, K)
    inliers = np.zeros(n, bool)
    inliers[idx[inl]] = True
    rms = float(np.sqrt(np.mean(e[inl] ** 2))) if inl.any() else float("inf")
    return PnPResult(True, T, inliers, rms)


def planar_alternatives(T_cam_obj: np.ndarray, pts_2d: np.ndarray, pts_3d: np.ndarray, K: np.ndarray,
                        dist: np.ndarray | None = None, weights: np.ndarray | None = None,
                        min_angle_deg: float = 10.0) -> list[np.ndarray]:
    """Other poses that explain the same keypoints about as well: the second minimum of
    a flat object's PnP.

    A ship 6.6 cm tall and 31 x 35 cm wide is nearly planar, and a nearly planar
    object seen small has two poses with the plane tilted either way about the line
    of sight that project its points almost alike; a few pixels of keypoint noise
    decide between them. IPPE (``cv2.SOLVEPNP_IPPE``) on the points flattened onto
    their best plane (``z = 0``, the model's own mid-plane here) gives both; each is
    then refined on the true 3D points (weighted LM). Alignment of the whole mesh,
    which sees the out-of-plane parts, can then choose (:mod:`xwing.infer.estimator`;
    what that gains: ``docs/refinement.md``).

    Args:
        T_cam_obj: (4, 4) the pose already found. pts_2d: (N, 2) pixels (distorted if
            ``dist``); pts_3d: (N, 3); weights: (N,) (None: all 1); finite points only.
        min_angle_deg: alternatives closer than this to ``T_cam_obj`` or to each other
            are dropped.
    Returns:
        list of (4, 4) poses (possibly empty), none behind the camera.
    """
    import cv2

    pts_2d = np.asarray(pts_2d, np.float64).reshape(-1, 2)
    pts_3d = np.asarray(pts_3d, np.float64).reshape(-1, 3)
    w = np.ones(len(pts_2d)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    ok = np.isfinite(pts_2d).all(axis=1) & (w > 0)
    if ok.sum() < 4:
        return []
    x2, X3, w = _undistorted(pts_2d[ok], K, dist), pts_3d[ok], w[ok]
    flat = X3.copy()
    flat[:, 2] = 0.0
    try:
        n, rvecs, tvecs, _ = cv2.solvePnPGeneric(flat, x2, np.asarray(K, np.float64), None,
                                                 flags=cv2.SOLVEPNP_IPPE)
    except cv2.error:
        return []
    kept: list[np.ndarray] = []
    for r, t in zip(rvecs[:n], tvecs[:n]):
        T = refine_lm(make_T(rotvec_to_R(np.asarray(r, np.float64).ravel()), np.asarray(t, np.float64).ravel()),
                      X3, x2, K, w)
        if not np.all(np.isfinite(T)) or np.any(transform_points(T, X3)[:, 2] <= 1e-6):
            continue
        if all(rotation_angle_deg(T[:3, :3] @ other[:3, :3].T) > min_angle_deg for other in [T_cam_obj, *kept]):
            kept.append(T)
    return kept
