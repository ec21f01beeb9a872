"""Rigid transforms: 4x4 homogeneous matrices, rotations, SE(3) exp/log.

Convention
----------
``T_a_b`` is a (4, 4) float64 matrix that maps coordinates in frame ``b`` to
frame ``a``: ``X_a = T_a_b @ X_b``. So ``T_cam_obj`` takes model points into the
camera frame (OpenCV camera: x right, y down, z forward), and
``T_a_c = T_a_b @ T_b_c``. ``R`` (3, 3) and ``t`` (3,) are its parts.

Twists ``xi`` are (6,) vectors ``(v, w)``: translation part first, rotation
(axis-angle, radians) second. Perturbations are applied on the left:
``T_new = exp(xi) @ T``.
"""

from __future__ import annotations

import numpy as np


def make_T(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Assemble a (4, 4) transform from ``R`` (3, 3) and ``t`` (3,)."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def invert_T(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform, exact for rigid input."""
    R, t = T[:3, :3], T[:3, 3]
    return make_T(R.T, -R.T @ t)


def transform_points(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply ``T`` (4, 4) to points ``pts`` (N, 3) -> (N, 3)."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
    return pts @ T[:3, :3].T + T[:3, 3]


def skew(w: np.ndarray) -> np.ndarray:
    """The (3, 3) cross-product matrix of ``w`` (3,): ``skew(w) @ x == w x x``."""
    wx, wy, wz = w
    return np.array([[0.0, -wz, wy], [wz, 0.0, -wx], [-wy, wx, 0.0]])


def rotvec_to_R(w: np.ndarray) -> np.ndarray:
    """Rodrigues: axis-angle ``w`` (3,) in radians -> rotation (3, 3)."""
    w = np.asarray(w, dtype=np.float64).reshape(3)
    theta = float(np.linalg.norm(w))
    if theta < 1e-12:
        return np.eye(3) + skew(w)
    k = skew(w / theta)
    return np.eye(3) + np.sin(theta) * k + (1.0 - np.cos(theta)) * (k @ k)


def R_to_rotvec(R: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) -> axis-angle (3,), radians; accurate near 0 and pi.

    At exactly pi, ``w`` and ``-w`` are the same rotation; either may come back.
    """
    anti = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])  # 2 sin(theta) axis
    cos = (np.trace(R) - 1.0) / 2.0
    sin2 = float(np.linalg.norm(anti))  # 2 sin(theta)
    # atan2, not arccos of the trace: arccos loses half the digits near 0 and pi.
    theta = float(np.arctan2(0.5 * sin2, cos))
    if theta < 1e-7:
        return anti / 2.0
    if np.pi - theta < 1e-4:
        # Near pi the antisymmetric part vanishes: take the axis from the symmetric
        # part, (R + R^T) / 2 - cos I = (1 - cos) a a^T (R + I alone keeps the
        # antisymmetric part, which tilted the axis by up to 1e-4 rad here).
        M = (R + R.T) / 2.0 - cos * np.eye(3)
        axis = M[int(np.argmax(np.diag(M)))]
        axis = axis / np.linalg.norm(axis)
        # The antisymmetric part, tiny but not zero below pi, fixes the axis's sign.
        return (-axis if axis @ anti < 0 else axis) * theta
    return anti * (theta / sin2)


def se3_exp(xi: np.ndarray) -> np.ndarray:
    """Twist ``xi`` (6,) = (v, w) -> (4, 4) transform (exact SE(3) exponential)."""
    xi = np.asarray(xi, dtype=np.float64).reshape(6)
    v, w = xi[:3], xi[3:]
    theta = float(np.linalg.norm(w))
    k = skew(w)
    # V = I + b k + c k^2. Below 1e-2 rad the closed forms cancel catastrophically
    # (1 - cos is 0 in float64 at 1e-8), so their Taylor series take over there.
    if theta < 1e-2:
        t2 = theta * theta
        b = 0.5 - t2 / 24.0 + t2 * t2 / 720.0
        c = 1.0 / 6.0 - t2 / 120.0 + t2 * t2 / 5040.0
    else:
        b = (1 - np.cos(theta)) / theta**2
        c = (theta - np.sin(theta)) / theta**3
    return make_T(rotvec_to_R(w), (np.eye(3) + b * k + c * (k @ k)) @ v)


def se3_log(T: np.ndarray) -> np.ndarray:
    """(4, 4) transform -> twist (6,) = (v, w), the inverse of :func:`se3_exp`."""
    w = R_to_rotvec(T[:3, :3])
    theta = float(np.linalg.norm(w))
    k = skew(w)
    # V^-1 = I - k / 2 + d k^2 with d = (1 - (theta / 2) cot(theta / 2)) / theta^2, whose
    # closed form cancels below 1e-2 rad (nan at 1e-8, where 1 - cos is 0): series there.
    if theta < 1e-2:
        t2 = theta * theta
        d = 1.0 / 12.0 + t2 / 720.0 + t2 * t2 / 30240.0
    else:
        d = (1.0 - (theta * np.sin(theta)) / (2 * (1 - np.cos(theta)))) / theta**2
    return np.concatenate([(np.eye(3) - 0.5 * k + d * (k @ k)) @ T[:3, 3], w])


def rotation_angle_deg(R: np.ndarray) -> float:
    """Angle of a rotation (3, 3) in degrees, in [0, 180]."""
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))


def is_rigid(T: np.ndarray, tol: float = 1e-4) -> bool:
    """True if ``T`` (4, 4) is finite, has a proper rotation and a [0, 0, 0, 1] last row."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return False
    R = T[:3, :3]
    return bool(np.allclose(T[3], [0, 0, 0, 1], atol=tol)
                and np.allclose(R.T @ R, np.eye(3), atol=tol)
                and abs(np.linalg.det(R) - 1.0) < tol)


def orthonormalize(R: np.ndarray) -> np.ndarray:
    """Nearest proper rotation to ``R`` (3, 3) (SVD projection)."""
    U, _, Vt = np.linalg.svd(R)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation (3, 3) drawn uniformly from SO(3) (unit quaternion method)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return quat_to_R(q)


def quat_to_R(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (4,) as (w, x, y, z) -> rotation (3, 3)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def R_to_quat(R: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) -> unit quaternion (4,) as (w, x, y, z), w >= 0."""
    m = R
    tr = np.trace(m)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q
