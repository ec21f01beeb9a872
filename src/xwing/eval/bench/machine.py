"""The machine the figures were measured on, written beside them: CPU, cores, library
versions and the load average (on a shared CPU the load says how far to trust a timing)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np


def machine_info(threads) -> dict:
    """CPU model, core count, the ONNX Runtime intra-op thread counts tried and library versions."""
    import onnxruntime

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    info = {"cpu_model": cpu or "unknown", "cpu_count": os.cpu_count(), "cpu_usable": usable,
            "ort_threads_tried": [t or usable for t in threads],
            "ort_threads_setting": "0 = onnxruntime's default (one per core)",
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform()}
    try:
        import cv2

        info["opencv"] = cv2.__version__
    except ImportError:
        pass
    return info


def load_average() -> list | None:
    """The 1, 5 and 15 minute load averages, or None where the platform has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None
