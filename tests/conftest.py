from pathlib import Path

import numpy as np
import pytest

try:
    # Parts of torch that load lazily (torch._dynamo, pulled in by optimisers) crash when
    # first loaded after Mesa's llvmpipe has made a GL context in the process; load them
    # before any test renders, whatever order the tests run in.
    import torch._dynamo  # noqa: F401
except ImportError:
    pass

DATA = Path(__file__).parent / "data"
SEED_REFERENCE = DATA / "seed_reference"


@pytest.fixture
def seed_reference() -> Path:
    """The seed's two real samples (copied into the repository)."""
    return SEED_REFERENCE


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
