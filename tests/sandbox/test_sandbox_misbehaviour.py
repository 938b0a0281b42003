"""The misbehaving-server faults: what the client sees, and what really happened on the server."""

from __future__ import annotations

import hashlib
import json
import time
from email.utils import parsedate_to_datetime

import pytest
from sandbox_helpers import Api

from leadlex_nb.sandbox import Faults

BULK = "/v1/contacts/bulk-delete"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_answers_at_the_edge_and_runs_nothing(api: Api, status: int) -> None:
    ids = api.sb.seed(2)
    seed = next(s for s in range(200) if _redirect_status(s) == status)
    api.sb.set_faults(Faults(seed=seed, redirect=1.0))
    answer = api.delete(ids, idem="r-1", allow_redirects=False)
    assert answer.status_code == status and answer.headers["Location"].startswith("https://")
    assert api.sb.existing_ids() == set(ids)
    entry = api.sb.execution_log()[-1]
    assert (entry["fault"], entry["outcome"]) == ("redirect", "rejected")


def _redirect_status(seed: int) -> int:
    from leadlex_nb.sandbox.faults import FaultInjector

    return FaultInjector(Faults(seed=seed, redirect=1.0)).decide(BULK).status or 0


def test_retry_after_date_is_an_uncounted_429_with_an_http_date(api: Api) -> None:
    ids = api.sb.seed(1)
    api.sb.set_faults(Faults(schedule=["retry_after_date"]))
    answer = api.delete(ids)
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "rate_limited"
    retry_at = parsedate_to_datetime(answer.headers["Retry-After"]).timestamp()
    assert time.time() < retry_at <= time.time() + 3
    assert answer.headers["X-RateLimit-Remaining"] == str(api.sb.profile.daily_quota)  # not counted
    assert api.sb.existing_ids() == set(ids)


@pytest.mark.parametrize("variant", ["truncated JSON", "HTML"])
def test_non_json_200_executes_and_a_replay_tells_the_truth(api: Api, variant: str) -> None:
    ids = api.sb.seed(3)
    seed = next(s for s in range(200) if _body_variant(s) == (variant == "HTML"))
    api.sb.set_faults(Faults(seed=seed, non_json_200=1.0))
    answer = api.delete(ids, idem="n-1")
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        json.loads(answer.content)
    assert api.sb.existing_ids() == set()
    api.sb.set_faults(None)
    assert api.delete(ids, idem="n-1").json()["data"] == {"deleted_count": 3, "not_found_count": 0, "errors": []}


def _body_variant(seed: int) -> bool:
    from leadlex_nb.sandbox.faults import FaultInjector

    return bool(FaultInjector(Faults(seed=seed, non_json_200=1.0)).decide(BULK).status)


def test_bad_counts_overstate_deleted_count_by_one(api: Api) -> None:
    ids = api.sb.seed(2)
    api.sb.set_faults(Faults(schedule=["bad_counts"]))
    data = api.delete([*ids, "00000000-0000-0000-0000-000000000001"], idem="b-1").json()["data"]
    assert (data["deleted_count"], data["not_found_count"]) == (3, 1)
    assert api.sb.execution_log()[-1]["deleted_ids"] == ids


@pytest.mark.parametrize("fault", ["garbled_ratelimit", "missing_ratelimit", "reset_past", "reset_future"])
def test_rate_limit_header_faults_bend_the_headers_only(api: Api, fault: str) -> None:
    ids = api.sb.seed(1)
    api.sb.set_faults(Faults(schedule=[fault]))
    answer = api.delete(ids)
    assert answer.status_code == 200 and answer.json()["data"]["deleted_count"] == 1
    reset = answer.headers.get("X-RateLimit-Reset")
    if fault == "missing_ratelimit":
        assert not any(h.lower().startswith("x-ratelimit-") for h in answer.headers)
    elif fault == "garbled_ratelimit":
        assert (answer.headers["X-RateLimit-Remaining"], reset) == ("-3", "soon")
    elif fault == "reset_past":
        assert reset is not None and int(reset) < time.time()
    else:
        assert reset is not None and int(reset) > time.time() + 9 * 365 * 86_400
    assert answer.headers["X-Request-ID"].startswith("req_")


def test_revoke_after_revokes_the_key_of_the_next_request_until_reinstated(api: Api) -> None:
    ids = api.sb.seed(3)
    api.sb.set_faults(Faults(revoke_after=1))
    assert api.delete(ids[:1]).status_code == 200
    assert api.delete(ids[1:2]).status_code == 401
    assert api.delete(ids[1:2]).status_code == 401
    api.sb.reinstate_key(api.sb.api_key)
    assert api.delete(ids[1:2]).status_code == 200
    assert [e["fault"] for e in api.sb.execution_log()] == [None, "revoke_key", None, None]


def test_the_log_holds_each_attempts_body_hash_even_when_refused_at_the_edge(api: Api) -> None:
    ids = api.sb.seed(1)
    api.sb.set_faults(Faults(schedule=["gateway_502", None]))
    body = json.dumps({"contact_ids": ids}).encode()
    for _ in range(2):
        api.post(BULK, data=body, headers={"Content-Type": "application/json"}, idem="h-1")
    digest = hashlib.sha256(body).hexdigest()
    assert [e["body_sha256"] for e in api.sb.execution_log()] == [digest, digest]
