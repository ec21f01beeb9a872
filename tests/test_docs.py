"""The Python API page's examples run as doctests on the light install (torch and moderngl unimportable)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCKED = """
import sys
for name in ("torch", "torchvision", "timm", "moderngl"):
    sys.modules[name] = None  # `import torch` now raises ImportError
import doctest
r = doctest.testfile("docs/python-api.md", module_relative=False, optionflags=doctest.ELLIPSIS)
print(r)
sys.exit(1 if r.failed or not r.attempted else 0)
"""


def test_python_api_page_doctests_pass_without_torch_or_moderngl():
    p = subprocess.run([sys.executable, "-c", BLOCKED], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "attempted=" in p.stdout
