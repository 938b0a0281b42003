"""Fixtures for the engine's unit tests."""

from __future__ import annotations

from typing import Any, Iterator

import aiohttp
import aioresponses.core
import pytest


class _SentStreamWriter:
    """Stands in for the request writer of a request that was already sent."""

    output_size = 0


class _CompatibleResponse(aiohttp.ClientResponse):
    # aiohttp 3.14 made ``stream_writer`` a required argument; aioresponses 0.7.x does not pass
    # it (pnuckowski/aioresponses#289). Supplying it here keeps aiohttp on its security release.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _SentStreamWriter())
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_compatible_with_aiohttp(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(aioresponses.core, "ClientResponse", _CompatibleResponse)
    yield
