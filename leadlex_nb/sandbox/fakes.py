"""Deterministic fake contacts from ``random.Random(seed)``."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from .timefmt import iso

_FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kira",
          "Liam", "Maya", "Nils", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Vik",
          "Wen", "Xavi", "Yara", "Zoe"]
_LAST = ["Adler", "Brandt", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ito",
         "Jansen", "Kowalski", "Lopez", "Meyer", "Novak", "Okafor", "Petrov", "Quist", "Rossi",
         "Sato", "Tanaka", "Usman", "Varga", "Weber", "Xu", "Young", "Zhang"]
_COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
              "Tyrell", "Cyberdyne", "Soylent", "Wonka"]
_TITLES = ["CEO", "CTO", "Head of Sales", "Account Executive", "Engineer", "Marketing Lead",
           "Operations Manager", "Founder", "Product Manager", "Data Analyst"]
_TAGS = ["lead", "customer", "priority", "newsletter", "partner"]
_SOURCES = ["webinar", "referral", "trade show", "website", "cold call"]


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def fake_contacts(rng: random.Random, n: int, now: float | None = None) -> list[dict[str, Any]]:
    """n contact rows (store column names), created within the past year."""
    now = time.time() if now is None else now
    rows: list[dict[str, Any]] = []
    for _ in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        company = rng.choice(_COMPANIES)
        created = iso(now - rng.uniform(60, 365 * 86_400))
        cid = new_id(rng)
        rows.append({
            "id": cid,
            "first_name": first,
            "last_name": last,
            "full_name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}.{cid[:6]}@{company.lower()}.example",
            "phone": f"+1-555-{rng.randrange(10_000):04d}",
            "job_title": rng.choice(_TITLES),
            "company": company,
            "linkedin_url": f"https://www.linkedin.com/in/{first.lower()}-{last.lower()}-{cid[:6]}",
            "priority": rng.choice((1, 2, 3)),
            "tags": rng.sample(_TAGS, rng.randrange(3)),
            "custom_fields": _custom_fields(cid),
            "created_at": created,
            "updated_date": created,
        })
    return rows


def _custom_fields(contact_id: str) -> dict[str, Any]:
    """Custom fields taken from the ID, not the RNG, so every seed keeps its contacts' other fields."""
    draw = int(contact_id[-4:], 16)
    if draw % 3 == 0:
        return {}
    fields: dict[str, Any] = {"source": _SOURCES[draw % len(_SOURCES)]}
    if draw % 3 == 2:
        fields["score"] = draw % 100
        fields["consent"] = {"email": draw % 2 == 0, "recorded": "2026-01-15"}
    return fields
