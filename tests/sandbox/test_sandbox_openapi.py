"""/openapi.json describes every endpoint, and a property-based fuzzer finds no 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from leadlex_nb.sandbox import Profile, Sandbox

ROUTES = {("post", "/v1/contacts/bulk-delete"), ("get", "/v1/contacts"), ("post", "/v1/contacts"),
          ("post", "/v1/contacts/bulk"), ("get", "/v1/contacts/export"), ("get", "/v1/contacts/{contact_id}"),
          ("post", "/v1/webhooks"), ("get", "/v1/webhooks"), ("get", "/v1/webhooks/{webhook_id}/logs")}


def test_openapi_document_lists_every_endpoint_with_bearer_auth(sandbox: Sandbox) -> None:
    with requests.Session() as s:
        spec = s.get(sandbox.base_url + "/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.")
    assert {(m, p) for p, ops in spec["paths"].items() for m in ops} == ROUTES
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert spec["servers"] == [{"url": sandbox.base_url}]


def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("schemathesis")
    if not st.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed")
    roomy = Profile("fuzz", per_window=10**6, window_seconds=1, daily_quota=10**9, export_per_hour=10**6)
    with Sandbox(seed_contacts=50, profile=roomy) as sb:
        result = subprocess.run(
            [str(st) if st.exists() else "schemathesis", "run", sb.base_url + "/openapi.json",
             "--checks", "not_a_server_error", "-H", f"Authorization: Bearer {sb.api_key}",
             "--max-examples", "25", "--seed", "1", "--workers", "1", "--no-color",
             "--generation-database", "none"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path)
        server_errors = [e for e in sb.execution_log() if e["status"] is not None and e["status"] >= 500]
    assert server_errors == [], server_errors[:3]
    assert "passed" in result.stdout, result.stdout[-3000:]
    # A non-zero exit without a "Failures" section is a fuzzer-internal error, not a sandbox finding.
    assert "Failures:" not in result.stdout, result.stdout[-3000:]
