"""The one exception type that reaches users.

Anything a user can cause (a missing file, a malformed matrix, a bad flag value)
raises :class:`XwingError` with a one-line message that names the file or the
argument and what is wrong. The CLI prints it without a traceback and exits 2.
Programming errors stay ordinary exceptions so they keep their tracebacks.
"""

from __future__ import annotations

from pathlib import Path


class XwingError(Exception):
    """A user-facing error: ``str(err)`` is one line naming the culprit."""

    def __init__(self, message: str, path: str | Path | None = None):
        message = " ".join(str(message).split())  # always one line
        if path is not None:
            message = f"{path}: {message}"
        super().__init__(message)
        self.path = None if path is None else Path(path)
