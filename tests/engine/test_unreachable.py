"""A server that cannot be reached: the run stops after a few attempts instead of retrying for minutes.

Until the server has answered once, a connect failure most likely means a wrong URL or no network, so
the first batch to give up stops the run; once the server has answered, a connect failure is an
outage like any other and is retried by the normal policy.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
from fakes import Call, FakeApi

from leadlex_nb.config import resolve_settings
from leadlex_nb.errors import ServerUnreachableError
from leadlex_nb.hooks import Hooks
from leadlex_nb.ids import normalise_ids
from leadlex_nb.retry import RetryPolicy
from leadlex_nb.runner import Run
from leadlex_nb.sender import FIRST_CONTACT_ATTEMPTS
from leadlex_nb.transport import Answer, TransportFailure

POLICY = RetryPolicy(max_attempts=8, base_delay=0.0, max_delay=0.0, budget=200)


def make_run(api: FakeApi, n: int) -> Run:
    settings = resolve_settings(api_key="lx_unreachable_test", base_url="https://api.example.test", journal=False,
                                batch_size=2, concurrency=2, retry=POLICY)
    values = [str(uuid.UUID(int=i + 1)) for i in range(n)]
    return Run(settings, normalise_ids(pd.Series(values)), dry_run=False, hooks=Hooks(confirm=lambda s: True),
               transport=api)


def refuse(call: Call) -> Answer | None:
    raise TransportFailure("connect", "ClientConnectorError: Cannot connect to host api.example.test:443")


async def test_a_server_never_reached_stops_the_run_after_the_first_contact_attempts() -> None:
    api = FakeApi([], script=refuse)
    with pytest.raises(ServerUnreachableError) as stopped:
        await make_run(api, 40).execute()
    assert "could not connect to the API" in str(stopped.value)
    result = stopped.value.result
    assert result is not None and len(result) == 40
    assert result["status"].astype(str).eq("not_sent").all()  # a connection never made executes nothing
    # Two batches in flight at most, each giving up after the first-contact attempts: not 20 batches x 8.
    assert FIRST_CONTACT_ATTEMPTS <= len(api.calls) <= 2 * FIRST_CONTACT_ATTEMPTS


async def test_once_the_server_has_answered_connect_failures_follow_the_normal_policy() -> None:
    answered: list[Call] = []

    def first_answered_then_refused(call: Call) -> Answer | None:
        if not answered:
            answered.append(call)
            return None  # the workspace answers this one
        return refuse(call)

    api = FakeApi([], script=first_answered_then_refused)
    result = await make_run(api, 4).execute()  # two dry-run batches: the second is refused 8 times
    assert result["status"].astype(str).value_counts().to_dict() == {"not_found": 2, "not_sent": 2}
    assert len(api.calls) == 1 + POLICY.max_attempts
