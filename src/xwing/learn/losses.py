"""The training loss: keypoint heatmaps, presence and side, with the roll symmetry made explicit.

The ship's 180-degree roll near-symmetry (docs/seed-facts.md) is handled explicitly
(``symmetric=True``): the keypoint loss of each image is the smaller of its
loss against the true labelling and against the roll-relabelled one
(``PointSet.roll180_perm``), so the net never has to guess top from bottom to
localise points. A second global output, *side*, says which side of the ship
faces the camera (only the canopy and droid tell); the two labellings imply
opposite sides (:func:`xwing.model.symmetry.side_of`, from the 2D points alone), so
inference keeps the labelling that agrees with it, and the other one as a
second hypothesis (:func:`xwing.model.symmetry.resolve_roll`).

Heatmap loss ``ce``: cross-entropy between the spatial softmax of the logits
and the normalised Gaussian target (leaves the all-zeros plateau that MSE sits
on at once); ``mse``: the seed's loss on raw heatmaps.
"""

from __future__ import annotations

from xwing.learn.config import TrainConfig


def keypoint_loss(heat, target, weight, cfg: TrainConfig):
    """Per-image keypoint loss (B,) of logits ``heat`` (B, K, Hc, Wc) against
    ``target`` (B, K, Hc, Wc) with ``weight`` (B, K)."""
    import torch.nn.functional as F

    heat = heat.float()
    if cfg.loss == "ce":
        logp = F.log_softmax(heat.flatten(2), dim=-1)  # (B, K, Hc*Wc)
        t = target.flatten(2)
        t = t / t.sum(-1, keepdim=True).clamp_min(1e-12)
        per_k = -(t * logp).sum(-1)  # (B, K)
    elif cfg.loss == "mse":
        per_k = ((heat - target) ** 2).flatten(2).mean(-1)
    else:
        raise ValueError(f"unknown loss {cfg.loss!r}")
    return (per_k * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)


def compute_loss(heat, scores, batch, roll_perm, cfg: TrainConfig):
    """Total loss and its parts. With ``cfg.symmetric`` the keypoint loss is the
    minimum over the true and the roll-relabelled targets, and the flip output is
    trained on which one won."""
    import torch
    import torch.nn.functional as F

    target, weight, present = batch["heatmap"], batch["weight"], batch["present"]
    l_true = keypoint_loss(heat, target, weight, cfg)
    if cfg.symmetric:
        l_roll = keypoint_loss(heat, target[:, roll_perm], weight[:, roll_perm], cfg)
        flipped = (l_roll < l_true).float()
        l_kp = torch.minimum(l_true, l_roll)
    else:
        flipped = torch.zeros_like(l_true)
        l_kp = l_true
    n_present = present.sum().clamp_min(1.0)
    loss_kp = (l_kp * present).sum() / n_present
    loss_presence = F.binary_cross_entropy_with_logits(scores[:, 0].float(), present)
    # The second score says which side of the ship faces the camera (an image property,
    # independent of the labelling the keypoint head happened to pick); inference picks
    # the labelling that agrees with it (symmetry.resolve_roll).
    loss_flip = (F.binary_cross_entropy_with_logits(scores[:, 1].float(), batch["side"], reduction="none")
                 * present).sum() / n_present
    total = loss_kp + cfg.presence_weight * loss_presence
    if cfg.symmetric:
        total = total + cfg.flip_weight * loss_flip
    with torch.no_grad():
        parts = {"loss": float(total), "loss_kp": float(loss_kp), "loss_presence": float(loss_presence),
                 "loss_flip": float(loss_flip), "flip_share": float((flipped * present).sum() / n_present)}
    return total, parts
