"""Shared by the renderer tests: a headless GL context or a clear verdict."""

import os

import pytest

from xwing.errors import XwingError


def require_gl():
    """Skip without EGL locally; under CI (env CI set) a missing GL stack fails loudly."""
    from xwing.render.gl import gl_context

    try:
        gl_context()
    except XwingError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no headless GL: {e}")
