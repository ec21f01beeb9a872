from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
SEED_REFERENCE = DATA / "seed_reference"


@pytest.fixture
def seed_reference() -> Path:
    """The seed's two real samples (copied into the repository)."""
    return SEED_REFERENCE


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
