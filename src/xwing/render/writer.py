"""Writing generated samples to disk in the seed's layout: resumable, shardable, parallel.

Sample ``i`` is a pure function of ``(seed, i)`` (see
:meth:`xwing.render.generator.SampleGenerator.sample_index`), so any split of
the indices over shards, worker processes or interrupted runs writes the same
files. A sample is complete once its ``N_mat.json`` exists (the image is
written first, both atomically); a rerun skips complete samples.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.camera import Camera, model_matrix_from_T_cam_obj
from xwing.io.atomic import atomic_write_json
from xwing.io.dataset import sample_complete, save_camera_info, write_sample
from xwing.model.mesh import HELD_OUT_VARIANT, Mesh, load_mesh, mesh_summary, xwing_mesh
from xwing.render import gl
from xwing.render.generator import GENERATOR_VERSION, GeneratorConfig, SampleGenerator
from xwing.render.gl import renderer_name
from xwing.render.sampler import CATEGORIES
from xwing.version import __version__


@dataclass(frozen=True)
class MeshSource:
    """How to rebuild the mesh in a worker process: None = the procedural X-wing (``held_out``:
    its held-out variant, :data:`xwing.model.mesh.HELD_OUT_VARIANT`)."""

    path: str | None = None
    fit_seed_box: bool = False
    held_out: bool = False

    def load(self) -> Mesh:
        if self.path is not None:
            return load_mesh(self.path, self.fit_seed_box)
        return xwing_mesh(HELD_OUT_VARIANT) if self.held_out else xwing_mesh()


def process_start() -> float:
    """This process's start as a ``time.perf_counter()`` value (Linux; else now), so a
    command's speed includes the interpreter's start-up and imports."""
    now = time.perf_counter()
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command name: field 3 onwards
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time in ticks
        return now - age if 0 <= age < 3600 else now
    except (OSError, ValueError, IndexError):
        return now


def shard_indices(count: int, shard: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Indices of shard ``I`` of ``N`` among ``range(count)``: every N-th, from I."""
    i, n = shard
    return np.arange(i, count, n)


def identity(config: GeneratorConfig, camera: Camera, mesh: Mesh, count: int) -> dict:
    """What decides the files' content; a resumed run must match it."""
    return {"generator_version": GENERATOR_VERSION, "config": config.to_dict(), "camera": camera.to_dict(),
            "mesh": mesh_summary(mesh), "count": int(count)}


def manifest_name(shard: tuple[int, int]) -> str:
    return "manifest.json" if shard[1] == 1 else f"manifest.shard-{shard[0]}-of-{shard[1]}.json"


def check_resumable(out: Path, ident: dict) -> None:
    """Raise if ``out`` holds a dataset made with another configuration."""
    for p in sorted(out.glob("manifest*.json")):
        try:
            old = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(old, dict) or "config" not in old:
            continue
        old_ident = {k: old.get(k) for k in ident}
        if isinstance(old_ident["config"], dict):
            # A field added since then had its default then (the look, say): read it as such.
            old_ident["config"] = GeneratorConfig.from_dict(old_ident["config"]).to_dict()
        if json.loads(json.dumps(old_ident)) != json.loads(json.dumps(ident)):
            diff = [k for k in ident if json.dumps(old_ident.get(k), sort_keys=True) != json.dumps(ident[k],
                                                                                                 sort_keys=True)]
            raise XwingError(f"holds samples rendered with a different {', '.join(diff)} ({p.name}); "
                             "use a new directory or the same options", out)


def prepare_output(out: Path) -> None:
    """Create ``out`` and prove it is writable (one-line error otherwise)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise XwingError(f"cannot create the output directory ({e.strerror})", out) from None
    if not out.is_dir():
        raise XwingError("output path exists and is not a directory", out)
    if not os.access(out, os.W_OK | os.X_OK):
        raise XwingError("output directory is not writable", out)
    probe = out / f".xwing-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise XwingError(f"output directory is not writable ({e.strerror})", out) from None
    # Temporary files of a killed run (atomic writes never finished); fresh ones may be
    # another shard's writes in flight, so only old ones go.
    now = time.time()
    for p in out.glob(".*.tmp"):
        try:
            if now - p.stat().st_mtime > 120:
                p.unlink()
        except OSError:
            pass


def write_one(gen: SampleGenerator, out: Path, index: int) -> tuple[bool, str]:
    """Render and write sample ``index``; returns (ship visible, pose category)."""
    s = gen.sample(gen.rng_for(index), jpeg=False)
    M = model_matrix_from_T_cam_obj(s.T_cam_obj, gen.camera.view_matrix)
    write_sample(out, index, s.image, M, jpeg_quality=s.sensor.jpeg_quality)
    return s.ship_visible, s.category


# --- worker processes --------------------------------------------------------------------------

_WORKER: dict = {}


def _worker_init(config: dict | None, camera: dict | None, mesh_source: MeshSource | None, out: str) -> None:
    if config is not None:  # spawned: a fresh interpreter rebuilds the generator
        import cv2

        cv2.setNumThreads(1)  # processes share the cores: OpenCV's thread pool would only contend
        gen = SampleGenerator(GeneratorConfig.from_dict(config), Camera.from_dict(camera), mesh_source.load())
        _WORKER.update(gen=gen)
    # forked: _WORKER["gen"] (bank included) and OpenCV's single-thread setting came with the fork
    _WORKER.update(out=Path(out))


@contextlib.contextmanager
def _worker_pool(gen: SampleGenerator, mesh_source: MeshSource, out: Path, workers: int):
    """A process pool whose workers render with ``gen``'s configuration.

    Forking is fast (the workers inherit the imports, the mesh and the background
    bank) but only safe from a process that has no GL context (EGL/llvmpipe state
    does not survive fork) and no running OpenCV worker threads (a forked child
    that touches OpenCV's inherited thread pool deadlocks): OpenCV is switched to
    one thread before forking and restored after. Otherwise workers are spawned.
    """
    import multiprocessing as mp

    import cv2

    method = "fork" if gl._CONTEXT is None and "fork" in mp.get_all_start_methods() else "spawn"
    threads = cv2.getNumThreads()
    try:
        if method == "fork":
            cv2.setNumThreads(1)  # joins OpenCV's pool threads in this process, before any fork
            _ = gen.bank  # made once here, inherited by every worker
            _WORKER.update(gen=gen)
            initargs = (None, None, None, str(out))
        else:
            initargs = (gen.config.to_dict(), gen.camera.to_dict(), mesh_source, str(out))
        with mp.get_context(method).Pool(workers, initializer=_worker_init, initargs=initargs) as pool:
            yield pool
    finally:
        _WORKER.clear()
        cv2.setNumThreads(threads)


def _worker_run(indices: list[int]) -> tuple[str, list[tuple[bool, str]]]:
    gen, out = _WORKER["gen"], _WORKER["out"]
    results = [write_one(gen, out, i) for i in indices]
    return renderer_name(), results


def render_dataset(out: str | Path, count: int, config: GeneratorConfig, camera: Camera,
                   mesh_source: MeshSource = MeshSource(), shard: tuple[int, int] = (0, 1), workers: int = 1,
                   progress: bool = True, chunk: int = 16, cpu: bool = True, t_start: float | None = None) -> dict:
    """Write samples ``0..count-1`` (this shard's share) into ``out``; returns the manifest.

    Complete samples are skipped (resume). ``cpu`` renders with Mesa's llvmpipe even
    where a GPU is present (the same bytes on every machine). The manifest (``manifest.json``, or
    ``manifest.shard-I-of-N.json`` for a shard) records the configuration,
    counts, category statistics and the measured speed, timed from ``t_start``
    (a ``time.perf_counter()`` value; default: this call's start).
    """
    from tqdm import tqdm

    t_start = time.perf_counter() if t_start is None else t_start
    out = Path(out)
    if count < 1:
        raise XwingError(f"--count must be >= 1, got {count}")
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise XwingError(f"--shard must be I/N with 0 <= I < N, got {i}/{n}")
    if camera.has_distortion:
        raise XwingError("the camera has lens distortion; rendering supports pinhole cameras only "
                         "(render with the undistorted K)")
    if cpu:
        from xwing.render.gl import use_cpu_renderer

        use_cpu_renderer()
    mesh = mesh_source.load()
    gen = SampleGenerator(config, camera, mesh)
    ident = identity(config, camera, mesh, count)
    prepare_output(out)
    check_resumable(out, ident)
    save_camera_info(out, camera)

    todo_all = shard_indices(count, shard)
    todo = [int(k) for k in todo_all if not sample_complete(out, int(k))]
    skipped = len(todo_all) - len(todo)
    visible, renderers, cats = 0, set(), {c: 0 for c in CATEGORIES}
    t_render = time.perf_counter()
    if workers <= 1 or len(todo) < 2 * chunk:
        from xwing.render.gl import renderer_name

        bar = tqdm(total=len(todo), unit="img", desc="render", disable=not progress, smoothing=0.1)
        for k in todo:
            vis, cat = write_one(gen, out, k)
            visible += vis
            cats[cat] += 1
            bar.update(1)
        if todo:
            renderers.add(renderer_name())
    else:
        chunks = [todo[a:a + chunk] for a in range(0, len(todo), chunk)]
        with _worker_pool(gen, mesh_source, out, workers) as pool:
            # The bar (and its monitor thread) only after the workers exist: see _worker_pool.
            bar = tqdm(total=len(todo), unit="img", desc="render", disable=not progress, smoothing=0.1)
            for name, res in pool.imap_unordered(_worker_run, chunks):
                renderers.add(name)
                for vis, cat in res:
                    visible += vis
                    cats[cat] += 1
                bar.update(len(res))
    bar.close()
    t_rendered = time.perf_counter()
    done = set(todo)
    stats = pose_statistics(gen, [k for k in todo_all if int(k) not in done], cats)
    seconds = time.perf_counter() - t_start
    manifest = {
        "kind": "dataset",
        "xwing_version": __version__,
        "seed": config.seed,
        **ident,
        "mesh_source": {"path": mesh_source.path, "fit_seed_box": mesh_source.fit_seed_box,
                        "held_out": mesh_source.held_out},
        "keypoints": gen.corners.tolist(),
        "shard": [i, n],
        "renderer": {"gl": sorted(renderers), "cpu_requested": bool(cpu)},
        "counts": {"shard_total": int(len(todo_all)), "rendered_this_run": len(todo),
                   "skipped_existing": int(skipped), "ship_visible_this_run": int(visible), **stats},
        "speed": {"images_per_s": (len(todo) / seconds) if todo else None, "seconds": round(seconds, 3),
                  "render_seconds": round(t_rendered - t_render, 3), "workers": int(workers),
                  "note": "rendered + written samples per second, start-up included (from process start when run "
                          "as `xwing render`)"},
    }
    old = out / manifest_name(shard)
    if not todo and old.is_file():  # nothing rendered now: keep the speed measured when it was
        try:
            manifest["speed"] = {**json.loads(old.read_text())["speed"], "note_resume": "measured by an earlier run"}
        except (OSError, ValueError, KeyError, TypeError):
            pass
    atomic_write_json(out / manifest_name(shard), manifest)
    return manifest


def pose_statistics(gen: SampleGenerator, indices, counts: dict | None = None) -> dict:
    """Category counts of samples ``indices`` (poses only: cheap, no rendering), added
    to ``counts`` (those of samples rendered this run).

    ``share_truncated``: a box corner outside the image, not out of view (the
    ``truncated`` and ``cut`` categories); ``share_ship_cut_by_border``: the
    ship itself crosses the border (``cut``).
    """
    cats = {c: 0 for c in CATEGORIES}
    for c, n in (counts or {}).items():
        cats[c] += n
    for k in indices:
        cats[gen.pose_sampler.sample(gen.rng_for(int(k))).category] += 1  # the first draws of sample k
    total = max(sum(cats.values()), 1)
    return {"categories": cats, "share_truncated": (cats["truncated"] + cats["cut"]) / total,
            "share_ship_cut_by_border": cats["cut"] / total, "share_out_of_view": cats["out"] / total}
