"""Model-based alignment: move the pose until the mesh's silhouette matches the image.

The last fraction of a pixel after the keypoint network. Dense and region-based:
every pixel in a band around the silhouette takes part, not a few contour lines
(which miss the X-wing's 1-4 px wings and cannons).

Per iteration, at the current pose ``T``:

1. rasterise the mesh on a crop around the ship (anti-aliased coverage ``M`` and
   depth; :mod:`xwing.infer.refine.raster`, no GL);
2. estimate the image's own coverage ``alpha``: each band pixel is unmixed
   linearly between the local ship colour ``c`` and background colour ``b``
   (means over the pixels that ``M`` puts clearly inside / outside, in a window),
   ``alpha = (I - b).(c - b) / |c - b|^2``; pixels where ``c`` and ``b`` are alike
   carry little weight. Linear unmixing keeps the sub-pixel information that
   anti-aliasing puts in edge pixels;
3. Gauss-Newton on SE(3) for ``sum_x w(x) (G_s * M - G_s * alpha)^2``, with
   ``dM/dxi = -grad M . du/dxi`` from each boundary pixel's 3D point (depth from the
   raster). The blur ``G_s`` goes coarse to fine (wide basin first, exact last).

Two stages share that loop. The coarse one (strong blur, 2x2 supersampling,
wide colour windows that skip a margin either side of the outline, a weaker
prior) is the basin: it brings far starts back. The fine one (little or no blur,
narrow windows) fits. The fine stage starts from the coarse result or from the
initial pose, whichever its cost finds better: the heavy blur spreads the colour
model's errors inside the ship (dark panels, stripes) into the fit, so the coarse
stage alone drifts from a start that was already good. Crop pixels outside the
image carry no weight: a truncated ship's crop is black there, which the wide
windows would take for background. The settings are :class:`AlignConfig`.

Two figures let callers reject a failed alignment instead of reporting it: the
quality (the contrast-weighted share of band pixels the final silhouette
explains) and the edge score (image gradient on the model's outline over that
2-4 px away from it, at native resolution). The colour model adapts to wherever
the silhouette is, so quality alone also accepts poses several pixels off; the
edge score does not. Both gates, not a bound on the pose's motion, keep wrong
poses out (``max_shift_px`` is only a sanity bound: a bound of the basin's size
would reject exactly the alignments that came back from far).

The experiment log behind these choices, the edge score's figures and the
convergence basin are in ``docs/refinement.md``.

Numpy + OpenCV only.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from xwing.config import SavedConfig
from xwing.geometry.camera import Camera
from xwing.geometry.crop import CropMap, crop_around, crop_for_points
from xwing.geometry.metrics import keypoint_errors_px
from xwing.geometry.pnp import planar_alternatives
from xwing.geometry.pose import se3_exp, transform_points
from xwing.geometry.projection import project_points, projection_jacobian
from xwing.infer.refine import kernels
from xwing.infer.refine.raster import rasterize
from xwing.infer.result import PassResult
from xwing.model.keypoints import box_corners_of_points


@dataclass(frozen=True)
class AlignConfig(SavedConfig):
    """Settings of :func:`align` (saved beside results as JSON).

    Attributes:
        work_size: side of the working crop (pixels).
        fill: share of the crop the ship's box spans.
        max_zoom: the crop never magnifies the image more than this.
        min_zoom: nor shrinks it below this (0: no bound); the crop grows beyond
            ``work_size`` instead, so a ship larger than the crop keeps its pixels.
        supersample: rasteriser sub-pixels per pixel along each axis (fine levels).
        blurred_supersample: the same at fine levels blurred by 0.5 px or more, whose blur
            hides the coarser coverage's quantisation (0: ``supersample``).
        coarse_sigmas_px: blur per coarse level (the wide basin), coarse to fine.
        coarse_iterations: Gauss-Newton steps per coarse level.
        coarse_window_px: window of the colour means at the coarse levels; wide,
            so that a silhouette several pixels off still finds ship and
            background pixels to learn from.
        coarse_margin_px: the coarse colour means skip this band on either side
            of the model's outline, where "inside" and "outside" are most likely
            wrong while the pose is off.
        coarse_supersample: rasteriser sub-pixels at the coarse levels (their
            blur hides the coverage's quantisation).
        coarse_prior_weight: ``prior_weight`` at the coarse levels (weaker: the
            start may be 10 px off).
        sigmas_px: blur of model and image coverage per fine level.
        iterations: Gauss-Newton steps per fine level (at most, with ``min_step_px``).
        min_step_px: a level stops early once a step moves the box corners less than
            this (mean, image pixels); 0: every level runs all its steps.
        window_px: window for the local ship/background colour means (fine levels).
        margin_px: their margin (see ``coarse_margin_px``), fine levels.
        band_px: half-width of the band around the silhouette that is used.
        huber: Huber threshold on coverage residuals.
        prior_weight: weight of a prior that keeps the box corners near where the
            first pass put them, per corner and squared pixel; it holds the
            directions a silhouette cannot see (e.g. a nose-on ship's pitch)
            while the hundreds of band pixels dominate the others.
        min_quality: below this, the alignment is reported as failed.
        min_edge_score: below this edge score (see the module doc), too.
        max_shift_px: an alignment moving the box corners further than this
            (mean, image pixels) is treated as a divergence. Only a sanity bound,
            about twice the largest start error the basin covers: within it, the
            edge score and quality decide (a bound of the basin's size would reject
            exactly the alignments that came back from far).
        colour_refresh_px: a fine level keeps the colour model (the image's coverage) it
            learnt at an earlier step until its steps have moved the box corners more than
            this (mean, image pixels) from that step's pose; 0: learnt anew at every step.
            The coarse levels learn it at every step (their steps move the silhouette by
            pixels, and a stale model would hold it where it was).
        backend: ``"compiled"`` (:mod:`xwing.infer.refine.kernels`) or ``"reference"``
            (the numpy/OpenCV rasteriser, unmixing and Jacobian it is tested against).
    """

    work_size: int = 192
    fill: float = 0.8
    max_zoom: float = 4.0
    min_zoom: float = 0.0
    supersample: int = 4
    blurred_supersample: int = 2
    coarse_sigmas_px: tuple[float, ...] = (6.0, 3.0)
    coarse_iterations: tuple[int, ...] = (4, 4)
    coarse_window_px: int = 31
    coarse_margin_px: int = 3
    coarse_supersample: int = 2
    coarse_prior_weight: float = 0.01
    sigmas_px: tuple[float, ...] = (1.5, 0.7, 0.0)
    iterations: tuple[int, ...] = (4, 3, 3)
    min_step_px: float = 0.0
    window_px: int = 11
    margin_px: int = 0
    band_px: int = 6
    huber: float = 0.25
    prior_weight: float = 0.02
    min_quality: float = 0.6
    min_edge_score: float = 2.0
    max_shift_px: float = 25.0
    colour_refresh_px: float = 0.5
    backend: str = "compiled"


#: The shortest schedule for close starts (within about 2 px): no coarse stage, the fine
#: levels until a step moves the box under 0.03 px (at most 1, 1 and 3 steps), a smaller
#: working crop that never shrinks the image, 2 x 2 supersampling. Chosen on renders of
#: seed 4242 (docs/refinement.md); from the tracker's own predictions it leaves part of
#: each frame's error to the next, so tracking takes :data:`TRACKING`.
CLOSE_START = AlignConfig(work_size=112, min_zoom=1.0, supersample=2, coarse_sigmas_px=(), coarse_iterations=(),
                          sigmas_px=(1.5, 0.7, 0.0), iterations=(1, 1, 3), min_step_px=0.03)

#: The tracker's schedule, from its prediction: the full one with half the steps (coarse
#: 2 + 2, fine 2 + 2 + 2). Without a coarse stage the colour model, learnt at the current
#: silhouette, holds the fit near its start; two coarse steps per level free it. Chosen
#: on a rendered flight of seed 4243 and the tracker test's rotating ship.
TRACKING = AlignConfig(coarse_iterations=(2, 2), iterations=(2, 2, 2))


@dataclass
class AlignResult:
    """Attributes:
        T_cam_obj: (4, 4) aligned pose (the initial pose when not ``ok``).
        ok: the alignment converged and explains the image well enough.
        quality: share of band pixels explained, each weighted by its
            ship/background contrast, in [0, 1].
        quality_init: the same at the initial pose.
        edge_score: image gradient on the final outline over that beside it.
        shift_px: mean motion of the box corners in image pixels.
        iterations: Gauss-Newton steps taken.
        history: cost per step (for convergence plots).
        timings_ms: time per stage of the alignment (``raster``, ``unmix``, ``blur``,
            ``jacobian``, ``solve``, ``score``: quality and edge score; ``total``).
    """

    T_cam_obj: np.ndarray
    ok: bool
    quality: float
    quality_init: float
    edge_score: float
    shift_px: float
    iterations: int
    history: list = field(default_factory=list)
    timings_ms: dict = field(default_factory=dict)


class _StageClock:
    """Milliseconds spent per named stage: ``with clock("raster"): ...``."""

    def __init__(self):
        self.ms: dict[str, float] = {}
        self._t0 = time.perf_counter()

    @contextmanager
    def __call__(self, stage: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - t) * 1e3

    def done(self) -> dict:
        return {**{k: round(v, 3) for k, v in self.ms.items()},
                "total": round((time.perf_counter() - self._t0) * 1e3, 3)}


def _local_mean(img: np.ndarray, mask: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Masked box mean of ``img`` (H, W, C) over ``mask`` (H, W) -> ((H, W, C), support (H, W))."""
    import cv2

    k = (window, window)
    support = cv2.boxFilter(mask, -1, k, normalize=True, borderType=cv2.BORDER_REFLECT)
    acc = cv2.boxFilter(img * mask[:, :, None], -1, k, normalize=True, borderType=cv2.BORDER_REFLECT)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = acc / support[:, :, None]
    return mean, support


def _image_alpha(I: np.ndarray, M: np.ndarray, window: int, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Linear unmixing of the image into ship and background colours.

    Args:
        I: (H, W, 3) float32 image in [0, 1]; M: (H, W) model coverage.
    Returns:
        alpha (H, W) in [0, 1], confidence (H, W) in [0, 1].
    """
    import cv2

    inside = (M > 0.99).astype(np.float32)
    outside = (M < 0.01).astype(np.float32)
    if margin > 0:  # stay clear of the model's edge, which may still be off
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        inside, outside = cv2.erode(inside, kernel), cv2.erode(outside, kernel)
    c, sc = _local_mean(I, inside, window)
    b, sb = _local_mean(I, outside, window)
    # Where a window holds no clearly-inside (thin parts) or outside pixels, fall
    # back to the means over the whole working crop.
    c_all = (I * inside[:, :, None]).sum((0, 1)) / max(inside.sum(), 1.0)
    b_all = (I * outside[:, :, None]).sum((0, 1)) / max(outside.sum(), 1.0)
    c = np.where(sc[:, :, None] > 1e-3, c, c_all)
    b = np.where(sb[:, :, None] > 1e-3, b, b_all)
    d = c - b
    dd = (d * d).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = ((I - b) * d).sum(axis=2) / dd
    alpha = np.clip(np.nan_to_num(alpha), 0.0, 1.0)
    conf = dd / (dd + 0.01)  # colour contrast of 0.1 (in [0, 1] units) gives weight 0.5
    return alpha.astype(np.float32), conf.astype(np.float32)


def _pixel_jacobian(M: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """d(coverage)/d(xi) (6, H, W) for a left perturbation of ``T_cam_obj``.

    Only pixels where the coverage changes (the anti-aliased silhouette edge) have
    a non-zero derivative, so the work is done there alone.
    """
    import cv2

    gy, gx = np.gradient(M)
    ys, xs = np.nonzero((gx != 0) | (gy != 0))
    J = np.zeros((6,) + M.shape)
    if len(ys) == 0:
        return J
    # Edge pixels just outside the silhouette have no depth: take the nearest
    # (minimum) depth around them.
    d = depth
    for _ in range(3):
        d = np.minimum(d, cv2.erode(d, np.ones((3, 3), np.uint8)))
    z = d[ys, xs].astype(np.float64)
    gxs, gys = gx[ys, xs], gy[ys, xs]
    good = np.isfinite(z)
    ys, xs, z, gxs, gys = ys[good], xs[good], z[good], gxs[good], gys[good]
    x = (xs - K[0, 2]) / K[0, 0] * z
    y = (ys - K[1, 2]) / K[1, 1] * z
    # Image motion d(u, v)/d(xi) of the surface point seen there, times the coverage gradient
    # (negated: the silhouette moves with the point, so the coverage at a fixed pixel
    # changes against its motion).
    Juv = projection_jacobian(np.stack([x, y, z], axis=1), K)  # (N, 2, 6)
    J[:, ys, xs] = -(gxs[:, None] * Juv[:, 0] + gys[:, None] * Juv[:, 1]).T
    return J


def _reference_jacobian(M: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """:func:`_pixel_jacobian` as (H, W, 6) float32, the compiled kernel's layout."""
    return np.ascontiguousarray(np.moveaxis(_pixel_jacobian(M, depth, K), 0, -1), np.float32)


#: backend name -> (rasterise, unmix, coverage Jacobian)
BACKENDS = {
    "compiled": (kernels.rasterize, kernels.image_alpha, kernels.pixel_jacobian),
    "reference": (rasterize, _image_alpha, _reference_jacobian),
}


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    if sigma <= 0:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def edge_score(image_rgb: np.ndarray, coverage: np.ndarray) -> float:
    """Mean image gradient magnitude on the outline of ``coverage`` (H, W) over the
    mean 2-4 px away from it: high when the outline sits on the image's edges."""
    import cv2

    gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    G = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
    outline = ((coverage > 0.02) & (coverage < 0.98)).astype(np.uint8)
    if not outline.any():
        return 0.0
    k = np.ones((3, 3), np.uint8)
    on = cv2.dilate(outline, k, iterations=1) > 0
    ring = (cv2.dilate(outline, k, iterations=4) > 0) & ~(cv2.dilate(outline, k, iterations=2) > 0)
    return float(G[on].mean() / (G[ring].mean() + 1e-3)) if ring.any() else 0.0


def _edge_score_at(image_rgb: np.ndarray, raster, vertices: np.ndarray, faces: np.ndarray, T_cam_obj: np.ndarray,
                   K: np.ndarray, corners: np.ndarray) -> float:
    """:func:`edge_score` of the model at ``T_cam_obj`` in ``image_rgb``, computed on the window
    around the projected box only: the score reads pixels within 4 px of the outline, so a
    margin of 8 px gives the whole image's value at a fraction of the cost."""
    H, W = image_rgb.shape[:2]
    uv = project_points(corners, T_cam_obj, K)
    if not np.all(np.isfinite(uv)):
        return 0.0
    x0, y0 = (int(max(0, min(W, np.floor(v) - 8))) for v in uv.min(axis=0))
    x1, y1 = (int(max(0, min(n, np.ceil(v) + 9))) for v, n in zip(uv.max(axis=0), (W, H)))
    if x1 - x0 < 3 or y1 - y0 < 3:
        return 0.0
    K_win = K.copy()
    K_win[0, 2] -= x0
    K_win[1, 2] -= y0
    cov = raster(vertices, faces, T_cam_obj, K_win, x1 - x0, y1 - y0, 2, want_depth=False).coverage
    return edge_score(np.ascontiguousarray(image_rgb[y0:y1, x0:x1]), cov)


def working_crop(T_cam_obj: np.ndarray, K: np.ndarray, box_corners: np.ndarray, config: AlignConfig) -> CropMap:
    """The crop :func:`align` works on: centred on the projected box, zoom capped."""
    uv = project_points(box_corners, T_cam_obj, K)
    crop = crop_for_points(uv, config.work_size, fill=config.fill)
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    if crop.scale > config.max_zoom:
        crop = crop_around((lo + hi) / 2, config.work_size / config.max_zoom, config.work_size)
    elif config.min_zoom > 0 and crop.scale < config.min_zoom:
        side = int(np.ceil(float((hi - lo).max()) / config.fill * config.min_zoom / 8.0)) * 8
        crop = crop_around((lo + hi) / 2, side / config.min_zoom, side)
    return crop


def _patch(image_rgb: np.ndarray, K: np.ndarray, crop: CropMap,
           dist: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The working crop of ``image_rgb`` (H, W, 3) uint8 -> ((h, w, 3) float32 in [0, 1],
    (h, w) float32 mask of the crop pixels inside the image); with distortion ``dist``,
    the distorted image is sampled at the crop pixels' pinhole positions."""
    import cv2

    if dist is not None and np.size(dist) and np.any(np.asarray(dist) != 0):
        cam = Camera(K, image_rgb.shape[1], image_rgb.shape[0], dist)
        ys, xs = np.mgrid[0:crop.height, 0:crop.width].astype(np.float64)
        src = cam.distort_points(crop.crop_to_image(np.stack([xs.ravel(), ys.ravel()], 1)))
        mx = src[:, 0].reshape(crop.height, crop.width).astype(np.float32)
        my = src[:, 1].reshape(crop.height, crop.width).astype(np.float32)
        patch = cv2.remap(image_rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        inside = cv2.remap(np.ones(image_rgb.shape[:2], np.float32), mx, my, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    else:
        patch = crop.warp(image_rgb)
        (x0, y0), (x1, y1) = crop.crop_to_image(np.array([[0.0, 0.0], [crop.width - 1.0, crop.height - 1.0]]))
        H, W = image_rgb.shape[:2]
        if x0 >= 1 and y0 >= 1 and x1 <= W - 2 and y1 <= H - 2:  # the usual case: no pixel beyond the border
            return patch.astype(np.float32) / 255.0, np.ones((crop.height, crop.width), np.float32)
        inside = crop.warp(np.ones(image_rgb.shape[:2], np.float32))
    return patch.astype(np.float32) / 255.0, (inside > 0.999).astype(np.float32)


def align(image_rgb: np.ndarray, K: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
          T_init: np.ndarray, config: AlignConfig = AlignConfig(), dist: np.ndarray | None = None) -> AlignResult:
    """Align the mesh (``vertices`` (V, 3), ``faces`` (F, 3)) with ``image_rgb`` (H, W, 3)
    starting from ``T_init`` (4, 4); ``K`` (3, 3) and optional distortion ``dist``.

    Two stages on a crop around the current pose: coarse (strong blur, wide colour
    windows, weak prior: the basin) then fine (the sub-pixel fit). The fine stage
    starts from the coarse result or from ``T_init``, whichever its first level
    finds cheaper, so a start that was already good is not made worse by the coarse
    stage's bias (blur spreads the colour model's errors inside the ship into the
    fit).
    """
    import cv2

    if config.backend not in BACKENDS:
        raise ValueError(f"unknown alignment backend {config.backend!r}; one of {sorted(BACKENDS)}")
    raster, unmix, jacobian = BACKENDS[config.backend]
    corners = box_corners_of_points(vertices)
    clock = _StageClock()

    seen: dict = {}  # (pose, crop, stage) -> raster and unmixing, which no blur changes

    def evaluate(T, sigma, I, valid, Kc, coarse, colour=None):
        """Model coverage, blurred model and image coverage, confidence and band at ``T``, and the
        unblurred image coverage and confidence (the colour model); ``colour``: that of an earlier
        pose to reuse instead of unmixing anew."""
        h, w = I.shape[:2]
        if coarse:
            ss = config.coarse_supersample
        else:
            ss = config.supersample if sigma < 0.5 or config.blurred_supersample <= 0 else config.blurred_supersample
        # The fine stage's start is scored, then iterated from; the start is scored again
        # for the quality gate: the same raster and unmixing each time.
        key = (T.tobytes(), Kc.tobytes(), I.shape, coarse, ss)
        if key in seen:
            r, alpha, conf = seen[key]
        else:
            with clock("raster"):
                r = raster(vertices, faces, T, Kc, w, h, ss, want_depth=True)
            if colour is not None:
                alpha, conf = colour
            else:
                with clock("unmix"):
                    if coarse:
                        alpha, conf = unmix(I, r.coverage, config.coarse_window_px, config.coarse_margin_px)
                    else:
                        alpha, conf = unmix(I, r.coverage, config.window_px, config.margin_px)
                if len(seen) > 8:
                    seen.clear()
                seen[key] = (r, alpha, conf)
        colour = (alpha, conf)
        # Crop pixels beyond the image's border (a truncated ship) are no evidence
        # either way: their black is neither ship nor background.
        conf = conf * valid
        with clock("blur"):
            Ms, As = _blur(r.coverage, sigma), _blur(alpha, sigma)
        # The band: pixels near the model's or the image's silhouette edge.
        edge = ((r.coverage > 0.01) & (r.coverage < 0.99)) | ((alpha > 0.05) & (alpha < 0.95))
        # one square dilation = that many 3 x 3 ones
        grow = int(config.band_px + 2 * sigma)
        band = cv2.dilate(edge.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0
        return r, Ms, As, conf, band, colour

    def robust(res, conf):
        """Huber weights (N,) of residuals ``res`` (N,) times their confidence."""
        a = np.abs(res)
        return conf * np.where(a <= config.huber, 1.0, config.huber / np.maximum(a, 1e-12))

    def data_cost(T, sigma):
        """The fine stage's robust cost at ``T`` (no prior), on the current crop."""
        _, Ms, As, conf, band, _ = evaluate(T, sigma, I, valid, Kc, False)
        res = (Ms - As)[band].astype(np.float64)
        return float(np.sum(robust(res, conf[band]) * res**2))

    T = T_init.copy()
    history, steps = [], 0
    crop = working_crop(T, K, corners, config)
    Kc, (I, valid) = crop.crop_K(K), _patch(image_rgb, K, crop, dist)
    stages = [(True, config.coarse_sigmas_px, config.coarse_iterations, config.coarse_prior_weight),
              (False, config.sigmas_px, config.iterations, config.prior_weight)]
    for coarse, sigmas, iters, prior_weight in stages:
        if not sigmas or not np.all(np.isfinite(T)):
            continue
        if steps > 0:
            # Re-centre the crop on the current pose: after a 10 px move the ship
            # would sit off-centre, and partly outside for small ships (zoom 4).
            crop = working_crop(T, K, corners, config)
            Kc, (I, valid) = crop.crop_K(K), _patch(image_rgb, K, crop, dist)
        if not coarse and steps > 0 and data_cost(T_init, sigmas[0]) < data_cost(T, sigmas[0]):
            T = T_init.copy()
        # Box corners in crop pixels: at the start (the prior's anchor) and at the current pose.
        uv_init, uv = project_points(corners, T_init, Kc), project_points(corners, T, Kc)
        for sigma, n_iter in zip(sigmas, iters):
            lam = 1e-3
            level_colour, uv_colour = None, uv
            for _ in range(n_iter):
                if (level_colour is not None
                        and keypoint_errors_px(uv, uv_colour).mean() / crop.scale > config.colour_refresh_px):
                    level_colour = None
                r, Ms, As, conf, band, colour = evaluate(T, sigma, I, valid, Kc, coarse, level_colour)
                if level_colour is None and config.colour_refresh_px > 0 and not coarse:
                    level_colour, uv_colour = colour, uv
                with clock("jacobian"):
                    J = jacobian(r.coverage, r.depth, Kc)  # (h, w, 6)
                with clock("blur"):
                    J = _blur(J, sigma)
                with clock("solve"):
                    Hm, g, cost = kernels.normal_equations(Ms, As, J, conf, band, config.huber)
                    # Prior: box-corner motion (crop pixels / zoom = image pixels) from T_init.
                    Jc = projection_jacobian(transform_points(T, corners), Kc).reshape(-1, 6)  # (16, 6)
                    dc = (uv - uv_init).reshape(-1)  # (16,)
                    wp = prior_weight / crop.scale**2
                    Hm += wp * Jc.T @ Jc
                    g += wp * Jc.T @ dc
                    cost += wp * float(dc @ dc)
                    history.append(cost)
                    if not np.all(np.isfinite(Hm)) or np.trace(Hm) <= 0:
                        break
                    step = -np.linalg.solve(Hm + lam * np.diag(np.diag(Hm) + 1e-9), g)
                    T_next = se3_exp(step) @ T
                    uv_next = project_points(corners, T_next, Kc)
                    moved = keypoint_errors_px(uv_next, uv).mean() / crop.scale  # image pixels
                    T, uv = T_next, uv_next
                    steps += 1
                if moved < config.min_step_px:
                    break

    def quality_of(Tq):
        # Share of band pixels that are explained AND have ship/background contrast:
        # without a ship in the crop, contrast is low everywhere and so is quality.
        # Start and end are scored on the same (final) crop. Band pixels beyond the image's
        # border are no evidence (see ``evaluate``): a ship cut by the frame is scored on what
        # is seen of it, not marked down for what is not.
        _, Ms, As, conf, band, _ = evaluate(Tq, 0.0, I, valid, Kc, False)
        band = band & (valid > 0)
        ok = np.abs(Ms[band] - As[band]) < 0.25
        return float((conf[band] * ok).mean()) if band.any() else 0.0

    if not np.all(np.isfinite(T)):  # diverged (the crop is still the last finite pose's)
        return AlignResult(T_init.copy(), False, 0.0, quality_of(T_init), 0.0, float("inf"), steps, history,
                           clock.done())
    quality, quality_init = quality_of(T), quality_of(T_init)
    shift = float(np.linalg.norm(project_points(corners, T, K) - project_points(corners, T_init, K), axis=1).mean())
    with clock("score"):
        edge = _edge_score_at(image_rgb, raster, vertices, faces, T, K, corners)
    ok = bool(quality >= config.min_quality and shift <= config.max_shift_px
              and quality >= quality_init - 0.05 and edge >= config.min_edge_score)
    return AlignResult(T if ok else T_init.copy(), ok, quality, quality_init, edge, shift, steps, history,
                       clock.done())


# --- the refiner ------------------------------------------------------------------------------


class AlignRefiner:
    """Model-based alignment (stage ``align``) of the object model's silhouette with the image.

    From the current pose and, for single images, from the flat ship's other PnP
    minimum (:func:`xwing.geometry.pnp.planar_alternatives`, refit on the current
    inlier keypoints); the accepted alignment with the highest quality wins. Not ok
    when the aligner rejects them all, so the caller keeps the pose it had. In
    tracking, from the tracker's prediction with ``close_start`` (:data:`TRACKING`),
    then, where that is rejected (or ``close_start`` is None), from the measurement
    alone with the full schedule (the prediction already chose between the two minima),
    but only where the measurement is more than ``fallback_px`` from the prediction:
    where the two agree, the same image mostly rejects both (measured on a tuning
    flight, seed 4244: 1 of 38 such fallbacks accepted; docs/tracking.md).
    """

    stage = "align"
    in_tracking = True

    def __init__(self, config: AlignConfig = AlignConfig(), close_start: AlignConfig | None = TRACKING,
                 fallback_px: float = 3.0):
        self.config = config
        self.close_start = close_start
        self.fallback_px = fallback_px

    def refine(self, estimator, image: np.ndarray, current, T_pred: np.ndarray | None = None) -> list:
        t0 = time.perf_counter()
        obj, cam = estimator.object_model, estimator.camera
        use = current.inliers & (current.conf >= estimator.config.min_conf)
        starts = [current.T_cam_obj]
        if T_pred is None:
            starts += planar_alternatives(current.T_cam_obj, current.uv_px[use], estimator.points_3d[use], cam.K,
                                          cam.dist, current.conf[use])
        results = []
        if T_pred is not None and self.close_start is not None:
            # The prediction from the last aligned frames is closer than this frame's
            # keypoints: ``close_start`` from it, the full schedule from the keypoint pose
            # only where that is rejected.
            results = [align(image, cam.K, obj.vertices, obj.faces, T_pred, self.close_start, dist=cam.dist)]
            if not results[0].ok and not self._disagree(current.T_cam_obj, T_pred, obj.box_corners, cam.K):
                # Measurement and prediction agree: the full schedule from the measurement would
                # repeat the same failing fit (weak edges: a small or blurred ship).
                return [self._pass(current, results[0], t0)]
        if not any(r.ok for r in results):
            results += [align(image, cam.K, obj.vertices, obj.faces, T, self.config, dist=cam.dist) for T in starts]
        accepted = [r for r in results if r.ok]
        best = max(accepted, key=lambda r: r.quality) if accepted else results[0]
        return [self._pass(current, best, t0)]

    def _disagree(self, T_meas: np.ndarray, T_pred: np.ndarray, corners: np.ndarray, K: np.ndarray) -> bool:
        """The measurement's box corners lie more than ``fallback_px`` (mean) from the prediction's."""
        d = np.linalg.norm(project_points(corners, T_meas, K) - project_points(corners, T_pred, K), axis=1)
        return not bool(np.all(np.isfinite(d))) or float(d.mean()) > self.fallback_px

    @staticmethod
    def _pass(current, best: AlignResult, t0: float) -> PassResult:
        reason = "" if best.ok else (f"alignment rejected (quality {best.quality:.2f}, "
                                     f"edge score {best.edge_score:.2f}, shift {best.shift_px:.1f} px)")
        return PassResult("align", current.crop, best.ok, best.T_cam_obj, current.uv_px, current.conf,
                          current.presence, current.inliers, current.reproj_err_px, current.reproj_err_in_px,
                          current.quality if best.ok else 0.0, reason, (time.perf_counter() - t0) * 1e3,
                          current.p_top, edge_score=best.edge_score)
