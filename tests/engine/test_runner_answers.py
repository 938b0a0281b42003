"""The runner's handling of answers that make no sense, with aioresponses standing in for the API."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest
from aioresponses import aioresponses

import leadlex_nb  # noqa: F401
from leadlex_nb import RetryPolicy

BASE = "https://api.example.test"
URL = re.compile(r"^https://api\.example\.test/v1/contacts/bulk-delete$")
HEADERS = {"X-Request-ID": "req_1", "X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "900",
           "X-RateLimit-Reset": "4102444800"}


def ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


async def run(frame: pd.DataFrame, tmp_path: Path, **extra: object) -> pd.DataFrame:
    return await frame.leadlex.abulk_delete(
        "c", api_key="wbk_test", base_url=BASE, journal=tmp_path / "j.sqlite3", progress=False, verbose=False,
        retry=RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001), **extra)


async def test_delete_counts_that_do_not_add_up_become_unknown_not_deleted(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    frame = pd.DataFrame({"c": ids(3)})
    with aioresponses() as mocked:
        mocked.post(URL, payload={"data": {"deleted_count": 3, "not_found_count": 0, "errors": []}}, headers=HEADERS)
        mocked.post(URL, payload={"data": {"deleted_count": 7, "not_found_count": 0, "errors": []}},
                    headers={**HEADERS, "X-Request-ID": "req_odd"})
        result = await run(frame, tmp_path, confirm=False)
    assert set(result["status"].astype(str)) == {"unknown"}
    assert set(result["error_code"]) == {"inconsistent_answer"}
    assert "req_odd" in caplog.text


async def test_a_non_json_success_body_is_logged_and_never_a_status(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    frame = pd.DataFrame({"c": ids(2)})
    with aioresponses() as mocked:
        mocked.post(URL, payload={"data": {"deleted_count": 2, "not_found_count": 0, "errors": []}}, headers=HEADERS)
        mocked.post(URL, status=200, body="<html>ok</html>", content_type="text/html",
                    headers={**HEADERS, "X-Request-ID": "req_html"})
        result = await run(frame, tmp_path, confirm=False)
    assert set(result["status"].astype(str)) == {"unknown"}
    assert "req_html" in caplog.text


async def test_garbled_rate_limit_headers_are_logged_and_the_run_goes_on(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="leadlex_nb")
    frame = pd.DataFrame({"c": ids(2)})
    garbled = {"X-Request-ID": "req_g", "X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "soon"}
    with aioresponses() as mocked:
        mocked.post(URL, payload={"data": {"deleted_count": 2, "not_found_count": 0, "errors": []}}, headers=garbled)
        result = await run(frame, tmp_path, dry_run=True)
    assert set(result["status"].astype(str)) == {"would_delete"}
    assert "X-RateLimit-Remaining" in caplog.text and "req_g" in caplog.text


async def test_a_5xx_until_retries_run_out_makes_delete_rows_unknown(tmp_path: Path) -> None:
    frame = pd.DataFrame({"c": ids(2)})
    with aioresponses() as mocked:
        mocked.post(URL, payload={"data": {"deleted_count": 2, "not_found_count": 0, "errors": []}}, headers=HEADERS)
        mocked.post(URL, status=503, payload={"error": {"code": "unavailable", "message": "try later"}}, headers=HEADERS)
        mocked.post(URL, status=503, payload={"error": {"code": "unavailable", "message": "try later"}}, headers=HEADERS)
        result = await run(frame, tmp_path, confirm=False)
    assert set(result["status"].astype(str)) == {"unknown"}
    assert set(result["attempts"]) == {2}


async def test_a_400_on_delete_is_not_sent_and_not_retried(tmp_path: Path) -> None:
    frame = pd.DataFrame({"c": ids(2)})
    with aioresponses() as mocked:
        mocked.post(URL, payload={"data": {"deleted_count": 2, "not_found_count": 0, "errors": []}}, headers=HEADERS)
        mocked.post(URL, status=400, payload={"error": {"code": "validation_error", "message": "bad"}}, headers=HEADERS)
        result = await run(frame, tmp_path, confirm=False)
    assert set(result["status"].astype(str)) == {"not_sent"}
    assert set(result["error_code"]) == {"validation_error"} and set(result["attempts"]) == {1}
