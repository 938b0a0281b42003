"""Fault injection: each fault's visible effect and what really happened on the server."""

from __future__ import annotations

import itertools
import time

import pytest
import requests
from sandbox_helpers import Api, assert_error

from leadlex_nb.sandbox import Faults
from leadlex_nb.sandbox.faults import FaultInjector

BULK = "/v1/contacts/bulk-delete"


def test_reset_before_drops_the_connection_and_executes_nothing(api: Api) -> None:
    ids = api.sb.seed(2)
    api.sb.set_faults(Faults(schedule=["reset_before"]))
    with pytest.raises(requests.ConnectionError):
        api.delete(ids, idem="r-1")
    assert api.sb.existing_ids() == set(ids)
    entry = api.sb.execution_log()[-1]
    assert (entry["fault"], entry["status"], entry["outcome"]) == ("reset_before", None, "rejected")
    assert api.delete(ids, idem="r-1").json()["data"]["deleted_count"] == 2  # schedule ran out


def test_drop_after_commit_executes_then_drops_and_a_retry_replays(api: Api) -> None:
    ids = api.sb.seed(3)
    api.sb.set_faults(Faults(schedule=["drop_after_commit"]))
    with pytest.raises(requests.ConnectionError):
        api.delete(ids, idem="d-1")
    assert api.sb.existing_ids() == set()
    retry = api.delete(ids, idem="d-1")
    assert retry.json()["data"]["deleted_count"] == 3
    first, second = api.sb.execution_log()
    assert (first["outcome"], first["status"], first["fault"]) == ("executed", None, "drop_after_commit")
    assert sorted(first["deleted_ids"]) == sorted(ids)
    assert second["outcome"] == "replayed" and retry.headers["X-Request-ID"] == first["request_id"]


def test_slow_after_commit_commits_before_the_late_answer(api: Api) -> None:
    ids = api.sb.seed(2)
    api.sb.set_faults(Faults(schedule=["slow_after_commit"], slow_seconds=1.5))
    with pytest.raises(requests.Timeout):
        api.post(BULK, {"contact_ids": ids}, idem="s-1", timeout=0.3)
    assert api.sb.existing_ids() == set()
    assert api.delete(ids, idem="s-1").json()["data"]["deleted_count"] == 2
    assert [e["outcome"] for e in api.sb.execution_log()] == ["executed", "replayed"]


def test_slow_answer_arrives_with_the_real_result(api: Api) -> None:
    ids = api.sb.seed(1)
    api.sb.set_faults(Faults(schedule=["slow_after_commit"], slow_seconds=0.3))
    assert api.delete(ids).json()["data"]["deleted_count"] == 1


def test_json_5xx_answers_before_executing(api: Api) -> None:
    ids = api.sb.seed(2)
    api.sb.set_faults(Faults(schedule=["error_503", "error_500"]))
    assert_error(api.delete(ids), 503, "service_unavailable")
    assert_error(api.delete(ids), 500, "internal_error")
    assert api.sb.existing_ids() == set(ids)
    assert [e["fault"] for e in api.sb.execution_log()] == ["error_503", "error_500"]


def test_gateway_html_pages_are_not_json_and_execute_nothing(api: Api) -> None:
    ids = api.sb.seed(1)
    api.sb.set_faults(Faults(schedule=["gateway_502", "gateway_504"]))
    answers = [api.delete(ids), api.delete(ids)]
    assert [r.status_code for r in answers] == [502, 504]
    for r in answers:
        assert r.headers["Content-Type"].startswith("text/html") and "<html>" in r.text
    assert api.sb.existing_ids() == set(ids)


def test_burst_429_comes_in_runs_of_burst_length_and_is_not_counted(api: Api) -> None:
    api.sb.set_faults(Faults(seed=3, burst_429=0.25, burst_length=3))
    answers = [api.post(BULK, {"contact_ids": ["x"], "dry_run": True}) for _ in range(30)]
    statuses = [r.status_code for r in answers]
    runs = [len(list(g)) for s, g in itertools.groupby(statuses) if s == 429]
    assert runs and all(n % 3 == 0 for n in runs)
    limited = [r for r in answers if r.status_code == 429]
    assert_error(limited[0], 429, "rate_limited")
    ok = statuses.count(200)
    assert int(answers[-1].headers["X-RateLimit-Remaining"]) == 100_000 - ok


def test_latency_delays_matched_requests_only(api: Api) -> None:
    api.sb.set_faults(Faults(latency=0.4))
    started = time.monotonic()
    api.delete(["x"])
    assert time.monotonic() - started >= 0.4
    assert api.sb.execution_log()[-1]["fault"] == "latency"
    with pytest.raises(requests.Timeout):
        api.post(BULK, {"contact_ids": ["x"]}, timeout=0.1)
    assert api.get("/v1/contacts").status_code == 200
    assert api.sb.execution_log()[-1]["fault"] is None


def test_faults_apply_to_the_configured_paths(api: Api) -> None:
    api.sb.set_faults(Faults(schedule=["error_500"], paths=("/v1/contacts",)))
    assert api.delete(["x"]).status_code == 200
    assert_error(api.get("/v1/contacts"), 500, "internal_error")


def test_fault_decisions_replay_exactly_for_a_seed() -> None:
    faults = Faults(seed=11, error_5xx=0.2, gateway_html=0.1, reset_before=0.1, drop_after_commit=0.1,
                    burst_429=0.1, latency=0.05, latency_jitter=0.05)
    runs = []
    for _ in range(2):
        injector = FaultInjector(faults)
        runs.append([injector.decide(BULK) for _ in range(200)])
    assert runs[0] == runs[1]
    assert {d.kind for d in runs[0]} >= {"error_5xx", "gateway_html", "reset_before", "drop_after_commit",
                                         "burst_429"}


def test_schedule_overrides_probabilities_and_then_stops() -> None:
    injector = FaultInjector(Faults(error_5xx=1.0, schedule=[None, "reset_before"]))
    assert [injector.decide(BULK).name for _ in range(4)] == [None, "reset_before", None, None]


def test_invalid_fault_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        Faults(schedule=["explode"])
    with pytest.raises(ValueError):
        Faults(error_5xx=0.7, reset_before=0.7)
