"""An interrupt that arrives as the run closes its connections, after its last answer.

Found by the interrupt soak (LEADLEX_SOAK_INTERRUPTS=300 LEADLEX_INTERRUPT_SEED=23): Ctrl-C or a
task cancellation landing there ended the call with a bare CancelledError: no result, no run id.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from leadlex_nb import LeadLexError
from leadlex_nb.sandbox import Sandbox
from leadlex_nb.transport import HttpTransport


async def test_a_cancel_while_the_run_closes_its_connections_still_gives_the_result(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing = sandbox.seed(30)
    closing = asyncio.Event()
    real_close = HttpTransport.close

    async def close_then_linger(self: HttpTransport) -> None:
        await real_close(self)
        closing.set()
        await asyncio.sleep(0.05)  # the moment a cancel lands in

    monkeypatch.setattr(HttpTransport, "close", close_then_linger)
    task = asyncio.ensure_future(pd.Series(existing).leadlex.abulk_delete(
        confirm=False, api_key=sandbox.api_key, base_url=sandbox.base_url, journal=tmp_path / "j.sqlite3",
        progress=False, verbose=False))
    await closing.wait()
    task.cancel()
    try:
        result = await task
    except LeadLexError as stop:
        result = stop.result
    except asyncio.CancelledError:
        pytest.fail("the call ended with a bare CancelledError: no result and no run id")
    assert result is not None and len(result) == 30 and set(result["status"].astype(str)) == {"deleted"}
