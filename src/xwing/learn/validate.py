"""Validation during training: the network's keypoints and the pose PnP makes of them.

The outputs are decoded exactly as at inference (:func:`xwing.infer.detector.decode_outputs`,
on numpy copies), so the figures here are the exported model's.
"""

from __future__ import annotations

import numpy as np

from xwing.geometry.metrics import rotation_error_deg
from xwing.geometry.pnp import solve_pnp
from xwing.geometry.projection import project_points
from xwing.infer.codec import HeatmapCodec
from xwing.infer.detector import decode_outputs
from xwing.learn.config import TrainConfig
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.model.points import PointSet


def validate(model, items, codec: HeatmapCodec, pts: PointSet, cfg: TrainConfig, device) -> dict:
    """Metrics on the fixed validation items: network keypoint error (true labels, and
    the labelling-free error), PCK, rotation error and flip rate via PnP, the 8 box
    corners projected from the PnP pose, presence accuracy."""
    import torch

    model.eval()
    heats, scores = [], []
    with torch.no_grad():
        for i in range(0, len(items), 32):
            x = torch.stack([it["image"] for it in items[i:i + 32]]).to(device).permute(0, 3, 1, 2).float()
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            h, s = model(x)
            heats.append(h.float().cpu().numpy())
            scores.append(s.float().cpu().numpy())
    model.train()
    heat, score = np.concatenate(heats), np.concatenate(scores)
    uv, conf, presence, uv_alt, _, _ = decode_outputs(heat, score, codec, pts.points_3d, pts.roll180_perm,
                                                      cfg.symmetric)
    kp_err, kp_err_sym, rot_err, corner_err, pres_ok = [], [], [], [], []
    for j, it in enumerate(items):
        present = float(it["present"]) > 0.5
        pres_ok.append((presence[j] > 0.5) == present)
        if not present:
            continue
        w = it["weight"].numpy() > 0
        gt = it["uv"].numpy().astype(np.float64)
        e = np.linalg.norm(uv[j] - gt, axis=1)
        e_alt = np.linalg.norm(uv_alt[j] - gt, axis=1)
        kp_err.extend(e[w])
        kp_err_sym.extend((e if e[w].mean() <= e_alt[w].mean() else e_alt)[w] if w.any() else [])
        K = it["K"].numpy()
        T_gt = it["T_cam_obj"].numpy()
        res = solve_pnp(uv[j], pts.points_3d, K, conf=conf[j])
        if res.ok:
            rot_err.append(rotation_error_deg(res.T_cam_obj[:3, :3], T_gt[:3, :3]))
            ce = np.linalg.norm(project_points(SEED_BOX_CORNERS, res.T_cam_obj, K)
                                - project_points(SEED_BOX_CORNERS, T_gt, K), axis=1)
            corner_err.append(float(np.median(np.where(np.isfinite(ce), ce, np.inf))))
        else:
            rot_err.append(float("inf"))
            corner_err.append(float("inf"))
    kp_err, rot_err = np.asarray(kp_err), np.asarray(rot_err)

    def med(a):
        return float(np.median(a)) if len(a) else float("nan")

    return {
        "kp_err_px_median": med(kp_err),
        "kp_err_px_mean": float(np.mean(kp_err)) if len(kp_err) else float("nan"),
        "kp_err_sym_px_median": med(kp_err_sym),
        "pck_1px": float(np.mean(kp_err <= 1)) if len(kp_err) else float("nan"),
        "pck_2px": float(np.mean(kp_err <= 2)) if len(kp_err) else float("nan"),
        "pck_5px": float(np.mean(kp_err <= 5)) if len(kp_err) else float("nan"),
        "corner_err_px_median": med(corner_err),
        "rot_err_deg_median": med(rot_err),
        "flip_rate": float(np.mean(rot_err > 90)) if len(rot_err) else float("nan"),
        "presence_acc": float(np.mean(pres_ok)),
    }
