"""A model spec -> a detector: the two detectors that exist, behind one function."""

from __future__ import annotations

from pathlib import Path

from xwing.errors import XwingError
from xwing.infer.detector import OnnxDetector
from xwing.infer.oracle import OracleDetector


def load_detector(model: str, providers: list[str] | None = None, threads: int | None = None):
    """A model spec -> a detector (numpy, OpenCV and onnxruntime only; never torch).

    * ``oracle[:noise=1,outliers=0.05,seed=0,size=128]``: :class:`~xwing.infer.oracle.OracleDetector`
      (needs truth: sequence/dataset directories);
    * ``*.onnx``: :class:`OnnxDetector` with ``threads`` ONNX Runtime intra-op threads
      (0 or None: one per core).

    Training checkpoints (``.pt``) are exported first by the commands
    (:func:`xwing.cli.args.load_model`), the one path that reaches torch.
    """
    model = str(model)
    if model == "oracle" or model.startswith("oracle:"):
        return OracleDetector.from_spec(model, threads=threads)
    path = Path(model)
    if not path.is_file():
        raise XwingError("model file not found (train one with `xwing train` and `xwing export`, "
                         "or pass --model FILE)", path)
    return OnnxDetector(str(path), providers=providers, threads=threads or None)
