"""Configs as frozen dataclasses <-> plain dicts (``config.json`` files, checkpoints, ONNX metadata).

Every run saves its config beside its outputs, and checkpoints and exported models
carry theirs; files written by older versions must still load. So reading keeps
only the fields the class knows (a dropped field is ignored, a new one takes its
default) and turns JSON's lists back into tuples where the field is a tuple, and
writing gives lists, which JSON and ``torch.load(weights_only=True)`` both keep.
"""

from __future__ import annotations

from dataclasses import asdict, fields


class SavedConfig:
    """Mixin for frozen dataclass configs: :meth:`to_dict` / :meth:`from_dict`."""

    def to_dict(self) -> dict:
        """Plain dict of the fields; tuples become lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        """The config from ``d``: unknown keys ignored, lists made tuples for tuple fields."""
        known = {f.name: f for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(known[k].default, tuple) and isinstance(v, list) else v
                      for k, v in d.items() if k in known})
