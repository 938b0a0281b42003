"""Batches, idempotency keys, the plan fingerprint and request bodies: pure and deterministic.

Everything a request carries is fixed here, once, before the first send: a retry or a resumed run
rebuilds the same key and the same bytes from the same inputs, so the server can recognise a replay
instead of executing a batch twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Final, Literal

import numpy as np

from leadlex_nb.outcome_table import OutcomeTable
from leadlex_nb.results import Outcome

__all__ = [
    "ATTRIBUTION",
    "DELETE",
    "DRY_RUN",
    "MAX_BATCH_SIZE",
    "RECHECK",
    "Batch",
    "Group",
    "Phase",
    "build_batches",
    "deletion_batches",
    "idempotency_key",
    "make_batches",
    "plan_fingerprint",
    "request_body",
]

MAX_BATCH_SIZE: Final[int] = 500
"""The API's limit on ``contact_ids`` per bulk-delete call."""

Phase = Literal["dry_run", "attribution", "recheck", "delete"]
DRY_RUN: Final = "dry_run"
ATTRIBUTION: Final = "attribution"  # dry runs of sub-batches, pinning down missing IDs
RECHECK: Final = "recheck"  # a resumed run's dry run of a batch whose key may have expired
DELETE: Final = "delete"
"""The only phase whose batches delete: every other phase's body says ``dry_run: true``."""

# Deletions of IDs the dry run could not prove to exist travel apart from proven ones, so an
# ambiguous answer cannot blur the proven rows.
Group = Literal["proven", "unresolved"]

MAX_KEY_LENGTH: Final[int] = 255
_KEY_PART: Final = re.compile(r"[A-Za-z0-9._:-]+")
_HASH_LENGTH: Final = 12
_KEY_DOMAIN: Final = "leadlex-nb/key/v1"
_PLAN_DOMAIN: Final = "leadlex-nb/plan/v1"
_UUID_HYPHENS: Final = [8, 13, 18, 23]
_UUID_DIGITS: Final = [c for c in range(36) if c not in _UUID_HYPHENS]
_QUOTED_HYPHENS: Final = [1 + c for c in _UUID_HYPHENS]
_QUOTED_DIGITS: Final = [1 + c for c in _UUID_DIGITS]
_FINGERPRINT_CHUNK: Final = 1 << 16
_NIBBLE: Final = np.full(256, 255, dtype=np.uint8)  # lower-case hex digit -> its value; 255: not one
_NIBBLE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def make_batches(ids: Sequence[str], size: int = MAX_BATCH_SIZE) -> list[tuple[str, ...]]:
    """Split ``ids`` into consecutive batches of ``size`` (the last may be shorter), order kept."""
    _check_size(size)
    items = _as_tuple(ids)
    return [items[start : start + size] for start in range(0, len(items), size)]


def plan_fingerprint(ids: Iterable[str]) -> str:
    """SHA-256 hex of the set of IDs: pins a confirmed plan whatever its order or repetitions."""
    items = _as_tuple(ids)
    digest = _canonical_set_digest(items)
    return _sha256(_PLAN_DOMAIN, sorted(set(items))) if digest is None else digest


def _canonical_set_digest(items: tuple[str, ...]) -> str | None:
    """What :func:`_sha256` gives for ``sorted(set(items))``, computed in numpy when every item is a
    lower-case hyphenated UUID (a plan's are): sorted as 128-bit numbers, whose order is their text's,
    and hashed chunk by chunk, so a million IDs cost their 16 bytes each plus a few MB. None otherwise."""
    if not items or not all(map(isinstance, items, repeat(str))):
        return None
    packed = np.empty((len(items), 16), dtype=np.uint8)
    for start in range(0, len(items), _FINGERPRINT_CHUNK):
        chunk = "".join(items[start : start + _FINGERPRINT_CHUNK])
        count = min(_FINGERPRINT_CHUNK, len(items) - start)
        if not chunk.isascii() or len(chunk) != 36 * count:
            return None
        text = np.frombuffer(chunk.encode("ascii"), dtype=np.uint8).reshape(-1, 36)
        nibbles = _NIBBLE[text[:, _UUID_DIGITS]]
        if not (text[:, _UUID_HYPHENS] == ord("-")).all() or (nibbles > 15).any():
            return None
        packed[start : start + count] = nibbles[:, 0::2] << 4 | nibbles[:, 1::2]
    value = packed.view(">u8").astype(np.uint64)  # (n, 2): each UUID as two numbers, ordered as its text
    order = np.argsort(value[:, 0], kind="stable")
    high = value[order, 0]
    if (high[1:] == high[:-1]).any():  # equal first halves (repeated IDs): order the second halves too
        order = np.lexsort((value[:, 1], value[:, 0]))
    ordered = value[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (ordered[1:, 0] != ordered[:-1, 0]) | (ordered[1:, 1] != ordered[:-1, 1])
    unique = order[first]
    del value, ordered, high, first
    digest = hashlib.sha256(_json([_PLAN_DOMAIN, []])[:-2].encode("ascii"))  # '["leadlex-nb/plan/v1",['
    for start in range(0, len(unique), _FINGERPRINT_CHUNK):
        rows = packed[unique[start : start + _FINGERPRINT_CHUNK]]
        hexadecimal = np.frombuffer(rows.tobytes().hex().encode("ascii"), dtype=np.uint8).reshape(-1, 32)
        quoted = np.full((len(rows), 39), ord(","), dtype=np.uint8)  # "…", per ID
        quoted[:, 0] = quoted[:, 37] = ord('"')
        quoted[:, _QUOTED_DIGITS] = hexadecimal
        quoted[:, _QUOTED_HYPHENS] = ord("-")
        last = start + _FINGERPRINT_CHUNK >= len(unique)
        flat = quoted.reshape(-1)
        digest.update((flat[:-1] if last else flat).data)  # no comma after the last ID
    digest.update(b"]]")
    return digest.hexdigest()


def idempotency_key(run_id: str, phase: str, batch_index: int, ids: Sequence[str]) -> str:
    """``lnb-{run_id}-{phase}-{batch_index}-{hash12}``, the same for the same inputs.

    The hash covers all four inputs, so a batch with other IDs (or an ambiguous split of a run ID
    or phase containing ``-``) gets another key, and the server never answers it with the replay
    of a different request.
    """
    return _idempotency_key(run_id, phase, batch_index, _json(list(_as_tuple(ids))))


def request_body(ids: Sequence[str], dry_run: bool) -> bytes:
    """The exact bytes of one bulk-delete request: compact JSON, ASCII, fixed key order."""
    return _request_body(_json(_checked_ids(ids)), dry_run)


def _idempotency_key(run_id: str, phase: str, batch_index: int, ids_json: str) -> str:
    for name, part in (("run_id", run_id), ("phase", phase)):
        if not isinstance(part, str) or not _KEY_PART.fullmatch(part):
            raise ValueError(f"{name} must be non-empty ASCII letters, digits or ._:- ; got {part!r}")
    if isinstance(batch_index, bool) or not isinstance(batch_index, int) or batch_index < 0:
        raise ValueError(f"batch_index must be a non-negative int, got {batch_index!r}")
    # The text _sha256 hashes, [domain, [run_id, phase, batch_index, ids]], around the IDs' JSON that
    # the body holds too: a batch's IDs are encoded once.
    head = _json([_KEY_DOMAIN, [run_id, phase, batch_index]])
    digest = hashlib.sha256(f"{head[:-2]},{ids_json}]]".encode("ascii")).hexdigest()
    key = f"lnb-{run_id}-{phase}-{batch_index}-{digest[:_HASH_LENGTH]}"
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency key would be {len(key)} characters; shorten run_id or phase")
    return key


def _request_body(ids_json: str, dry_run: bool) -> bytes:
    if not isinstance(dry_run, bool):
        raise TypeError(f"dry_run must be a bool, got {dry_run!r}")
    # json.dumps({"contact_ids": ids, "dry_run": dry_run}) with compact separators, spelled out.
    return f'{{"contact_ids":{ids_json},"dry_run":{_json(dry_run)}}}'.encode("ascii")


def _checked_ids(ids: Sequence[str]) -> list[str]:
    items = _as_tuple(ids)
    if not 1 <= len(items) <= MAX_BATCH_SIZE:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_SIZE} IDs, got {len(items)}")
    if not all(map(isinstance, items, repeat(str))):  # map runs in C: no generator frame per ID
        raise TypeError("contact IDs must be strings")
    return list(items)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class Batch:
    """One request, fully decided: retries send ``body`` again under ``idempotency_key``.

    ``group`` keeps deletions of IDs whose dry-run status is unproven (``"unresolved"``) apart from
    ``"proven"`` ones, so an ambiguous answer cannot spread to them. ``ids`` and ``body`` stay out
    of the repr (up to 500 UUIDs each).
    """

    index: int
    phase: Phase
    ids: tuple[str, ...] = field(repr=False)
    idempotency_key: str
    body: bytes = field(repr=False)
    group: Group = "proven"

    @property
    def size(self) -> int:
        return len(self.ids)


def build_batches(
    run_id: str,
    phase: Phase,
    ids: Sequence[str],
    *,
    size: int = MAX_BATCH_SIZE,
    start_index: int = 0,
    group: Group = "proven",
    key_round: str | None = None,
) -> list[Batch]:
    """Batches numbered from ``start_index``, each with its key and body made once.

    Only the ``delete`` phase deletes. ``key_round`` gives the same batches new keys: a repeated
    dry run must not be answered with the replay of an earlier one, nor a resend after the key
    expired with a stale replay. Without it, the same inputs always give the same keys.
    """
    if isinstance(start_index, bool) or not isinstance(start_index, int) or start_index < 0:
        raise ValueError(f"start_index must be a non-negative int, got {start_index!r}")
    key_phase = phase if key_round is None else f"{phase}.{key_round}"
    batches = []
    for offset, chunk in enumerate(make_batches(ids, size)):
        ids_json = _json(_checked_ids(chunk))
        batches.append(Batch(index=start_index + offset, phase=phase, ids=chunk,
                             idempotency_key=_idempotency_key(run_id, key_phase, start_index + offset, ids_json),
                             body=_request_body(ids_json, phase != DELETE), group=group))
    return batches


def deletion_batches(run_id: str, unique: Sequence[str], dry_outcomes: Mapping[str, Outcome], *,
                     size: int = MAX_BATCH_SIZE) -> list[Batch]:
    """The deletion plan: what the dry run found deletable, proven first, then the unresolved."""
    if isinstance(dry_outcomes, OutcomeTable) and dry_outcomes.ids == unique:  # by column, in C
        proven, unproven = dry_outcomes.ids_with_status("would_delete"), dry_outcomes.ids_with_status("unresolved")
    else:
        status = {cid: o.status for cid, o in dry_outcomes.items()}
        proven = [cid for cid in unique if status.get(cid) == "would_delete"]
        unproven = [cid for cid in unique if status.get(cid) == "unresolved"]
    batches = build_batches(run_id, DELETE, proven, size=size, group="proven")
    return batches + build_batches(run_id, DELETE, unproven, size=size, start_index=len(batches), group="unresolved")


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch size must be an int from 1 to {MAX_BATCH_SIZE}, got {size!r}")


def _as_tuple(ids: Iterable[str]) -> tuple[str, ...]:
    # A lone string is a Sequence[str] too; splitting it into characters would be a silent bug.
    if isinstance(ids, (str, bytes)):
        raise TypeError("expected a sequence of IDs, got a single string")
    return tuple(ids)


def _sha256(domain: str, value: object) -> str:
    # JSON keeps item boundaries unambiguous; the domain keeps fingerprints and keys apart.
    return hashlib.sha256(_json([domain, value]).encode("ascii")).hexdigest()
