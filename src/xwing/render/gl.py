"""Headless OpenGL rendering of the ship (moderngl on EGL: Mesa llvmpipe on CPUs, the GPU elsewhere).

Convention: poses come in as ``T_cam_obj`` (OpenCV camera) and are converted
once with :func:`xwing.geometry.camera.cv_to_gl_pose`; the projection is
:meth:`xwing.geometry.camera.Camera.gl_projection`, built from ``K`` so that pixel
centres land where ``K`` says. OpenGL's framebuffer rows run bottom-up, so
every read-back is flipped to image rows (top-down). Together these make a
rendered silhouette agree with :func:`xwing.geometry.projection.project_points` to a
fraction of a pixel (``tests/test_render_gl.py`` checks it 8x supersampled).

One GL context per process, created on first use, so a renderer built in one
process and used in a forked PyTorch DataLoader worker makes its own there.
"""

from __future__ import annotations

import os

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.camera import Camera, cv_to_gl_pose
from xwing.geometry.pose import transform_points
from xwing.model.mesh import Mesh, xwing_mesh
from xwing.render.appearance import N_PARTS, Appearance

_CONTEXT: tuple[int, object] | None = None  # (pid, moderngl.Context)

_SHIP_VS = """
#version 330
uniform mat4 mvp;
uniform mat4 mv;
in vec3 in_pos;
in vec3 in_normal;
in float in_part;
out vec3 v_pos_cam;
out vec3 v_n_cam;
out vec3 v_pos_obj;
flat out int v_part;
void main() {
    gl_Position = mvp * vec4(in_pos, 1.0);
    v_pos_cam = (mv * vec4(in_pos, 1.0)).xyz;
    v_n_cam = mat3(mv) * in_normal;
    v_pos_obj = in_pos;
    v_part = int(in_part + 0.5);
}
"""

_SHIP_FS = """
#version 330
uniform vec3 albedo[%(N)d];
uniform float specular[%(N)d];
uniform float shininess[%(N)d];
uniform vec3 emission[%(N)d];
uniform vec3 light_dir[3];
uniform vec3 light_col[3];
uniform vec3 ambient;
uniform float panel_amp;
uniform float panel_scale;
uniform vec3 panel_offset;
uniform float exposure;
in vec3 v_pos_cam;
in vec3 v_n_cam;
in vec3 v_pos_obj;
flat in int v_part;
out vec4 f_color;

float hash(vec3 p) {
    p = fract(p * 0.3183099 + 0.1);
    p *= 17.0;
    return fract(p.x * p.y * p.z * (p.x + p.y + p.z));
}

void main() {
    vec3 n = normalize(v_n_cam);
    vec3 V = normalize(-v_pos_cam);
    if (dot(n, V) < 0.0) n = -n;  // thin parts are seen from both sides
    vec3 a = albedo[v_part];
    // Hull panels: each grid cell of the model gets its own brightness, and a
    // faint dark seam along the cell borders.
    vec3 q = v_pos_obj * panel_scale + panel_offset;
    vec3 cell = floor(q);
    float h = hash(cell);
    vec3 f = abs(fract(q) - 0.5);
    float seam = smoothstep(0.47, 0.5, max(f.x, f.y));
    a *= (1.0 + panel_amp * (h - 0.5)) * (1.0 - 0.25 * panel_amp * seam);
    vec3 col = ambient * a + emission[v_part];
    for (int i = 0; i < 3; ++i) {
        vec3 L = light_dir[i];
        float ndl = max(dot(n, L), 0.0);
        vec3 H = normalize(L + V);
        float s = specular[v_part] * pow(max(dot(n, H), 0.0), shininess[v_part]);
        col += light_col[i] * (a * ndl + s * ndl);
    }
    col = pow(max(col * exposure, 0.0), vec3(1.0 / 2.2));
    f_color = vec4(col, 1.0);
}
""" % {"N": N_PARTS}  # noqa: UP031 - GLSL is full of braces

_BG_VS = """
#version 330
in vec2 in_xy;
void main() { gl_Position = vec4(in_xy, 0.0, 1.0); }
"""

_BG_FS = """
#version 330
uniform sampler2D bg;
uniform int height;
uniform int scale;
out vec4 f_color;
void main() {
    // Image rows are top-down, GL rows bottom-up: fetch the mirrored row, exactly; each
    // background pixel covers scale x scale supersamples.
    ivec2 p = ivec2(int(gl_FragCoord.x) / scale, height - 1 - int(gl_FragCoord.y) / scale);
    f_color = vec4(texelFetch(bg, p, 0).rgb, 0.0);  // alpha 0: not ship
}
"""


def gl_context():
    """This process's headless moderngl context (created on first call)."""
    global _CONTEXT
    pid = os.getpid()
    if _CONTEXT is None or _CONTEXT[0] != pid:
        # llvmpipe's worker threads cost more than they save on our small tiles (measured:
        # 246 vs 177 img/s for `xwing render`); the user's own setting wins. GPUs ignore it.
        os.environ.setdefault("LP_NUM_THREADS", "0")
        try:
            import moderngl
        except ImportError:
            raise XwingError("rendering needs moderngl: pip install 'xwing[render]'") from None
        try:
            ctx = moderngl.create_context(standalone=True, backend="egl")
        except Exception as e:
            raise XwingError(f"cannot create a headless EGL context ({str(e).splitlines()[0] if str(e) else e}); "
                             "install EGL/Mesa: sudo apt-get install -y libegl1 libgl1-mesa-dri") from None
        _CONTEXT = (pid, ctx)
    return _CONTEXT[1]


#: Where glvnd looks for EGL vendor files; Mesa's is 50_mesa.json.
_EGL_VENDOR_DIRS = ("/usr/share/glvnd/egl_vendor.d", "/etc/glvnd/egl_vendor.d", "/usr/local/share/glvnd/egl_vendor.d")


def use_cpu_renderer() -> bool:
    """Make this process (and the workers it starts) render with Mesa's llvmpipe even
    where a GPU is present, so that images are the same bytes on every machine.

    Takes effect for the process's first GL context: it sets
    ``LIBGL_ALWAYS_SOFTWARE=1`` and points glvnd at Mesa's EGL vendor file.
    Returns False when a context on another device already exists in this
    process (it stays in use; manifests record the renderer actually used).
    """
    if _CONTEXT is not None and _CONTEXT[0] == os.getpid():
        return is_cpu_renderer(str(_CONTEXT[1].info.get("GL_RENDERER", "")))
    os.environ["LIBGL_ALWAYS_SOFTWARE"] = "1"
    for d in _EGL_VENDOR_DIRS:
        if os.path.isfile(os.path.join(d, "50_mesa.json")):
            os.environ["__EGL_VENDOR_LIBRARY_FILENAMES"] = os.path.join(d, "50_mesa.json")
            break
    return True


def is_cpu_renderer(name: str) -> bool:
    return any(k in name.lower() for k in ("llvmpipe", "softpipe", "swrast", "lavapipe"))


def renderer_name() -> str:
    """GL_RENDERER of this process's context (e.g. 'llvmpipe (LLVM 15.0.6, 256 bits)')."""
    return str(gl_context().info.get("GL_RENDERER", "unknown"))


def _mat_bytes(M: np.ndarray) -> bytes:
    # GLSL matrices are column-major.
    return np.ascontiguousarray(np.asarray(M, dtype=np.float32).T).tobytes()


class Renderer:
    """Renders a mesh at a pose; see the module docstring for the conventions.

    Only the rectangle that the mesh's projected box can cover is rasterised
    (the rest of the frame is the background as given), so small or distant
    ships cost little.

    Args:
        camera: default camera (``K``, size, clip planes).
        mesh: the model (default: :func:`xwing.model.mesh.xwing_mesh`).
        samples: anti-aliasing samples per pixel: 0 or 1 = one sample at the pixel
            centre (the exact, binary coverage that the geometry tests use); 4, 9,
            16 = a 2x2, 3x3, 4x4 ordered grid (supersampling, then a block mean:
            on llvmpipe about twice as fast as 4x MSAA for this mesh); other
            values use the GPU's MSAA with that many samples.
    """

    def __init__(self, camera: Camera, mesh: Mesh | None = None, samples: int = 4):
        self.camera = camera
        self.mesh = mesh if mesh is not None else xwing_mesh()
        self.samples = int(samples)
        root = int(round(np.sqrt(max(self.samples, 1))))
        self.supersample = root if root * root == max(self.samples, 1) else 1
        self.msaa = 0 if self.supersample > 1 or self.samples <= 1 else self.samples
        self._corners = self.mesh.box_corners()
        self._gl = None  # (pid, state dict), built on first render in this process

    # --- GL state ---------------------------------------------------------------------------

    def _state(self) -> dict:
        pid = os.getpid()
        if self._gl is not None and self._gl[0] == pid:
            return self._gl[1]
        ctx = gl_context()
        ship = ctx.program(vertex_shader=_SHIP_VS, fragment_shader=_SHIP_FS)
        m = self.mesh
        tri = m.faces.reshape(-1)  # (3F,) unindexed so that each face keeps its part id
        data = np.concatenate([m.vertices[tri], m.normals[tri],
                               np.repeat(m.parts, 3).astype(np.float32)[:, None]], axis=1)  # (3F, 7)
        vbo = ctx.buffer(np.ascontiguousarray(data, dtype=np.float32).tobytes())
        ship_vao = ctx.vertex_array(ship, [(vbo, "3f 3f 1f", "in_pos", "in_normal", "in_part")])
        bg = ctx.program(vertex_shader=_BG_VS, fragment_shader=_BG_FS)
        quad = ctx.buffer(np.array([-1, -1, 3, -1, -1, 3], dtype=np.float32).tobytes())  # one big triangle
        bg_vao = ctx.vertex_array(bg, [(quad, "2f", "in_xy")])
        state = {"ctx": ctx, "ship": ship, "ship_vao": ship_vao, "bg": bg, "bg_vao": bg_vao, "fbos": {},
                 "buffers": [vbo, quad]}
        self._gl = (pid, state)
        return state

    def _targets(self, st: dict, width: int, height: int):
        # Tiles vary in size per image; buckets of 64 px keep the number of buffers small.
        key = (-(-width // 64) * 64, -(-height // 64) * 64)
        if key not in st["fbos"]:
            ctx = st["ctx"]
            samples = min(self.msaa, ctx.max_samples)
            color = ctx.renderbuffer(key, 4, samples=samples)
            depth = ctx.depth_renderbuffer(key, samples=samples)
            fbo = ctx.framebuffer([color], depth)
            resolve = ctx.framebuffer([ctx.renderbuffer(key, 4)]) if samples else fbo
            tex = ctx.texture(key, 3)
            tex.alignment = 1  # rows of 3 * width bytes are not 4-byte aligned in general
            st["fbos"][key] = (fbo, resolve, tex)
        return st["fbos"][key]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_gl"] = None  # GL objects belong to the process that made them
        return state

    # --- rendering ---------------------------------------------------------------------------

    def render(self, T_cam_obj: np.ndarray, camera: Camera | None = None, appearance: Appearance | None = None,
               background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Render the mesh at ``T_cam_obj`` (4, 4, object -> OpenCV camera).

        Args:
            camera: overrides the default camera (any ``K`` and size).
            appearance: materials and lights (default :class:`Appearance`).
            background: optional (H, W, 3) uint8 RGB image composited behind the
                ship (anti-aliased edges blend into it); not modified.

        Returns:
            rgb: (H, W, 3) uint8, the ship over ``background`` (or over black,
                i.e. premultiplied by coverage).
            coverage: (H, W) float32 in [0, 1], the share of each pixel covered by
                the ship (exactly 0 or 1 with ``samples=0``).
        """
        cam = camera or self.camera
        app = appearance or Appearance()
        W, H = cam.width, cam.height
        if background is not None:
            background = np.asarray(background)
            if background.shape != (H, W, 3) or background.dtype != np.uint8:
                raise ValueError(f"background must be uint8 {(H, W, 3)}, got {background.dtype} {background.shape}")
        rgb = np.zeros((H, W, 3), np.uint8) if background is None else background.copy()
        coverage = np.zeros((H, W), np.float32)
        T_cam_obj = np.asarray(T_cam_obj, dtype=np.float64)
        tile = self.tile(T_cam_obj, cam)
        if tile is None:  # nothing of the ship can reach the image
            return rgb, coverage
        x0, y0, x1, y1 = tile
        w, h = x1 - x0, y1 - y0
        # The tile's camera: K shifted to the tile's origin; its projection maps the
        # viewport (0, 0, w, h) exactly onto the tile's pixels.
        K = cam.K.copy()
        K[0, 2] -= x0
        K[1, 2] -= y0
        ss = self.supersample
        P = cam.with_K(K, w, h).resized(w * ss, h * ss).gl_projection()
        st = self._state()
        ctx = st["ctx"]
        fbo, resolve, tex = self._targets(st, w * ss, h * ss)
        fbo.use()
        ctx.viewport = (0, 0, w * ss, h * ss)
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        ctx.disable(ctx.CULL_FACE)  # thin parts (stripes, wings) must show from both sides
        if background is not None:
            tex.write(np.ascontiguousarray(background[y0:y1, x0:x1]).tobytes(), viewport=(0, 0, w, h))
            tex.use(0)
            st["bg"]["bg"].value = 0
            st["bg"]["height"].value = h
            st["bg"]["scale"].value = ss
            ctx.disable(ctx.DEPTH_TEST)
            st["bg_vao"].render(mode=ctx.TRIANGLES)
        ctx.enable(ctx.DEPTH_TEST)
        T_gl = cv_to_gl_pose(T_cam_obj)
        prog = st["ship"]
        prog["mvp"].write(_mat_bytes(P @ T_gl))
        prog["mv"].write(_mat_bytes(T_gl))
        lin = lambda c: np.power(np.clip(np.asarray(c, dtype=np.float64), 0, None), 2.2)  # noqa: E731
        prog["albedo"].write(lin(app.albedo).astype(np.float32).tobytes())
        prog["specular"].write(np.asarray(app.specular, dtype=np.float32).tobytes())
        prog["shininess"].write(np.asarray(app.shininess, dtype=np.float32).tobytes())
        prog["emission"].write(lin(app.emission).astype(np.float32).tobytes())
        prog["light_dir"].write(np.asarray(app.light_dirs, dtype=np.float32).tobytes())
        prog["light_col"].write(np.asarray(app.light_colors, dtype=np.float32).tobytes())
        prog["ambient"].value = tuple(float(x) for x in app.ambient)
        prog["panel_amp"].value = float(app.panel_amp)
        prog["panel_scale"].value = float(app.panel_scale)
        prog["panel_offset"].value = tuple(float(x) for x in app.panel_offset)
        prog["exposure"].value = float(app.exposure)
        st["ship_vao"].render(mode=ctx.TRIANGLES)
        if resolve is not fbo:
            ctx.copy_framebuffer(resolve, fbo)
        raw = resolve.read(viewport=(0, 0, w * ss, h * ss), components=4, alignment=1)
        rgba = np.frombuffer(raw, dtype=np.uint8).reshape(h * ss, w * ss, 4)[::-1]  # GL rows bottom-up
        if ss > 1:
            import cv2

            # Block mean of ss x ss supersamples; Camera.resized's pixel-centre map makes it exact.
            rgba = cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA)
        rgb[y0:y1, x0:x1] = rgba[..., :3]
        coverage[y0:y1, x0:x1] = rgba[..., 3] * np.float32(1.0 / 255.0)
        return rgb, coverage

    def tile(self, T_cam_obj: np.ndarray, camera: Camera | None = None) -> tuple[int, int, int, int] | None:
        """Pixel rectangle ``(x0, y0, x1, y1)`` (end-exclusive) that holds the whole
        projected mesh (bounded by its box corners), None when the mesh misses the
        image, the full frame when a corner is too near the camera to bound it."""
        cam = camera or self.camera
        X = transform_points(T_cam_obj, self._corners)  # (8, 3) camera frame
        if np.all(X[:, 2] <= cam.near):
            return None
        if np.any(X[:, 2] <= cam.near):
            return 0, 0, cam.width, cam.height
        uv = (X[:, :2] / X[:, 2:]) @ cam.K[:2, :2].T + cam.K[:2, 2]  # (8, 2)
        # Pixel i covers [i - 0.5, i + 0.5]; one more pixel of margin against rounding.
        x0, y0 = np.floor(uv.min(axis=0) + 0.5).astype(int) - 1
        x1, y1 = np.floor(uv.max(axis=0) + 0.5).astype(int) + 2
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        x1, y1 = min(int(x1), cam.width), min(int(y1), cam.height)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def release(self) -> None:
        """Free this renderer's GL objects (the process's context stays)."""
        if self._gl is not None and self._gl[0] == os.getpid():
            st = self._gl[1]
            for fbo, resolve, tex in st["fbos"].values():
                tex.release()
                for f in {fbo, resolve}:
                    for a in f.color_attachments:
                        a.release()
                    if f.depth_attachment is not None:
                        f.depth_attachment.release()
                    f.release()
            for k in ("ship_vao", "bg_vao", "ship", "bg"):
                st[k].release()
            for b in st["buffers"]:
                b.release()
        self._gl = None
