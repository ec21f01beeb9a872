"""Triangle meshes of the ship: the procedural X-wing and user models (numpy only, no GL).

Model frame (``docs/seed-facts.md``): x = wingspan, y = length (nose toward -y), z = height
(top, with canopy and astromech droid, toward +z). The procedural ship is built
so that its axis-aligned box *is* the seed's box (:data:`xwing.model.keypoints.SEED_BOX`)
and its four cannon tips sit at the seed's laser origins; which part touches
which face of the box:

    -x / +x   outer side of the wing-tip cannon housings (x = -/+0.156)
    -y        blunt nose tip (y = -0.182)        +y   engine nozzles (y = +0.163)
    -z        bottom of the lower engines (-0.032) +z  astromech droid's dome (+0.034)

The refiner rasterises this mesh without GL, so everything here is plain numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.model.keypoints import SEED_BOX, SEED_LASERS, box_corners

#: Material/part ids stored per face; the renderer gives each its own look.
PART_NAMES = ("hull", "panel", "marking", "canopy", "exhaust", "droid", "metal")
HULL, PANEL, MARKING, CANOPY, EXHAUST, DROID, METAL = range(len(PART_NAMES))


@dataclass(eq=False)
class Mesh:
    """A triangle mesh in model coordinates.

    Attributes:
        vertices: (V, 3) float32 model points.
        faces: (F, 3) int32 vertex indices, counter-clockwise seen from outside.
        parts: (F,) int32 part/material id per face (see :data:`PART_NAMES`).
        normals: (V, 3) float32 unit vertex normals (computed when not given).
        name: where the mesh came from (for manifests).
    """

    vertices: np.ndarray
    faces: np.ndarray
    parts: np.ndarray | None = None
    normals: np.ndarray | None = None
    name: str = "mesh"
    _surface_cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32).reshape(-1, 3)
        if self.parts is None:
            self.parts = np.zeros(len(self.faces), np.int32)
        self.parts = np.ascontiguousarray(self.parts, dtype=np.int32).reshape(-1)
        if len(self.parts) != len(self.faces):
            raise ValueError(f"parts has {len(self.parts)} entries for {len(self.faces)} faces")
        if self.normals is None:
            self.normals = vertex_normals(self.vertices, self.faces)
        self.normals = np.ascontiguousarray(self.normals, dtype=np.float32).reshape(-1, 3)

    @property
    def box(self) -> np.ndarray:
        """(2, 3) min and max of the axis-aligned box."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)]).astype(np.float64)

    def box_corners(self) -> np.ndarray:
        """(8, 3) corners of the axis-aligned box in the seed's order."""
        lo, hi = self.box
        return box_corners(lo, hi)

    def face_areas(self) -> np.ndarray:
        """(F,) triangle areas."""
        v = self.vertices.astype(np.float64)[self.faces]  # (F, 3 corners, 3)
        return 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)

    def surface_points(self, n: int, seed: int = 0) -> np.ndarray:
        """(n, 3) points spread evenly over the surface (area-weighted, fixed ``seed``).

        Faces get points in proportion to their area by systematic sampling of
        the cumulative area (low variance, no clumps), at random barycentric
        positions. Used as the model points of ADD/ADI.
        """
        key = (int(n), int(seed))
        if key not in self._surface_cache:
            self._surface_cache[key] = self.surface_sample(n, seed)[0]
        return self._surface_cache[key].copy()

    def surface_sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`surface_points` and the face index (n,) each point lies on."""
        rng = np.random.default_rng(seed)
        area = self.face_areas()
        cdf = np.cumsum(area) / area.sum()
        u = (np.arange(n) + rng.random()) / n  # systematic: one point per 1/n of the area
        f = np.minimum(np.searchsorted(cdf, u), len(area) - 1)
        r1, r2 = rng.random(n), rng.random(n)
        s = np.sqrt(r1)
        w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)  # (n, 3) uniform barycentrics
        v = self.vertices.astype(np.float64)[self.faces[f]]  # (n, 3 corners, 3)
        return np.einsum("nk,nkd->nd", w, v), f

    def transformed(self, scale: np.ndarray, offset: np.ndarray) -> Mesh:
        """``v * scale + offset`` per axis (normals re-derived for non-uniform scale)."""
        scale = np.asarray(scale, dtype=np.float64) * np.ones(3)
        v = self.vertices.astype(np.float64) * scale + offset
        n = self.normals.astype(np.float64) / scale
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        return Mesh(v, self.faces, self.parts, n, self.name)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted vertex normals of a triangle mesh (zero-area safe)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # (F, 3), length = 2 area
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return (n / np.where(length > 0, length, 1.0)).astype(np.float32)


# --- building blocks -------------------------------------------------------------------------


class _Builder:
    """Accumulates parts. Smooth parts share vertices (averaged normals); flat
    parts get their own vertices per face."""

    def __init__(self):
        self.vertices: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.parts: list[np.ndarray] = []
        self.normals: list[np.ndarray] = []
        self.n = 0

    def add(self, vertices, faces, part: int, flat: bool = False):
        v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
        f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        if flat:
            v, f = v[f].reshape(-1, 3), np.arange(3 * len(f)).reshape(-1, 3)
        self.vertices.append(v)
        self.faces.append(f + self.n)
        self.parts.append(np.full(len(f), part))
        self.normals.append(vertex_normals(v, f))
        self.n += len(v)

    def mesh(self, name: str) -> Mesh:
        return Mesh(np.concatenate(self.vertices), np.concatenate(self.faces), np.concatenate(self.parts),
                    np.concatenate(self.normals), name)


def _loft(sections: list[np.ndarray], cap_start: bool = True, cap_end: bool = True):
    """Skin a tube through closed cross-sections (each (M, 3), same M, same winding).

    Returns (vertices, faces) of the side and separately the two caps' (vertices,
    faces) so caps can be flat/other material.
    """
    S = np.stack(sections)  # (N sections, M ring points, 3)
    N, M, _ = S.shape
    idx = np.arange(N * M).reshape(N, M)
    a, b = idx[:-1], np.roll(idx[:-1], -1, axis=1)
    c, d = idx[1:], np.roll(idx[1:], -1, axis=1)
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    caps = []
    for ring, flip, on in ((S[0], True, cap_start), (S[-1], False, cap_end)):
        if not on:
            continue
        centre = ring.mean(axis=0)
        cv = np.concatenate([ring, centre[None]])
        k = np.arange(M)
        cf = np.stack([np.full(M, M), k, (k + 1) % M], -1)
        caps.append((cv, cf[:, ::-1] if flip else cf))
    return (S.reshape(-1, 3), faces), caps


def _orient_outward(vertices: np.ndarray, faces: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Flip faces whose normal points toward ``centre`` (builders of convex-ish parts)."""
    v = vertices[faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    out = (v.mean(axis=1) - centre)
    flip = np.einsum("ij,ij->i", n, out) < 0
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    return faces


def _add_tube(b: _Builder, sections, part, cap_part=None, smooth=True):
    (v, f), caps = _loft(sections)
    centre = np.concatenate(sections).mean(axis=0)
    b.add(v, _orient_outward(v, f, centre), part, flat=not smooth)
    for cv, cf in caps:
        b.add(cv, _orient_outward(cv, cf, centre), part if cap_part is None else cap_part, flat=True)


def _ring_y(y, cx, cz, rx, rz, m=16, phase=0.0):
    """(m, 3) ellipse in the plane y = const; angle 0 is +x, so extremes are exact."""
    a = phase + 2 * np.pi * np.arange(m) / m
    return np.stack([cx + rx * np.cos(a), np.full(m, y), cz + rz * np.sin(a)], axis=1)


def _ring_z(z, cx, cy, r, m=16):
    """(m, 3) circle in the plane z = const."""
    a = 2 * np.pi * np.arange(m) / m
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a), np.full(m, z)], axis=1)


def _chamfer_rect_y(y, w, zb, zt, chamfer=0.35):
    """(8, 3) chamfered rectangle |x| <= w, zb <= z <= zt in the plane y = const."""
    c = chamfer * min(w, (zt - zb) / 2)
    pts = [(w, zb + c), (w, zt - c), (w - c, zt), (-w + c, zt), (-w, zt - c), (-w, zb + c), (-w + c, zb),
           (w - c, zb)]
    return np.array([[x, y, z] for x, z in pts])


def _hexahedron(corners: np.ndarray):
    """8 corners (bit 0: a, bit 1: b, bit 2: c direction) -> (vertices, faces) of a closed box."""
    q = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    f = []
    for a, b_, c, d in q:
        f += [(a, b_, c), (a, c, d)]
    return corners, np.array(f)


def _wing_slab(x0, x1, le0, te0, le1, te1, z0, z1, thick):
    """A straight wing panel from span station x0 to x1 (leading/trailing edge y, mid-plane z)."""
    c = np.empty((8, 3))
    for i in range(8):
        at_x1, at_te, top = i & 1, (i >> 1) & 1, (i >> 2) & 1
        x = x1 if at_x1 else x0
        y = (te1 if at_te else le1) if at_x1 else (te0 if at_te else le0)
        z = (z1 if at_x1 else z0) + (thick / 2 if top else -thick / 2)
        c[i] = (x, y, z)
    return _hexahedron(c)


def _lerp(a, b, t):
    return a + (b - a) * t


# --- the procedural X-wing ------------------------------------------------------------------------

# Dimensions in seed units, read off reference/0.jpg (top view, ~249 px per unit at
# distance 1) and reference/1.jpg (side view); the box-defining ones are exact.
_NOSE_Y, _TAIL_Y = float(SEED_BOX[0, 1]), float(SEED_BOX[1, 1])
_SPAN_X = float(SEED_BOX[1, 0])
_BOTTOM_Z, _TOP_Z = float(SEED_BOX[0, 2]), float(SEED_BOX[1, 2])
_CANNON_X = float(abs(SEED_LASERS[0, 0, 0]))          # 0.145
_CANNON_Z = float(abs(SEED_LASERS[0, 0, 2]))          # 0.01
_CANNON_TIP_Y = float(SEED_LASERS[0, 0, 1])           # -0.1
_ENGINE_R = 0.012
_ENGINE_Z = -_BOTTOM_Z - _ENGINE_R                    # 0.020: lower engines touch z = -0.032
_ENGINE_X = 0.042
_DROID_R = 0.0085


def _fuselage_profile(y: float) -> tuple[float, float, float]:
    """Half-width, bottom z, top z of the fuselage at station y (piecewise linear)."""
    ys = [_NOSE_Y, -0.170, -0.100, -0.030, 0.040, 0.128]
    w = [0.0030, 0.0055, 0.0130, 0.0210, 0.0260, 0.0270]
    zb = [-0.0028, -0.0050, -0.0100, -0.0130, -0.0150, -0.0150]
    zt = [0.0022, 0.0045, 0.0090, 0.0130, 0.0160, 0.0160]
    return float(np.interp(y, ys, w)), float(np.interp(y, ys, zb)), float(np.interp(y, ys, zt))


@dataclass(frozen=True)
class ShipVariant:
    """The details of the ship's top that tell it from its belly, as numbers (model units).

    The defaults are the procedural X-wing itself; :func:`sample_ship_variant` draws others
    so that a top/bottom cue learns where the canopy and the droid are, not one ship's
    exact shapes. Every variant keeps the seed's box: the droid's dome apex stays the box's
    +z face, and nothing else reaches a face.

    Attributes:
        canopy_y: (front, back) stations of the canopy bubble.
        canopy_height, canopy_width: its largest height above the fuselage and half-width.
        droid_y: station of the astromech droid; droid_r: its radius.
        bay_y: (front, back) stations of the dark droid bay panel; bay_w: its half-width.
        nose_stripes: the red stripes along the nose's sides.
    """

    canopy_y: tuple[float, float] = (-0.038, 0.038)
    canopy_height: float = 0.0085
    canopy_width: float = 0.0105
    droid_y: float = 0.082
    droid_r: float = _DROID_R
    bay_y: tuple[float, float] = (0.040, 0.118)
    bay_w: float = 0.017
    nose_stripes: bool = True


def sample_ship_variant(rng: np.random.Generator) -> ShipVariant:
    """A random :class:`ShipVariant` from the training ranges, which leave out
    :data:`HELD_OUT_VARIANT`'s canopy and droid (further back, longer, taller, smaller)."""
    centre, length = rng.uniform(-0.060, 0.0), rng.uniform(0.050, 0.090)
    droid_y = rng.uniform(0.060, 0.100)
    bay0 = rng.uniform(centre + length / 2, droid_y - 0.012)
    return ShipVariant(canopy_y=(centre - length / 2, centre + length / 2),
                       canopy_height=float(rng.uniform(0.006, 0.0115)), canopy_width=float(rng.uniform(0.008, 0.013)),
                       droid_y=float(droid_y), droid_r=float(rng.uniform(0.0072, 0.0105)),
                       bay_y=(float(bay0), float(rng.uniform(droid_y + 0.012, 0.125))),
                       bay_w=float(rng.uniform(0.010, 0.019)), nose_stripes=bool(rng.random() < 0.5))


#: A ship no training variant looks like (canopy and droid outside the training ranges),
#: for measuring whether a top/bottom cue transfers.
HELD_OUT_VARIANT = ShipVariant(canopy_y=(-0.040, 0.064), canopy_height=0.0130, canopy_width=0.0140, droid_y=0.110,
                               droid_r=0.0062, bay_y=(0.066, 0.100), bay_w=0.008, nose_stripes=False)


def xwing_mesh(variant: ShipVariant = ShipVariant()) -> Mesh:
    """The procedural X-wing (about 2,600 triangles) whose box is the seed's box.

    Fuselage with a blunt nose, cockpit canopy and astromech droid on top (+z),
    four wings in the seed's near-closed S-foil attitude (upper pair at z > 0,
    lower pair at z < 0), four engines, and four cannons whose tips are the
    seed's laser origins :data:`xwing.model.keypoints.SEED_LASERS` ``[:, 0]``. Red
    markings on the wings and along the nose, dark panels and glowing nozzles
    give the renderer material ids to vary. ``variant``: the top's details
    (:class:`ShipVariant`; its defaults are this ship).
    """
    b = _Builder()

    # Fuselage: chamfered sections from the blunt nose tip (y = -0.182) to the tail.
    ys = np.concatenate([[_NOSE_Y], np.linspace(-0.170, 0.128, 12)])
    sections = [_chamfer_rect_y(y, *_fuselage_profile(y)) for y in ys]
    _add_tube(b, sections, HULL, cap_part=PANEL, smooth=False)

    # Red stripe along each side of the nose (reference/1.jpg), just proud of the hull.
    for sx in (-1, 1) if variant.nose_stripes else ():
        ys_s = np.linspace(-0.160, 0.010, 8)
        top, bot = [], []
        for y in ys_s:
            w, zb, zt = _fuselage_profile(y)
            zc = 0.5 * (zb + zt)
            top.append((sx * (w + 2e-4), y, zc + 0.0022))
            bot.append((sx * (w + 2e-4), y, zc - 0.0022))
        v = np.array(top + bot)
        n = len(ys_s)
        f = [(i, i + n, i + 1) for i in range(n - 1)] + [(i + 1, i + n, i + n + 1) for i in range(n - 1)]
        f = np.array(f)
        if sx > 0:
            f = f[:, ::-1]
        b.add(v, f, MARKING, flat=True)

    # Dark panels on the fuselage top: the droid bay behind the canopy, a nose sensor.
    for y0, y1, w in ((*variant.bay_y, variant.bay_w), (-0.150, -0.110, 0.005)):
        c = np.empty((8, 3))
        for i in range(8):
            y = y1 if (i >> 1) & 1 else y0
            c[i] = ((w if i & 1 else -w), y, _fuselage_profile(y)[2] - 0.0006 + 0.0012 * ((i >> 2) & 1))
        v, f = _hexahedron(c)
        b.add(v, _orient_outward(v, f, c.mean(axis=0)), PANEL, flat=True)

    # Canopy: a low glass bubble on the fuselage top, just ahead of the droid bay.
    cys = np.linspace(*variant.canopy_y, 9)
    t = (cys - cys[0]) / (cys[-1] - cys[0])
    height = variant.canopy_height * np.sin(np.pi * np.clip(t * 1.05, 0, 1)) ** 0.6 + 0.0015
    width = variant.canopy_width * np.sin(np.pi * np.clip(t * 0.9 + 0.1, 0, 1)) ** 0.5 + 0.002
    a = np.linspace(0, np.pi, 9)
    csec = []
    for y, h, w in zip(cys, height, width):
        zt = _fuselage_profile(y)[2] - 0.001
        csec.append(np.stack([w * np.cos(a), np.full_like(a, y), zt + h * np.sin(a)], axis=1))
    _add_tube(b, csec, CANOPY, cap_part=CANOPY, smooth=True)

    # Astromech droid: body cylinder and a dome whose apex is the box's +z face.
    dy, dr = variant.droid_y, variant.droid_r
    dome_c = _TOP_Z - dr
    _add_tube(b, [_ring_z(z, 0.0, dy, dr) for z in (0.010, dome_c)], DROID, cap_part=DROID)
    rings = [_ring_z(dome_c + dr * np.sin(phi), 0.0, dy, dr * np.cos(phi))
             for phi in np.linspace(0, np.pi / 2, 6)[:-1]]
    (v, f), _ = _loft(rings, cap_start=False, cap_end=False)
    base, k = len(v) - 16, np.arange(16)
    f = np.concatenate([f, np.stack([base + k, base + (k + 1) % 16, np.full(16, len(v))], 1)])
    v = np.concatenate([v, [[0.0, dy, _TOP_Z]]])
    b.add(v, _orient_outward(v, f, np.array([0, dy, dome_c])), DROID)

    # Engines: four cylinders at (+-x, +-z) with intake rings and glowing nozzles.
    for sx in (-1, 1):
        for sz in (-1, 1):
            cx, cz = sx * _ENGINE_X, sz * _ENGINE_Z
            prof = [(0.034, 0.0105), (0.036, _ENGINE_R * 1.04), (0.046, _ENGINE_R * 1.04),
                    (0.048, _ENGINE_R), (0.150, _ENGINE_R), (0.156, 0.0110), (_TAIL_Y, 0.0100)]
            # Only the body station may reach the box: the intake ring stays inside |z| <= 0.032.
            secs = []
            for y, r in prof:
                rz = min(r, _ENGINE_R)
                secs.append(_ring_y(y, cx, cz, r, rz, 16))
            (v, f), caps = _loft(secs)
            centre = np.array([cx, 0.1, cz])
            b.add(v, _orient_outward(v, f, centre), HULL)
            (cv0, cf0), (cv1, cf1) = caps
            b.add(cv0, _orient_outward(cv0, cf0, centre), PANEL, flat=True)
            b.add(cv1, _orient_outward(cv1, cf1, centre), EXHAUST, flat=True)

    # Wings: upper pair at z > 0, lower at z < 0, closing toward the tips (S-foils
    # almost closed); red marking band near each tip.
    root_x, tip_x = 0.030, _CANNON_X
    le0, te0, le1, te1 = 0.046, 0.128, 0.058, 0.110
    z0, z1, thick = 0.0155, _CANNON_Z, 0.0024
    stations = [root_x, 0.104, 0.118, tip_x]
    station_parts = [HULL, MARKING, HULL]
    for sx in (-1, 1):
        for sz in (-1, 1):
            for (xa, xb), part in zip(zip(stations[:-1], stations[1:]), station_parts):
                ta, tb = (xa - root_x) / (tip_x - root_x), (xb - root_x) / (tip_x - root_x)
                v, f = _wing_slab(sx * xa, sx * xb, _lerp(le0, le1, ta), _lerp(te0, te1, ta), _lerp(le0, le1, tb),
                                  _lerp(te0, te1, tb), sz * _lerp(z0, z1, ta), sz * _lerp(z0, z1, tb), thick)
                b.add(v, _orient_outward(v, f, v.mean(axis=0)), part, flat=True)

    # Cannons: housing at the wing tip (outer side is the box's x face), barrel,
    # flash suppressor; the tip cap's centre is the laser origin.
    for sx in (-1, 1):
        for sz in (-1, 1):
            cx, cz = sx * _CANNON_X, sz * _CANNON_Z
            housing = [_ring_y(y, cx, cz, r, r * 0.72, 16) for y, r in
                       ((0.112, 0.0085), (0.100, _SPAN_X - _CANNON_X), (0.030, _SPAN_X - _CANNON_X),
                        (0.018, 0.006))]
            _add_tube(b, housing, HULL, cap_part=PANEL, smooth=False)
            barrel = [_ring_y(y, cx, cz, r, r, 12) for y, r in
                      ((0.020, 0.0030), (-0.082, 0.0030), (-0.083, 0.0045), (_CANNON_TIP_Y, 0.0045))]
            _add_tube(b, barrel, METAL, cap_part=PANEL, smooth=True)

    return b.mesh("procedural X-wing")


# --- user meshes ------------------------------------------------------------------------------------


def load_mesh(path: str | Path, fit_seed_box: bool = False) -> Mesh:
    """Read an OBJ/PLY/GLB/GLTF/STL/OFF file with trimesh -> :class:`Mesh`.

    Scenes are flattened with their transforms; all faces get part ``hull``.
    With ``fit_seed_box`` the mesh is scaled and shifted per axis so its box is
    exactly the seed's box (the seed's 8 corner labels then apply); otherwise
    it is used as is and the keypoints come from its own box.
    """
    path = Path(path)
    if not path.is_file():
        raise XwingError("mesh file not found", path)
    try:
        import trimesh
    except ImportError:
        raise XwingError("loading meshes needs trimesh: pip install 'xwing[render]'", path) from None
    try:
        loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as e:  # trimesh raises many types for bad files
        raise XwingError(f"cannot read mesh ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})",
                         path) from None
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64)
    if len(vertices) < 3 or len(faces) < 1 or faces.ndim != 2 or faces.shape[1] != 3:
        raise XwingError("mesh has no triangles", path)
    if not np.all(np.isfinite(vertices)):
        raise XwingError("mesh has non-finite vertices", path)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise XwingError("mesh faces index missing vertices", path)
    mesh = Mesh(vertices, faces, name=path.name)
    lo, hi = mesh.box
    if np.any(hi - lo <= 0):
        raise XwingError("mesh is flat (zero extent along an axis)", path)
    if fit_seed_box:
        scale = (SEED_BOX[1] - SEED_BOX[0]) / (hi - lo)
        mesh = mesh.transformed(scale, SEED_BOX[0] - lo * scale)
        mesh.name = path.name
    return mesh


def mesh_summary(mesh: Mesh) -> dict:
    """Plain-JSON facts about a mesh (for manifests)."""
    return {"name": mesh.name, "vertices": int(len(mesh.vertices)), "faces": int(len(mesh.faces)),
            "box_min": mesh.box[0].round(6).tolist(), "box_max": mesh.box[1].round(6).tolist()}
