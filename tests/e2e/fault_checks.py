"""Seeded fault schedules, run end to end against a sandbox and checked like a Jepsen set.

One seed makes one :class:`Schedule`: a small frame (existing contacts, unknown IDs in among
them, a repeat, a junk value), a batch size, a concurrency, a tight retry policy, a fault mix,
and one scenario on top of the faults. :func:`run_schedule` runs it, resumes what it left
``unknown`` or ``not_sent`` with the faults off, runs again what was never confirmed, and returns
a :class:`Report` whose ``problems`` must be empty. Used by ``test_fault_schedules.py`` (make
test) and ``soak/run.py`` (make soak), so a seed that fails in one replays in the other.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import leadlex_nb
from leadlex_nb import AuthenticationError, LeadLexError, QuotaError, RetryPolicy
from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.hooks import PlanSummary
from leadlex_nb.sandbox import Faults, Profile, Sandbox

BULK_DELETE = "/v1/contacts/bulk-delete"
# Scenarios on top of the fault mix, with their weights.
SCENARIOS = {"faults": 4, "revoked_key": 1, "quota": 1, "protected": 1, "deleted_elsewhere": 1}
EXPECTED_STOP: dict[str, type[LeadLexError]] = {"revoked_key": AuthenticationError, "quota": QuotaError}
# The execution log's fault names, by kind (a JSON 5xx and a gateway page are different kinds).
FAULT_KINDS = {"error_500": "error_5xx", "error_503": "error_5xx", "gateway_502": "gateway_html",
               "gateway_504": "gateway_html"}
SETTLED = {"deleted", "not_found", "gone", "error"}


@dataclass(frozen=True)
class Schedule:
    seed: int
    scenario: str
    contacts: int
    missing: int
    batch_size: int
    concurrency: int
    timeout: float
    retry: RetryPolicy
    faults: Faults
    retry_after: bool
    quota_margin: int = 0  # quota: delete batches the daily quota still covers after the dry run
    protect: int = 0
    delete_elsewhere: int = 0

    def describe(self) -> str:
        mix = {k: v for k, v in vars(self.faults).items()
               if isinstance(v, float) and v and k not in ("slow_seconds",)}
        return (f"seed={self.seed} {self.scenario} contacts={self.contacts}+{self.missing} missing "
                f"batch={self.batch_size} concurrency={self.concurrency} timeout={self.timeout} "
                f"attempts={self.retry.max_attempts} retry_after={self.retry_after} faults={mix}")


def schedule_for(seed: int) -> Schedule:
    """The schedule of one seed; the same seed always gives the same schedule."""
    rng = random.Random(seed)
    scenario = rng.choices(list(SCENARIOS), weights=list(SCENARIOS.values()))[0]
    timeout = rng.choice((0.2, 0.3, 0.4))
    mix: dict[str, float] = {
        "error_5xx": rng.choice((0.0, 0.05, 0.1, 0.2)),
        "gateway_html": rng.choice((0.0, 0.05, 0.1)),
        "reset_before": rng.choice((0.0, 0.05, 0.1)),
        "drop_after_commit": rng.choice((0.0, 0.05, 0.1, 0.2)),
        "slow_after_commit": rng.choice((0.0, 0.05, 0.1)),
        "burst_429": rng.choice((0.0, 0.0, 0.03)),
    }
    if rng.random() < 0.3:  # a misbehaving server too
        mix.update(redirect=rng.choice((0.0, 0.03)), non_json_200=rng.choice((0.0, 0.05)),
                   retry_after_date=rng.choice((0.0, 0.02)))
        # Drawn apart so that adding it left every other seed's schedule as it was.
        mix["bad_counts"] = random.Random(f"bad_counts-{seed}").choice((0.0, 0.05))
        if scenario != "quota":  # unreadable quota headers cannot announce the quota's end
            mix[rng.choice(("garbled_ratelimit", "missing_ratelimit", "reset_past", "reset_future"))] = 0.1
    # A spike may outlast the timeout: the retry then meets the first attempt still running (409).
    latency, jitter = rng.choice(((0.0, 0.0), (0.0, 0.0), (0.02, 0.02), (0.1, 0.15)))
    faults = Faults(seed=seed, latency=latency, latency_jitter=jitter, burst_length=rng.choice((1, 2, 3)),
                    slow_seconds=timeout + rng.choice((-0.1, 0.2, 0.4)), **mix)
    contacts = rng.randint(60, 240)
    return Schedule(
        seed=seed, scenario=scenario, contacts=contacts, missing=rng.choice((0, 0, 3, 8)),
        batch_size=rng.choice((20, 30, 50, 100)), concurrency=rng.randint(1, 4), timeout=timeout,
        retry=RetryPolicy(max_attempts=rng.randint(3, 5), base_delay=0.01, max_delay=0.05,
                          budget=rng.choice((5, 200, 200))),
        faults=faults, retry_after=rng.random() < 0.5,
        quota_margin=rng.randint(0, 2) if scenario == "quota" else 0,
        protect=rng.randint(1, 8) if scenario == "protected" else 0,
        delete_elsewhere=rng.randint(1, 10) if scenario == "deleted_elsewhere" else 0,
    )


@dataclass
class Report:
    """What one schedule did and every check it failed (``problems``, by kind in ``anomalies``)."""

    schedule: Schedule
    faults: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    stop: str | None = None
    resumed: bool = False
    requests: int = 0

    def fail(self, kind: str, detail: str, count: int = 1) -> None:
        self.anomalies[kind] += count
        self.problems.append(f"{kind}: {detail}")

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.schedule.seed, "scenario": self.schedule.scenario, "faults": dict(self.faults),
                "anomalies": dict(self.anomalies), "problems": self.problems, "statuses": dict(self.statuses),
                "stop": self.stop, "resumed": self.resumed, "requests": self.requests}


def key_body_problems(entries: Iterable[Mapping[str, Any]], run_id: str) -> list[str]:
    """Every attempt of a batch carries one key and the same bytes; no key ever carries two bodies."""
    prefix = f"lnb-{run_id}-"
    bodies: dict[str, set[str | None]] = {}
    keys_of_delete_body: dict[str | None, set[str]] = {}
    delete_bodies = set()
    problems = []
    for e in entries:
        key = e.get("idempotency_key")
        if e["path"] != BULK_DELETE or (key is not None and not str(key).startswith(prefix)):
            continue
        if key is None:
            problems.append(f"a bulk delete went out without an Idempotency-Key (seq {e['seq']})")
            continue
        bodies.setdefault(key, set()).add(e.get("body_sha256"))
        keys_of_delete_body.setdefault(e.get("body_sha256"), set()).add(key)
        if e.get("dry_run") is False:
            delete_bodies.add(e.get("body_sha256"))
    problems += [f"key {k} went out with {len(b)} different bodies" for k, b in bodies.items() if len(b) > 1]
    problems += [f"one delete body went out under {len(keys_of_delete_body[b])} keys"
                 for b in delete_bodies if len(keys_of_delete_body[b]) > 1]
    return problems


def count_faults(entries: Iterable[Mapping[str, Any]], into: Counter[str]) -> None:
    for e in entries:
        if e.get("fault"):
            into[FAULT_KINDS.get(e["fault"], e["fault"])] += 1
        elif e.get("status") == 429:
            into["rate_limit_429"] += 1  # the limiter's own 429s: the per-window limit or the quota


def _frame(sandbox: Sandbox, s: Schedule, rng: random.Random) -> tuple[pd.DataFrame, list[str]]:
    existing = sandbox.seed(s.contacts)
    values: list[Any] = existing + [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(s.missing)]
    rng.shuffle(values)  # unknown IDs in among existing ones: their batches need attribution
    values += [existing[0].upper(), "not-a-uuid"]
    return pd.DataFrame({"c": values}), existing


def _profile(s: Schedule, quota: int) -> Profile:
    return Profile("schedule", per_window=50, window_seconds=1.0, daily_quota=quota, retry_after=s.retry_after)


def run_schedule(sandbox: Sandbox, s: Schedule, workdir: Path) -> Report:
    """Run one schedule on ``sandbox`` (any state: it seeds fresh contacts) and check everything."""
    report = Report(s)
    rng = random.Random(s.seed)
    sandbox.set_faults(None)
    sandbox.reinstate_key(sandbox.api_key)
    since = sandbox.log_length
    frame, existing = _frame(sandbox, s, rng)
    protected = set(rng.sample(existing, s.protect))
    sandbox.protect(protected)
    before = sandbox.existing_ids()
    elsewhere: set[str] = set()
    dry_batches = math.ceil((s.contacts + s.missing) / s.batch_size)
    delete_batches = math.ceil((s.contacts - s.protect) / s.batch_size)
    # The quota covers the dry run and fewer delete batches than the plan needs.
    quota = dry_batches + min(s.quota_margin, delete_batches - 1) if s.scenario == "quota" else 100_000
    sandbox.set_profile(_profile(s, quota))
    faults = s.faults
    if s.scenario == "revoked_key":  # strikes before the last request the run must send
        faults = Faults(**{**vars(faults), "revoke_after": rng.randint(1, dry_batches + delete_batches - 1)})

    def confirm(plan: PlanSummary) -> bool:
        assert plan.dry_run_result is not None
        planned = plan.dry_run_result.loc[plan.dry_run_result["status"].isin(["would_delete", "unresolved"]),
                                          "contact_id"]
        # Another client deletes some planned contacts between the dry run and the deletion.
        elsewhere.update(sandbox.delete_contacts(rng.sample(sorted(set(planned)), min(s.delete_elsewhere,
                                                                                     planned.nunique()))))
        return True

    journal = workdir / f"journal-{s.seed}.sqlite3"
    options: dict[str, Any] = dict(api_key=sandbox.api_key, base_url=sandbox.base_url, journal=journal,
                                   progress=False, verbose=False, timeout=s.timeout, rate_window=1.0, retry=s.retry)
    sandbox.set_faults(faults)
    try:
        result = frame.leadlex.bulk_delete("c", confirm=confirm if s.delete_elsewhere else False,
                                           batch_size=s.batch_size, concurrency=s.concurrency,
                                           ignore_quota=s.scenario == "quota", **options)
    except LeadLexError as stop:
        report.stop = type(stop).__name__
        if stop.result is None:
            report.fail("unreported", f"{report.stop} carried no result")
            return report
        result = stop.result
    finally:
        sandbox.set_faults(None)
    count_faults(sandbox.execution_log(since), report.faults)
    if s.retry_after and report.faults["burst_429"]:  # the profile adds Retry-After to every 429
        report.faults["burst_429_retry_after"] = report.faults.pop("burst_429")
    report.faults["protected_contacts"] += len(protected)
    report.faults["deleted_elsewhere_contacts"] += len(elsewhere)
    expected = EXPECTED_STOP.get(s.scenario)
    if s.scenario == "quota" and report.stop is None \
            and result["error_message"].str.startswith("dry run failed", na=False).any():
        expected = None  # a failed dry-run batch shrank the plan, and the quota may then cover it
    if report.stop != (expected.__name__ if expected else None):
        report.fail("wrong_stop", f"expected {expected.__name__ if expected else 'no stop'}, got {report.stop}")
    run_id = result.attrs["leadlex"]["run_id"]
    _check(report, sandbox, result, frame, before - elsewhere, since, run_id, "run")

    if result["status"].astype(str).isin(["unknown", "not_sent"]).any():
        sandbox.reinstate_key(sandbox.api_key)
        sandbox.set_profile(_profile(s, 100_000))
        report.resumed = True
        try:
            result = leadlex_nb.resume(run_id, confirm=False, **options)
        except LeadLexError as error:
            report.fail("resume_failed", f"{type(error).__name__}: {error}")
            return report
        _check(report, sandbox, result, frame, before - elsewhere, since, run_id, "resume")
        unknown = int(result["status"].astype(str).eq("unknown").sum())
        if unknown:
            report.fail("unsettled", f"{unknown} row(s) still unknown after resume")
    final = dict(zip(result["contact_id"], result["status"].astype(str), strict=False))
    leftover = frame[result["status"].astype(str).eq("not_sent").to_numpy()]
    never_confirmed = result["error_message"].str.contains("dry run failed", na=False).to_numpy()
    wrongly_left = int((result["status"].astype(str).eq("not_sent").to_numpy() & ~never_confirmed).sum())
    if wrongly_left:
        report.fail("unsettled", f"{wrongly_left} row(s) not_sent after resume although their dry run answered")
    if len(leftover):  # rows whose dry run failed were never confirmed: they take a new run
        try:
            again = leftover.leadlex.bulk_delete("c", confirm=False, batch_size=s.batch_size, **options)
        except LeadLexError as error:
            report.fail("rerun_failed", f"{type(error).__name__}: {error}")
            return report
        final.update(zip(again["contact_id"], again["status"].astype(str), strict=False))
    report.statuses = Counter(final.values())
    report.requests = sandbox.log_length - since
    _check_final(report, sandbox, final, set(existing), protected, elsewhere)
    return report


def _check(report: Report, sandbox: Sandbox, result: pd.DataFrame, frame: pd.DataFrame, existed: set[str],
           since: int, run_id: str, stage: str) -> None:
    if len(result) != len(frame) or result["status"].isna().any():
        report.fail("unreported", f"{stage}: {len(result)} rows for {len(frame)}, "
                                  f"{int(result['status'].isna().sum())} without a status")
    entries = sandbox.execution_log(since)
    found = audit(result, existed_before=existed, exists_after=sandbox.existing_ids(), execution_log=entries,
                  run_id=run_id)
    for kind in (*ANOMALIES, "overclaim"):
        if found[kind]:
            report.fail(kind, f"{stage}: {found[kind]}", found[kind])
    for problem in key_body_problems(entries, run_id):
        report.fail("key_or_body", f"{stage}: {problem}")


def _check_final(report: Report, sandbox: Sandbox, final: Mapping[str, str], existing: set[str],
                 protected: set[str], elsewhere: set[str]) -> None:
    still = sandbox.existing_ids() & existing
    if still != protected:
        report.fail("left_behind", f"{len(still - protected)} deletable contact(s) still exist; "
                                   f"{len(protected - still)} protected one(s) gone")
    not_error = [cid for cid in protected if final.get(cid) != "error"]
    if not_error:
        report.fail("wrong_status", f"{len(not_error)} protected row(s) not error: "
                                    f"{Counter(final.get(c) for c in not_error)}")
    claimed = [cid for cid in elsewhere if final.get(cid) not in ("gone", "not_found")]
    if claimed:
        report.fail("wrong_status", f"{len(claimed)} row(s) deleted by another client end "
                                    f"{Counter(final.get(c) for c in claimed)}")
    unsettled = {cid: st for cid, st in final.items() if cid in existing and st not in SETTLED}
    if unsettled:
        report.fail("unsettled", f"{len(unsettled)} row(s) end {Counter(unsettled.values())}")


def run_many(seeds: Iterable[int], workdir: Path, on_report: Callable[[Report], None]) -> None:
    """Run schedules one after another on one sandbox (each seeds its own contacts)."""
    with Sandbox(seed_contacts=0) as sandbox:
        for seed in seeds:
            on_report(run_schedule(sandbox, schedule_for(seed), workdir))
