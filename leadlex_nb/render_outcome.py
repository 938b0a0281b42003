"""What a run did, as HTML and plain text: the summary that replaces the confirm panel when a run ends.

Pure: strings from the result frame (its statuses and the ``leadlex`` report in its attrs) and the
plan, kept in a saved notebook as static output. The API key is in neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from leadlex_nb.hooks import PlanSummary
from leadlex_nb.render_style import BOX, CODE, ERROR, MUTED, STATUS_COLOURS, esc, number

# The statuses in the order the summary lists them, and what each means.
STATUS_LABELS: dict[str, str] = {
    "deleted": "deleted",
    "not_found": "not found",
    "gone": "gone (absent; not proven deleted by this run)",
    "error": "refused by the API",
    "invalid": "invalid, never sent",
    "would_delete": "would delete",
    "unresolved": "unresolved",
    "not_sent": "not sent",
    "unknown": "unknown: sent, no answer (resume settles it)",
}


def seconds_text(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:,.0f} s"


def status_counts(result: pd.DataFrame, *, unique: bool = False) -> dict[str, int]:
    """Rows (or, with ``unique``, contact IDs: repeated rows left out) per status, in the vocabulary's
    order, zeros left out."""
    if unique and "duplicate" in result:
        result = result[~result["duplicate"].fillna(False).astype(bool).to_numpy()]
    counts = result["status"].astype(str).value_counts()
    order = list(STATUS_LABELS)
    return {s: int(counts[s]) for s in sorted(counts.index, key=lambda s: order.index(s) if s in order else 99)
            if counts[s]}


def percent(n: int, total: int) -> str:
    share = 100 * n / total if total else 0.0
    return "<1%" if 0 < share < 1 else f"{share:.0f}%"


def outcome_bar_html(counts: Mapping[str, int]) -> str:
    """A compact stacked bar of the outcomes, with a legend; plain HTML and inline CSS."""
    total = sum(counts.values()) or 1
    segments = "".join(
        f"<div title='{esc(STATUS_LABELS.get(s, s))}: {number(n)}' style='flex:{n} 0 0;min-width:3px;"
        f"background:{STATUS_COLOURS.get(s, '#555')}'></div>"
        for s, n in counts.items()
    )
    legend = " ".join(
        f"<span style='white-space:nowrap;margin-right:10px'><span style='color:{STATUS_COLOURS.get(s, '#555')}'>"
        f"&#9632;</span> {esc(s)} <b>{number(n)}</b> <span style='{MUTED}'>({percent(n, total)})</span></span>"
        for s, n in counts.items()
    )
    return (f"<div style='display:flex;height:14px;max-width:640px;border-radius:3px;overflow:hidden;"
            f"margin:6px 0 3px 0'>{segments}</div><div>{legend}</div>")


def _requests_text(report: Mapping[str, Any]) -> str:
    requests = {k: int(v) for k, v in dict(report.get("requests") or {}).items() if v}
    total = sum(requests.values())
    detail = ", ".join(f"{phase.replace('_', ' ')} {number(n)}" for phase, n in requests.items())
    return f"{number(total)} request{'s' if total != 1 else ''}" + (f" ({detail})" if detail else "")


def outcome_title(state: str, counts: Mapping[str, int], error: BaseException | None) -> str:
    if state == "cancelled":
        return f"Not deleted: {error}." if error is not None else "Cancelled: nothing was sent, nothing was deleted."
    if state == "finished":
        deleted, gone = counts.get("deleted", 0), counts.get("gone", 0)
        if not deleted and not gone:
            return "Done: no contact was deleted."
        return f"Done: {number(deleted)} contacts deleted" + (f" ({number(gone)} more gone)." if gone else ".")
    return "Stopped: " + (str(error) if error is not None else "the run ended early.")


def summary_html(state: str, result: pd.DataFrame | None, *, plan: PlanSummary | None = None,
                 error: BaseException | None = None, deletion_seconds: float | None = None,
                 handle: str = "run") -> str:
    """The panel once the run has ended: what happened, per status, and how to read the result."""
    counts = status_counts(result) if result is not None else {}
    title = outcome_title(state, status_counts(result, unique=True) if result is not None else {}, error)
    if state in ("finished", "cancelled") and not (state == "cancelled" and error is not None):
        parts = [f"<div style='{BOX}'>", f"<div style='font-weight:600;font-size:14px'>{esc(title)}</div>"]
    else:
        parts = [f"<div style='{BOX}'>", f"<div style='{ERROR}'><b>{esc(title)}</b></div>"]
    if plan is not None:
        parts.append(f"<div style='{MUTED}'>{esc(plan_line(plan, state))}</div>")
    if result is not None:
        report = dict(result.attrs.get("leadlex") or {})
        repeated = int(result["duplicate"].fillna(False).astype(bool).sum()) if "duplicate" in result else 0
        parts.append(f"<div>Rows per status ({number(len(result))} rows"
                     + (f"; {repeated_text(repeated)}" if repeated else "") + "):</div>")
        parts.append(outcome_bar_html(counts))
        parts.append(f"<div style='{MUTED}'>{esc(usage_text(report, deletion_seconds))}</div>")
        parts.append(f"<div style='margin-top:4px'><code style='{CODE}'>{handle}.result</code> holds one row per "
                     "input row, with your frame's index: "
                     f"<code style='{CODE}'>{handle}.result.status.value_counts()</code>, "
                     f"<code style='{CODE}'>{handle}.result[{handle}.result.status == 'error']</code>, "
                     f"<code style='{CODE}'>df.join({handle}.result.drop(columns='contact_id'))</code>.</div>")
        for line in resume_advice(state, counts, report.get("run_id"), title) + restore_advice(report, counts):
            parts.append(f"<div>{esc(line)}</div>")
    parts.append("</div>")
    return "".join(parts)


def summary_text(state: str, result: pd.DataFrame | None, *, plan: PlanSummary | None = None,
                 error: BaseException | None = None, deletion_seconds: float | None = None,
                 handle: str = "run") -> str:
    counts = status_counts(result) if result is not None else {}
    title = outcome_title(state, status_counts(result, unique=True) if result is not None else {}, error)
    lines = [title]
    if plan is not None:
        lines.append(plan_line(plan, state))
    if result is not None:
        report = dict(result.attrs.get("leadlex") or {})
        lines.append("Rows per status: " + ", ".join(f"{s} {number(n)}" for s, n in counts.items()) + ".")
        lines.append(usage_text(report, deletion_seconds))
        lines.append(f"{handle}.result holds one row per input row, with your frame's index.")
        lines.extend(resume_advice(state, counts, report.get("run_id"), title))
        lines.extend(restore_advice(report, counts))
    return "\n".join(lines)


def usage_text(report: Mapping[str, Any], deletion_seconds: float | None) -> str:
    timing = []
    if deletion_seconds is not None:
        timing.append(f"deletion {seconds_text(deletion_seconds)} after the decision")
    if report.get("wall_seconds") is not None:
        timing.append(f"whole run {seconds_text(float(report['wall_seconds']))}")
    return (f"Used {_requests_text(report)}" + (f"; {', '.join(timing)}" if timing else "")
            + f". Run id {report.get('run_id', '')}.")


def repeated_text(repeated: int) -> str:
    if repeated == 1:
        return "1 repeated row shares its ID's status"
    return f"{number(repeated)} repeated rows share their ID's status"


def plan_line(plan: PlanSummary, state: str) -> str:
    """What was decided, for the summary that replaces the panel."""
    decided = "not confirmed" if state == "cancelled" else "confirmed"
    return (f"Plan {plan.fingerprint[:16]}: {number(plan.to_delete)} contact{'s' if plan.to_delete != 1 else ''} "
            f"to delete, {decided}.")


def restore_advice(report: Mapping[str, Any], counts: Mapping[str, int]) -> list[str]:
    """Where the snapshot is and how to restore from it, once something was deleted."""
    if not report.get("snapshot") or not (counts.get("deleted") or counts.get("gone")):
        return []
    return [f"Snapshot of the deleted contacts: {report['snapshot']}; "
            f"leadlex_nb.restore({str(report.get('run_id'))!r}) re-creates them (new IDs, no timeline)."]


def resume_advice(state: str, counts: Mapping[str, int], run_id: object, said: str = "") -> list[str]:
    if "resume(" in said:
        return []
    if counts.get("unknown"):
        unknown = counts["unknown"]
        return [f"{number(unknown)} {'row is' if unknown == 1 else 'rows are'} unknown (sent, no answer): "
                f"leadlex_nb.resume({str(run_id)!r}) settles them without deleting anything twice."]
    if state == "stopped" and counts.get("not_sent"):
        return [f"Finish the run with leadlex_nb.resume({str(run_id)!r})."]
    return []

