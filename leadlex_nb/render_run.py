"""What a notebook handle shows at each stage of its run, as one MIME bundle: the plan awaiting a
decision (with the panel's widget), the decision under way, then the summary.

The handle shows the bundle under a display id and replaces it there as the run goes on; widget state
is not saved with a notebook, so the text and HTML are what a saved copy keeps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadlex_nb.background_run import AWAITING, CANCELLING, DELETING, FINAL, BackgroundRun
from leadlex_nb.errors import LeadLexError
from leadlex_nb.render_outcome import summary_html, summary_text
from leadlex_nb.render_plan import plan_html, plan_text, started_text
from leadlex_nb.render_style import esc

if TYPE_CHECKING:
    from leadlex_nb.panel import ConfirmPanel

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def run_bundle(run: BackgroundRun, panel: ConfirmPanel | None, *, no_plan_text: str) -> dict[str, Any]:
    """The bundle for the run's current state, with ``panel`` until the run ends; ``no_plan_text``: the
    text before there is a plan."""
    with run.lock:
        state = run.state
    if state in FINAL:
        return {"text/plain": run_summary(run), "text/html": run_summary(run, html=True)}
    bundle: dict[str, Any] = {"text/plain": _pending_text(run, no_plan_text)}
    if run.plan is not None:  # for renderers without widgets (nbconvert, GitHub) and saved copies
        text = f"<pre>{esc(_pending_text(run, no_plan_text))}</pre>"
        bundle["text/html"] = (plan_html(run.plan) if state == AWAITING else "") + text
    if panel is not None:
        bundle[WIDGET_MIME] = {"model_id": panel.model_id, "version_major": 2, "version_minor": 0}
    return bundle


def run_summary(run: BackgroundRun, *, html: bool = False) -> str:
    """What the ended run did, as plain text or HTML; a stale plan's refusal is said as its error."""
    error = LeadLexError(run.refusal) if run.refusal is not None else run.stopped_by()
    render = summary_html if html else summary_text
    return render(run.state, run.frame, plan=run.plan, error=error, deletion_seconds=run.deletion_seconds())


def _pending_text(run: BackgroundRun, no_plan_text: str) -> str:
    if run.plan is None:
        return no_plan_text
    if run.state in (DELETING, CANCELLING):
        return started_text(run.plan, confirmed=run.state == DELETING)
    return plan_text(run.plan)
