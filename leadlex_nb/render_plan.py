"""The dry run's plan as HTML and plain text: counts per kind, sample rows, the quota it uses.

Pure: strings from a :class:`~leadlex_nb.hooks.PlanSummary`, for the confirm panel's widget, for the
static output that stays in a saved notebook, and for frontends without widgets (nbconvert, nbclient).
The API key is never in a plan, so never in what is shown.
"""

from __future__ import annotations

import pandas as pd

from leadlex_nb.hooks import PlanSummary, reset_text
from leadlex_nb.render_style import BOX, CELL, CODE, MUTED, NUM, STATUS_COLOURS, TABLE, WARNING, esc, number

SAMPLES = 3  # rows shown per kind

# Dry-run kinds, in the order the panel lists them: (key, label, unit).
PLAN_KINDS: tuple[tuple[str, str, str], ...] = (
    ("would_delete", "would delete", "IDs"),
    ("unresolved", "unresolved: in a batch with missing contacts, not pinned down (planned)", "IDs"),
    ("not_found", "not found", "IDs"),
    ("error", "refused by the API", "IDs"),
    ("not_sent", "dry run failed (not planned)", "IDs"),
    ("invalid", "invalid, never sent", "rows"),
    ("duplicate", "repeated rows (each ID is sent once)", "rows"),
)


def delete_label(plan: PlanSummary) -> str:
    return f"Delete {number(plan.to_delete)} contact{'s' if plan.to_delete != 1 else ''}"


def plan_counts(plan: PlanSummary) -> dict[str, int]:
    """Unique IDs per dry-run status, plus rows that are invalid or repeat an ID; zeros left out
    except ``would_delete``."""
    counts = {key: int(plan.counts.get(key, 0)) for key, _, unit in PLAN_KINDS if unit == "IDs"}
    frame = plan.dry_run_result
    if frame is not None and len(frame):
        counts["invalid"] = int((frame["status"].astype(str) == "invalid").sum())
        counts["duplicate"] = int(frame["duplicate"].fillna(False).astype(bool).sum())
    return {k: n for k, n in counts.items() if n or k == "would_delete"}


def plan_samples(plan: PlanSummary, per_kind: int = SAMPLES) -> dict[str, pd.DataFrame]:
    """A few rows of each kind of the dry run, with the input's index."""
    frame = plan.dry_run_result
    if frame is None or not len(frame):
        return {}
    status = frame["status"].astype(str)
    repeated = frame["duplicate"].fillna(False).astype(bool)
    samples: dict[str, pd.DataFrame] = {}
    for key, _, _ in PLAN_KINDS:
        mask = repeated if key == "duplicate" else (status == key) & ~repeated
        rows = frame[mask.to_numpy()].head(per_kind)
        if len(rows):
            samples[key] = rows
    return samples


def quota_text(plan: PlanSummary) -> str:
    uses = f"The deletion uses {number(plan.delete_requests)} request{'s' if plan.delete_requests != 1 else ''}"
    if plan.snapshot_requests:
        uses += f" (plus about {number(plan.snapshot_requests)} for the snapshot)"
    if plan.quota_remaining is None:
        return uses + "; the API did not report the daily quota."
    return f"{uses} of the {number(plan.quota_remaining)} left in today's quota{reset_text(plan.quota_reset_at)}."


def _detail(row: pd.Series, key: str) -> str:
    if key == "duplicate":
        return "repeats an earlier row; shares its status"
    parts = [str(row[c]) for c in ("error_code", "error_message") if pd.notna(row.get(c)) and str(row.get(c))]
    return ": ".join(parts)


def way_back_text(plan: PlanSummary) -> str:
    """What can be brought back: LeadLex has no recycle bin, only the snapshot."""
    if plan.snapshot is None or not plan.snapshot.promised:
        return "Deleted contacts cannot be restored."
    return (f"LeadLex has no recycle bin. The snapshot is leadlex-nb's way back: leadlex_nb.restore({plan.run_id!r}) "
            "re-creates the contacts from it, but with new IDs and without their notes, activities and tasks.")


def plan_html(plan: PlanSummary, *, decided: bool = False) -> str:
    """The plan as HTML; ``decided``: without the "nothing deleted yet" line and the warning."""
    counts = plan_counts(plan)
    labels = {key: (label, unit) for key, label, unit in PLAN_KINDS}
    rows = "".join(
        f"<tr><td style='{NUM}'><b>{number(n)}</b></td>"
        f"<td style='{CELL}'><span style='color:{STATUS_COLOURS.get(k, '#555')}'>&#9632;</span> "
        f"{esc(labels[k][0])}</td><td style='{CELL};{MUTED}'>{esc(labels[k][1])}</td></tr>"
        for k, n in counts.items()
    )
    parts = [
        f"<div style='{BOX}'>",
        f"<div style='font-weight:600;font-size:14px'>LeadLex bulk delete: the dry run's plan "
        f"<span style='{MUTED};font-weight:400'>(run {esc(plan.run_id)})</span></div>",
        f"<div style='{MUTED}'>{number(plan.rows)} rows, {number(plan.unique_ids)} unique valid contact IDs."
        + ("" if decided else " Nothing has been deleted yet.") + "</div>",
        f"<table style='{TABLE}'>{rows}</table>",
    ]
    samples = plan_samples(plan)
    if samples:
        body = "".join(
            f"<tr><td style='{CELL}'>{esc(labels[k][0].split(':')[0])}</td><td style='{CELL}'>{esc(index)}</td>"
            f"<td style='{CELL};{CODE}'>{esc(row['contact_id'])}</td>"
            f"<td style='{CELL};{MUTED}'>{esc(_detail(row, k))}</td></tr>"
            for k, frame in samples.items() for index, row in frame.iterrows()
        )
        parts.append(
            f"<details open><summary style='cursor:pointer'>Sample rows (up to {SAMPLES} of each kind)</summary>"
            f"<table style='{TABLE}'><tr><th style='{CELL}'>kind</th><th style='{CELL}'>row</th>"
            f"<th style='{CELL}'>contact_id</th><th style='{CELL}'>detail</th></tr>{body}</table></details>")
    lines = [esc(quota_text(plan))]  # each line HTML already
    if plan.snapshot is not None:
        lines.append(esc(plan.snapshot.describe()))
    if plan.unresolved:
        lines.append(esc(f"{number(plan.unresolved)} planned ID(s) are not proven to exist; they go in batches "
                         "of their own."))
    lines.append(f"Plan fingerprint <code style='{CODE}'>{esc(plan.fingerprint[:16])}</code>: the deletion "
                 "sends exactly these IDs.")
    parts.append("".join(f"<div>{line}</div>" for line in lines))
    if plan.notes:
        parts.append("".join(f"<div style='{MUTED}'>{esc(note)}</div>" for note in plan.notes))
    if not decided:
        parts.append(f"<div style='{WARNING}'><b>Deletion is permanent.</b> {esc(way_back_text(plan))} "
                     f"Review the counts above before you click <b>{esc(delete_label(plan))}</b>.</div>")
    parts.append("</div>")
    return "".join(parts)


def plan_text(plan: PlanSummary, handle: str = "run") -> str:
    """The plain-text panel, for frontends without widgets and headless runs (nbclient, papermill)."""
    labels = {key: label for key, label, _ in PLAN_KINDS}
    counts = plan_counts(plan)
    lines = [
        f"LeadLex bulk delete, run {plan.run_id}: the plan awaits a decision. NOTHING HAS BEEN DELETED.",
        f"{number(plan.rows)} rows, {number(plan.unique_ids)} unique valid contact IDs. Dry run:",
        *(f"  {number(n):>9}  {labels[k]}" for k, n in counts.items()),
        quota_text(plan),
        *([plan.snapshot.describe()] if plan.snapshot is not None else []),
        f"Plan fingerprint: {plan.fingerprint[:16]}",
        *plan.notes,
        f"Deletion is permanent. {way_back_text(plan)}",
        f"To delete these {number(plan.to_delete)} contacts: {handle}.confirm(), or click "
        f"'{delete_label(plan)}' in a notebook that shows widgets. To drop the plan: {handle}.cancel().",
        "Headless runs (nbclient, papermill) and scripts: pass confirm=False to delete without asking.",
    ]
    return "\n".join(lines)


def started_text(plan: PlanSummary, confirmed: bool) -> str:
    """The plain text once the plan is decided and the run goes on; what a saved notebook keeps if the
    kernel stops before the summary replaces it."""
    what = "deletion" if confirmed else "cancel"
    return (f"LeadLex bulk delete, run {plan.run_id}: the {what} of plan "
            f"{plan.fingerprint[:16]} has started. run.wait() returns the result when it ends. If this "
            f"text is all that is left (the kernel stopped first), leadlex_nb.resume({plan.run_id!r}) "
            "finishes the run without deleting anything twice.")
