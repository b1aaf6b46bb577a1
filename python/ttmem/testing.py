"""pytest helpers: `from ttmem.testing import ttmemd` gives a test a private ttmemd, tracking pointed at it."""
from __future__ import annotations

from typing import Iterator

import pytest

from . import Server


@pytest.fixture
def ttmemd() -> Iterator[Server]:
    """A private ttmemd for one test; this process reports to it while the test runs."""
    with Server() as server:
        yield server
