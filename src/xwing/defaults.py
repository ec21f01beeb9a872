"""One table of defaults, shared by every command, the benchmarks and the Python API.

A default that two commands share is written here once; a command's ``--help``
reads it from here.
"""

#: The shipped keypoint model (its side classifier sits beside it as ``xwing.side.npz``).
DEFAULT_MODEL = "models/xwing.onnx"
#: The bundled flight clip (a sequence directory with truth) and where ``xwing demo`` writes.
DEMO_CLIP = "assets/demo"
DEMO_OUT = "out/demo"
#: The refinement every command runs unless told otherwise (names: :data:`xwing.infer.refine.REFINE_MODES`).
DEFAULT_REFINE = "full"
#: ONNX Runtime intra-op threads (0: one per core). On the 2-core CPU one thread tracked
#: faster than two: the video reader and the aligner use the other core.
DEFAULT_THREADS = 1
