"""Seeding and inspecting: create, bulk create, list with pagination, get one, CSV export."""

from __future__ import annotations

import csv
import io

from sandbox_helpers import Api, assert_error

from leadlex_nb.sandbox import Sandbox


def test_list_pages_through_every_contact_with_documented_meta(api: Api) -> None:
    ids = set(api.sb.seed(23))
    seen: list[str] = []
    page = 1
    while True:
        body = api.get(f"/v1/contacts?page={page}&per_page=10").json()
        assert body["meta"] == {"page": page, "per_page": 10, "total": 23}
        if not body["data"]["contacts"]:
            break
        seen += [c["id"] for c in body["data"]["contacts"]]
        page += 1
    assert page == 4 and len(seen) == 23 and set(seen) == ids
    item = api.get("/v1/contacts?per_page=1").json()["data"]["contacts"][0]
    assert set(item) == {"id", "full_name", "email", "phone", "job_title", "company_name", "linkedin_url",
                         "created_at", "updated_date"}


def test_list_defaults_to_50_per_page_sorted_by_created_at(api: Api) -> None:
    api.sb.seed(60)
    body = api.get("/v1/contacts").json()
    assert body["meta"]["per_page"] == 50 and len(body["data"]["contacts"]) == 50
    created = [c["created_at"] for c in body["data"]["contacts"]]
    assert created == sorted(created)
    desc = [c["created_at"] for c in api.get("/v1/contacts?sort=-created_at").json()["data"]["contacts"]]
    assert desc == sorted(desc, reverse=True)


def test_search_matches_name_or_email_partially(api: Api) -> None:
    created = api.post("/v1/contacts", {"full_name": "Zebediah Quxworth", "email": "zq@example.org"})
    assert created.status_code == 201
    for term in ("quxw", "ZEBED", "zq@example"):
        contacts = api.get(f"/v1/contacts?search={term}").json()["data"]["contacts"]
        assert [c["full_name"] for c in contacts] == ["Zebediah Quxworth"]


def test_create_contact_heals_names_and_is_listed(api: Api) -> None:
    data = api.post("/v1/contacts", {"full_name": "Mary Ann Smith", "priority": "high"}).json()["data"]
    assert (data["first_name"], data["last_name"], data["priority"]) == ("Mary Ann", "Smith", 1)
    data = api.post("/v1/contacts", {"full_name": "Doe, Jane"}).json()["data"]
    assert (data["first_name"], data["last_name"]) == ("Jane", "Doe")
    data = api.post("/v1/contacts", {"email": "john.q.public@example.com"}).json()["data"]
    assert data["full_name"] == "John Q Public"
    assert len(api.sb.existing_ids()) == 3


def test_bulk_create_returns_ids_that_bulk_delete_accepts(api: Api) -> None:
    response = api.post("/v1/contacts/bulk", {"contacts": [{"full_name": f"Person {i}"} for i in range(5)]})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["created"] == 5
    ids = [c["id"] for c in data["contacts"]]
    assert api.sb.existing_ids() == set(ids)
    assert api.delete(ids).json()["data"]["deleted_count"] == 5


def test_get_one_contact_and_404_for_unknown_or_malformed(api: Api) -> None:
    (cid,) = api.sb.seed(1)
    data = api.get(f"/v1/contacts/{cid.upper()}").json()["data"]
    assert data["id"] == cid and data["first_name"] and data["created_date"]
    assert_error(api.get("/v1/contacts/00000000-0000-4000-8000-000000000000"), 404, "not_found")
    assert_error(api.get("/v1/contacts/not-a-uuid"), 404, "not_found")


def test_export_streams_csv_with_header_first(api: Api) -> None:
    ids = set(api.sb.seed(30))
    response = api.get("/v1/contacts/export")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "contacts-export.csv" in response.headers["Content-Disposition"]
    assert response.headers["X-RateLimit-Remaining"] and response.headers["X-Request-ID"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["id"] for r in rows} == ids
    assert list(rows[0]) == ["id", "full_name", "email", "phone", "job_title", "company_name", "linkedin_url",
                             "tags", "created_at"]
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)


def test_export_limit_fields_and_half_open_date_windows(api: Api) -> None:
    api.sb.seed(40)
    full = list(csv.DictReader(io.StringIO(api.get("/v1/contacts/export?fields=id,created_at").text)))
    assert list(full[0]) == ["id", "created_at"]
    assert len(list(csv.DictReader(io.StringIO(api.get("/v1/contacts/export?limit=7").text)))) == 7
    cut = full[20]["created_at"]
    before = api.get("/v1/contacts/export", params={"created_before": cut, "fields": "id"}).text
    after = api.get("/v1/contacts/export", params={"created_after": cut, "fields": "id"}).text
    ids_before = [r["id"] for r in csv.DictReader(io.StringIO(before))]
    ids_after = [r["id"] for r in csv.DictReader(io.StringIO(after))]
    assert ids_before + ids_after == [r["id"] for r in full]


def test_seeding_is_deterministic_for_a_seed() -> None:
    with Sandbox(seed_contacts=5, seed=42) as a, Sandbox(seed_contacts=5, seed=42) as b:
        assert a.existing_ids() == b.existing_ids()
        assert a.seed(3) == b.seed(3)


def test_seeding_twenty_thousand_contacts_and_file_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "sandbox.sqlite3"
    with Sandbox(seed_contacts=20_000, db_path=str(db)) as sb:
        assert len(sb.existing_ids()) == 20_000
    with Sandbox(seed_contacts=0, db_path=str(db)) as sb:  # the file keeps the data
        assert len(sb.existing_ids()) == 20_000
