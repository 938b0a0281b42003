"""What an interrupt leaves behind in the process: no batch coroutine left unawaited.

Seen in the interrupt soak (tests/e2e/test_interrupt_points.py) as "RuntimeWarning: coroutine
'Run._dry_run_batch' was never awaited" in the output of a cancelled run.
"""

from __future__ import annotations

import asyncio

import pytest

from leadlex_nb.sender import StopState, gather_bounded


async def test_cancelling_right_after_the_batches_are_scheduled_closes_every_batch_coroutine() -> None:
    ran: list[int] = []

    async def batch(n: int) -> None:
        ran.append(n)

    batches = [batch(n) for n in range(3)]
    gathering = asyncio.ensure_future(gather_bounded(iter(batches), 1, StopState(lambda message: None)))
    await asyncio.sleep(0)  # gather_bounded has scheduled one task per batch; none has started
    gathering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gathering
    assert ran == []
    unclosed = [c for c in batches if c.cr_frame is not None]
    for coroutine in unclosed:
        coroutine.close()  # keep this test's own output clean
    assert not unclosed, f"{len(unclosed)} of 3 batch coroutines left neither awaited nor closed"
