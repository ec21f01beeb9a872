"""What reaches users: one exception type and one-line warnings.

Anything a user can cause (a missing file, a malformed matrix, a bad flag value)
raises :class:`XwingError` with a one-line message that names the file or the
argument and what is wrong. The CLI prints it without a traceback and exits 2.
Programming errors stay ordinary exceptions so they keep their tracebacks.
Where the work can go on (one damaged image among many, a video cut short, a
conversion of the input), :func:`warn` says so in one line on stderr instead.
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


class DamagedFileError(XwingError):
    """A file that exists but is cut short or corrupt (an image, a video). Readers of many
    files (datasets, image directories) turn it into a :func:`warn` and go on, unless strict."""


_said: set[str] = set()


def warn(message: str, path: str | Path | None = None, once: str | None = None) -> None:
    """Tell the user something went wrong but the work goes on: one line on stderr.

    ``once``: a key; a second warning with the same key in this process is not printed
    (a conversion applied to every frame is said once, not per frame).
    """
    import sys

    if once is not None:
        if once in _said:
            return
        _said.add(once)
    text = " ".join(str(message).split())
    print(f"xwing: warning: {path}: {text}" if path is not None else f"xwing: warning: {text}", file=sys.stderr)
