"""The bulk-delete reference page's own cURL, Python and JavaScript examples, run against the sandbox.

The snippets are copied verbatim from the page; only the base URL, the key and the IDs are swapped in.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys

import pytest

from leadlex_nb.sandbox import Sandbox

DOC_BASE = "https://data.leadlex.com/functions/v1/api-gateway"
DOC_KEY = "wbk_your_api_key_here"
DOC_IDS = ("123e4567-e89b-12d3-a456-426614174000", "456e7890-a1b2-34c5-d678-901234567890")

CURL = """curl -X POST \\
  https://data.leadlex.com/functions/v1/api-gateway/v1/contacts/bulk-delete \\
  -H "Authorization: Bearer wbk_your_api_key_here" \\
  -H "Content-Type: application/json" \\
  -d '{
    "contact_ids": [
      "123e4567-e89b-12d3-a456-426614174000",
      "456e7890-a1b2-34c5-d678-901234567890"
    ]
  }'"""

PYTHON = """import requests, uuid

API_KEY = "wbk_your_api_key_here"
BASE_URL = "https://data.leadlex.com/functions/v1/api-gateway"

ids = ["123e4567-e89b-12d3-a456-426614174000"]
r = requests.post(
    f"{BASE_URL}/v1/contacts/bulk-delete",
    headers={
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "Idempotency-Key": str(uuid.uuid4()),
    },
    json={"contact_ids": ids},
)
print(r.json()["data"])
"""

JAVASCRIPT = """const res = await fetch(
  'https://data.leadlex.com/functions/v1/api-gateway/v1/contacts/bulk-delete',
  {
    method: 'POST',
    headers: {
      'Authorization': 'Bearer wbk_your_api_key_here',
      'Content-Type': 'application/json',
      'Idempotency-Key': crypto.randomUUID(),
    },
    body: JSON.stringify({ contact_ids: ['123e4567-e89b-12d3-a456-426614174000'] }),
  }
);
const { data } = await res.json();
console.log(data);
"""


def _adapt(snippet: str, sb: Sandbox, ids: list[str]) -> str:
    snippet = snippet.replace(DOC_BASE, sb.base_url).replace(DOC_KEY, sb.api_key)
    for doc_id, real in zip(DOC_IDS, ids, strict=False):  # a test may seed fewer IDs than the docs show
        snippet = snippet.replace(doc_id, real)
    return snippet


def test_curl_example_gets_the_documented_answer(sandbox: Sandbox) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    ids = sandbox.seed(2)
    out = subprocess.run(["bash", "-c", _adapt(CURL, sandbox, ids) + " -sS"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert json.loads(out) == {"data": {"deleted_count": 2, "not_found_count": 0, "errors": []}}
    assert sandbox.existing_ids() == set()


def test_python_requests_example_gets_the_documented_answer(sandbox: Sandbox) -> None:
    ids = sandbox.seed(1)
    out = subprocess.run([sys.executable, "-c", _adapt(PYTHON, sandbox, ids)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert ast.literal_eval(out.strip()) == {"deleted_count": 1, "not_found_count": 0, "errors": []}
    assert sandbox.execution_log()[-1]["idempotency_key"]


def test_javascript_fetch_example_gets_the_documented_answer(sandbox: Sandbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    ids = sandbox.seed(1)
    script = tmp_path / "example.mjs"
    script.write_text(_adapt(JAVASCRIPT, sandbox, ids).replace("console.log(data);",
                                                               "console.log(JSON.stringify(data));"))
    out = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out) == {"deleted_count": 1, "not_found_count": 0, "errors": []}
