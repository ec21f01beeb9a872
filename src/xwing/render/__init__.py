"""The data engine: a headless renderer of the ship's mesh, and seed-format data.

The mesh itself (the procedural X-wing, user meshes) is :mod:`xwing.model.mesh`
(numpy only). Modules here: :mod:`.gl` (moderngl on headless EGL, imported lazily
via :func:`make_renderer`), :mod:`.appearance` (materials, lights),
:mod:`.background` (nebulae, star fields, user images), :mod:`.effects` (sensor
effects), :mod:`.sampler` (the documented pose distribution), :mod:`.generator`
(one labelled sample at a time, on the fly or for disk), :mod:`.writer`
(resumable, sharded datasets), :mod:`.sequence` (smooth flights and video) and
:mod:`.compare` (``docs/ship_vs_seed.png``). The command ``xwing render`` is
:mod:`xwing.cli.render`; more in ``docs/data.md``.

    >>> from xwing.render import GeneratorConfig, SampleGenerator
    >>> gen = SampleGenerator(GeneratorConfig(seed=1, view="crop"))
    >>> s = gen.sample_index(0)        # .image, .T_cam_obj, .camera, .keypoints, .mask, .ship_visible

Importing this package loads neither moderngl nor trimesh.
"""

from __future__ import annotations

from xwing.render.gl import Renderer

_LAZY = {
    "Mesh": "xwing.model.mesh", "xwing_mesh": "xwing.model.mesh", "load_mesh": "xwing.model.mesh",
    "GeneratorConfig": "generator", "SampleGenerator": "generator", "GeneratedSample": "generator",
    "RenderedDataset": "generator",
    "PoseSampler": "sampler", "PoseSamplerConfig": "sampler",
    "Appearance": "appearance", "sample_appearance": "appearance",
}


def make_renderer(camera, mesh=None, samples: int = 4):
    """A :class:`xwing.render.gl.Renderer` for ``camera`` and ``mesh`` (default: the
    procedural X-wing); ``samples`` anti-aliasing samples per pixel (0: exact coverage).
    moderngl is imported here, not at package import."""
    return Renderer(camera, mesh, samples=samples)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = _LAZY[name]
        return getattr(importlib.import_module(module if module.startswith("xwing.") else f".{module}", __name__),
                       name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["make_renderer", *_LAZY]
