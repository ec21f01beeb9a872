"""Keypoint networks: image -> per-keypoint heatmap logits on a margin canvas + global scores.

Every network here takes ``image`` (B, 3, H, W) float RGB in 0..255 (H, W
multiples of 32; normalisation happens inside, so exported models need nothing
else) and returns

* ``heatmaps`` (B, K, Hc, Wc): logits on the codec's canvas (see
  :mod:`xwing.infer.codec`: stride 4, ``margin`` cells beyond every image edge);
* ``scores`` (B, 2): logits of [presence (the ship is in view), flip (the
  keypoints came out in the 180-degree-roll relabelling, see :mod:`xwing.learn.losses`)].

``fast`` preset (:class:`KeypointNet`): a timm backbone (``features_only``,
``pretrained=False``: no downloads), a lean FPN to stride 4 built from the
backbone's own channel/stride table, then a few depthwise dilated residual
blocks on the feature map padded by ``margin`` cells, which carry evidence from
inside the image into the margin (that is how keypoints outside the image get
predicted where they are). ``seed`` preset (:class:`SeedUNet`): the seed's
U-Net with an EfficientNet-B0 encoder (segmentation_models_pytorch), heatmaps at
full resolution, no margin, no global scores (presence fixed to "in view").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from xwing.config import SavedConfig

#: ImageNet statistics (0..255 scale), applied inside the network.
MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class NetConfig(SavedConfig):
    """Attributes:
        arch: ``"fpn"`` (timm backbone + lean FPN) or ``"seed_unet"``.
        backbone: timm model name (``fpn``) or smp encoder name (``seed_unet``).
        num_keypoints: K.
        channels: decoder width.
        stride: output stride of the heatmaps (4 for ``fpn``, 1 for ``seed_unet``).
        margin: canvas cells beyond each image edge.
        dilations: dilation of each margin-extension block.
    """

    arch: str = "fpn"
    backbone: str = "mobilenetv3_large_100"
    num_keypoints: int = 8
    channels: int = 64
    stride: int = 4
    margin: int = 8
    dilations: tuple[int, ...] = (1, 2, 4, 8)



class _Normalise(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("inv_std", 1.0 / torch.tensor(STD_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) * self.inv_std


def _conv_bn_act(cin, cout, k=1, groups=1, dilation=1):
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=pad, groups=groups, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _SepBlock(nn.Module):
    """Residual depthwise-separable 3x3 block (optionally dilated)."""

    def __init__(self, c, dilation=1):
        super().__init__()
        self.dw = _conv_bn_act(c, c, 3, groups=c, dilation=dilation)
        self.pw = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(x + self.pw(self.dw(x)))


class KeypointNet(nn.Module):
    """timm backbone + lean FPN + margin canvas (the ``fast`` preset)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        import timm

        self.cfg = cfg
        self.norm = _Normalise()
        probe = timm.create_model(cfg.backbone, features_only=True, pretrained=False)
        reductions = probe.feature_info.reduction()
        keep = [i for i, r in enumerate(reductions) if cfg.stride <= r <= 32]
        del probe
        self.backbone = timm.create_model(cfg.backbone, features_only=True, pretrained=False, out_indices=keep)
        chans = self.backbone.feature_info.channels()
        reds = self.backbone.feature_info.reduction()
        if reds[0] != cfg.stride:
            raise ValueError(f"backbone {cfg.backbone} has no stride-{cfg.stride} features (has {reds})")
        c = cfg.channels
        self.laterals = nn.ModuleList([_conv_bn_act(ch, c) for ch in chans])
        self.smooth = _SepBlock(c)
        self.extend = nn.Sequential(*[_SepBlock(c, d) for d in cfg.dilations])
        self.head = nn.Conv2d(c, cfg.num_keypoints, 1)
        # Presence and flip from the deepest features (context) and the stride-4 map
        # (fine detail: the canopy and droid are what tell top from bottom).
        self.scores = nn.Linear(chans[-1] + 2 * c, 2)

    def forward(self, image):
        feats = self.backbone(self.norm(image))
        x = self.laterals[-1](feats[-1])
        for f, lat in zip(reversed(feats[:-1]), reversed(list(self.laterals)[:-1]), strict=True):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest") + lat(f)
        x = self.smooth(x)
        pooled = torch.cat([feats[-1].mean(dim=(2, 3)), x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        m = self.cfg.margin
        if m:
            x = F.pad(x, (m, m, m, m))
        heat = self.head(self.extend(x))
        scores = self.scores(pooled)
        return heat, scores


class SeedUNet(nn.Module):
    """The seed's network: smp U-Net, EfficientNet-B0 encoder, full-resolution heatmaps."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        import segmentation_models_pytorch as smp

        self.cfg = cfg
        self.norm = _Normalise()
        self.unet = smp.Unet(cfg.backbone, encoder_weights=None, classes=cfg.num_keypoints, activation=None)
        self.register_buffer("fixed_scores", torch.tensor([10.0, -10.0]), persistent=False)

    def forward(self, image):
        heat = self.unet(self.norm(image))
        # The seed had no presence or flip output: "always in view, never flipped".
        scores = heat.mean(dim=(1, 2, 3))[:, None] * 0.0 + self.fixed_scores
        return heat, scores


def build_net(cfg: NetConfig) -> nn.Module:
    if cfg.arch == "fpn":
        return KeypointNet(cfg)
    if cfg.arch == "seed_unet":
        return SeedUNet(cfg)
    raise ValueError(f"unknown arch {cfg.arch!r}")


class ExportWrapper(nn.Module):
    """uint8 (B, H, W, 3) RGB images -> the network's outputs (for ONNX)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image):
        return self.net(image.permute(0, 3, 1, 2).float())
