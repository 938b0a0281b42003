"""Fixtures for the sandbox's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sandbox_helpers import Api

from leadlex_nb.sandbox import Sandbox


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[Api]:
    with requests.Session() as session:
        yield Api(sandbox, session)
