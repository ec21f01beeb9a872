"""The zoom refiner: look again, closer, where the ship was found."""

from __future__ import annotations

import numpy as np

from xwing.geometry.crop import CropMap
from xwing.infer.result import PassResult


class ZoomRefiner:
    """Crop around the ship projected with the current pose so that it fills the network's
    input as in training, detect again, PnP again; repeat while the crop still moves
    (at most ``PipelineConfig.zoom_max_passes``). Stages ``zoom1``, ``zoom2``, ...

    In tracking the crop at the predicted pose already is this closer look, so the
    tracker skips it (``in_tracking = False``).
    """

    stage = "zoom"
    in_tracking = False

    def refine(self, estimator, image: np.ndarray, current: PassResult, T_pred: np.ndarray | None = None
               ) -> list[PassResult]:
        passes: list[PassResult] = []
        prev_crop = None
        for i in range(estimator.config.zoom_max_passes):
            crop = estimator.zoom_crop(current.T_cam_obj, estimator.zoom_size)
            if prev_crop is not None and _same_crop(crop, prev_crop):
                break
            cand = estimator.run_pass(image, crop, f"zoom{i + 1}", current.T_cam_obj, roll_prior=False)
            passes.append(cand)
            if not cand.ok:
                break
            current, prev_crop = cand, crop
        return passes


def _same_crop(a: CropMap, b: CropMap, tol_px: float = 1.0, tol_scale: float = 0.03) -> bool:
    """Crops that differ by less than ``tol_px`` input pixels of shift and ``tol_scale`` of zoom."""
    if abs(a.scale / b.scale - 1.0) > tol_scale:
        return False
    centre = np.array([[(a.width - 1) / 2.0, (a.height - 1) / 2.0]])
    return float(np.abs(b.image_to_crop(a.crop_to_image(centre)) - centre).max()) < tol_px
