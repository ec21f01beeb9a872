"""How the ship looks in one image: materials per part and three lights (numpy only).

Lights are given in the OpenGL camera frame (x right, y up, looking down -z)
as unit vectors *toward* the light, so "key light from the upper left, in
front of the ship" is ``(-0.5, 0.5, 0.7)`` whatever the ship's pose: the
lighting varies independently of the pose, as in the seed's images.
Colours are sRGB in [0, 1]; the shader works in linear light.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xwing.model.mesh import CANOPY, DROID, EXHAUST, HULL, MARKING, METAL, PANEL, PART_NAMES

N_PARTS = 8  # the shader's material table size (>= len(PART_NAMES))


def _table(values: dict[int, object], default, shape=()) -> np.ndarray:
    out = np.empty((N_PARTS,) + shape, dtype=np.float64)
    out[:] = default
    for k, v in values.items():
        out[k] = v
    return out


@dataclass(frozen=True, eq=False)
class Appearance:
    """Materials and lights of one render.

    Attributes:
        albedo: (8, 3) sRGB base colour per part id (:data:`PART_NAMES`).
        specular: (8,) specular strength per part.
        shininess: (8,) Blinn-Phong exponent per part (low = rough).
        emission: (8, 3) sRGB emitted colour per part (engine glow).
        light_dirs: (3, 3) unit vectors toward key, fill and rim light (GL camera frame).
        light_colors: (3, 3) linear RGB intensity of each light.
        ambient: (3,) linear RGB ambient light.
        panel_amp: brightness spread between hull panels (0 = uniform).
        panel_scale: panels per model unit.
        panel_offset: (3,) shifts the panel grid (a different ship's wear).
        exposure: overall gain before the sRGB curve.
    """

    albedo: np.ndarray = field(default_factory=lambda: _table(
        {HULL: (0.80, 0.79, 0.78), PANEL: (0.38, 0.38, 0.40), MARKING: (0.78, 0.30, 0.20),
         CANOPY: (0.22, 0.26, 0.34), EXHAUST: (0.35, 0.20, 0.18), DROID: (0.80, 0.82, 0.90),
         METAL: (0.62, 0.62, 0.64)}, 0.8, (3,)))
    specular: np.ndarray = field(default_factory=lambda: _table({CANOPY: 0.9, METAL: 0.5, HULL: 0.25}, 0.15))
    shininess: np.ndarray = field(default_factory=lambda: _table({CANOPY: 80.0, METAL: 40.0}, 16.0))
    emission: np.ndarray = field(default_factory=lambda: _table({EXHAUST: (0.9, 0.35, 0.25)}, 0.0, (3,)))
    light_dirs: np.ndarray = field(default_factory=lambda: _unit(np.array(
        [[-0.4, 0.5, 0.75], [0.6, -0.3, 0.5], [0.0, 0.6, -0.8]])))
    light_colors: np.ndarray = field(default_factory=lambda: np.array(
        [[0.80, 0.77, 0.74], [0.22, 0.24, 0.32], [0.30, 0.30, 0.40]]))
    ambient: np.ndarray = field(default_factory=lambda: np.array([0.16, 0.17, 0.22]))
    panel_amp: float = 0.22
    panel_scale: float = 70.0
    panel_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    exposure: float = 1.0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


#: Marking colours seen on X-wings (red squadron first): sRGB.
MARKING_COLORS = np.array([(0.80, 0.26, 0.16), (0.85, 0.45, 0.15), (0.85, 0.75, 0.25), (0.25, 0.40, 0.75),
                           (0.55, 0.55, 0.55)])


#: ``look`` names of :func:`sample_appearance`.
LOOKS = ("ship", "wide", "held_out")
#: Hull hues (degrees) the "wide" look never paints: the "held_out" look's.
HELD_OUT_HUES = (90.0, 150.0)


def _hsv(h_deg: float, s: float, v: float) -> np.ndarray:
    """sRGB (3,) of hue ``h_deg``, saturation ``s`` and value ``v``, each in its usual range."""
    import colorsys

    return np.array(colorsys.hsv_to_rgb((h_deg % 360.0) / 360.0, s, v))


def _wide_hue(rng: np.random.Generator) -> float:
    """A hue outside :data:`HELD_OUT_HUES`."""
    lo, hi = HELD_OUT_HUES
    return float((hi + rng.uniform(0, 360.0 - (hi - lo))) % 360.0)


def sample_appearance(rng: np.random.Generator, look: str = "ship") -> Appearance:
    """A random appearance: the documented ranges below, each drawn independently.

    ``look="ship"`` (the data engine's default) keeps the colours close to the X-wing's;
    ``"wide"`` paints far beyond it, for a top/bottom cue that must read shapes, not one
    ship's paint: hull of any hue but :data:`HELD_OUT_HUES`, saturation 0-0.6, value
    0.25-0.95; panels darker or lighter than the hull; markings, canopy glass, droid and
    metal each of a random colour. ``"held_out"`` is ``"wide"`` with the hull's hue
    inside :data:`HELD_OUT_HUES` (green), a paint no ``"wide"`` image has.

    * hull albedo: grey-white 0.5-0.92 with a +-6 % colour cast; panels darker;
      markings one of :data:`MARKING_COLORS` (red most often) with jitter.
    * specular 0.05-0.6, shininess 6-60 (roughness); panel spread 0.05-0.35.
    * key light: random direction in the half-space facing the camera
      (z > -0.2), intensity 0.6-1.6, colour temperature warm to cool; fill light
      opposite-ish, 5-40 % of the key; rim light anywhere, 0-80 %.
    * ambient 0.03-0.25 with a blue tint (space), exposure 0.8-1.25.
    * engine glow on (orange-red to blue-white) in 60 % of images, off otherwise.
    """
    if look not in LOOKS:
        raise ValueError(f"look must be one of {LOOKS}, got {look!r}")
    albedo = Appearance().albedo.copy()
    if look == "ship":
        base = rng.uniform(0.5, 0.92)
        hull = np.clip(base * (1 + rng.uniform(-0.06, 0.06, 3)), 0, 1)
        marking = MARKING_COLORS[rng.choice(len(MARKING_COLORS), p=[0.6, 0.1, 0.1, 0.1, 0.1])]
        marking = np.clip(marking * rng.uniform(0.8, 1.15) + rng.uniform(-0.05, 0.05, 3), 0, 1)
        albedo[HULL] = hull
        albedo[PANEL] = hull * rng.uniform(0.3, 0.6)
        albedo[MARKING] = marking
        albedo[METAL] = hull * rng.uniform(0.6, 0.85)
        albedo[DROID] = np.clip(np.array([0.75, 0.78, 0.9]) * rng.uniform(0.8, 1.1), 0, 1)
        albedo[CANOPY] = rng.uniform(0.1, 0.3) * np.array([0.85, 1.0, 1.3])
    else:
        hue = float(rng.uniform(*HELD_OUT_HUES)) if look == "held_out" else _wide_hue(rng)
        albedo[HULL] = _hsv(hue, rng.uniform(0.0, 0.6), rng.uniform(0.25, 0.95))
        albedo[PANEL] = np.clip(albedo[HULL] * rng.uniform(0.3, 1.4), 0, 1)
        albedo[MARKING] = _hsv(rng.uniform(0, 360), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0))
        albedo[METAL] = _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.3), rng.uniform(0.3, 0.9))
        albedo[DROID] = _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.8), rng.uniform(0.4, 0.95))
        albedo[CANOPY] = _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.7), rng.uniform(0.05, 0.6))
    specular = _table({CANOPY: rng.uniform(0.5, 1.0), METAL: rng.uniform(0.3, 0.7)}, rng.uniform(0.05, 0.6))
    shininess = _table({CANOPY: rng.uniform(40, 120)}, rng.uniform(6, 60))
    glow = np.zeros(3) if rng.random() < 0.4 else rng.choice(
        [np.array([1.0, 0.4, 0.25]), np.array([1.0, 0.6, 0.3]), np.array([0.7, 0.8, 1.0])]) * rng.uniform(0.5, 1.0)
    emission = _table({EXHAUST: glow}, 0.0, (3,))

    key = _random_unit(rng)
    key[2] = max(key[2], -0.2)
    key = _unit(key)
    fill = _unit(-key + 0.6 * _random_unit(rng))
    rim = _random_unit(rng)
    temperature = rng.uniform(-1, 1)  # warm (-1) to cool (+1)
    key_col = np.array([1.0 - 0.1 * temperature, 1.0, 1.0 + 0.15 * temperature]) * rng.uniform(0.6, 1.6)
    fill_col = np.array([0.8, 0.85, 1.0]) * rng.uniform(0.05, 0.4) * key_col.mean()
    rim_col = np.array([0.85, 0.9, 1.0]) * rng.uniform(0.0, 0.8) * key_col.mean()
    ambient = np.array([0.8, 0.85, 1.0]) * rng.uniform(0.03, 0.25)
    return Appearance(albedo=albedo, specular=specular, shininess=shininess, emission=emission,
                      light_dirs=np.stack([key, fill, rim]), light_colors=np.stack([key_col, fill_col, rim_col]),
                      ambient=ambient, panel_amp=float(rng.uniform(0.05, 0.35)),
                      panel_scale=float(rng.uniform(35, 90)), panel_offset=rng.uniform(0, 1, 3),
                      exposure=float(rng.uniform(0.8, 1.25)))


__all__ = ["Appearance", "sample_appearance", "PART_NAMES", "MARKING_COLORS", "LOOKS", "HELD_OUT_HUES"]
