"""The package version (kept in step with pyproject.toml; written into manifests, benchmarks and `--version`)."""

__version__ = "0.1.0"
