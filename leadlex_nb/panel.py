"""The notebook's confirm panel: what the dry run found, the buttons, the deletion's progress, the summary.

Two layers:

- pure renderers (:func:`plan_html`, :func:`plan_text`, :func:`summary_html`, :func:`summary_text`, ...):
  strings from a :class:`~leadlex_nb.hooks.PlanSummary` and a result frame, also used for the static
  output that stays in a saved notebook and for frontends without widgets;
- :class:`ConfirmPanel`: the ipywidgets view (``Delete N contacts``, ``Cancel``, a progress bar,
  ``Stop``), driven by :class:`leadlex_nb.notebook.DeletionRun`, which owns every decision.

Everything shown comes from the plan and the result frame; the API key is never among them. Every
value is HTML-escaped: error messages come from the network and invalid IDs from the user's frame.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from leadlex_nb.hooks import PlanSummary, reset_text

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

STATUS_COLOURS: dict[str, str] = {
    "deleted": "#2e7d32",
    "not_found": "#9e9e9e",
    "gone": "#607d8b",
    "error": "#c62828",
    "invalid": "#8d6e63",
    "would_delete": "#1565c0",
    "unresolved": "#ef6c00",
    "not_sent": "#f9a825",
    "unknown": "#6a1b9a",
}

_BOX = ("font-family:var(--jp-ui-font-family, sans-serif);font-size:13px;line-height:1.45;"
        "color:var(--jp-ui-font-color1, #222)")
_MUTED = "color:var(--jp-ui-font-color2, #666)"
_TABLE = "border-collapse:collapse;margin:4px 0"
_CELL = "padding:1px 10px 1px 0;text-align:left;vertical-align:top"
_NUM = "padding:1px 10px 1px 0;text-align:right;font-variant-numeric:tabular-nums"
_CODE = "font-family:var(--jp-code-font-family, monospace);font-size:12px"
_WARNING = ("background:var(--jp-warn-color3, #fff3cd);border-left:4px solid var(--jp-warn-color1, #b26a00);"
            "padding:4px 8px;margin:6px 0")
_ERROR = ("background:var(--jp-error-color3, #fdecea);border-left:4px solid var(--jp-error-color1, #c62828);"
          "padding:4px 8px;margin:6px 0")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(n: int) -> str:
    """Thousands separators, as in the counts and on the Delete button: ``2,980``."""
    return f"{n:,}"


def seconds_text(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:,.0f} s"


def delete_label(plan: PlanSummary) -> str:
    return f"Delete {number(plan.to_delete)} contact{'s' if plan.to_delete != 1 else ''}"


# -- the plan -----------------------------------------------------------------------------------


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
    if plan.quota_remaining is None:
        return uses + "; the API did not report the daily quota."
    return f"{uses} of the {number(plan.quota_remaining)} left in today's quota{reset_text(plan.quota_reset_at)}."


def _detail(row: pd.Series, key: str) -> str:
    if key == "duplicate":
        return "repeats an earlier row; shares its status"
    parts = [str(row[c]) for c in ("error_code", "error_message") if pd.notna(row.get(c)) and str(row.get(c))]
    return ": ".join(parts)


def plan_html(plan: PlanSummary, *, decided: bool = False) -> str:
    """The plan as HTML; ``decided``: without the "nothing deleted yet" line and the warning."""
    counts = plan_counts(plan)
    labels = {key: (label, unit) for key, label, unit in PLAN_KINDS}
    rows = "".join(
        f"<tr><td style='{_NUM}'><b>{number(n)}</b></td>"
        f"<td style='{_CELL}'><span style='color:{STATUS_COLOURS.get(k, '#555')}'>&#9632;</span> "
        f"{esc(labels[k][0])}</td><td style='{_CELL};{_MUTED}'>{esc(labels[k][1])}</td></tr>"
        for k, n in counts.items()
    )
    parts = [
        f"<div style='{_BOX}'>",
        f"<div style='font-weight:600;font-size:14px'>LeadLex bulk delete: the dry run's plan "
        f"<span style='{_MUTED};font-weight:400'>(run {esc(plan.run_id)})</span></div>",
        f"<div style='{_MUTED}'>{number(plan.rows)} rows, {number(plan.unique_ids)} unique valid contact IDs."
        + ("" if decided else " Nothing has been deleted yet.") + "</div>",
        f"<table style='{_TABLE}'>{rows}</table>",
    ]
    samples = plan_samples(plan)
    if samples:
        body = "".join(
            f"<tr><td style='{_CELL}'>{esc(labels[k][0].split(':')[0])}</td><td style='{_CELL}'>{esc(index)}</td>"
            f"<td style='{_CELL};{_CODE}'>{esc(row['contact_id'])}</td>"
            f"<td style='{_CELL};{_MUTED}'>{esc(_detail(row, k))}</td></tr>"
            for k, frame in samples.items() for index, row in frame.iterrows()
        )
        parts.append(
            f"<details open><summary style='cursor:pointer'>Sample rows (up to {SAMPLES} of each kind)</summary>"
            f"<table style='{_TABLE}'><tr><th style='{_CELL}'>kind</th><th style='{_CELL}'>row</th>"
            f"<th style='{_CELL}'>contact_id</th><th style='{_CELL}'>detail</th></tr>{body}</table></details>")
    extra = [quota_text(plan)]
    if plan.unresolved:
        extra.append(f"{number(plan.unresolved)} planned ID(s) are not proven to exist; they go in batches "
                     "of their own.")
    if plan.plan_age_seconds is not None:
        extra.append(f"The dry run behind this plan is {plan.plan_age_seconds:,.0f} s old.")
    extra.append(f"Plan fingerprint <code style='{_CODE}'>{esc(plan.fingerprint[:16])}</code>: the deletion "
                 "sends exactly these IDs.")
    parts.append("".join(f"<div>{line if 'fingerprint' in line else esc(line)}</div>" for line in extra))
    if plan.notes:
        parts.append("".join(f"<div style='{_MUTED}'>{esc(note)}</div>" for note in plan.notes))
    if not decided:
        parts.append(f"<div style='{_WARNING}'><b>Deletion is permanent.</b> Deleted contacts cannot be restored. "
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
        f"Plan fingerprint: {plan.fingerprint[:16]}",
        *plan.notes,
        "Deletion is permanent.",
        f"To delete these {number(plan.to_delete)} contacts: {handle}.confirm(), or click "
        f"'{delete_label(plan)}' in a notebook that shows widgets. To drop the plan: {handle}.cancel().",
        "Headless runs (nbclient, papermill) and scripts: pass confirm=False to delete without asking.",
    ]
    return "\n".join(lines)


# -- the outcome --------------------------------------------------------------------------------


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
        f"&#9632;</span> {esc(s)} <b>{number(n)}</b> <span style='{_MUTED}'>({percent(n, total)})</span></span>"
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
        parts = [f"<div style='{_BOX}'>", f"<div style='font-weight:600;font-size:14px'>{esc(title)}</div>"]
    else:
        parts = [f"<div style='{_BOX}'>", f"<div style='{_ERROR}'><b>{esc(title)}</b></div>"]
    if plan is not None:
        parts.append(f"<div style='{_MUTED}'>{esc(plan_line(plan, state))}</div>")
    if result is not None:
        report = dict(result.attrs.get("leadlex") or {})
        repeated = int(result["duplicate"].fillna(False).astype(bool).sum()) if "duplicate" in result else 0
        parts.append(f"<div>Rows per status ({number(len(result))} rows"
                     + (f"; {repeated_text(repeated)}" if repeated else "") + "):</div>")
        parts.append(outcome_bar_html(counts))
        parts.append(f"<div style='{_MUTED}'>{esc(usage_text(report, deletion_seconds))}</div>")
        parts.append(f"<div style='margin-top:4px'><code style='{_CODE}'>{handle}.result</code> holds one row per "
                     "input row, with your frame's index: "
                     f"<code style='{_CODE}'>{handle}.result.status.value_counts()</code>, "
                     f"<code style='{_CODE}'>{handle}.result[{handle}.result.status == 'error']</code>, "
                     f"<code style='{_CODE}'>df.join({handle}.result.drop(columns='contact_id'))</code>.</div>")
        for line in resume_advice(state, counts, report.get("run_id"), title):
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


# -- the widgets --------------------------------------------------------------------------------


class PanelProgress:
    """The deletion's progress inside the panel; updated from the run's thread."""

    def __init__(self, panel: ConfirmPanel, total: int) -> None:
        self._panel, self.total = panel, total
        self.done = 0
        self.postfix = ""
        self.started = time.monotonic()
        self._lock = threading.Lock()
        panel.bar.max = max(total, 1)
        panel.bar.value = 0
        self._show()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
        self._show()

    def close(self) -> None:
        self._show()

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """A note after the counts (tqdm's name), e.g. "waiting for the rate limit until 12:03:05"."""
        self.postfix = text
        self._show()

    def _show(self) -> None:
        seconds = time.monotonic() - self.started
        rate = f", {self.done / seconds:,.0f} IDs/s" if seconds > 0 and self.done else ""
        postfix = f"; {esc(self.postfix)}" if self.postfix else ""
        self._panel.bar.value = min(self.done, self.total)
        self._panel.bar_label.value = (f"<span style='{_BOX}'>{number(self.done)} of {number(self.total)} contacts "
                                       f"done ({seconds:,.1f} s{rate}){postfix}</span>")


class ConfirmPanel:
    """The widgets; every button only asks the handle, which decides under its lock."""

    def __init__(self, plan: PlanSummary, *, on_delete: Callable[[], object], on_cancel: Callable[[], object],
                 on_stop: Callable[[], object]) -> None:
        import ipywidgets as widgets  # type: ignore[import-untyped]

        self.plan = plan
        self.plan_view = widgets.HTML(plan_html(plan))
        self.delete_button = widgets.Button(description=delete_label(plan), button_style="danger",
                                            tooltip="Permanently delete the planned contacts",
                                            layout=widgets.Layout(width="auto"))
        self.cancel_button = widgets.Button(description="Cancel", tooltip="Send nothing",
                                            layout=widgets.Layout(width="auto"))
        self.stop_button = widgets.Button(description="Stop", button_style="warning",
                                          tooltip="Send no new request; those in flight finish and are recorded",
                                          layout=widgets.Layout(width="auto", display="none"))
        self.bar = widgets.IntProgress(value=0, min=0, max=max(plan.to_delete, 1), bar_style="info",
                                       layout=widgets.Layout(width="360px", display="none"))
        self.bar_label = widgets.HTML("")
        self.message = widgets.HTML("")
        self.delete_button.on_click(lambda _button: on_delete())
        self.cancel_button.on_click(lambda _button: on_cancel())
        self.stop_button.on_click(lambda _button: on_stop())
        self.widget = widgets.VBox([
            self.plan_view,
            widgets.HBox([self.delete_button, self.cancel_button]),
            widgets.HBox([self.bar, self.bar_label, self.stop_button]),
            self.message,
        ])

    @property
    def model_id(self) -> str:
        return str(self.widget.model_id)

    def say(self, text: str, *, error: bool = False) -> None:
        style = _ERROR if error else ""
        self.message.value = f"<div style='{_BOX};{style}'>{esc(text)}</div>"

    def decided(self, confirmed: bool) -> None:
        """Both buttons off at once; on Delete, the progress bar and Stop."""
        self.delete_button.disabled = True
        self.cancel_button.disabled = True
        self.plan_view.value = plan_html(self.plan, decided=True)
        if confirmed:
            self.delete_button.description = "Deleting..."
            self.bar.layout.display = ""
            self.stop_button.layout.display = ""
            self.say("Deleting exactly the planned contacts. Stop sends no new request; those in flight "
                     "finish and are recorded.")
        else:
            self.say("Cancelling: nothing is sent.")

    def progress(self, total: int) -> PanelProgress:
        return PanelProgress(self, total)

    def stopping(self) -> None:
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping..."
        self.say("Stopping: no new request goes out; requests in flight finish and are recorded.")

    def finished(self, summary: str) -> None:
        self.delete_button.disabled = self.cancel_button.disabled = self.stop_button.disabled = True
        self.stop_button.layout.display = "none"
        self.bar.bar_style = "success" if self.bar.value >= self.bar.max else "warning"
        self.message.value = summary
