"""Shared fixtures: a fresh, started LeadLex sandbox per test."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadlex_nb.sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A started sandbox on 127.0.0.1 with no contacts (seed with ``sandbox.seed(n)``), the ``fast``
    profile, no faults and an in-memory database; stopped after the test."""
    with Sandbox(seed_contacts=0) as sb:
        yield sb


# A kernelspec pinned to this interpreter, so a notebook's kernel imports the same leadlex_nb as the
# tests whatever kernels the machine or user has installed under the name "python3".
TEST_KERNEL = "leadlex-nb-tests"


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kernels")
    spec = root / TEST_KERNEL
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": TEST_KERNEL, "language": "python"}))
    return root
