"""The pure side of snapshots and restores: choosing the read, parsing answers, the file, proving creates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from leadlex_nb.config import resolve_settings
from leadlex_nb.errors import ConfigurationError
from leadlex_nb.ids import normalise_ids
from leadlex_nb.restore_plan import created_ids, index_listing, plan_restore, prove_created, result_frame
from leadlex_nb.snapshot import (
    create_item,
    plan_snapshot,
    read_snapshot,
    record_from_contact,
    records_from_export,
    records_from_listing,
    strategy_costs,
    write_snapshot,
)

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
C = "33333333-3333-4333-8333-333333333333"


def test_costs_per_10000_contacts_for_each_read() -> None:
    assert strategy_costs(10_000, 20_000) == {"get": 10_000, "export": 1, "list": 200}
    # Pages by creation date overlap by a row (inclusive bounds): 5 calls for 200,000.
    assert strategy_costs(10_000, 200_000) == {"get": 10_000, "export": 5, "list": 2_000}
    assert "export" not in strategy_costs(10_000, 600_000)  # more than the 10 exports an hour


@pytest.mark.parametrize(("contacts", "total", "strategy", "requests"), [
    (1, 5_000, "get", 1),        # ties and below: the read with every field
    (2, 5_000, "export", 1),
    (5_000, 5_000, "export", 1),
    (40, 600_000, "get", 40),    # too large to export within the hour, listing costs 6,000
])
def test_the_cheapest_read_is_planned(contacts: int, total: int, strategy: str, requests: int) -> None:
    plan = plan_snapshot(contacts, total, wanted=True, readable=True)
    assert (plan.strategy, plan.requests) == (strategy, requests)


def test_a_plan_without_a_snapshot_says_why() -> None:
    assert not plan_snapshot(10, 100, wanted=False, readable=True).promised
    refused = plan_snapshot(10, None, wanted=True, readable=False)
    assert not refused.promised and "cannot read contacts" in refused.describe()
    assert plan_snapshot(10, 100, wanted=True, readable=True, exported=True).requests == 0
    assert plan_snapshot(10, 100, wanted="list", readable=True).strategy == "list"


def test_snapshot_option_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="snapshot must be"):
        resolve_settings(api_key="k", snapshot="yes")
    assert resolve_settings(api_key="k", snapshot="get").snapshot == "get"


def test_export_rows_become_records_and_empty_cells_unset_fields() -> None:
    rows = [
        {"id": A.upper(), "full_name": "Ada Lovelace", "email": "ada@x.example", "phone": "", "priority": "2",
         "tags": "lead,vip", "created_at": "2026-01-01T00:00:00Z", "company_name": "Acme"},
        {"id": B, "full_name": "Ben", "created_at": "2026-01-02T00:00:00Z"},
    ]
    (record,) = records_from_export(rows, {A})
    assert record["contact_id"] == A and record["phone"] is None and record["priority"] == 2
    assert record["tags"] == ["lead", "vip"] and record["company"] == "Acme" and record["custom_fields"] is None


def test_listing_and_get_answers_become_records() -> None:
    listing = {"data": {"contacts": [{"id": A, "full_name": "Ada", "company_name": "Acme",
                                      "created_at": "2026-01-01T00:00:00Z"}]}}
    (record,) = records_from_listing(listing, {A}) or []
    assert record["company"] == "Acme" and record["created_date"] == "2026-01-01T00:00:00Z"
    assert records_from_listing({"data": {}}, {A}) is None
    got = record_from_contact({"data": {"id": A, "full_name": "Ada", "tags": ["x"], "custom_fields": {"k": [1]}}})
    assert got is not None and got["custom_fields"] == {"k": [1]} and got["source"] == "get"


@pytest.mark.parametrize("fmt", ["csv", pytest.param("parquet", marks=pytest.mark.skipif(
    importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed"))])
def test_the_file_keeps_every_field_and_is_private(tmp_path: Path, fmt: str) -> None:
    record = record_from_contact({"data": {
        "id": A, "full_name": "Ada, Countess", "email": "ada@x.example", "priority": 1, "tags": ["a,b", "c"],
        "custom_fields": {"score": 7, "nested": {"ok": True}}, "created_date": "2026-01-01T00:00:00Z",
        "phone": None}})
    assert record is not None
    path = tmp_path / "snapshots" / f"run.{fmt}"
    assert write_snapshot(path, [record], fmt) == 1
    assert path.stat().st_mode & 0o077 == 0
    back = read_snapshot(path).loc[A].to_dict()
    assert back == record
    assert create_item(back) == {"full_name": "Ada, Countess", "email": "ada@x.example", "priority": 1,
                                 "tags": ["a,b", "c"], "custom_fields": {"score": 7, "nested": {"ok": True}},
                                 "created_date": "2026-01-01T00:00:00Z"}


def test_a_listed_record_restores_only_what_the_listing_showed() -> None:
    listing = {"data": {"contacts": [{"id": A, "full_name": "Ada", "email": "a@x.example",
                                      "updated_date": "2026-01-02T00:00:00Z"}]}}
    (record,) = records_from_listing(listing, {A}) or []
    assert create_item(record) == {"full_name": "Ada", "email": "a@x.example"}


def test_a_restore_plan_refuses_what_the_run_did_not_delete_and_skips_what_is_restored() -> None:
    snapshot = {A: {"contact_id": A, "source": "export"}, B: {"contact_id": B, "source": "get"}}
    asked = normalise_ids(pd.Series([A, B, C, "junk", A.upper()], dtype=object))
    plan = plan_restore("run", asked["contact_id"].tolist(), asked["valid"].tolist(), {A, B, C}, snapshot,
                        {A: ("restored", C, 1.0), B: ("sending", None, 2.0)})
    assert plan.to_create == () and plan.to_check == (B,) and plan.sources == {"get": 1}
    assert plan.decided[A].status == "already_restored" and plan.decided[A].new_contact_id == C
    assert plan.decided[C].error_code == "no_snapshot" and plan.decided["junk"].error_code == "invalid_id"
    frame = result_frame([A, B, C, "junk"], plan.decided)
    assert list(frame["status"].astype(str)) == ["already_restored", "not_sent", "refused", "refused"]


def test_the_answer_of_a_create_is_trusted_only_when_it_lines_up_with_what_was_sent() -> None:
    records = [{"email": "a@x.example"}, {"email": None, "full_name": "Ben"}]
    good = {"data": {"contacts": [{"id": B, "email": "A@x.example"}, {"id": C, "email": None}]}}
    assert created_ids(good, records) == [B, C]
    swapped = {"data": {"contacts": [{"id": B, "email": None}, {"id": C, "email": "a@x.example"}]}}
    assert created_ids(swapped, records) is None
    assert created_ids({"data": {"contacts": [{"id": B, "email": "a@x.example"}]}}, records) is None


def test_a_create_is_proven_by_one_recent_match_only() -> None:
    record = {"full_name": "Ada", "email": "a@x.example", "phone": None, "job_title": None, "company": "Acme",
              "linkedin_url": None}
    item = {"id": B, "full_name": "Ada", "email": "a@x.example", "company_name": "Acme",
            "updated_date": "2026-12-04T10:00:00Z"}
    sent_at = pd.Timestamp("2026-12-04T10:00:00Z").timestamp()
    assert prove_created(index_listing([item]), record, sent_at, set()) == ("restored", B)
    older = {**item, "updated_date": "2026-12-01T00:00:00Z"}
    assert prove_created(index_listing([older]), record, sent_at, set()) == ("absent", None)
    other_company = {**item, "company_name": "Globex"}
    assert prove_created(index_listing([other_company]), record, sent_at, set()) == ("absent", None)
    assert prove_created(index_listing([item]), record, sent_at, {B}) == ("absent", None)
    twins = [item, {**item, "id": C}]
    assert prove_created(index_listing(twins), record, sent_at, set()) == ("ambiguous", None)
