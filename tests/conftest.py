"""Shared fixtures: a fresh, started LeadLex sandbox per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadlex_nb.sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A started sandbox on 127.0.0.1 with no contacts (seed with ``sandbox.seed(n)``), the ``fast``
    profile, no faults and an in-memory database; stopped after the test."""
    with Sandbox(seed_contacts=0) as sb:
        yield sb
